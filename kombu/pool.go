package kombu

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// defaultPoolLimit is kombu's default pool limit.
const defaultPoolLimit = 10

// ConnectionPool hands out up to Limit connections cloned from a template
// (kombu's connection pool), safe for concurrent use. Acquire returns an
// unconnected clone, which connects on first use, or a released one that
// is still connected; a released connection whose Connected reports false
// (lost, or never used) is closed rather than handed out again.
type ConnectionPool struct {
	res resourcePool[*Connection]
}

// Pool returns a pool of at most limit connections like c (limit <= 0
// means 10). c itself is not used by the pool.
func (c *Connection) Pool(limit int) *ConnectionPool {
	if limit <= 0 {
		limit = defaultPoolLimit
	}
	p := &ConnectionPool{res: resourcePool[*Connection]{
		open: func(context.Context) (*Connection, error) { return c.Clone(), nil },
		preopen: func(ctx context.Context) (*Connection, error) {
			n := c.Clone()
			if err := n.Connect(ctx); err != nil {
				_ = n.Close()
				return nil, err
			}
			return n, nil
		},
		close:     (*Connection).Close,
		usable:    func(n *Connection) bool { return n.Connected() && !n.isClosed() },
		transport: c.TransportName,
	}}
	p.res.init(limit)
	return p
}

// Acquire returns an idle connection or a new one. While Limit connections
// are in use it waits, first come first served, for a Release, a Discard
// or a larger limit, or until ctx ends (then it returns ctx.Err()). After
// Close it fails with ErrClosed.
func (p *ConnectionPool) Acquire(ctx context.Context) (*Connection, error) {
	return p.res.acquire(ctx, true)
}

// TryAcquire is Acquire that fails with ErrPoolExhausted instead of
// waiting.
func (p *ConnectionPool) TryAcquire() (*Connection, error) {
	return p.res.acquire(context.Background(), false)
}

// AcquireChannel acquires a connection and returns it with its default
// channel (kombu's acquire_channel). Release the connection when done.
func (p *ConnectionPool) AcquireChannel(ctx context.Context) (*Connection, *Channel, error) {
	c, err := p.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	ch, err := c.DefaultChannel(ctx)
	if err != nil {
		p.Release(c)
		return nil, nil, err
	}
	return c, ch, nil
}

// Release gives c back. It is kept for the next Acquire if it is still
// connected, the pool is open and not above its limit; otherwise it is
// closed. Releasing c twice, or a connection the pool did not hand out,
// does nothing.
func (p *ConnectionPool) Release(c *Connection) { p.res.release(c) }

func (p *ConnectionPool) release(c *Connection) (kept bool) { return p.res.release(c) }

// Discard closes c and frees its slot, for a connection the caller knows
// is broken (kombu's replace). Like Release, it is idempotent.
func (p *ConnectionPool) Discard(c *Connection) { p.res.discard(c) }

// Resize sets the limit, which must be at least 1. Growing it serves
// waiting Acquire calls at once. Shrinking it never fails and takes no
// connection from its holder: idle connections above the new limit are
// closed now (least recently used first), connections in use are closed
// when released while the pool is above the limit, and Acquire waits
// until fewer than limit are in use. (Python kombu refuses to shrink a
// pool in use; here PoolGroup.SetLimit cannot half fail.)
func (p *ConnectionPool) Resize(limit int) error { return p.res.resize(limit) }

// Limit returns the pool's limit.
func (p *ConnectionPool) Limit() int { return p.res.getLimit() }

// Stats returns the pool's counters.
func (p *ConnectionPool) Stats() PoolStats { return p.res.stats() }

// Preload connects up to n connections now and keeps them idle, so that
// the first Acquire calls do not pay for the dial (kombu's preload). It
// stops at the limit, counting connections in use and idle, and returns
// the first connect error.
func (p *ConnectionPool) Preload(ctx context.Context, n int) error { return p.res.preload(ctx, n) }

// Close closes the idle connections and makes waiting and later Acquire
// calls fail with ErrClosed; connections in use are closed when released.
// Close is idempotent.
func (p *ConnectionPool) Close() error { return p.res.closeAll() }

// ChannelPool hands out up to Limit channels of one connection (kombu's
// ChannelPool), safe for concurrent use. A released channel that was
// closed, by its user or because the connection was lost or re-established,
// is dropped rather than handed out again. Its methods behave as those of
// ConnectionPool.
type ChannelPool struct {
	res resourcePool[*Channel]
}

// ChannelPool returns a pool of at most limit channels of c (limit <= 0
// means 10). Closing the pool closes its idle channels, not c.
func (c *Connection) ChannelPool(limit int) *ChannelPool {
	if limit <= 0 {
		limit = defaultPoolLimit
	}
	p := &ChannelPool{res: resourcePool[*Channel]{
		open:      c.Channel,
		preopen:   c.Channel,
		close:     (*Channel).Close,
		usable:    func(ch *Channel) bool { return !ch.isClosed() },
		transport: c.TransportName,
	}}
	p.res.init(limit)
	return p
}

