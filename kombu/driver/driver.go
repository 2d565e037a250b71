// Package driver defines what a kombu transport implements.
//
// Users never call these interfaces directly: package kombu wraps them in
// concrete types (Connection, Channel, Producer, Consumer) that own
// serialization, compression, retries, decoding and error wrapping. A
// transport only moves messages, as database/sql/driver does for SQL.
//
// Non-AMQP transports do not implement Channel by hand: they implement the
// much smaller virtual.Store and get exchange routing, QoS and unacked
// tracking from package virtual.
//
// # Growing the contract
//
// New capabilities arrive as optional interfaces that a Channel or Conn may
// implement (Pinger, BatchPublisher, LeaseExtender, ReturnNotifier,
// BindingLister), never as
// new required methods, so existing transports keep compiling.
//
// # Concurrency
//
// Conn and Channel must be safe for concurrent use by multiple goroutines.
// After Close, every method returns an error that wraps ErrClosed.
package driver

import (
	"context"
	"log/slog"
	"net/url"
	"time"
)

// Transport is the value a transport registers for its URL schemes.
type Transport interface {
	// OpenConnector parses and validates u without doing any I/O. The
	// returned Connector is reused for every (re)dial, so failover and
	// reconnects never parse again. Unknown or invalid query options are
	// errors that wrap ErrInvalidURL and never contain the password.
	OpenConnector(u *url.URL) (Connector, error)
}

// Describer is implemented by transports that publish their URL defaults
// and capabilities. kombu uses it for Connection.Info and to fill in
// missing URL parts in Connection.URI.
type Describer interface {
	Describe() Description
}

// Description holds a transport's URL defaults and its Features.
type Description struct {
	Name            string // canonical name, e.g. "amqp", "redis", "memory"
	DefaultHost     string
	DefaultPort     int
	DefaultUser     string
	DefaultPassword string
	DefaultVHost    string
	Features        Features
}

// PriorityOrder says which priority a transport serves first.
type PriorityOrder int

const (
	// PriorityNone: the transport ignores priority (FIFO).
	PriorityNone PriorityOrder = iota
	// PriorityHighFirst: 9 before 0, as AMQP.
	PriorityHighFirst
	// PriorityLowFirst: 0 before 9, as Python kombu's redis transport.
	PriorityLowFirst
)

// Features declares how a transport differs from full AMQP semantics. The
// conformance suite adapts to them, and docs/transports.md lists them.
type Features struct {
	Priority        PriorityOrder
	PriorityLevels  []int // the distinct levels served, e.g. redis [0,3,6,9]; nil means 0..9 all distinct
	TTL             bool  // per-message expiration is honoured
	QueueLimits     bool  // x-max-length and friends are enforced
	Headers         bool  // headers exchanges route
	DurableFanout   bool  // fanout copies wait in queues that have no live consumer
	Mandatory       bool  // unroutable mandatory publishes are reported
	Persistent      bool  // messages survive a restart of the client process
	Leases          bool  // a delivery's lease can be extended (visibility timeout)
	Confirms        bool  // publishes are confirmed by the broker
	ExchangeBinding bool  // exchange-to-exchange bindings
	SharedState     bool  // declarations made by one connection are seen by others
	// DeliveryCount: the broker counts the deliveries of every message
	// itself (SQS ApproximateReceiveCount), handed up as the
	// x-delivery-count header, so a requeue is counted.
	DeliveryCount bool
	// ListBindings: the channel is a BindingLister, so the bindings of a
	// queue or an exchange can be listed, those made by other connections
	// of the process included (not over AMQP 0-9-1, which has no method
	// for it).
	ListBindings bool
	// RequeueOrder: unacked messages that go back to their queue together
	// (their channel closes, Recover) are delivered again in the order
	// they were first delivered, as RabbitMQ does. SQS standard queues
	// keep no order at all.
	RequeueOrder bool
	// MaxBodySize is the largest message body the transport carries with
	// modest headers, in bytes (SQS: its 1 MiB message limit less kombu's
	// encoding); 0 means no limit of its own. Larger publishes fail with
	// an error wrapping ErrInvalidArgument.
	MaxBodySize int
}

