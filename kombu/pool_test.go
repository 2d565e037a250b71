package kombu_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport/memory"
)

// counting wraps a memory broker: it counts live connections and channels
// (so that a test sees what a pool leaks) and refuses dials while down.
type counting struct {
	inner    *memory.Connector
	down     atomic.Bool
	dials    atomic.Int64
	conns    atomic.Int64 // open driver connections
	channels atomic.Int64 // open driver channels
}

func newCounting(t *testing.T) (*counting, *kombu.Connection) {
	cn := &counting{inner: memory.NewConnector(&memory.Options{Broker: uniqueName(t)})}
	return cn, kombu.NewConnectionFromConnector(cn, nil)
}

func (cn *counting) Describe() driver.Description { return memory.Description }

func (cn *counting) Connect(ctx context.Context) (driver.Conn, error) {
	if cn.down.Load() {
		return nil, fmt.Errorf("%w: connection refused", driver.ErrConnectionLost)
	}
	c, err := cn.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	cn.dials.Add(1)
	cn.conns.Add(1)
	return &countedConn{Conn: c, cn: cn}, nil
}

type countedConn struct {
	driver.Conn
	cn   *counting
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.cn.conns.Add(-1) })
	return c.Conn.Close()
}

func (c *countedConn) Channel(ctx context.Context) (driver.Channel, error) {
	ch, err := c.Conn.Channel(ctx)
	if err != nil {
		return nil, err
	}
	c.cn.channels.Add(1)
	return &countedChannel{Channel: ch, cn: c.cn}, nil
}

type countedChannel struct {
	driver.Channel
	cn   *counting
	once sync.Once
}

func (ch *countedChannel) Close() error {
	ch.once.Do(func() { ch.cn.channels.Add(-1) })
	return ch.Channel.Close()
}

// breakConn makes c lose its connection for good, as a broker that went
// away: Connected reports false while c is not closed.
func breakConn(t *testing.T, cn *counting, c *kombu.Connection) {
	t.Helper()
	cn.down.Store(true)
	defer cn.down.Store(false)
	if err := c.Reconnect(context.Background(), false); err == nil {
		t.Fatal("reconnect to a broker that is down succeeded")
	}
	if c.Connected() {
		t.Fatal("Connected() is true after the connection was lost")
	}
}

func connected(t *testing.T, c *kombu.Connection) *kombu.Connection {
	t.Helper()
	if err := c.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

func wantStats(t *testing.T, what string, got, want kombu.PoolStats) {
	t.Helper()
	if got != want {
		t.Errorf("%s: stats %+v, want %+v", what, got, want)
	}
}

// eventually waits up to 5 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestPoolAcquireWaitsInLineAndHonoursCtx(t *testing.T) {
	ctx := context.Background()
	_, conn := newCounting(t)
	pool := conn.Pool(1)
	defer pool.Close()

	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := pool.Acquire(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire with a done ctx and a free slot: %v, want context.Canceled", err)
	}
	a, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	connected(t, a)

	type result struct {
		who int
		c   *kombu.Connection
	}
	got := make(chan result, 2)
	for who := 1; who <= 2; who++ {
		go func() {
			c, err := pool.Acquire(ctx)
			if err != nil {
				t.Errorf("waiter %d: %v", who, err)
			}
			got <- result{who, c}
		}()
		eventually(t, fmt.Sprintf("waiter %d in line", who), func() bool { return pool.Stats().Waiting == who })
	}
	// A waiter whose ctx ends leaves the line with ctx's error.
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	if _, err := pool.Acquire(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire at the limit: %v, want context.DeadlineExceeded", err)
	}
	wantStats(t, "two waiting", pool.Stats(), kombu.PoolStats{Limit: 1, InUse: 1, Waiting: 2})

	pool.Release(a)
	first := <-got
	if first.who != 1 || first.c != a {
		t.Fatalf("first served: waiter %d with %p, want waiter 1 with the released connection %p", first.who, first.c, a)
	}
	pool.Release(first.c)
	second := <-got
	if second.who != 2 || second.c != a {
		t.Fatalf("second served: waiter %d, want waiter 2 with the released connection", second.who)
	}
	pool.Release(second.c)
	wantStats(t, "all released", pool.Stats(), kombu.PoolStats{Limit: 1, Idle: 1})
}

