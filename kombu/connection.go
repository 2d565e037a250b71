package kombu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/kombu-go/kombu/kombu/codec"
	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
)

// Options configure a Connection. A nil *Options means all defaults.
type Options struct {
	// Transports resolves URL schemes to transports; nil means
	// transport.Default, where transport packages register on import.
	Transports *transport.Registry
	// ConnectTimeout bounds each dial attempt; 0 means 4 s (kombu's
	// connect_timeout).
	ConnectTimeout time.Duration
	// Serializers and Compressors are the codec registries; nil means
	// codec.Default and codec.DefaultCompression.
	Serializers *codec.Registry
	Compressors *codec.CompressionRegistry
	// MaxDecompressedSize caps a decompressed body; 0 means 64 MiB.
	MaxDecompressedSize int64
	// Accept is the default accept list of consumers and Queue.Get:
	// serializer names or content types. nil means json, text and raw
	// data (application/json, text/plain, application/data).
	Accept []string
	// Logger receives what background work could not return as an error,
	// and the log lines of transports' client libraries (go-redis), which
	// would otherwise go to stderr; nil discards.
	Logger *slog.Logger
	// ErrorHandler, when set, is called with errors of background work
	// (a failed reject of an undecodable message, ...).
	ErrorHandler func(error)
	// FailoverStrategy orders the URLs of a failover list:
	// FailoverRoundRobin (the default: list order) or FailoverShuffle.
	FailoverStrategy FailoverStrategy
	// OnFailover, when set, is called each time the connection moves from
	// one URL of the list to another, with both URLs (passwords masked)
	// and the error that made it leave the first. It runs on the goroutine
	// that dials; keep it short.
	OnFailover func(from, to string, err error)
	// Observer is told about publishes, deliveries, settlements and
	// connection events, for tracing and metrics (see package otelkombu);
	// nil observes nothing.
	Observer Observer
}

var defaultAccept = []string{"application/json", "text/plain", "application/data"}

// Connection is a connection to a broker, chosen by URL. It connects
// lazily, is safe for concurrent use, and with a ';'-separated URL list
// fails over to another URL (Options.FailoverStrategy) when one cannot be
// reached. A connection found lost (the transport reports it, or a call
// fails with ErrConnectionLost) is dropped, and the next operation dials
// again; Ensure and PublishOptions.Retry retry through that.
type Connection struct {
	opts       Options
	urls       []*url.URL
	connectors []driver.Connector
	descs      []driver.Description

	mu       sync.Mutex
	conn     driver.Conn
	current  int    // index of the URL in use or to try first
	gen      uint64 // counts established connections, so that concurrent retries reconnect once
	closed   bool
	dialing  *dialCall      // the dial in progress, if any
	closers  sync.WaitGroup // background closes of dropped connections
	channels map[*Channel]struct{}
	defCh    *Channel
	declared map[string]struct{} // maybe_declare cache, reset on reconnect
	accept   map[string]bool     // content types of opts.Accept

	byConnector bool // made by NewConnectionFromConnector: no URL to key pool groups by
}

// NewConnection parses rawURL (one URL or a ';'-separated failover list)
// and returns a Connection that has not connected yet. Unknown schemes,
// malformed URLs and unknown or invalid options are errors wrapping
// ErrInvalidURL; no error text ever contains a password.
func NewConnection(rawURL string, opts *Options) (*Connection, error) {
	o := withDefaults(opts)
	if err := o.FailoverStrategy.check(); err != nil {
		return nil, &Error{Op: "connection.parse", Err: err}
	}
	urls, err := transport.ParseURLs(rawURL)
	if err != nil {
		return nil, &Error{Op: "connection.parse", Err: err}
	}
	c := newConnection(o)
	for _, u := range urls {
		t, err := o.Transports.Lookup(u.Scheme)
		if err != nil {
			return nil, &Error{Op: "connection.parse", Err: err}
		}
		cn, err := t.OpenConnector(u)
		if err != nil {
			return nil, &Error{Op: "connection.parse", Transport: u.Scheme, Err: err}
		}
		desc := driver.Description{Name: u.Scheme}
		if d, ok := t.(driver.Describer); ok {
			desc = d.Describe()
		}
		c.useLogger(cn)
		c.urls = append(c.urls, u)
		c.connectors = append(c.connectors, cn)
		c.descs = append(c.descs, desc)
	}
	return c, nil
}

