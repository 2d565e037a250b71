package virtual

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual/routing"
)

// Connector dials a Store. It is what a transport's open function returns
// after parsing the URL (with no I/O).
type Connector interface {
	Connect(ctx context.Context) (Store, error)
}

// ConnectorFunc adapts a function to Connector.
type ConnectorFunc func(ctx context.Context) (Store, error)

// Connect calls f.
func (f ConnectorFunc) Connect(ctx context.Context) (Store, error) { return f(ctx) }

// NewTransport turns a Store into a driver.Transport. open parses the URL
// and returns a Connector without doing I/O; desc gives the URL defaults
// and Features.
func NewTransport(desc driver.Description, open func(u *url.URL) (Connector, error)) driver.Transport {
	return &transport{desc: desc, open: open}
}

type transport struct {
	desc driver.Description
	open func(u *url.URL) (Connector, error)
}

func (t *transport) Describe() driver.Description { return t.desc }

func (t *transport) OpenConnector(u *url.URL) (driver.Connector, error) {
	c, err := t.open(u)
	if err != nil {
		return nil, err
	}
	return &connector{c: c}, nil
}

type connector struct{ c Connector }

// SetLogger implements driver.LoggerSetter for stores whose connector
// takes a logger.
func (c *connector) SetLogger(l *slog.Logger) {
	if ls, ok := c.c.(driver.LoggerSetter); ok {
		ls.SetLogger(l)
	}
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	store, err := c.c.Connect(ctx)
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
