package couchdb

import (
	"context"
	"net/url"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
	"github.com/kombu-go/kombu/virtual"
)

// Description is what the couchdb transport declares about itself.
var Description = driver.Description{
	Name:        "couchdb",
	DefaultHost: "127.0.0.1",
	DefaultPort: DefaultPort,
	Features: driver.Features{
		Priority:      driver.PriorityHighFirst, // the ready view's key orders by priority
		TTL:           true,                     // the expiry travels in the document
		DurableFanout: true,                     // fanout copies are documents in every bound queue
		Mandatory:     true,                     // routing happens in the publisher, which knows
		Persistent:    true,
		Leases:        true,
		Confirms:      true, // Publish returns once CouchDB has stored the document
		ListBindings:  true, // virtual lists its binding tables
		RequeueOrder:  true, // documents keep their place
	},
}

// Transport is the couchdb transport, registered as "couchdb" and
// "couchdbs" (HTTPS).
var Transport = transport.NewTransport(Description, open)

func init() {
	transport.Register("couchdb", Transport)
	transport.Register("couchdbs", Transport)
}

func open(u *url.URL) (driver.Connector, error) {
	o, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	return NewConnector(o), nil
}

// Connector connects to a CouchDB server. It is a driver.Connector, so it
// plugs into kombu without the registry:
//
//	conn := kombu.NewConnectionFromConnector(couchdb.NewConnector(opts), nil)
type Connector struct {
	opts *Options
}

var (
	_ driver.Connector    = (*Connector)(nil)
	_ driver.Describer    = (*Connector)(nil)
	_ virtual.StoreDialer = (*Connector)(nil)
)

// NewConnector returns a Connector for o, which must come from ParseURL (or
// be filled in the same way) and must not be changed afterwards.
func NewConnector(o *Options) *Connector { return &Connector{opts: o} }

// Options returns the connector's options. They must not be modified.
func (c *Connector) Options() *Options { return c.opts }

// Describe implements driver.Describer.
func (c *Connector) Describe() driver.Description { return Description }

// Connect implements driver.Connector.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) { return virtual.Connect(ctx, c) }

// DialStore implements virtual.StoreDialer; Dial returns the same Store
// typed.
func (c *Connector) DialStore(ctx context.Context) (virtual.Store, error) { return c.Dial(ctx) }
