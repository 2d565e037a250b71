package mongodb

import (
	"context"
	"net/url"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
	"github.com/kombu-go/kombu/virtual"
)

// Description is what the mongodb transport declares about itself.
var Description = driver.Description{
	Name:        "mongodb",
	DefaultHost: "127.0.0.1",
	DefaultPort: DefaultPort,
	Features: driver.Features{
		Priority:     driver.PriorityHighFirst, // stored as 9-priority, served ascending, as Python kombu
		TTL:          true,                     // expire_at on the document, checked by consumers
		Mandatory:    true,                     // routing happens in the publisher, which knows
		Persistent:   true,
		Leases:       true,
		Confirms:     true, // Publish returns once the server has stored the message
		ListBindings: true, // virtual lists its binding tables
		RequeueOrder: true, // back under their old _id: their old place
	},
}

// Transport is the mongodb transport, registered as "mongodb" and
// "mongodb+srv".
var Transport = transport.NewTransport(Description, open)

func init() {
	transport.Register("mongodb", Transport)
	transport.Register("mongodb+srv", Transport)
}

func open(u *url.URL) (driver.Connector, error) {
	o, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	return NewConnector(o), nil
}

// Connector dials MongoDB. It is a driver.Connector, so it plugs into
// kombu without the registry:
//
//	conn := kombu.NewConnectionFromConnector(mongodb.NewConnector(opts), nil)
type Connector struct {
	opts *Options
}

// NewConnector returns a Connector for o, which must come from ParseURL
// (or be filled in the same way) and not be changed afterwards.
func NewConnector(o *Options) *Connector { return &Connector{opts: o} }

// Options returns the connector's options. They must not be modified.
func (c *Connector) Options() *Options { return c.opts }

// Connect implements driver.Connector: it dials a Store and wraps it in a
// virtual.Conn.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) { return virtual.Connect(ctx, c) }

// DialStore implements virtual.StoreDialer; Dial returns the same Store
// typed.
func (c *Connector) DialStore(ctx context.Context) (virtual.Store, error) { return c.Dial(ctx) }

// Describe implements driver.Describer.
func (c *Connector) Describe() driver.Description { return Description }

var (
	_ virtual.Store         = (*Store)(nil)
	_ virtual.Acker         = (*Store)(nil)
	_ virtual.BatchPutter   = (*Store)(nil)
	_ virtual.BatchGetter   = (*Store)(nil)
	_ virtual.BatchAcker    = (*Store)(nil)
	_ virtual.LeaseExtender = (*Store)(nil)
	_ virtual.Quarantiner   = (*Store)(nil)
	_ virtual.Fanouter      = (*Store)(nil)
	_ virtual.BindingStore  = (*Store)(nil)
	_ virtual.QueueStore    = (*Store)(nil)
	_ driver.Pinger         = (*Store)(nil)
	_ driver.Connector      = (*Connector)(nil)
	_ driver.Describer      = (*Connector)(nil)
	_ virtual.StoreDialer   = (*Connector)(nil)
)
