package redis

import (
	"context"
	"net/url"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
	"github.com/kombu-go/kombu/virtual"
)

// Description is what the redis transport declares about itself.
var Description = driver.Description{
	Name:        "redis",
	DefaultHost: "127.0.0.1",
	DefaultPort: DefaultPort,
	Features: driver.Features{
		Priority:       driver.PriorityLowFirst,
		PriorityLevels: DefaultPrioritySteps,
		Mandatory:      true, // routing happens in the publisher, which knows
		Persistent:     true,
		Leases:         true,
		Confirms:       true, // Publish returns once redis has stored the message
		ListBindings:   true, // virtual lists its binding tables
		RequeueOrder:   true, // RequeueBatch: one script, at the front
	},
}

// Transport is the redis transport, registered as "redis", "rediss" and
// "sentinel".
var Transport = transport.NewTransport(Description, open)

func init() {
	transport.Register("redis", Transport)
	transport.Register("rediss", Transport)
	transport.Register("sentinel", Transport)
}

func open(u *url.URL) (driver.Connector, error) {
	o, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	return NewConnector(o), nil
}

// Connect implements driver.Connector: it dials a Store and wraps it in a
// virtual.Conn. A Connector plugs into kombu without the registry:
//
//	conn := kombu.NewConnectionFromConnector(redis.NewConnector(opts), nil)
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) { return virtual.Connect(ctx, c) }

// DialStore implements virtual.StoreDialer; Dial returns the same Store
// typed.
func (c *Connector) DialStore(ctx context.Context) (virtual.Store, error) { return c.Dial(ctx) }

// Describe implements driver.Describer.
func (c *Connector) Describe() driver.Description { return Description }

// Ping implements driver.Pinger.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	return s.wrap(ctx, "PING", s.rdb.Ping(ctx).Err())
}

var (
	_ virtual.Store         = (*Store)(nil)
	_ virtual.Acker         = (*Store)(nil)
	_ virtual.BatchPutter   = (*Store)(nil)
	_ virtual.BatchGetter   = (*Store)(nil)
	_ virtual.BatchAcker    = (*Store)(nil)
	_ virtual.LeaseExtender = (*Store)(nil)
	_ virtual.Fanouter      = (*Store)(nil)
	_ virtual.BindingStore  = (*Store)(nil)
	_ virtual.NameValidator = (*Store)(nil)
	_ virtual.QueueStore    = (*Store)(nil)
	_ driver.Pinger         = (*Store)(nil)
	_ driver.Connector      = (*Connector)(nil)
	_ driver.Describer      = (*Connector)(nil)
	_ virtual.StoreDialer   = (*Connector)(nil)
	_ driver.LoggerSetter   = (*Connector)(nil)
)
