package memory

import (
	"context"
	"net/url"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
	"github.com/kombu-go/kombu/virtual"
)

// Description is what the memory transport declares about itself.
var Description = driver.Description{
	Name: "memory",
	Features: driver.Features{
		Priority:      driver.PriorityHighFirst,
		TTL:           true,
		Headers:       true,
		DurableFanout: true,
		Mandatory:     true,
		SharedState:   true,
		ListBindings:  true, // virtual lists its binding tables
		RequeueOrder:  true, // virtual puts them back in delivery order, at the back
	},
}

// Transport is the memory transport, registered as "memory".
var Transport = transport.NewTransport(Description, open)

func init() { transport.Register("memory", Transport) }

func open(u *url.URL) (driver.Connector, error) {
	o, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	return NewConnector(o), nil
}

// Options configure a memory connection.
type Options struct {
	// Broker names the in-process broker: connections to the same name
	// share queues, exchanges and bindings. "" is the broker of memory://.
	Broker string
}

// ParseURL reads memory://NAME. memory:// takes no query options; any
// option is an error wrapping driver.ErrInvalidURL.
func ParseURL(u *url.URL) (*Options, error) {
	q, err := transport.NewQuery(u)
	if err != nil {
		return nil, err
	}
	q.SetTransport("memory")
	if err := q.Err(); err != nil {
		return nil, err
	}
	return &Options{Broker: u.Host}, nil
}

// Connector connects to an in-process broker. It is a driver.Connector, so
// it plugs into kombu without the registry:
//
//	conn := kombu.NewConnectionFromConnector(memory.NewConnector(&memory.Options{Broker: "x"}), nil)
type Connector struct {
	opts *Options
}

var (
	_ driver.Connector    = (*Connector)(nil)
	_ driver.Describer    = (*Connector)(nil)
	_ virtual.StoreDialer = (*Connector)(nil)
)

// NewConnector returns a Connector for o (nil means the broker ""). o
// must not be changed afterwards.
func NewConnector(o *Options) *Connector {
	if o == nil {
		o = &Options{}
	}
	return &Connector{opts: o}
}

// Options returns the connector's options. They must not be modified.
func (c *Connector) Options() *Options { return c.opts }

// Describe implements driver.Describer.
func (c *Connector) Describe() driver.Description { return Description }

// Connect implements driver.Connector.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) { return virtual.Connect(ctx, c) }

// DialStore returns the Store of the named broker, for store-level use.
func (c *Connector) DialStore(ctx context.Context) (virtual.Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &Store{b: brokerNamed(c.opts.Broker)}, nil
}
