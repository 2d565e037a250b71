package sqs

import (
	"context"
	"fmt"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
	"github.com/kombu-go/kombu/virtual"
)

// Description is what the sqs transport declares about itself.
var Description = driver.Description{
	Name: "sqs",
	Features: driver.Features{
		Mandatory:     true, // routing happens in the publisher, which knows
		Persistent:    true,
		Leases:        true, // ChangeMessageVisibility
		Confirms:      true, // SendMessage returns once SQS stored the message
		DeliveryCount: true, // ApproximateReceiveCount
		// 1 MiB messages holding kombu's envelope in base64, whose body is
		// base64 again: 16/9 of the body plus headers.
		MaxBodySize:  512 << 10,
		ListBindings: true, // virtual lists its binding tables
	},
}

// Transport is the sqs transport, registered as "sqs".
var Transport = transport.NewTransport(Description, open)

func init() { transport.Register("sqs", Transport) }

func open(u *url.URL) (driver.Connector, error) {
	o, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	return NewConnector(o), nil
}

// Connector dials SQS stores. It is a driver.Connector, so it plugs into
// kombu without the registry:
//
//	conn := kombu.NewConnectionFromConnector(sqs.NewConnector(opts), nil)
type Connector struct {
	opts *Options
}

// NewConnector returns a Connector for o, which must come from ParseURL
// (or be filled in the same way) and not be changed afterwards.
func NewConnector(o *Options) *Connector { return &Connector{opts: o} }

// Options returns the connector's options (do not modify them).
func (c *Connector) Options() *Options { return c.opts }

// String describes the connector without its secret key.
func (c *Connector) String() string {
	u := url.URL{Scheme: "sqs"}
	if c.opts.AccessKeyID != "" {
		u.User = url.UserPassword(c.opts.AccessKeyID, c.opts.SecretAccessKey)
	}
	q := url.Values{"region": {c.opts.Region}}
	if c.opts.EndpointURL != "" {
		q.Set("endpoint_url", c.opts.EndpointURL)
	}
	u.RawQuery = q.Encode()
	return transport.Redact(&u)
}

// Connect implements driver.Connector: it dials a Store and wraps it in a
// virtual.Conn.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) { return virtual.Connect(ctx, c) }

// DialStore implements virtual.StoreDialer; Dial returns the same Store
// typed.
func (c *Connector) DialStore(ctx context.Context) (virtual.Store, error) { return c.Dial(ctx) }

// Describe implements driver.Describer.
func (c *Connector) Describe() driver.Description { return Description }

// Dial builds an SDK client for the options: static credentials from the
// URL, else the SDK's default chain (environment, shared files, instance
// role); every request goes to EndpointURL when set. No request is made.
func (c *Connector) Dial(ctx context.Context) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o := c.opts
	loaders := []func(*config.LoadOptions) error{config.WithRegion(o.Region)}
	if o.AccessKeyID != "" {
		loaders = append(loaders, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretAccessKey, "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loaders...)
	if err != nil {
		// The SDK's message names files and profiles, never secrets.
		return nil, fmt.Errorf("sqs: load AWS configuration: %w", err)
	}
	client := sqs.NewFromConfig(cfg, func(so *sqs.Options) {
		if o.EndpointURL != "" {
			so.BaseEndpoint = aws.String(o.EndpointURL)
		}
	})
	return newStore(o, client), nil
}

var (
	_ virtual.Store         = (*Store)(nil)
	_ virtual.Acker         = (*Store)(nil)
	_ virtual.BatchPutter   = (*Store)(nil)
	_ virtual.BatchGetter   = (*Store)(nil)
	_ virtual.BatchAcker    = (*Store)(nil)
	_ virtual.BatchRequeuer = (*Store)(nil)
	_ virtual.LeaseExtender = (*Store)(nil)
	_ virtual.Quarantiner   = (*Store)(nil)
	_ virtual.QueueStore    = (*Store)(nil)
	_ virtual.NameValidator = (*Store)(nil)
	_ virtual.BindingStore  = (*Store)(nil)
	_ driver.Pinger         = (*Store)(nil)
	_ driver.Aser           = (*Store)(nil)
	_ driver.Connector      = (*Connector)(nil)
	_ driver.Describer      = (*Connector)(nil)
	_ virtual.StoreDialer   = (*Connector)(nil)
)
