package amqp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kombu-go/kombu/kombu/driver"
)

// Connector dials RabbitMQ with parsed Options.
type Connector struct {
	opts *Options
	// Dial, when set, replaces the TCP dial (tests use it for fault
	// proxies). The returned conn must not be TLS yet.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// NewConnector returns a Connector for o. o must not be changed afterwards.
func NewConnector(o *Options) *Connector { return &Connector{opts: o} }

// Options returns the parsed options (do not modify).
func (c *Connector) Options() *Options { return c.opts }

// Connect dials, runs TLS and the AMQP handshake, all bounded by ctx and
// the connect_timeout option. A failure to reach the broker wraps
// driver.ErrConnectionLost; refused credentials wrap
// driver.ErrAccessRefused.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	o := c.opts
	if o.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.ConnectTimeout)
		defer cancel()
	}
	dial := c.Dial
	if dial == nil {
		d := &net.Dialer{KeepAlive: 30 * time.Second}
		dial = d.DialContext
	}
	raw, err := dial(ctx, "tcp", o.addr())
	if err != nil {
		return nil, fmt.Errorf("%w: amqp: dial %s: %w", driver.ErrConnectionLost, o.addr(), err)
	}
	// Bound every handshake step: a deadline from ctx, and a watcher that
	// closes the socket if ctx is cancelled early.
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	nc := raw
	if o.TLS != nil {
		tc := tls.Client(raw, o.TLS.Clone())
		if err := tc.HandshakeContext(ctx); err != nil {
			stop()
			raw.Close()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%w: amqp: TLS handshake with %s: %w", driver.ErrConnectionLost, o.addr(), ctx.Err())
			}
			// A certificate that does not verify is a configuration
			// problem, not an unreachable broker: no ErrConnectionLost.
			return nil, fmt.Errorf("amqp: TLS handshake with %s: %w", o.addr(), err)
		}
		nc = tc
	}
	tconn := newTableConn(nc, o.FrameMax)

	cfg := amqp.Config{
		Vhost:      o.VHost,
		ChannelMax: uint16(o.ChannelMax),
		FrameSize:  o.FrameMax,
		Heartbeat:  o.Heartbeat,
		Locale:     o.Locale,
		Properties: amqp.Table{
			"product":  "kombu-go",
			"platform": "Go",
		},
	}
	switch o.LoginMethod {
	case "EXTERNAL":
		cfg.SASL = []amqp.Authentication{&amqp.ExternalAuth{}}
	case "AMQPLAIN":
		cfg.SASL = []amqp.Authentication{&amqp.AMQPlainAuth{Username: o.Username, Password: o.Password}}
	default:
		cfg.SASL = []amqp.Authentication{&amqp.PlainAuth{Username: o.Username, Password: o.Password}}
	}

	ac, err := amqp.Open(tconn, cfg)
	if !stop() && err == nil {
		// ctx ended just as the handshake finished: the watcher may have
		// poisoned the socket's deadline, so give the connection up.
		_ = ac.Close()
		return nil, fmt.Errorf("%w: amqp: handshake with %s: %w", driver.ErrConnectionLost, o.addr(), ctx.Err())
	}
	if err != nil {
		nc.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: amqp: handshake with %s: %w", driver.ErrConnectionLost, o.addr(), ctx.Err())
		}
		var ae *amqp.Error
		if errors.As(err, &ae) {
			switch {
			case ae == amqp.ErrCredentials || ae.Code == amqp.AccessRefused:
				return nil, fmt.Errorf("%w: amqp: login to %s refused: %w", driver.ErrAccessRefused, o.addr(), err)
			case ae == amqp.ErrVhost || ae.Code == amqp.NotAllowed:
				return nil, fmt.Errorf("%w: amqp: vhost %q on %s: %w", driver.ErrAccessRefused, o.VHost, o.addr(), err)
			case ae == amqp.ErrSASL:
				return nil, fmt.Errorf("%w: amqp: %s login not offered by %s: %w", driver.ErrAccessRefused, o.LoginMethod, o.addr(), err)
			}
		}
		return nil, fmt.Errorf("%w: amqp: handshake with %s: %w", driver.ErrConnectionLost, o.addr(), err)
	}
	// The handshake is over: no deadline from now on; heartbeats set read
	// deadlines themselves.
	_ = nc.SetDeadline(time.Time{})
	return newConn(ac, o, tconn.refusedKey), nil
}

// Conn is one AMQP connection. It implements driver.Conn and driver.Pinger.
type Conn struct {
	ac   *amqp.Connection
	opts *Options
	// refusedKey marks a headers table that the socket wrapper replaced
	// (see framing.go).
	refusedKey string

	mu       sync.Mutex
	channels map[*Channel]struct{}
	closed   bool
	pingCh   *amqp.Channel

	// blocked is closed while the broker does not block publishers; a
	// connection.blocked replaces it with an open channel until unblocked.
	blockMu   sync.Mutex
	unblocked chan struct{}
	blocked   atomic.Bool // fast path for waitUnblocked

	closeErr  error         // set before done is closed
	done      chan struct{} // closed when the connection is gone
	drainDone chan struct{}

	// bg counts the goroutines that run amqp091-go RPCs for callers
	// whose ctx may end first; Close waits for them. Add only under mu
	// while !bgWaiting, so that no Add races Close's Wait.
	bg        sync.WaitGroup
	bgWaiting bool
}

var (
	_ driver.Conn         = (*Conn)(nil)
	_ driver.Pinger       = (*Conn)(nil)
	_ driver.LossNotifier = (*Conn)(nil)
)

// Lost implements driver.LossNotifier: closed when amqp091-go reports the
// connection closed (by the broker, a missed heartbeat or a socket error).
func (c *Conn) Lost() <-chan struct{} { return c.done }