// Connector dials a connection. It holds parsed options only.
type Connector interface {
	// Connect dials. ctx bounds the dial only and is never retained.
	// Errors that mean "the broker could not be reached" wrap
	// ErrConnectionLost so that kombu can try the next failover URL.
	Connect(ctx context.Context) (Conn, error)
}

// Conn is one live connection to a broker.
type Conn interface {
	// Channel opens a new channel. Channels are cheap on virtual
	// transports and map to AMQP channels on amqp.
	Channel(ctx context.Context) (Channel, error)
	// Close closes every channel of the connection (returning their
	// unacked messages) and then the connection. It is idempotent.
	Close() error
}

// LoggerSetter is implemented by Connectors whose client library writes
// log lines of its own (go-redis). kombu hands them Options.Logger (nil:
// discard) before the first Connect, so that no line goes to stderr.
type LoggerSetter interface {
	SetLogger(l *slog.Logger)
}

// LossNotifier is implemented by Conns that notice by themselves that the
// connection is gone (the broker closed it, a heartbeat was missed, the
// socket failed). kombu then drops the Conn and dials again on next use
// instead of failing every call on a dead connection.
type LossNotifier interface {
	// Lost returns a channel closed once the connection is gone for good
	// (after Close too).
	Lost() <-chan struct{}
}

// Pinger is implemented by Conns that can check the broker is alive.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Channel mirrors the AMQP 0-9-1 channel methods that kombu uses.
//
// Every method may block on network I/O and honours ctx. Context errors are
// returned unwrapped. After Close, every method returns ErrClosed.
type Channel interface {
	// ExchangeDeclare declares e. With e.Passive it only checks that e
	// exists (ErrNotFound otherwise). Redeclaring with other attributes
	// returns ErrPreconditionFailed where the broker checks it.
	ExchangeDeclare(ctx context.Context, e Exchange) error
	ExchangeDelete(ctx context.Context, name string, ifUnused bool) error

	// QueueDeclare declares q and returns its current counts. An empty
	// name asks the broker to generate one, returned in QueueInfo.Name.
	QueueDeclare(ctx context.Context, q Queue) (QueueInfo, error)
	QueueBind(ctx context.Context, b Binding) error
	QueueUnbind(ctx context.Context, b Binding) error
	// QueuePurge removes ready messages and returns how many.
	QueuePurge(ctx context.Context, queue string) (int, error)
	// QueueDelete deletes a queue and returns how many ready messages it
	// held. A queue that does not exist is not an error.
	QueueDelete(ctx context.Context, queue string, ifUnused, ifEmpty bool) (int, error)

	// Publish routes p. A mandatory publish that no queue takes returns
	// an error wrapping ErrUnroutable (a *ReturnError) when the channel
	// knows it synchronously; otherwise it is reported to the handler
	// set with ReturnNotifier.
	Publish(ctx context.Context, p *Publishing) error

	// Get fetches one message from queue, or returns ErrEmpty.
	Get(ctx context.Context, queue string, noAck bool) (*Delivery, error)

	// Consume starts delivering queue's messages under consumerTag to
	// Receive. A tag already in use returns ErrPreconditionFailed.
	Consume(ctx context.Context, c ConsumeArgs) error
	// Cancel stops a consumer. Deliveries already handed out stay unacked
	// until settled. Unknown tags are not an error.
	Cancel(ctx context.Context, consumerTag string) error
	// Receive returns up to max deliveries for the channel's consumers.
	// It blocks until at least one is ready, about one second passes, or
	// ctx is done, and may return none (nil, nil). It never returns more
	// than the QoS window allows.
	Receive(ctx context.Context, max int) ([]*Delivery, error)

	// Ack acknowledges tag (and every earlier tag when multiple).
	// Unknown tags return ErrUnknownDeliveryTag.
	Ack(ctx context.Context, tag uint64, multiple bool) error
	// Reject rejects tag, requeueing it (marked redelivered) or dropping
	// it (dead-lettering it where the broker does that).
	Reject(ctx context.Context, tag uint64, requeue bool) error
	// Recover redelivers every unacked message of the channel: requeued
	// when requeue is true, else sent again to the same consumer.
	Recover(ctx context.Context, requeue bool) error
	// Qos limits unacked deliveries per channel; 0 is unlimited.
	Qos(ctx context.Context, prefetchCount int) error
	// Flow pauses (false) or resumes (true) deliveries to Receive.
	Flow(ctx context.Context, active bool) error

	// Close returns every unacked delivery to its queue (redelivered) and
	// releases the channel. It is idempotent.
	Close() error
}