// Acquire returns an idle channel or opens one, waiting while Limit
// channels are in use, until ctx ends.
func (p *ChannelPool) Acquire(ctx context.Context) (*Channel, error) {
	return p.res.acquire(ctx, true)
}

// TryAcquire is Acquire that fails with ErrPoolExhausted instead of
// waiting.
func (p *ChannelPool) TryAcquire() (*Channel, error) {
	return p.res.acquire(context.Background(), false)
}

// Release gives ch back; a closed channel is dropped. It is idempotent.
func (p *ChannelPool) Release(ch *Channel) { p.res.release(ch) }

// Discard closes ch and frees its slot. It is idempotent.
func (p *ChannelPool) Discard(ch *Channel) { p.res.discard(ch) }

// Resize sets the limit (at least 1), as ConnectionPool.Resize.
func (p *ChannelPool) Resize(limit int) error { return p.res.resize(limit) }

// Limit returns the pool's limit.
func (p *ChannelPool) Limit() int { return p.res.getLimit() }

// Stats returns the pool's counters.
func (p *ChannelPool) Stats() PoolStats { return p.res.stats() }

// Preload opens up to n channels now and keeps them idle.
func (p *ChannelPool) Preload(ctx context.Context, n int) error { return p.res.preload(ctx, n) }

// Close closes the idle channels; channels in use are closed when
// released. It is idempotent.
func (p *ChannelPool) Close() error { return p.res.closeAll() }

// ProducerPool hands out producers, each on a connection of a
// ConnectionPool (kombu's producers[connection].acquire()), so it is
// bounded by that pool's limit. A producer is kept with its connection:
// when the connection pool drops the connection, the producer goes too.
type ProducerPool struct {
	conns *ConnectionPool
	opts  ProducerOptions

	mu     sync.Mutex
	out    map[*Producer]*Connection
	idle   map[*Connection]*Producer
	closed bool
}

// NewProducerPool returns a pool of producers with opts over conns.
func NewProducerPool(conns *ConnectionPool, opts *ProducerOptions) *ProducerPool {
	pp := &ProducerPool{conns: conns, out: map[*Producer]*Connection{}, idle: map[*Connection]*Producer{}}
	if opts != nil {
		pp.opts = *opts
	}
	return pp
}

// Connections returns the connection pool the producers use.
func (pp *ProducerPool) Connections() *ConnectionPool { return pp.conns }

// Acquire returns a producer, waiting while the connection pool is
// exhausted or until ctx ends.
func (pp *ProducerPool) Acquire(ctx context.Context) (*Producer, error) {
	c, err := pp.conns.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	pp.mu.Lock()
	if pp.closed {
		pp.mu.Unlock()
		pp.conns.Release(c)
		return nil, &Error{Op: "pool.acquire", Transport: c.TransportName(), Err: ErrClosed}
	}
	p := pp.idle[c]
	delete(pp.idle, c)
	var stale []*Producer
	for k, q := range pp.idle {
		if k.isClosed() { // the connection pool dropped k
			delete(pp.idle, k)
			stale = append(stale, q)
		}
	}
	pp.mu.Unlock()
	for _, q := range stale {
		_ = q.Close()
	}
	if p == nil {
		if p, err = c.Producer(ctx, &pp.opts); err != nil {
			pp.conns.Release(c)
			return nil, fmt.Errorf("producer pool: %w", err)
		}
	}
	pp.mu.Lock()
	pp.out[p] = c
	pp.mu.Unlock()
	return p, nil
}

// Release gives p and its connection back. Releasing p twice, or a
// producer the pool did not hand out, does nothing.
func (pp *ProducerPool) Release(p *Producer) {
	pp.mu.Lock()
	c, ok := pp.out[p]
	delete(pp.out, p)
	keep := ok && !pp.closed
	if keep {
		// Before the connection goes back, so that whoever acquires it
		// next finds this producer instead of opening a second one.
		if old := pp.idle[c]; old != nil {
			defer old.Close()
		}
		pp.idle[c] = p
	}
	pp.mu.Unlock()
	if !ok {
		return
	}
	if pp.conns.release(c) && keep {
		return
	}
	pp.mu.Lock()
	if pp.idle[c] == p {
		delete(pp.idle, c)
	}
	pp.mu.Unlock()
	_ = p.Close()
}

// Close closes the idle producers; producers in use are closed when
// released. It does not close the connection pool, which may be shared.
// Close is idempotent.
func (pp *ProducerPool) Close() error {
	pp.mu.Lock()
	pp.closed = true
	idle := pp.idle
	pp.idle = map[*Connection]*Producer{}
	pp.mu.Unlock()
	errs := make([]error, 0, len(idle))
	for _, p := range idle {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

func (pp *ProducerPool) isClosed() bool {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return pp.closed
}