// NewConnectionFromConnector returns a Connection over a driver.Connector,
// with no registry or URL, as sql.OpenDB does: every transport package's
// NewConnector(*Options) result plugs in here. The transport's name,
// defaults and features come from the connector's Describe method
// (driver.Describer); a connector without one is named "custom" and
// declares no features.
func NewConnectionFromConnector(cn driver.Connector, opts *Options) *Connection {
	desc := driver.Description{Name: "custom"}
	if d, ok := cn.(driver.Describer); ok {
		desc = d.Describe()
	}
	c := newConnection(withDefaults(opts))
	c.useLogger(cn)
	u := &url.URL{Scheme: desc.Name, Host: desc.DefaultHost}
	c.urls, c.connectors, c.descs = []*url.URL{u}, []driver.Connector{cn}, []driver.Description{desc}
	c.byConnector = true
	return c
}

// useLogger hands Options.Logger to a connector whose client logs itself.
func (c *Connection) useLogger(cn driver.Connector) {
	if ls, ok := cn.(driver.LoggerSetter); ok {
		ls.SetLogger(c.opts.Logger)
	}
}

func withDefaults(opts *Options) Options {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Transports == nil {
		o.Transports = transport.Default
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 4 * time.Second
	}
	if o.Serializers == nil {
		o.Serializers = codec.Default
	}
	if o.Compressors == nil {
		o.Compressors = codec.DefaultCompression
	}
	if len(o.Accept) == 0 {
		o.Accept = defaultAccept
	}
	return o
}

func newConnection(o Options) *Connection {
	c := &Connection{opts: o, channels: map[*Channel]struct{}{}, declared: map[string]struct{}{}}
	c.accept = c.buildAccept(o.Accept)
	return c
}

// Dial is NewConnection followed by Connect.
func Dial(ctx context.Context, rawURL string, opts *Options) (*Connection, error) {
	c, err := NewConnection(rawURL, opts)
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Connect connects now if not connected, trying each URL of the failover
// list once, starting with the current one, in the order of
// Options.FailoverStrategy. A connection the transport reported lost is
// dropped first, so Connect dials again.
func (c *Connection) Connect(ctx context.Context) error {
	_, err := c.driverConn(ctx)
	return err
}

// dialCall is a dial in progress; concurrent callers wait for it (or for
// their own ctx) instead of dialing in turn or holding the lock.
type dialCall struct {
	done chan struct{}
	stop context.CancelFunc // Close cancels the dial
	err  error              // set before done is closed
}

func (c *Connection) driverConn(ctx context.Context) (driver.Conn, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, c.closedErr("connection.connect")
		}
		if lost := c.dropIfLostLocked(); lost != nil {
			c.mu.Unlock()
			c.retire(*lost)
			continue
		}
		if conn := c.conn; conn != nil {
			c.mu.Unlock()
			return conn, nil
		}
		if call := c.dialing; call != nil {
			c.mu.Unlock()
			select {
			case <-call.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if call.err != nil && !isCtxErr(call.err) {
				return nil, call.err // the dial we waited for failed for every caller
			}
			continue
		}
		dctx, stop := context.WithCancel(ctx)
		call := &dialCall{done: make(chan struct{}), stop: stop}
		c.dialing = call
		start := c.current
		c.mu.Unlock()

		conn, idx, err := c.dial(dctx, start)
		stop()
		c.mu.Lock()
		c.dialing = nil
		if c.closed {
			// Close cancelled the dial, or it succeeded too late: closed
			// here, before Close (waiting for done) returns.
			if err == nil {
				c.mu.Unlock()
				_ = conn.Close()
				c.mu.Lock()
			}
			err = &Error{Op: "connection.connect", Transport: c.transportNameLocked(), Err: ErrClosed}
			c.mu.Unlock()
		} else {
			if err == nil {
				c.conn, c.current = conn, idx
				c.gen++
			}
			gen := c.gen
			c.mu.Unlock()
			if err == nil {
				kind := EventConnected
				if gen > 1 {
					kind = EventReconnected
				}
				c.lifecycle(ctx, slog.LevelInfo, Event{Kind: kind, URL: transport.Redact(c.urls[idx])})
			}
		}
		call.err = err
		close(call.done)
		if err != nil {
			return nil, err
		}
		return conn, nil
	}
}

