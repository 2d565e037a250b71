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
}

var defaultAccept = []string{"application/json", "text/plain", "application/data"}

// Connection is a connection to a broker, chosen by URL. It connects
// lazily, is safe for concurrent use, and with a ';'-separated URL list
// fails over to the next URL, in order, when one cannot be reached.
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
// list once, starting with the current one.
func (c *Connection) Connect(ctx context.Context) error {
	_, err := c.driverConn(ctx)
	return err
}

func (c *Connection) driverConn(ctx context.Context) (driver.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, &Error{Op: "connection.connect", Transport: c.transportNameLocked(), Err: ErrClosed}
	}
	if c.conn != nil {
		return c.conn, nil
	}
	var errs []error
	for i := range c.connectors {
		idx := (c.current + i) % len(c.connectors)
		dctx, cancel := context.WithTimeout(ctx, c.opts.ConnectTimeout)
		conn, err := c.connectors[idx].Connect(dctx)
		cancel()
		if err == nil {
			c.conn, c.current = conn, idx
			c.gen++
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		errs = append(errs, fmt.Errorf("%s: %w", transport.Redact(c.urls[idx]), err))
	}
	return nil, &Error{Op: "connection.connect", Transport: c.transportNameLocked(), Err: errors.Join(errs...)}
}

// Connected reports whether the connection is established.
func (c *Connection) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil && !c.closed
}

// Reconnect drops the current connection (closing its channels, whose
// unacked messages return to their queues) and connects again, moving to
// the next failover URL first when failover is true.
func (c *Connection) Reconnect(ctx context.Context, failover bool) error {
	return c.reconnect(ctx, 0, false, failover)
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
// use the new connection instead of dropping it in turn.
func (c *Connection) reconnect(ctx context.Context, gen uint64, onlyGen, failover bool) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return &Error{Op: "connection.reconnect", Transport: c.transportNameLocked(), Err: ErrClosed}
	}
	if onlyGen && (c.gen != gen || c.conn == nil) {
		c.mu.Unlock()
		return c.Connect(ctx)
	}
	old := c.dropLocked()
	if failover && len(c.connectors) > 1 {
		c.current = (c.current + 1) % len(c.connectors)
	}
	c.mu.Unlock()
	c.closeAll(old)
	return c.Connect(ctx)
}

type dropped struct {
	conn     driver.Conn
	channels []*Channel
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

func (c *Connection) closeAll(d dropped) error {
	var errs []error
	for _, ch := range d.channels {
		errs = append(errs, ch.Close())
	}
	if d.conn != nil {
		errs = append(errs, d.conn.Close())
	}
	return errors.Join(errs...)
}

// Close closes every channel (unacked messages go back to their queues)
// and the connection. It is idempotent; afterwards every method fails
// with ErrClosed.
func (c *Connection) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	d := c.dropLocked()
	c.mu.Unlock()
	return wrapErr("connection.close", c.TransportName(), "", c.closeAll(d))
}

// Channel opens a new channel, connecting first if needed.
func (c *Connection) Channel(ctx context.Context) (*Channel, error) {
	conn, err := c.driverConn(ctx)
	if err != nil {
		return nil, err
	}
	dch, err := conn.Channel(ctx)
	if err != nil {
		return nil, wrapErr("channel.open", c.TransportName(), "", err)
	}
	ch := &Channel{conn: c, drv: dch, consumers: map[string]*Consumer{}, pumpSem: make(chan struct{}, 1)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.conn != conn {
		_ = dch.Close()
		return nil, &Error{Op: "channel.open", Transport: c.transportNameLocked(), Err: ErrClosed}
	}
	c.channels[ch] = struct{}{}
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
	defer c.mu.Unlock()
	if c.defCh != nil && !c.defCh.isClosed() {
		other := c.defCh
		go ch.Close()
		return other, nil
	}
	c.defCh = ch
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
		var chans []*Channel
		for ch := range c.channels {
			if ch.hasConsumers() {
				chans = append(chans, ch)
			}
		}
		c.mu.Unlock()
		switch len(chans) {
		case 0:
			<-ctx.Done()
			return ctx.Err()
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
