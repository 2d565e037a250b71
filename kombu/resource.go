package kombu

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// ErrPoolExhausted is returned by TryAcquire when every resource is in use
// (kombu's LimitExceeded).
var ErrPoolExhausted = errors.New("pool exhausted")

// PoolStats is a snapshot of a pool, as sql.DBStats is for database/sql.
type PoolStats struct {
	Limit   int // at most this many resources are in use at once
	InUse   int // handed out (or being opened for an Acquire)
	Idle    int // kept for the next Acquire
	Waiting int // Acquire calls waiting for a free slot
}

// resourcePool is the pool under ConnectionPool and ChannelPool (kombu's
// Resource). At most limit resources are in use at once; released ones
// that are still usable are kept and handed out again, the most recently
// used first; Acquire calls that find the pool full wait in line, first
// come first served, and are served before any newcomer.
//
// A slot is the right to hold one resource. An Acquire that gets a slot
// (reserved) then takes an idle resource or opens a new one outside the
// lock, so that a slow dial never blocks Release.
type resourcePool[T comparable] struct {
	open      func(ctx context.Context) (T, error) // a new resource for Acquire
	preopen   func(ctx context.Context) (T, error) // a new, ready resource for Preload
	close     func(T) error
	usable    func(T) bool // false: close it rather than keep it or hand it out
	transport func() string

	mu       sync.Mutex
	limit    int
	out      map[T]struct{} // handed out and not yet released
	reserved int            // slots granted to Acquire calls that hold no resource yet
	idle     []T            // least recently used first
	waiters  []chan struct{}
	closed   bool
}

func (p *resourcePool[T]) init(limit int) {
	p.limit = limit
	p.out = map[T]struct{}{}
}

func (p *resourcePool[T]) fail(op string, err error) error {
	return &Error{Op: op, Transport: p.transport(), Err: err}
}

func (p *resourcePool[T]) inUseLocked() int { return len(p.out) + p.reserved }

func (p *resourcePool[T]) acquire(ctx context.Context, wait bool) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err // a free slot must not win over a done ctx
	}
	p.mu.Lock()
	switch {
	case p.closed:
		p.mu.Unlock()
		return zero, p.fail("pool.acquire", ErrClosed)
	case len(p.waiters) == 0 && p.inUseLocked() < p.limit:
		p.reserved++
		p.mu.Unlock()
	case !wait:
		p.mu.Unlock()
		return zero, p.fail("pool.acquire", ErrPoolExhausted)
	default:
		granted := make(chan struct{}, 1)
		p.waiters = append(p.waiters, granted)
		p.mu.Unlock()
		select {
		case <-granted:
		case <-ctx.Done():
			p.mu.Lock()
			if i := slices.Index(p.waiters, granted); i >= 0 {
				p.waiters = slices.Delete(p.waiters, i, i+1)
			} else {
				// The slot came as ctx ended: pass it on.
				p.reserved--
				p.grantLocked()
			}
			p.mu.Unlock()
			return zero, ctx.Err()
		}
	}
	return p.fill(ctx)
}

// fill turns the caller's reserved slot into a resource: the most recently
// released usable one, or a new one.
func (p *resourcePool[T]) fill(ctx context.Context) (T, error) {
	var zero T
	for {
		p.mu.Lock()
		if p.closed {
			p.reserved--
			p.mu.Unlock()
			return zero, p.fail("pool.acquire", ErrClosed)
		}
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		r := p.idle[n-1]
		p.idle = p.idle[:n-1]
		if p.usable(r) {
			p.reserved--
			p.out[r] = struct{}{}
			p.mu.Unlock()
			return r, nil
		}
		p.mu.Unlock()
		_ = p.close(r) // it broke while idle; its close error says nothing new
	}
	r, err := p.open(ctx)
	p.mu.Lock()
	p.reserved--
	if err != nil {
		p.grantLocked()
		p.mu.Unlock()
		return zero, err
	}
	if p.closed {
		p.grantLocked()
		p.mu.Unlock()
		_ = p.close(r)
		return zero, p.fail("pool.acquire", ErrClosed)
	}
	p.out[r] = struct{}{}
	p.mu.Unlock()
	return r, nil
}

