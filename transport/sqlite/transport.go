package sqlite

import (
	"context"
	"net/url"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
	"github.com/kombu-go/kombu/virtual"
)

// Description is what the sqlite transport declares about itself.
var Description = driver.Description{
	Name: "sqlite",
	Features: driver.Features{
		Priority:      driver.PriorityHighFirst,
		TTL:           true,
		Headers:       true,
		DurableFanout: true,
		Mandatory:     true,
		Persistent:    true,
		Leases:        true,
		Confirms:      true, // Publish returns once the row is committed
		ListBindings:  true, // virtual lists its binding tables
		RequeueOrder:  true, // new rows at the back, in delivery order
	},
}

// Transport is the SQLite transport, registered as "sqlite" and Python
// kombu's "sqla+sqlite" and "sqlalchemy+sqlite".
var Transport = transport.NewTransport(Description, open)

func init() {
	for _, s := range []string{"sqlite", "sqla+sqlite", "sqlalchemy+sqlite"} {
		transport.Register(s, Transport)
	}
}

func open(u *url.URL) (driver.Connector, error) {
	o, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	return NewConnector(o), nil
}

// Connector opens SQLite stores. It holds parsed options only.
type Connector struct{ o *Options }

// NewConnector returns a Connector for o. A Connector plugs into kombu
// without the registry:
//
//	conn := kombu.NewConnectionFromConnector(sqlite.NewConnector(opts), nil)
func NewConnector(o *Options) *Connector { return &Connector{o: o} }

// Options returns the connector's options.
func (c *Connector) Options() *Options { return c.o }

// Connect implements driver.Connector.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) { return virtual.Connect(ctx, c) }

// DialStore implements virtual.StoreDialer.
func (c *Connector) DialStore(ctx context.Context) (virtual.Store, error) { return c.Dial(ctx) }

// Describe implements driver.Describer.
func (c *Connector) Describe() driver.Description { return Description }

var (
	_ driver.Connector    = (*Connector)(nil)
	_ driver.Describer    = (*Connector)(nil)
	_ virtual.StoreDialer = (*Connector)(nil)
)