func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func (c *Connection) closedErr(op string) error {
	return &Error{Op: op, Transport: c.TransportName(), Err: ErrClosed}
}

// dial tries every URL once, from start, in the strategy's order, each
// attempt bounded by ConnectTimeout and ctx. It calls OnFailover when it
// moves on from a URL that failed.
func (c *Connection) dial(ctx context.Context, start int) (driver.Conn, int, error) {
	order := c.opts.FailoverStrategy.order(len(c.connectors), start)
	var errs []error
	for i, idx := range order {
		dctx, cancel := context.WithTimeout(ctx, c.opts.ConnectTimeout)
		conn, err := c.connectors[idx].Connect(dctx)
		cancel()
		if err == nil {
			return conn, idx, nil
		}
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		errs = append(errs, fmt.Errorf("%s: %w", transport.Redact(c.urls[idx]), err))
		if i+1 < len(order) {
			c.failedOver(idx, order[i+1], err)
		}
	}
	return nil, 0, &Error{Op: "connection.connect", Transport: c.TransportName(), Err: errors.Join(errs...)}
}

// failedOver tells Options.OnFailover that the connection moves from URL
// from to URL to because of err.
func (c *Connection) failedOver(from, to int, err error) {
	if from == to {
		return
	}
	fromURL, toURL := transport.Redact(c.urls[from]), transport.Redact(c.urls[to])
	c.lifecycle(context.Background(), slog.LevelWarn, Event{Kind: EventFailover, URL: fromURL, ToURL: toURL, Err: err})
	if c.opts.OnFailover != nil {
		c.opts.OnFailover(fromURL, toURL, err)
	}
}

// Connected reports whether the connection is established and, as far as
// the transport can tell, alive: a connection the broker closed, whose
// heartbeats stopped or whose last call found it gone is not connected
// (and the next operation dials again).
func (c *Connection) Connected() bool {
	c.mu.Lock()
	lost := c.dropIfLostLocked()
	ok := c.conn != nil && !c.closed
	c.mu.Unlock()
	if lost != nil {
		c.retire(*lost)
	}
	return ok
}

// dropIfLostLocked detaches the live connection if its transport reported
// it gone; call with mu, and retire what it returns after unlocking.
func (c *Connection) dropIfLostLocked() *dropped {
	ln, ok := c.conn.(driver.LossNotifier)
	if !ok {
		return nil
	}
	select {
	case <-ln.Lost():
		d := c.dropLocked()
		d.cause = fmt.Errorf("%w: the transport reported the connection gone", ErrConnectionLost)
		return &d
	default:
		return nil
	}
}

// connectionLost is called when a call on dconn failed with
// ErrConnectionLost: if dconn is still the live connection it is dropped,
// so that the next operation dials again instead of failing the same way.
func (c *Connection) connectionLost(dconn driver.Conn, err error) {
	c.mu.Lock()
	if dconn == nil || c.conn != dconn {
		c.mu.Unlock()
		return
	}
	d := c.dropLocked()
	d.cause = err
	c.mu.Unlock()
	c.retire(d)
}

