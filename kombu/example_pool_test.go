package kombu_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/kombu-go/kombu/kombu"
)

// Channels of one connection, shared by goroutines through a pool: at
// most two are open, and a channel closed by its user is never handed out
// again.
func ExampleConnection_ChannelPool() {
	ctx := context.Background()
	conn, _ := kombu.Dial(ctx, "memory://channel-pool", nil)
	defer conn.Close()
	channels := conn.ChannelPool(2)
	defer channels.Close()

	q := kombu.NewQueue("jobs", kombu.DefaultExchange, "jobs")
	ch, _ := channels.Acquire(ctx)
	_, _ = q.Declare(ctx, ch)
	p, _ := kombu.NewProducer(ctx, ch, nil)
	_ = p.Publish(ctx, "job 1", &kombu.PublishOptions{RoutingKey: "jobs"})
	channels.Release(ch)

	other, _ := channels.Acquire(ctx)
	fmt.Println("reused:", other == ch)
	m, _ := q.Get(ctx, other, true, nil)
	fmt.Println(string(m.Body))
	_ = other.Close() // broken, say: the pool drops it
	channels.Release(other)
	fmt.Printf("%+v\n", channels.Stats())
	// Output:
	// reused: true
	// job 1
	// {Limit:2 InUse:0 Idle:0 Waiting:0}
}

// Resizing a pool in use: shrinking takes no connection from its holder;
// the surplus is closed when released, and Acquire waits until the pool
// is under its new limit.
func ExampleConnectionPool_Resize() {
	ctx := context.Background()
	conn, _ := kombu.NewConnection("memory://resize", nil)
	pool := conn.Pool(2)
	defer pool.Close()
	if err := pool.Preload(ctx, 2); err != nil { // connect both now
		panic(err)
	}
	a, _ := pool.Acquire(ctx)
	b, _ := pool.Acquire(ctx)

	_ = pool.Resize(1)
	fmt.Printf("%+v\n", pool.Stats())
	_, err := pool.TryAcquire()
	fmt.Println(errors.Is(err, kombu.ErrPoolExhausted))
	pool.Release(a) // above the limit: closed
	pool.Release(b) // kept
	fmt.Printf("%+v\n", pool.Stats())
	fmt.Println(a.Connected(), b.Connected())
	// Output:
	// {Limit:1 InUse:2 Idle:0 Waiting:0}
	// true
	// {Limit:1 InUse:0 Idle:1 Waiting:0}
	// false true
}

// The process-wide pools (kombu.pools.producers[conn] and set_limit in
// Python): connections made from the same URL share one pool.
func ExamplePoolGroup() {
	ctx := context.Background()
	defer kombu.Pools.Reset()
	conn, _ := kombu.NewConnection("memory://pool-group", nil)
	same, _ := kombu.NewConnection("memory://pool-group", nil)
	fmt.Println("shared:", kombu.Pools.Connections(conn) == kombu.Pools.Connections(same))

	q := kombu.NewQueue("events", kombu.DefaultExchange, "events")
	producers := kombu.Pools.Producers(conn)
	for i := range 3 {
		p, err := producers.Acquire(ctx)
		if err != nil {
			panic(err)
		}
		_ = p.Publish(ctx, i, &kombu.PublishOptions{RoutingKey: "events", Declare: []kombu.Declarable{q}})
		producers.Release(p)
	}
	c, ch, _ := kombu.Pools.Connections(same).AcquireChannel(ctx)
	n, _ := q.Len(ctx, ch)
	kombu.Pools.Connections(same).Release(c)
	fmt.Println("published:", n)

	_ = kombu.Pools.SetLimit(4)
	defer kombu.Pools.SetLimit(10)
	fmt.Println("limit:", kombu.Pools.Connections(conn).Limit())
	// Output:
	// shared: true
	// published: 3
	// limit: 4
}