func newConn(ac *amqp.Connection, o *Options, refusedKey string) *Conn {
	c := &Conn{
		ac:         ac,
		opts:       o,
		refusedKey: refusedKey,
		channels:   make(map[*Channel]struct{}),
		unblocked:  make(chan struct{}),
		done:       make(chan struct{}),
		drainDone:  make(chan struct{}),
	}
	close(c.unblocked)
	closes := ac.NotifyClose(make(chan *amqp.Error, 1))
	blocks := ac.NotifyBlocked(make(chan amqp.Blocking, 4))
	go c.drain(closes, blocks)
	return c
}

// drain owns the connection's notification channels. amqp091-go closes
// both when the connection ends.
func (c *Conn) drain(closes chan *amqp.Error, blocks chan amqp.Blocking) {
	defer close(c.drainDone)
	for closes != nil || blocks != nil {
		select {
		case e, ok := <-closes:
			if !ok {
				closes = nil
				c.setDone(nil)
				continue
			}
			c.setDone(e)
		case b, ok := <-blocks:
			if !ok {
				blocks = nil
				continue
			}
			c.blockMu.Lock()
			c.blocked.Store(b.Active)
			if b.Active {
				select {
				case <-c.unblocked:
					c.unblocked = make(chan struct{})
				default:
				}
			} else {
				select {
				case <-c.unblocked:
				default:
					close(c.unblocked)
				}
			}
			c.blockMu.Unlock()
		}
	}
	// Release publishers waiting for an unblock that will never come.
	c.blockMu.Lock()
	select {
	case <-c.unblocked:
	default:
		close(c.unblocked)
	}
	c.blockMu.Unlock()
}

func (c *Conn) setDone(e *amqp.Error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.done:
		return
	default:
	}
	if e != nil {
		c.closeErr = e
	} else {
		c.closeErr = amqp.ErrClosed
	}
	close(c.done)
}

// waitUnblocked waits while the broker blocks publishers (resource alarm).
func (c *Conn) waitUnblocked(ctx context.Context) error {
	if !c.blocked.Load() {
		return nil
	}
	c.blockMu.Lock()
	ch := c.unblocked
	c.blockMu.Unlock()
	select {
	case <-ch:
		return nil
	default:
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Conn) isClosed() bool { return c.ac.IsClosed() }

// Channel opens a new channel, in confirm mode when confirm_publish is on.
func (c *Conn) Channel(ctx context.Context) (driver.Channel, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, fmt.Errorf("amqp: %w", driver.ErrClosed)
	}
	c.mu.Unlock()
	ch := newChannel(c)
	if _, err := ch.current(ctx); err != nil {
		ch.Close()
		return nil, err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		ch.Close()
		return nil, fmt.Errorf("amqp: %w", driver.ErrClosed)
	}
	c.channels[ch] = struct{}{}
	c.mu.Unlock()
	return ch, nil
}

func (c *Conn) forget(ch *Channel) {
	c.mu.Lock()
	delete(c.channels, ch)
	c.mu.Unlock()
}

// Ping checks the broker answers: a passive declare of amq.direct on a
// channel kept for the purpose.
func (c *Conn) Ping(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("amqp: %w", driver.ErrClosed)
	}
	pc := c.pingCh
	c.mu.Unlock()
	return c.callCtx(ctx, func() error {
		if pc == nil || pc.IsClosed() {
			var err error
			if pc, err = c.ac.Channel(); err != nil {
				return mapErr(err, c.isClosed)
			}
			c.mu.Lock()
			old := c.pingCh
			c.pingCh = pc
			c.mu.Unlock()
			if old != nil {
				_ = old.Close()
			}
		}
		return mapErr(pc.ExchangeDeclarePassive("amq.direct", "direct", true, false, false, false, nil), c.isClosed)
	})
}

// Close closes every channel (the broker requeues their unacked messages)
// and then the connection, and waits for the goroutines it started.
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
	// In parallel: on a hung broker each close waits for its timeout.
	var closing sync.WaitGroup
	for _, ch := range chans {
		closing.Go(func() { ch.Close() })
	}
	closing.Wait()
	var err error
	if !c.ac.IsClosed() {
		// Bound the close handshake: a hung broker must not hang Close.
		err = c.ac.CloseDeadline(time.Now().Add(5 * time.Second))
		if errors.Is(err, amqp.ErrClosed) {
			err = nil
		}
	}
	<-c.drainDone
	c.mu.Lock()
	c.bgWaiting = true
	c.mu.Unlock()
	c.bg.Wait() // the connection is closed: every RPC returns
	if err != nil {
		return fmt.Errorf("amqp: close: %w", err)
	}
	return nil
}

// callCtx runs fn, returning early with ctx's error when ctx ends first.
// amqp091-go's RPCs take no context, so fn then finishes in a goroutine
// that Close waits for (closing the connection ends every RPC).
func (c *Conn) callCtx(ctx context.Context, fn func() error) error {
	if ctx.Done() == nil {
		return fn()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	res := make(chan error, 1)
	c.goOrRun(func() { res <- fn() })
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// goOrRun runs fn in a goroutine that Close waits for or, once Close has
// closed the connection (its RPCs then fail at once), on the caller's. fn
// must not wait for the caller.
func (c *Conn) goOrRun(fn func()) {
	c.mu.Lock()
	if c.bgWaiting {
		c.mu.Unlock()
		fn()
		return
	}
	c.bg.Go(fn) // under mu: see bg
	c.mu.Unlock()
}

// As lets users reach the *amqp091.Connection of a Conn.
func (c *Conn) As(target any) bool {
	if p, ok := target.(**amqp.Connection); ok {
		*p = c.ac
		return true
	}
	return false
}