// ConsumeArgs are the arguments of Channel.Consume.
type ConsumeArgs struct {
	Queue       string
	ConsumerTag string
	NoAck       bool
	Exclusive   bool
	Args        map[string]any
}

// BatchPublisher is implemented by channels that publish many messages in
// one round trip (redis pipelines, SQS SendMessageBatch). kombu uses it for
// Producer.PublishBatch. The batch is not atomic: on error, a prefix may
// have been published; BatchError says how many.
type BatchPublisher interface {
	PublishBatch(ctx context.Context, ps []*Publishing) error
}

// LeaseExtender is implemented by channels whose deliveries have a lease
// (a visibility timeout): a handler that runs long extends it instead of
// having the message delivered twice.
type LeaseExtender interface {
	ExtendLease(ctx context.Context, tag uint64, d time.Duration) error
}

// DelayedRequeuer is implemented by channels whose broker can hold a
// requeued message back for a while (beanstalk's release with a delay, an
// SQS visibility timeout). Where the broker also counts deliveries
// (Features.DeliveryCount), kombu's redelivery policy requeues a failed
// message with its backoff as that delay, so the wait happens in the
// broker, not in a consumer that may crash or shut down meanwhile.
// RequeueAfter settles the delivery like Reject with requeue; the message
// is delivered again once delay has passed (brokers with a coarser clock
// round it up and say so). A channel whose broker cannot returns an error
// wrapping ErrNotSupported before settling anything, and kombu then
// waits in the consumer as without this interface.
type DelayedRequeuer interface {
	RequeueAfter(ctx context.Context, tag uint64, delay time.Duration) error
}

// BatchRequeuer is implemented by channels that can requeue several
// deliveries at once (virtual transports, through their store's
// virtual.BatchRequeuer). RequeueBatch settles each tag like Reject with
// requeue; the messages come back in the order of their delivery tags
// where the transport keeps an order (Features.RequeueOrder), which
// requeueing them one at a time does not ensure on a store that pushes
// each one to the front of its queue. kombu uses it for the messages a
// consumer closing on a shared channel had fetched but not handed out.
type BatchRequeuer interface {
	RequeueBatch(ctx context.Context, tags []uint64) error
}

// ReturnNotifier is implemented by channels that learn about unroutable
// mandatory messages asynchronously (AMQP basic.return).
type ReturnNotifier interface {
	NotifyReturn(func(Return))
}

// ExchangeBinder is implemented by channels that support
// exchange-to-exchange bindings (RabbitMQ): messages that source routes
// with routingKey also reach destination.
type ExchangeBinder interface {
	ExchangeBind(ctx context.Context, destination, source, routingKey string, args map[string]any) error
	ExchangeUnbind(ctx context.Context, destination, source, routingKey string, args map[string]any) error
}

// BindingLister is implemented by channels that can tell which bindings
// exist: the queue bindings of a virtual transport, which keeps the tables
// itself. AMQP 0-9-1 has no method to list bindings (only RabbitMQ's
// management HTTP API has), so an amqp channel is not one. A channel that
// implements it but cannot answer for some broker returns an error wrapping
// ErrNotSupported. Args is set where the transport keeps the binding's
// arguments (nil for a binding known only from a table another process
// wrote). A queue or exchange that does not exist has no bindings: an
// empty list, not an error. The implicit binding of every queue to the
// default exchange is not listed.
type BindingLister interface {
	// QueueBindings lists the bindings of queue, whatever the exchange.
	QueueBindings(ctx context.Context, queue string) ([]Binding, error)
	// ExchangeBindings lists the queues bound to exchange.
	ExchangeBindings(ctx context.Context, exchange string) ([]Binding, error)
}