// grantLocked hands free slots to waiting Acquire calls, in order; after
// Close it wakes them all so that they fail with ErrClosed.
func (p *resourcePool[T]) grantLocked() {
	for len(p.waiters) > 0 && (p.closed || p.inUseLocked() < p.limit) {
		w := p.waiters[0]
		p.waiters = slices.Delete(p.waiters, 0, 1)
		p.reserved++
		w <- struct{}{}
	}
}

// release gives r back, keeping it for the next acquire if it is usable
// and the pool is open and not above its limit, else closing it. It
// reports whether r was kept. An r not handed out (or released twice) is
// ignored.
func (p *resourcePool[T]) release(r T) bool {
	p.mu.Lock()
	if _, ok := p.out[r]; !ok {
		p.mu.Unlock()
		return false
	}
	delete(p.out, r)
	keep := !p.closed && len(p.out)+p.reserved+len(p.idle) < p.limit && p.usable(r)
	if keep {
		p.idle = append(p.idle, r)
	}
	p.grantLocked()
	p.mu.Unlock()
	if !keep {
		_ = p.close(r)
	}
	return keep
}

// discard closes r and frees its slot; an r not handed out is ignored.
func (p *resourcePool[T]) discard(r T) {
	p.mu.Lock()
	if _, ok := p.out[r]; !ok {
		p.mu.Unlock()
		return
	}
	delete(p.out, r)
	p.grantLocked()
	p.mu.Unlock()
	_ = p.close(r)
}

// resize sets the limit; shrinking closes idle resources above it, least
// recently used first, and never takes one from its holder.
func (p *resourcePool[T]) resize(limit int) error {
	if limit < 1 {
		return p.fail("pool.resize", fmt.Errorf("%w: pool limit %d, want at least 1", ErrInvalidArgument, limit))
	}
	p.mu.Lock()
	p.limit = limit
	var drop []T
	for len(p.idle) > 0 && p.inUseLocked()+len(p.idle) > limit {
		drop = append(drop, p.idle[0])
		p.idle = slices.Delete(p.idle, 0, 1)
	}
	p.grantLocked()
	p.mu.Unlock()
	for _, r := range drop {
		_ = p.close(r)
	}
	return nil
}

func (p *resourcePool[T]) getLimit() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.limit
}

func (p *resourcePool[T]) stats() PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return PoolStats{Limit: p.limit, InUse: p.inUseLocked(), Idle: len(p.idle), Waiting: len(p.waiters)}
}

// preload opens up to n ready resources and keeps them idle, stopping at
// the limit (resources in use and idle count).
func (p *resourcePool[T]) preload(ctx context.Context, n int) error {
	for range n {
		if err := ctx.Err(); err != nil {
			return err
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return p.fail("pool.preload", ErrClosed)
		}
		if p.inUseLocked()+len(p.idle) >= p.limit {
			p.mu.Unlock()
			return nil
		}
		p.reserved++
		p.mu.Unlock()
		r, err := p.preopen(ctx)
		p.mu.Lock()
		p.reserved--
		if err == nil && !p.closed {
			p.idle = append(p.idle, r)
		}
		closed := p.closed
		p.grantLocked()
		p.mu.Unlock()
		switch {
		case err != nil:
			return err
		case closed:
			_ = p.close(r)
			return p.fail("pool.preload", ErrClosed)
		}
	}
	return nil
}

// closeAll closes the idle resources and fails waiting and later acquires
// with ErrClosed; resources in use are closed when released.
func (p *resourcePool[T]) closeAll() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.grantLocked()
	p.mu.Unlock()
	errs := make([]error, 0, len(idle))
	for _, r := range idle {
		errs = append(errs, p.close(r))
	}
	return errors.Join(errs...)
}

func (p *resourcePool[T]) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}
