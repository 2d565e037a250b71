package beanstalk

import (
	"context"
	"net/url"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
	"github.com/kombu-go/kombu/virtual"
)

// Description is what the beanstalk transport declares about itself.
var Description = driver.Description{
	Name:        "beanstalk",
	DefaultHost: "127.0.0.1",
	DefaultPort: DefaultPort,
	Features: driver.Features{
		// Job priorities are kombu's 0..9 as they are: beanstalkd
		// serves the lowest number first, as kombu 3.0 wrote them.
		Priority: driver.PriorityLowFirst,
		// Fanout is one job per bound tube: copies wait for consumers.
		DurableFanout: true,
		Mandatory:     true, // routing happens in the publisher, which knows
		Persistent:    true, // jobs live in beanstalkd (and its binlog with -b)
		Leases:        true, // a reservation's TTR, restarted by touch
		Confirms:      true, // Publish returns once beanstalkd answered INSERTED
		RequeueOrder:  true, // released with their old priority and job id: their old place
		DeliveryCount: true, // stats-job reserves, as x-delivery-count
		ListBindings:  true, // virtual lists its binding tables
	},
}

// Transport is the beanstalk transport, registered as "beanstalk".
var Transport = transport.NewTransport(Description, open)

func init() { transport.Register("beanstalk", Transport) }

func open(u *url.URL) (driver.Connector, error) {
	o, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	return NewConnector(o), nil
}

// Connector dials beanstalkd. It is a driver.Connector, so it plugs into
// kombu without the registry:
//
//	conn := kombu.NewConnectionFromConnector(beanstalk.NewConnector(opts), nil)
type Connector struct {
	opts *Options
}

// NewConnector returns a Connector for o; nil means the defaults
// (127.0.0.1:11300). o must not be changed afterwards.
func NewConnector(o *Options) *Connector {
	if o == nil {
		o, _ = ParseURL(&url.URL{Scheme: "beanstalk"})
	}
	return &Connector{opts: o}
}

// Options returns the connector's options. They must not be modified.
func (c *Connector) Options() *Options { return c.opts }

// Describe implements driver.Describer.
func (c *Connector) Describe() driver.Description { return Description }

// Connect implements driver.Connector.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) { return virtual.Connect(ctx, c) }

// DialStore implements virtual.StoreDialer; Dial returns the same Store
// typed.
func (c *Connector) DialStore(ctx context.Context) (virtual.Store, error) { return c.Dial(ctx) }

var (
	_ virtual.Store         = (*Store)(nil)
	_ virtual.Acker         = (*Store)(nil)
	_ virtual.LeaseExtender = (*Store)(nil)
	_ virtual.Quarantiner   = (*Store)(nil)
	_ virtual.NameValidator = (*Store)(nil)
	_ virtual.QueueStore    = (*Store)(nil)
	_ virtual.BindingStore  = (*Store)(nil)
	_ driver.Pinger         = (*Store)(nil)
	_ driver.Aser           = (*Store)(nil)
	_ driver.Connector      = (*Connector)(nil)
	_ driver.Describer      = (*Connector)(nil)
	_ virtual.StoreDialer   = (*Connector)(nil)
)