func TestPoolReleaseAndDiscardAreIdempotent(t *testing.T) {
	cn, conn := newCounting(t)
	pool := conn.Pool(2)
	a, _ := pool.TryAcquire()
	b, _ := pool.TryAcquire()
	connected(t, a)
	connected(t, b)
	pool.Release(a)
	pool.Release(a)
	pool.Release(conn) // never handed out
	pool.Release(nil)
	if _, err := pool.TryAcquire(); err != nil {
		t.Fatalf("acquire after releasing a: %v", err)
	}
	if c, err := pool.TryAcquire(); !errors.Is(err, kombu.ErrPoolExhausted) {
		t.Fatalf("a released twice freed two slots: a third connection %v is out (err %v)", c, err)
	}
	wantStats(t, "a back out, b out", pool.Stats(), kombu.PoolStats{Limit: 2, InUse: 2})
	pool.Discard(b)
	pool.Discard(b)
	if err := b.Connect(context.Background()); !errors.Is(err, kombu.ErrClosed) {
		t.Errorf("discarded connection: connect %v, want ErrClosed", err)
	}
	wantStats(t, "b discarded twice", pool.Stats(), kombu.PoolStats{Limit: 2, InUse: 1})
	pool.Release(a)
	if err := pool.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pool.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if n := cn.conns.Load(); n != 0 {
		t.Errorf("%d connections left open after Close", n)
	}
}

