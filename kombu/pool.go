package kombu

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrPoolExhausted is returned by TryAcquire when every resource is in use
// (kombu's LimitExceeded).
var ErrPoolExhausted = errors.New("pool exhausted")

// ConnectionPool hands out up to Limit connections cloned from a template
// (kombu's connection pool). Acquire blocks while all are in use.
type ConnectionPool struct {
	template *Connection
	slots    chan struct{} // one token per connection that may exist

	mu     sync.Mutex
	idle   []*Connection
	closed bool
}

// Pool returns a pool of at most limit connections like c (limit <= 0
// means 10). c itself is not used by the pool.
func (c *Connection) Pool(limit int) *ConnectionPool {
	if limit <= 0 {
		limit = 10
	}
	return &ConnectionPool{template: c, slots: make(chan struct{}, limit)}
}

// Acquire returns an idle connection or a new one, waiting for a Release
// while limit connections are out.
func (p *ConnectionPool) Acquire(ctx context.Context) (*Connection, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p.take()
}

// TryAcquire is Acquire that fails with ErrPoolExhausted instead of waiting.
func (p *ConnectionPool) TryAcquire() (*Connection, error) {
	select {
	case p.slots <- struct{}{}:
	default:
		return nil, &Error{Op: "pool.acquire", Transport: p.template.TransportName(), Err: ErrPoolExhausted}
	}
	return p.take()
}

func (p *ConnectionPool) take() (*Connection, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		<-p.slots
		return nil, &Error{Op: "pool.acquire", Transport: p.template.TransportName(), Err: ErrClosed}
	}
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		return c, nil
	}
	return p.template.Clone(), nil
}

// Release gives c back. A closed connection is dropped, freeing its slot.
func (p *ConnectionPool) Release(c *Connection) {
	if c == nil {
		return
	}
	p.mu.Lock()
	if p.closed || c.isClosed() {
		p.mu.Unlock()
		_ = c.Close()
		<-p.slots
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
	<-p.slots
}

// Close closes the idle connections; connections still out are closed
// when released.
func (p *ConnectionPool) Close() error {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	var errs []error
	for _, c := range idle {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// ProducerPool hands out producers, each on a pooled connection (kombu's
// producers[connection].acquire()).
type ProducerPool struct {
	conns *ConnectionPool
	opts  ProducerOptions

	mu    sync.Mutex
	owner map[*Producer]*Connection
	idle  []*Producer
}

// NewProducerPool returns a pool of producers with opts over conns.
func NewProducerPool(conns *ConnectionPool, opts *ProducerOptions) *ProducerPool {
	pp := &ProducerPool{conns: conns, owner: map[*Producer]*Connection{}}
	if opts != nil {
		pp.opts = *opts
	}
	return pp
}

// Acquire returns a producer, waiting while the connection pool is
// exhausted.
func (pp *ProducerPool) Acquire(ctx context.Context) (*Producer, error) {
	c, err := pp.conns.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	pp.mu.Lock()
	for i := len(pp.idle) - 1; i >= 0; i-- {
		p := pp.idle[i]
		if pp.owner[p] == c {
			pp.idle = append(pp.idle[:i], pp.idle[i+1:]...)
			pp.mu.Unlock()
			return p, nil
		}
	}
	pp.mu.Unlock()
	p, err := c.Producer(ctx, &pp.opts)
	if err != nil {
		pp.conns.Release(c)
		return nil, fmt.Errorf("producer pool: %w", err)
	}
	pp.mu.Lock()
	pp.owner[p] = c
	pp.mu.Unlock()
	return p, nil
}

// Release gives p (and its connection) back to the pool.
func (pp *ProducerPool) Release(p *Producer) {
	pp.mu.Lock()
	c, ok := pp.owner[p]
	if ok && !p.Channel().isClosed() {
		pp.idle = append(pp.idle, p)
	} else {
		delete(pp.owner, p)
	}
	pp.mu.Unlock()
	if ok {
		pp.conns.Release(c)
	}
}
