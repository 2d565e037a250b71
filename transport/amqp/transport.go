package amqp

import (
	"net/url"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
)

// Description is what the amqp transport declares about itself: RabbitMQ's
// URL defaults and features.
var Description = driver.Description{
	Name:            "amqp",
	DefaultHost:     "localhost",
	DefaultPort:     DefaultPort,
	DefaultUser:     "guest",
	DefaultPassword: "guest",
	DefaultVHost:    "/",
	Features: driver.Features{
		Priority:        driver.PriorityHighFirst,
		TTL:             true,
		QueueLimits:     true,
		Headers:         true,
		DurableFanout:   true,
		Mandatory:       true,
		Persistent:      true,
		Confirms:        true,
		RequeueOrder:    true, // RabbitMQ requeues at their old place
		ExchangeBinding: true,
		SharedState:     true,
	},
}

// Transport is the amqp transport, registered as "amqp", "amqps" and
// "pyamqp". Its OpenConnector does no I/O other than reading the TLS files
// named in the URL.
var Transport = transport.NewTransport(Description, open)

func init() {
	transport.Register("amqp", Transport)
	transport.Register("amqps", Transport)
	transport.Register("pyamqp", Transport)
}

func open(u *url.URL) (driver.Connector, error) {
	o, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	return NewConnector(o), nil
}

var (
	_ driver.Connector = (*Connector)(nil)
	_ driver.Describer = (*Connector)(nil)
)

// Describe implements driver.Describer, so that a Connector plugs into
// kombu without the registry:
//
//	conn := kombu.NewConnectionFromConnector(amqp.NewConnector(opts), nil)
func (c *Connector) Describe() driver.Description { return Description }
