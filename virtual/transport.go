package virtual

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual/routing"
)

// StoreDialer dials a Store. A virtual transport's Connector is one, and
// its Connect method is then just Connect(ctx, c).
type StoreDialer interface {
	DialStore(ctx context.Context) (Store, error)
}

// Connect dials a Store with d and wraps it in a Conn: what a virtual
// transport's driver.Connector does.
func Connect(ctx context.Context, d StoreDialer) (driver.Conn, error) {
	store, err := d.DialStore(ctx)
	if err != nil {
		return nil, err
	}
	return NewConn(store), nil
}

// Conn is a driver.Conn over a Store. NewConn lets a transport build one
// from a store it made itself (explicit construction with no registry).
type Conn struct {
	store  Store
	state  *State
	shared bool
	router *routing.Router

	mu       sync.Mutex
	closed   bool
	channels map[*Channel]struct{}
}

var sharedRouter = routing.NewRouter()

// NewConn wraps store in a driver.Conn. The Conn owns the store and closes
// it on Close.
func NewConn(store Store) *Conn {
	c := &Conn{store: store, router: sharedRouter, channels: map[*Channel]struct{}{}}
	if s, ok := store.(SharedStateStore); ok {
		c.state, c.shared = s.SharedState(), true
	} else {
		c.state = NewState()
	}
	return c
}

// Store returns the underlying store.
func (c *Conn) Store() Store { return c.store }

// Channel opens a channel.
func (c *Conn) Channel(ctx context.Context) (driver.Channel, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, driver.ErrClosed
	}
	ch := newChannel(c)
	c.channels[ch] = struct{}{}
	return ch, nil
}

// Ping checks the store when it can be checked.
func (c *Conn) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return driver.ErrClosed
	}
	if p, ok := c.store.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// Close closes every channel (returning their unacked messages), deletes
// the exclusive queues the connection declared, and closes the store.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	chans := make([]*Channel, 0, len(c.channels))
	for ch := range c.channels {
		chans = append(chans, ch)
	}
	c.mu.Unlock()
	var errs []error
	for _, ch := range chans {
		errs = append(errs, ch.Close())
	}
	ctx := context.Background()
	for _, q := range c.state.exclusiveQueuesOf(c) {
		c.state.forgetQueue(q)
		errs = append(errs, c.store.Delete(ctx, q))
	}
	errs = append(errs, c.store.Close())
	return errors.Join(errs...)
}

func (c *Conn) forget(ch *Channel) {
	c.mu.Lock()
	delete(c.channels, ch)
	c.mu.Unlock()
}

// queueKnown reports whether queue may be used: declared in the state, or,
// when the state is private to this connection, existing in the store's
// view (another process may have declared it).
func (c *Conn) queueKnown(ctx context.Context, queue string) (bool, error) {
	if c.state.hasQueue(queue) {
		return true, nil
	}
	if c.shared {
		return false, nil
	}
	if qs, ok := c.store.(QueueStore); ok {
		return qs.QueueExists(ctx, queue, nil)
	}
	return true, nil
}

func notFoundQueue(name string) error {
	return fmt.Errorf("%w: no queue %q", driver.ErrNotFound, name)
}
