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
	{"ChannelPool", testChannelPool},
	{"PoolGroup", testPoolGroup},
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

// A channel pool hands out distinct working channels of one connection
// and never hands out a channel that was closed, by its user or by a
// reconnect.
func testChannelPool(e *env) {
	pool := e.conn.ChannelPool(2)
	e.t.Cleanup(func() { _ = pool.Close() })
	ctx, cancel := e.wait()
	defer cancel()
	ch1, err := pool.Acquire(ctx)
	if err != nil {
		e.t.Fatalf("acquire: %v", err)
	}
	ch2, err := pool.TryAcquire()
	if err != nil {
		e.t.Fatalf("try acquire: %v", err)
	}
	if ch1 == ch2 || ch1.Connection() != e.conn {
		e.t.Fatalf("the pool handed out one channel twice, or a channel of another connection")
	}
	if _, err := pool.TryAcquire(); !errors.Is(err, kombu.ErrPoolExhausted) {
		e.t.Errorf("try acquire beyond the limit: %v, want ErrPoolExhausted", err)
	}
	q := e.simpleQueue("q")
	p, err := kombu.NewProducer(ctx, ch1, nil)
	if err != nil {
		e.t.Fatalf("producer on a pooled channel: %v", err)
	}
	e.sendTo(p, q.Name, "one")
	if m := e.getEventually(q, ch2, true); string(m.Body) != "one" {
		e.t.Errorf("got %q through the pooled channels, want one", m.Body)
	}
	if err := ch1.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	pool.Release(ch1)
	pool.Release(ch2)
	pool.Release(ch2)
	if st := pool.Stats(); st != (kombu.PoolStats{Limit: 2, Idle: 1}) {
		e.t.Errorf("stats %+v after releasing a closed and an open channel, want one idle", st)
	}
	if err := e.conn.Reconnect(ctx, false); err != nil {
		e.t.Fatalf("reconnect: %v", err)
	}
	ch3, err := pool.Acquire(ctx)
	if err != nil {
		e.t.Fatalf("acquire after reconnect: %v", err)
	}
	defer pool.Release(ch3)
	if ch3 == ch1 || ch3 == ch2 {
		e.t.Fatal("the pool handed out a closed channel")
	}
	p, err = kombu.NewProducer(ctx, ch3, nil)
	if err != nil {
		e.t.Fatalf("producer after reconnect: %v", err)
	}
	e.sendTo(p, q.Name, "two")
	if m := e.getEventually(q, ch3, true); string(m.Body) != "two" {
		e.t.Errorf("got %q after the reconnect, want two", m.Body)
	}
}

// A pool group shares one pool per URL, and its producers keep working
// while the limit of every pool changes under them.
func testPoolGroup(e *env) {
	const workers, each = 8, 10
	g := kombu.NewPoolGroup(2)
	e.t.Cleanup(func() { _ = g.Reset() })
	same, err := kombu.NewConnection(e.s.h.URL, e.s.h.Options)
	if err != nil {
		e.t.Fatal(err)
	}
	if g.Connections(same) != g.Connections(e.conn) {
		e.t.Error("two connections to the same URL got different pools")
	}
	q := e.simpleQueue("q")
	producers := g.Producers(e.conn)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if w == 0 {
					if err := g.SetLimit(1 + i%3); err != nil {
						e.t.Errorf("set limit: %v", err)
					}
				}
				ctx, cancel := e.wait()
				p, err := producers.Acquire(ctx)
				if err != nil {
					cancel()
					e.t.Errorf("acquire producer: %v", err)
					return
				}
				err = p.Publish(ctx, fmt.Sprintf("%d-%d", w, i), &kombu.PublishOptions{RoutingKey: q.Name})
				producers.Release(p)
				cancel()
				if err != nil {
					e.t.Errorf("publish: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	pool := g.Connections(e.conn)
	if st := pool.Stats(); st.InUse != 0 || st.Idle > st.Limit || st.Limit != g.Limit() {
		e.t.Errorf("after the run: %+v, group limit %d", st, g.Limit())
	}
	if err := g.Reset(); err != nil {
		e.t.Errorf("reset: %v", err)
	}
	if _, err := pool.TryAcquire(); !errors.Is(err, kombu.ErrClosed) {
		e.t.Errorf("acquire after Reset: %v, want ErrClosed", err)
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
		e.t.Errorf("received %d messages, want %d", len(got), len(want))
	}
}