// Exchange is the declaration of an exchange.
type Exchange struct {
	Name       string
	Type       string // direct, topic, fanout, headers
	Durable    bool
	AutoDelete bool
	Internal   bool
	Passive    bool
	Args       map[string]any
}

// Queue is the declaration of a queue. Args carries the x-arguments
// (x-max-priority, x-message-ttl, x-expires, x-max-length, ...) already
// converted to AMQP units by kombu.
type Queue struct {
	Name       string
	Durable    bool
	Exclusive  bool
	AutoDelete bool
	Passive    bool
	Args       map[string]any
}

// QueueInfo is what a queue declaration reports.
type QueueInfo struct {
	Name      string
	Messages  int
	Consumers int
}

// Binding binds Queue to Exchange. For headers exchanges Args carries
// x-match and the header values to match.
type Binding struct {
	Queue      string
	Exchange   string
	RoutingKey string
	Args       map[string]any
}

// Message is what travels: the payload bytes as serialized and compressed
// by kombu, plus the AMQP properties.
type Message struct {
	Body            []byte
	ContentType     string
	ContentEncoding string
	Headers         map[string]any
	Properties      Properties
}

// Properties are the AMQP basic properties kombu sends.
type Properties struct {
	DeliveryMode  uint8 // 1 transient, 2 persistent
	Priority      uint8 // 0..9 on virtual transports, up to 255 on AMQP
	CorrelationID string
	ReplyTo       string
	Expiration    string // milliseconds as a decimal string, "" for none
	MessageID     string
	Timestamp     time.Time
	Type          string
	UserID        string
	AppID         string
	ClusterID     string
	// Extra holds properties that AMQP has no field for (SQS
	// MessageGroupId, ...). Virtual transports carry them in the envelope.
	Extra map[string]any
}

// Publishing is one publish request. The channel may keep Body and
// Headers after Publish returns (the memory transport queues them as they
// are), so the caller hands them over: it must not modify them afterwards.
// kombu's Producer always passes a body and headers of its own.
type Publishing struct {
	Exchange   string
	RoutingKey string
	Mandatory  bool
	Message
}

// Delivery is a message handed to a consumer.
type Delivery struct {
	Message
	Tag         uint64
	ConsumerTag string
	Exchange    string
	RoutingKey  string
	Queue       string // the queue it came from, where known
	Redelivered bool
	// DecodeError, when set, says the transport took the delivery off the
	// queue but could not read all of it: an AMQP header table the client
	// library refuses, a redis list element that is not a kombu envelope.
	// For the latter Body holds the raw bytes as received, cut to
	// RawBodyLimit, and only Tag, ConsumerTag, Queue and Redelivered are
	// meaningful. kombu hands such a delivery to the decode-error path
	// (ConsumerOptions.OnDecodeError, else a reject without requeue) and
	// never to a handler. Settling works as usual; a virtual transport
	// never deletes it on reject or no-ack but moves it where an operator
	// can find it (its queue's dead-letter exchange, or a place the
	// transport documents); on amqp it is dead-lettered if the queue says
	// so, as any rejected message.
	DecodeError error
	// As lets users reach the transport's own delivery type (e.g.
	// *amqp091.Delivery); it reports whether target was set.
	As func(target any) bool
}

// RawBodyLimit bounds Delivery.Body when DecodeError is set: enough to
// see what the bytes are, not a copy of a huge payload.
const RawBodyLimit = 64 << 10

// Return is an unroutable mandatory message handed back by the broker.
type Return struct {
	ReplyCode  int
	ReplyText  string
	Exchange   string
	RoutingKey string
	Message
}