// Reconnect drops the current connection (closing its channels, whose
// unacked messages return to their queues) and connects again, moving to
// the next failover URL first (as Options.FailoverStrategy says) when
// failover is true. ctx bounds the whole of it: the old connection is
// closed in the background (Close waits for that), never on ctx's time.
func (c *Connection) Reconnect(ctx context.Context, failover bool) error {
	return c.reconnect(ctx, 0, false, failover, nil)
}

// generation identifies the live connection (0 before the first).
func (c *Connection) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// reconnect drops the connection and connects again. With onlyGen set it
// does so only if the connection is still generation gen: when several
// goroutines see the same connection fail, one reconnects and the others
// use the new connection instead of dropping it in turn. cause is what
// made the caller give the connection up, for OnFailover.
func (c *Connection) reconnect(ctx context.Context, gen uint64, onlyGen, failover bool, cause error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.closedErr("connection.reconnect")
	}
	if onlyGen && c.gen != gen {
		c.mu.Unlock()
		return c.Connect(ctx) // another caller already reconnected
	}
	d := c.dropLocked()
	from := c.current
	if failover {
		c.current = c.opts.FailoverStrategy.next(len(c.connectors), c.current)
	}
	to := c.current
	c.mu.Unlock()
	c.retire(d)
	if cause == nil {
		cause = ErrConnectionLost
	}
	c.failedOver(from, to, cause)
	return c.Connect(ctx)
}

type dropped struct {
	conn     driver.Conn
	channels []*Channel
	// cause is why the connection went, when it was lost rather than
	// closed on purpose: consumers of its channels report it.
	cause error
}

// dropLocked detaches the live connection and its channels; call with mu.
func (c *Connection) dropLocked() dropped {
	d := dropped{conn: c.conn}
	for ch := range c.channels {
		d.channels = append(d.channels, ch)
	}
	c.conn, c.defCh = nil, nil
	c.channels = map[*Channel]struct{}{}
	c.declared = map[string]struct{}{}
	return d
}

// retire marks the channels of a dropped connection closed at once (their
// consumers and producers see it) and closes the transport's side in a
// goroutine that Close waits for: closing a connection to a hung broker
// may block for the transport's close timeout, and no reconnect waits for
// it. Call without mu.
func (c *Connection) retire(d dropped) {
	if d.conn == nil && len(d.channels) == 0 {
		return
	}
	if d.cause != nil {
		c.lifecycle(context.Background(), slog.LevelWarn, Event{Kind: EventConnectionLost, Err: d.cause})
	}
	for _, ch := range d.channels {
		ch.markClosed(d.cause)
	}
	c.closers.Add(1)
	go func() {
		defer c.closers.Done()
		// The connection is already given up: errors closing it tell
		// nothing new (it is usually gone), so they are only logged.
		if err := closeDriver(d); err != nil && c.opts.Logger != nil {
			c.opts.Logger.Debug("kombu: closing a dropped connection", "err", err)
		}
	}()
}

// closeDriver closes the transport's channels and then the connection.
func closeDriver(d dropped) error {
	var errs []error
	for _, ch := range d.channels {
		errs = append(errs, ch.drv.Close())
	}
	if d.conn != nil {
		errs = append(errs, d.conn.Close())
	}
	return errors.Join(errs...)
}

// Close closes every channel (unacked messages go back to their queues)
// and the connection, cancels a dial in progress, and returns once every
// goroutine the Connection started has ended (background closes of
// connections dropped earlier included). It is idempotent; afterwards
// every method fails with ErrClosed.
func (c *Connection) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.closers.Wait()
		return nil
	}
	c.closed = true
	call := c.dialing
	d := c.dropLocked()
	c.mu.Unlock()
	if call != nil {
		call.stop()
		<-call.done // the dialer closes what it dialed once it sees closed
	}
	for _, ch := range d.channels {
		ch.markClosed(nil)
	}
	err := closeDriver(d)
	c.closers.Wait()
	return wrapErr("connection.close", c.TransportName(), "", err)
}

