package drivertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

var poolCases = []testCase{
	{"ConnectionPool", testConnectionPool},
	{"ProducerPool", testProducerPool},
}

func testConnectionPool(e *env) {
	pool := e.conn.Pool(2)
	e.t.Cleanup(func() {
		if err := pool.Close(); err != nil {
			e.t.Errorf("pool close: %v", err)
		}
	})
	ctx, cancel := e.wait()
	defer cancel()
	c1, err := pool.Acquire(ctx)
	if err != nil {
		e.t.Fatalf("acquire: %v", err)
	}
	c2, err := pool.TryAcquire()
	if err != nil {
		e.t.Fatalf("try acquire: %v", err)
	}
	if c1 == c2 || c1 == e.conn || c2 == e.conn {
		e.t.Errorf("pool handed out the same connection twice, or its template")
	}
	if _, err := pool.TryAcquire(); !errors.Is(err, kombu.ErrPoolExhausted) {
		e.t.Errorf("try acquire beyond the limit: %v, want ErrPoolExhausted", err)
	}
	short, cancelShort := context.WithTimeout(ctx, negativeWait)
	if _, err := pool.Acquire(short); !errors.Is(err, context.DeadlineExceeded) {
		e.t.Errorf("acquire beyond the limit: %v, want context.DeadlineExceeded", err)
	}
	cancelShort()
	// Pooled connections work.
	q := e.simpleQueue("q")
	for i, c := range []*kombu.Connection{c1, c2} {
		p := e.producer(c, nil)
		e.sendTo(p, q.Name, fmt.Sprint(i))
		_ = p.Close()
	}
	// A blocked Acquire gets the connection released.
	got := make(chan *kombu.Connection, 1)
	go func() {
		c, err := pool.Acquire(ctx)
		if err != nil {
			e.t.Errorf("blocked acquire: %v", err)
		}
		got <- c
	}()
	select {
	case c := <-got:
		e.t.Fatalf("acquire returned %v while the pool was exhausted", c)
	case <-time.After(negativeWait):
	}
	pool.Release(c1)
	select {
	case c := <-got:
		if c != c1 {
			e.t.Errorf("blocked acquire got a new connection, want the released one")
		}
		pool.Release(c)
	case <-time.After(e.s.h.Timeout):
		e.t.Fatalf("blocked acquire did not return after a release")
	}
	// A closed connection frees its slot.
	if err := c2.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	pool.Release(c2)
	a, err := pool.TryAcquire()
	if err != nil {
		e.t.Fatalf("try acquire after releases: %v", err)
	}
	b, err := pool.TryAcquire()
	if err != nil {
		e.t.Fatalf("try acquire after releases: %v", err)
	}
	if a == c2 || b == c2 {
		e.t.Errorf("pool handed out a closed connection")
	}
	pool.Release(a)
	pool.Release(b)
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	gotBodies := e.recvBodies(c, 2)
	slices.Sort(gotBodies)
	if !slices.Equal(gotBodies, []string{"0", "1"}) {
		e.t.Errorf("received %q", gotBodies)
	}
}

func testProducerPool(e *env) {
	const workers, each = 8, 5
	x := kombu.NewExchange(e.name("x"), kombu.Direct)
	q := e.declareQueue(kombu.NewQueue(e.name("q"), x, "k"))
	pool := e.conn.Pool(2)
	e.t.Cleanup(func() { _ = pool.Close() })
	pp := kombu.NewProducerPool(pool, &kombu.ProducerOptions{Exchange: x, RoutingKey: "k"})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				ctx, cancel := e.wait()
				p, err := pp.Acquire(ctx)
				if err != nil {
					cancel()
					e.t.Errorf("acquire producer: %v", err)
					return
				}
				err = p.Publish(ctx, fmt.Sprintf("%d-%d", w, i), nil)
				pp.Release(p)
				cancel()
				if err != nil {
					e.t.Errorf("publish: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	for range 2 {
		c, err := pool.TryAcquire()
		if err != nil {
			e.t.Errorf("producers were not given back: %v", err)
			continue
		}
		defer pool.Release(c)
	}
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	got := e.recvBodies(c, workers*each)
	var want []string
	for w := range workers {
		for i := range each {
			want = append(want, fmt.Sprintf("%d-%d", w, i))
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		e.t.Errorf("received %d messages %q, want %q", len(got), got, want)
	}
	e.expectNone(c)
}