func TestPoolDropsLostConnections(t *testing.T) {
	ctx := context.Background()
	cn, conn := newCounting(t)
	pool := conn.Pool(2)
	defer pool.Close()

	// Released after it lost its connection: closed, not handed out again.
	a := connected(t, must(pool.Acquire(ctx)))
	breakConn(t, cn, a)
	pool.Release(a)
	if err := a.Connect(ctx); !errors.Is(err, kombu.ErrClosed) {
		t.Errorf("lost connection released: connect %v, want ErrClosed (closed by the pool)", err)
	}
	// Lost while idle: noticed at Acquire.
	b := connected(t, must(pool.Acquire(ctx)))
	if b == a {
		t.Fatal("the pool handed out a lost connection again")
	}
	pool.Release(b)
	wantStats(t, "b idle", pool.Stats(), kombu.PoolStats{Limit: 2, Idle: 1})
	breakConn(t, cn, b)
	c := must(pool.Acquire(ctx))
	if c == b {
		t.Fatal("the pool handed out a connection lost while idle")
	}
	if err := b.Connect(ctx); !errors.Is(err, kombu.ErrClosed) {
		t.Errorf("connection lost while idle: connect %v, want ErrClosed", err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("fresh connection: %v", err)
	}
	pool.Release(c)
	if n := cn.conns.Load(); n != 1 {
		t.Errorf("%d driver connections open, want 1 (the idle one)", n)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestPoolResize(t *testing.T) {
	ctx := context.Background()
	cn, conn := newCounting(t)
	pool := conn.Pool(1)
	defer pool.Close()
	a := connected(t, must(pool.Acquire(ctx)))

	// Growing serves a waiter at once.
	got := make(chan *kombu.Connection)
	go func() { got <- must(pool.Acquire(ctx)) }()
	eventually(t, "a waiter", func() bool { return pool.Stats().Waiting == 1 })
	if err := pool.Resize(2); err != nil {
		t.Fatal(err)
	}
	b := connected(t, <-got)

	// Shrinking takes nothing away: the surplus is closed when released.
	if err := pool.Resize(1); err != nil {
		t.Fatal(err)
	}
	wantStats(t, "shrunk below use", pool.Stats(), kombu.PoolStats{Limit: 1, InUse: 2})
	if _, err := pool.TryAcquire(); !errors.Is(err, kombu.ErrPoolExhausted) {
		t.Fatalf("acquire above the new limit: %v, want ErrPoolExhausted", err)
	}
	if err := a.Ping(ctx); err != nil {
		t.Fatalf("a connection in use was disturbed by the shrink: %v", err)
	}
	pool.Release(a)
	if a.Connected() {
		t.Error("a connection released above the limit was kept")
	}
	if _, err := pool.TryAcquire(); !errors.Is(err, kombu.ErrPoolExhausted) {
		t.Fatalf("acquire at the new limit: %v, want ErrPoolExhausted", err)
	}
	pool.Release(b)
	wantStats(t, "back under the limit", pool.Stats(), kombu.PoolStats{Limit: 1, Idle: 1})

	// Shrinking closes idle connections above the limit.
	if err := pool.Resize(3); err != nil {
		t.Fatal(err)
	}
	if err := pool.Preload(ctx, 3); err != nil {
		t.Fatal(err)
	}
	wantStats(t, "preloaded", pool.Stats(), kombu.PoolStats{Limit: 3, Idle: 3})
	if err := pool.Resize(1); err != nil {
		t.Fatal(err)
	}
	wantStats(t, "idle trimmed", pool.Stats(), kombu.PoolStats{Limit: 1, Idle: 1})
	if n := cn.conns.Load(); n != 1 {
		t.Errorf("%d driver connections open after the trim, want 1", n)
	}
	for _, bad := range []int{0, -1} {
		if err := pool.Resize(bad); !errors.Is(err, kombu.ErrInvalidArgument) {
			t.Errorf("Resize(%d): %v, want ErrInvalidArgument", bad, err)
		}
	}
	if pool.Limit() != 1 {
		t.Errorf("limit %d after refused resizes, want 1", pool.Limit())
	}
}

func TestPoolCloseFailsWaitersAndClosesReleased(t *testing.T) {
	ctx := context.Background()
	cn, conn := newCounting(t)
	pool := conn.Pool(1)
	a := connected(t, must(pool.Acquire(ctx)))
	failed := make(chan error)
	go func() {
		_, err := pool.Acquire(ctx)
		failed <- err
	}()
	eventually(t, "a waiter", func() bool { return pool.Stats().Waiting == 1 })
	if err := pool.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-failed; !errors.Is(err, kombu.ErrClosed) {
		t.Fatalf("waiter at Close: %v, want ErrClosed", err)
	}
	if _, err := pool.Acquire(ctx); !errors.Is(err, kombu.ErrClosed) {
		t.Fatalf("acquire after Close: %v, want ErrClosed", err)
	}
	if err := pool.Preload(ctx, 1); !errors.Is(err, kombu.ErrClosed) {
		t.Fatalf("preload after Close: %v, want ErrClosed", err)
	}
	if err := a.Ping(ctx); err != nil {
		t.Fatalf("Close took a connection from its holder: %v", err)
	}
	pool.Release(a)
	if n := cn.conns.Load(); n != 0 {
		t.Errorf("%d connections open after Close and Release", n)
	}
}

func TestPoolPreloadConnects(t *testing.T) {
	ctx := context.Background()
	cn, conn := newCounting(t)
	pool := conn.Pool(2)
	defer pool.Close()
	if err := pool.Preload(ctx, 5); err != nil {
		t.Fatal(err)
	}
	wantStats(t, "preloaded beyond the limit", pool.Stats(), kombu.PoolStats{Limit: 2, Idle: 2})
	c := must(pool.Acquire(ctx))
	if !c.Connected() {
		t.Error("a preloaded connection is not connected")
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if n := cn.dials.Load(); n != 2 {
		t.Errorf("%d dials, want 2 (the preloaded ones only)", n)
	}
	pool.Release(c)

	cn.down.Store(true)
	defer cn.down.Store(false)
	p2 := conn.Pool(2)
	defer p2.Close()
	if err := p2.Preload(ctx, 1); !errors.Is(err, kombu.ErrConnectionLost) {
		t.Fatalf("preload with the broker down: %v, want ErrConnectionLost", err)
	}
	wantStats(t, "failed preload", p2.Stats(), kombu.PoolStats{Limit: 2})
}

func TestChannelPool(t *testing.T) {
	ctx := context.Background()
	cn, conn := newCounting(t)
	defer conn.Close()
	pool := conn.ChannelPool(2)
	ch1 := must(pool.Acquire(ctx))
	ch2 := must(pool.TryAcquire())
	if ch1 == ch2 {
		t.Fatal("the same channel handed out twice")
	}
	if _, err := pool.TryAcquire(); !errors.Is(err, kombu.ErrPoolExhausted) {
		t.Fatalf("third channel: %v, want ErrPoolExhausted", err)
	}
	q := kombu.NewQueue("chpool", kombu.DefaultExchange, "chpool")
	if _, err := q.Declare(ctx, ch1); err != nil {
		t.Fatalf("a pooled channel does not work: %v", err)
	}
	pool.Release(ch1)
	pool.Release(ch1)
	if again := must(pool.Acquire(ctx)); again != ch1 {
		t.Errorf("a released channel was not reused")
	}
	// A channel closed by its user is dropped.
	_ = ch1.Close()
	pool.Release(ch1)
	ch3 := must(pool.Acquire(ctx))
	if ch3 == ch1 {
		t.Fatal("a closed channel was handed out again")
	}
	// Channels lost with their connection are dropped.
	pool.Release(ch2)
	pool.Release(ch3)
	if err := conn.Reconnect(ctx, false); err != nil {
		t.Fatal(err)
	}
	ch4 := must(pool.Acquire(ctx))
	if ch4 == ch2 || ch4 == ch3 {
		t.Fatal("a channel of the old connection was handed out after a reconnect")
	}
	if _, err := q.Declare(ctx, ch4); err != nil {
		t.Fatal(err)
	}
	pool.Release(ch4)
	if err := pool.Close(); err != nil {
		t.Fatal(err)
	}
	// The old connection's channels close in the background after the
	// reconnect (a Reconnect never waits on a dying broker).
	for deadline := time.Now().Add(5 * time.Second); cn.channels.Load() != 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if n := cn.channels.Load(); n != 0 {
		t.Errorf("%d channels open after Close", n)
	}
	if !conn.Connected() {
		t.Error("closing a channel pool closed its connection")
	}
}

func TestProducerPoolKeepsProducersWithTheirConnection(t *testing.T) {
	ctx := context.Background()
	cn, conn := newCounting(t)
	pool := conn.Pool(1)
	pp := kombu.NewProducerPool(pool, nil)
	q := kombu.NewQueue("pp", kombu.DefaultExchange, "pp")
	opts := &kombu.PublishOptions{RoutingKey: "pp", Declare: []kombu.Declarable{q}}

	p1 := must(pp.Acquire(ctx))
	if err := p1.Publish(ctx, "1", opts); err != nil {
		t.Fatal(err)
	}
	pp.Release(p1)
	pp.Release(p1)
	p2 := must(pp.Acquire(ctx))
	if p2 != p1 {
		t.Error("the idle producer was not reused with its connection")
	}
	// The connection goes: so does its producer.
	breakConn(t, cn, p2.Channel().Connection())
	pp.Release(p2)
	p3 := must(pp.Acquire(ctx))
	if p3 == p1 {
		t.Fatal("a producer of a lost connection was handed out again")
	}
	if err := p3.Publish(ctx, "2", opts); err != nil {
		t.Fatal(err)
	}
	pp.Release(p3)
	if _, err := pool.TryAcquire(); err != nil {
		t.Fatalf("the producer's connection was not given back: %v", err)
	}
	_ = pp.Close()
	_ = pool.Close()
	if n, m := cn.conns.Load(), cn.channels.Load(); n != 1 || m != 0 {
		// The connection acquired above is still out.
		t.Errorf("%d connections and %d channels open, want 1 and 0", n, m)
	}
}

func TestPoolGroupKeysByConnectionParameters(t *testing.T) {
	g := kombu.NewPoolGroup(3)
	name := uniqueName(t)
	c1 := must(kombu.NewConnection("memory://"+name, nil))
	c2 := must(kombu.NewConnection("memory://"+name, nil))
	other := must(kombu.NewConnection("memory://"+name+"-other", nil))
	userA := must(kombu.NewConnection("memory://u:a@"+name, nil))
	userB := must(kombu.NewConnection("memory://u:b@"+name, nil))
	_, byConnector := newCounting(t)
	_, byConnector2 := newCounting(t)

	if g.Connections(c1) != g.Connections(c2) {
		t.Error("two connections to the same URL got different pools")
	}
	if g.Connections(c1) == g.Connections(other) {
		t.Error("connections to different brokers share a pool")
	}
	if g.Connections(userA) == g.Connections(userB) {
		t.Error("connections with different passwords share a pool")
	}
	if g.Connections(byConnector) == g.Connections(byConnector2) {
		t.Error("connections from different connectors share a pool")
	}
	if g.Connections(byConnector) != g.Connections(byConnector.Clone()) {
		t.Error("a clone of a connector-made connection got another pool")
	}
	fromURL := must(g.ConnectionsFor("memory://"+name, nil))
	if fromURL != g.Connections(c1) {
		t.Error("ConnectionsFor the same URL got another pool")
	}
	if _, err := g.ConnectionsFor("nope://x", nil); !errors.Is(err, kombu.ErrInvalidURL) {
		t.Errorf("ConnectionsFor an unknown scheme: %v, want ErrInvalidURL", err)
	}
	if pp := g.Producers(c2); pp.Connections() != g.Connections(c1) || pp != g.Producers(c1) {
		t.Error("the producer pool does not use the group's connection pool")
	}
}

func TestPoolGroupSetLimitAndReset(t *testing.T) {
	ctx := context.Background()
	g := kombu.NewPoolGroup(0)
	if g.Limit() != 10 {
		t.Fatalf("default limit %d, want kombu's 10", g.Limit())
	}
	cnA, a := newCounting(t)
	_, b := newCounting(t)
	poolA, poolB := g.Connections(a), g.Connections(b)
	if err := g.SetLimit(2); err != nil {
		t.Fatal(err)
	}
	if poolA.Limit() != 2 || poolB.Limit() != 2 || g.Connections(must(kombu.NewConnection("memory://"+uniqueName(t), nil))).Limit() != 2 {
		t.Error("SetLimit did not reach every pool, or the next one")
	}
	if err := g.SetLimit(0); !errors.Is(err, kombu.ErrInvalidArgument) {
		t.Errorf("SetLimit(0): %v, want ErrInvalidArgument", err)
	}
	held := connected(t, must(poolA.Acquire(ctx)))
	p := must(g.Producers(a).Acquire(ctx))
	g.Producers(a).Release(p)
	if err := g.Reset(); err != nil {
		t.Fatal(err)
	}
	if _, err := poolA.Acquire(ctx); !errors.Is(err, kombu.ErrClosed) {
		t.Errorf("acquire on a pool after Reset: %v, want ErrClosed", err)
	}
	if err := held.Ping(ctx); err != nil {
		t.Errorf("Reset took a connection from its holder: %v", err)
	}
	poolA.Release(held)
	if n := cnA.conns.Load(); n != 0 {
		t.Errorf("%d connections open after Reset and release", n)
	}
	if g.Connections(a) == poolA {
		t.Error("after Reset the group handed out the closed pool")
	}
	// A pool closed by its user is replaced too.
	_ = g.Connections(b).Close()
	if _, err := g.Connections(b).TryAcquire(); err != nil {
		t.Errorf("pool after its user closed the old one: %v", err)
	}
	_ = g.Reset()
}

// stressed is what the stress test does with a pool of T.
type stressed[T any] struct {
	acquire func(context.Context) (T, error)
	release func(T)
	discard func(T)
	resize  func(int) error
	stats   func() kombu.PoolStats
	use     func(context.Context, T) error
	breakIt func(T) // closes it under its holder, as a lost connection would
	close   func() error
}

// TestPoolStress hammers each pool from many goroutines while its limit
// changes at random: the number in use never exceeds the largest limit,
// every waiter is served, and after Close no connection, channel or
// goroutine is left.
func TestPoolStress(t *testing.T) {
	t.Run("ConnectionPool", func(t *testing.T) {
		cn, conn := newCounting(t)
		p := conn.Pool(4)
		stress(t, cn, stressed[*kombu.Connection]{
			acquire: p.Acquire, release: p.Release, discard: p.Discard, resize: p.Resize, stats: p.Stats, close: p.Close,
			use:     func(ctx context.Context, c *kombu.Connection) error { return c.Ping(ctx) },
			breakIt: func(c *kombu.Connection) { _ = c.Close() },
		})
	})
	t.Run("ChannelPool", func(t *testing.T) {
		cn, conn := newCounting(t)
		p := conn.ChannelPool(4)
		q := kombu.NewQueue("stress", kombu.DefaultExchange, "stress")
		stress(t, cn, stressed[*kombu.Channel]{
			acquire: p.Acquire, release: p.Release, discard: p.Discard, resize: p.Resize, stats: p.Stats,
			close:   func() error { return errors.Join(p.Close(), conn.Close()) },
			use:     func(ctx context.Context, ch *kombu.Channel) error { _, err := q.Declare(ctx, ch); return err },
			breakIt: func(ch *kombu.Channel) { _ = ch.Close() },
		})
	})
	t.Run("ProducerPool", func(t *testing.T) {
		cn, conn := newCounting(t)
		conns := conn.Pool(4)
		p := kombu.NewProducerPool(conns, nil)
		q := kombu.NewQueue("stress", kombu.DefaultExchange, "stress")
		opts := &kombu.PublishOptions{RoutingKey: "stress", Declare: []kombu.Declarable{q}}
		stress(t, cn, stressed[*kombu.Producer]{
			acquire: p.Acquire, release: p.Release, resize: conns.Resize, stats: conns.Stats,
			discard: func(pr *kombu.Producer) { _ = pr.Channel().Connection().Close(); p.Release(pr) },
			close:   func() error { return errors.Join(p.Close(), conns.Close()) },
			use:     func(ctx context.Context, pr *kombu.Producer) error { return pr.Publish(ctx, "x", opts) },
			breakIt: func(pr *kombu.Producer) { _ = pr.Close() },
		})
	})
}

func stress[T any](t *testing.T, cn *counting, p stressed[T]) {
	const workers, rounds, maxLimit = 64, 200, 8
	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// bound is the most that may be in use: raised before the pool grows,
	// lowered only once the pool has drained to a smaller limit (Resize
	// takes nothing from holders). Workers count and compare under the
	// read lock, so bound cannot move between the two.
	var (
		boundMu          sync.RWMutex
		bound            = 4
		inUse, highWater atomic.Int64
	)
	setBound := func(b int) { boundMu.Lock(); bound = b; boundMu.Unlock() }
	if err := p.resize(bound); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var resizer, wg sync.WaitGroup
	resizer.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			limit := 1 + rand.IntN(maxLimit)
			boundMu.RLock()
			grow := limit >= bound
			boundMu.RUnlock()
			if grow {
				setBound(limit)
			}
			if err := p.resize(limit); err != nil {
				t.Error(err)
			}
			for !grow && p.stats().InUse > limit {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Microsecond):
				}
			}
			setBound(limit)
		}
	})
	for range workers {
		wg.Go(func() {
			for i := range rounds {
				r, err := p.acquire(ctx)
				if err != nil {
					t.Errorf("acquire: %v", err)
					return
				}
				boundMu.RLock()
				n, b := inUse.Add(1), bound
				boundMu.RUnlock()
				if n > int64(b) {
					t.Errorf("%d in use, limit %d", n, b)
				}
				for h := highWater.Load(); n > h && !highWater.CompareAndSwap(h, n); h = highWater.Load() {
				}
				if err := p.use(ctx, r); err != nil {
					t.Errorf("use: %v", err)
				}
				if i%4 == 0 {
					time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond) // hold it, so that others wait
				}
				inUse.Add(-1)
				switch i % 10 {
				case 3:
					p.discard(r)
				case 7:
					p.breakIt(r)
					p.release(r)
				default:
					p.release(r)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	resizer.Wait()
	t.Logf("at most %d in use at once", highWater.Load())
	if h := highWater.Load(); h < 2 {
		t.Errorf("at most %d in use at once: the test did not run concurrently", h)
	}
	if err := p.resize(2); err != nil {
		t.Fatal(err)
	}
	if st := p.stats(); st.InUse != 0 || st.Waiting != 0 || st.Idle > 2 {
		t.Errorf("after the run: %+v, want nothing in use or waiting and at most 2 idle", st)
	}
	if err := p.close(); err != nil {
		t.Fatal(err)
	}
	if n, m := cn.conns.Load(), cn.channels.Load(); n != 0 || m != 0 {
		t.Errorf("%d connections and %d channels left open after Close", n, m)
	}
	goleak.VerifyNone(t, ignore)
}