// Channel opens a new channel, connecting first if needed.
func (c *Connection) Channel(ctx context.Context) (*Channel, error) {
	conn, err := c.driverConn(ctx)
	if err != nil {
		return nil, err
	}
	ch := &Channel{conn: c, dconn: conn, consumers: map[string]*Consumer{}, pumpSem: make(chan struct{}, 1)}
	dch, err := conn.Channel(ctx)
	if err != nil {
		return nil, ch.wrap("channel.open", "", err)
	}
	ch.drv = dch
	c.mu.Lock()
	if c.closed || c.conn != conn {
		c.mu.Unlock()
		_ = dch.Close()
		return nil, c.closedErr("channel.open")
	}
	c.channels[ch] = struct{}{}
	c.mu.Unlock()
	return ch, nil
}

// DefaultChannel returns the connection's shared channel, opening it on
// first use (kombu's default_channel).
func (c *Connection) DefaultChannel(ctx context.Context) (*Channel, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if ch := c.defCh; ch != nil && !ch.isClosed() {
		c.mu.Unlock()
		return ch, nil
	}
	c.mu.Unlock()
	ch, err := c.Channel(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if other := c.defCh; other != nil && !other.isClosed() {
		c.mu.Unlock()
		_ = ch.Close() // another caller opened it first
		return other, nil
	}
	c.defCh = ch
	c.mu.Unlock()
	return ch, nil
}

func (c *Connection) forgetChannel(ch *Channel) {
	c.mu.Lock()
	delete(c.channels, ch)
	if c.defCh == ch {
		c.defCh = nil
	}
	c.mu.Unlock()
}

// DrainEvents waits for messages for the callback consumers of this
// connection's channels and dispatches them (kombu's drain_events). It
// returns nil once it dispatched at least one, or ctx's error.
func (c *Connection) DrainEvents(ctx context.Context) error {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return &Error{Op: "connection.drain_events", Transport: c.transportNameLocked(), Err: ErrClosed}
		}
		lost := c.dropIfLostLocked()
		if lost != nil || (c.conn == nil && c.gen > 0) {
			// The consumers' channels went with the connection: tell the
			// caller to reconnect instead of waiting for nothing.
			c.mu.Unlock()
			if lost != nil {
				c.retire(*lost)
			}
			return &Error{Op: "connection.drain_events", Transport: c.TransportName(), Err: ErrConnectionLost}
		}
		var chans []*Channel
		for ch := range c.channels {
			if ch.hasConsumers() {
				chans = append(chans, ch)
			}
		}
		var lostCh <-chan struct{}
		if ln, ok := c.conn.(driver.LossNotifier); ok {
			lostCh = ln.Lost()
		}
		c.mu.Unlock()
		switch len(chans) {
		case 0:
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-lostCh:
				continue
			}
		case 1:
			n, err := chans[0].pump(ctx)
			if n > 0 || err != nil {
				return err
			}
		default:
			for _, ch := range chans {
				sctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
				n, err := ch.pump(sctx)
				cancel()
				if n > 0 {
					return nil
				}
				if err != nil && !errors.Is(err, context.DeadlineExceeded) {
					return err
				}
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// MaybeDeclare declares entity unless this connection already declared it
// (kombu's maybe_declare). The cache is reset when the connection is
// re-established.
func (c *Connection) MaybeDeclare(ctx context.Context, ch *Channel, entity Declarable) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	key := entity.cacheKey()
	c.mu.Lock()
	_, done := c.declared[key]
	c.mu.Unlock()
	if done {
		return nil
	}
	if ch == nil {
		var err error
		if ch, err = c.DefaultChannel(ctx); err != nil {
			return err
		}
	}
	if err := entity.declare(ctx, ch); err != nil {
		return err
	}
	c.mu.Lock()
	c.declared[key] = struct{}{}
	c.mu.Unlock()
	return nil
}

func (c *Connection) forgetDeclared(key string) {
	c.mu.Lock()
	delete(c.declared, key)
	c.mu.Unlock()
}

// Ping checks that the broker answers, connecting first if needed.
func (c *Connection) Ping(ctx context.Context) error {
	conn, err := c.driverConn(ctx)
	if err != nil {
		return err
	}
	if p, ok := conn.(driver.Pinger); ok {
		return wrapErr("connection.ping", c.TransportName(), "", p.Ping(ctx))
	}
	return nil
}

// URI returns the URL in use with the password masked as "**" (kombu's
// as_uri()). Failover alternatives are joined with ';'.
func (c *Connection) URI() string {
	parts := make([]string, len(c.urls))
	for i, u := range c.urls {
		parts[i] = transport.Redact(u)
	}
	return strings.Join(parts, ";")
}

// URIWithPassword returns the URL list including passwords; never log it.
func (c *Connection) URIWithPassword() string {
	parts := make([]string, len(c.urls))
	for i, u := range c.urls {
		parts[i] = u.String()
	}
	return strings.Join(parts, ";")
}

// String is the masked URI, so that printing a Connection never leaks a
// password.
func (c *Connection) String() string { return "kombu.Connection(" + c.URI() + ")" }

// GoString masks the password too.
func (c *Connection) GoString() string { return c.String() }

// Clone returns a new, unconnected Connection with the same URLs and
// options.
func (c *Connection) Clone() *Connection {
	n := newConnection(c.opts)
	n.urls, n.connectors, n.descs = c.urls, c.connectors, c.descs
	n.byConnector = c.byConnector
	return n
}

// ConnectionInfo describes a connection's target with defaults applied.
type ConnectionInfo struct {
	Transport   string
	Hostname    string
	Port        int
	UserID      string
	VirtualHost string
	URI         string   // password masked
	Alternates  []string // the other failover URLs, masked
	Features    driver.Features
}

// Info describes the URL in use (or to be tried first), with the
// transport's defaults filled in, as kombu's Connection.info().
func (c *Connection) Info() ConnectionInfo {
	c.mu.Lock()
	idx := c.current
	c.mu.Unlock()
	u, d := c.urls[idx], c.descs[idx]
	info := ConnectionInfo{Transport: d.Name, Hostname: u.Hostname(), Port: transport.Port(u, d.DefaultPort),
		VirtualHost: transport.VirtualHost(u), URI: transport.Redact(u), Features: d.Features}
	if info.Transport == "" {
		info.Transport = u.Scheme
	}
	if info.Hostname == "" {
		info.Hostname = d.DefaultHost
	}
	if u.User != nil {
		info.UserID = u.User.Username()
	} else {
		info.UserID = d.DefaultUser
	}
	if info.VirtualHost == "" {
		info.VirtualHost = d.DefaultVHost
	}
	for i, alt := range c.urls {
		if i != idx {
			info.Alternates = append(info.Alternates, transport.Redact(alt))
		}
	}
	return info
}

// TransportName is the canonical name of the transport in use.
func (c *Connection) TransportName() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.transportNameLocked()
}

func (c *Connection) transportNameLocked() string {
	d := c.descs[c.current]
	if d.Name != "" {
		return d.Name
	}
	return c.urls[c.current].Scheme
}

// Features reports what the transport in use supports.
func (c *Connection) Features() driver.Features {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.descs[c.current].Features
}

// buildAccept turns serializer names and content types into a set of
// content types.
func (c *Connection) buildAccept(accept []string) map[string]bool {
	set := make(map[string]bool, len(accept)+2)
	for _, a := range accept {
		set[c.opts.Serializers.ContentTypeOf(a)] = true
	}
	return set
}

// acceptSet returns the accept set for accept, or the connection default.
func (c *Connection) acceptSet(accept []string) map[string]bool {
	if accept == nil {
		return c.accept
	}
	return c.buildAccept(accept)
}

func (c *Connection) reportError(err error) {
	if err == nil {
		return
	}
	if c.opts.ErrorHandler != nil {
		c.opts.ErrorHandler(err)
	}
	if c.opts.Logger != nil {
		c.opts.Logger.Error("kombu: background error", "transport", c.TransportName(), "err", err)
	}
}
