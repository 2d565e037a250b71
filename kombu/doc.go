// Package kombu is a messaging library in the spirit of Python's kombu:
// one API (Connection, Exchange, Queue, Producer, Consumer, Message,
// SimpleQueue, pools) over many brokers, each chosen by URL.
//
// Import the transports you need for their side effect, then dial a URL:
//
//	import (
//		"github.com/kombu-go/kombu/kombu"
//		_ "github.com/kombu-go/kombu/transport/amqp"
//		_ "github.com/kombu-go/kombu/transport/memory"
//		_ "github.com/kombu-go/kombu/transport/redis"
//	)
//
//	conn, err := kombu.Dial(ctx, "redis://localhost:6379/0", nil)
//
// Swapping RabbitMQ for Redis is a change of URL; unit tests use memory://.
//
// # URLs
//
// A URL is transport://user:password@host:port/vhost?option=value, as in
// kombu. Schemes: amqp, amqps, pyamqp, redis, rediss, sentinel, memory.
// Missing parts take the
// transport's defaults (localhost, guest/guest and vhost / for amqp, the
// transport's port). Options are typed: an unknown or invalid option is an
// error wrapping ErrInvalidURL. Several URLs separated by ';' form a
// failover list, tried in order. NewConnection only parses; the first
// operation (or Connect) dials. Passwords never appear in errors, in
// Connection.URI or when a Connection is printed.
//
// # Entities
//
// Exchange, Queue and Binding are values. Build them with NewExchange and
// NewQueue to get kombu's defaults (durable, persistent messages). Their
// methods take the Channel to act on; a nil channel means the one given to
// Bind, and no channel at all is ErrNotBound. Producers and consumers
// declare what they use (Declare, MaybeDeclare with a per-connection
// cache), so declaring by hand is rarely needed.
//
// # Message delivery semantics
//
// Delivery is at least once. A message is settled exactly once with Ack,
// Reject (dropped or dead-lettered) or Requeue (delivered again with
// Redelivered set); a second settlement returns ErrAlreadyAcknowledged.
// Messages that are not settled when their channel closes go back to their
// queue. PrefetchCount bounds how many unacked messages a consumer holds.
// On transports with leases (redis) a message that stays
// unacked longer than the visibility timeout is delivered again unless
// the handler calls Message.ExtendLease.
//
// Consumers decode only the content types in their accept list (json,
// text and raw data by default; pickle never): anything else goes to
// OnDecodeError and is rejected without requeue (unless the callback
// settled it itself), as is a body that cannot be decompressed or decoded,
// or a message the transport could not read whole
// (driver.Delivery.DecodeError). Decompression is capped
// (Options.MaxDecompressedSize, 64 MiB by default).
//
// Header values follow one rule on every transport (see
// driver.NormalizeHeaders): a consumer gets a kombu-go publisher's headers
// as nil, bool, string, int64, float64, map[string]any or []any, whatever
// the transport.
//
// Consumers come in three styles: Receive (pull), Consume with a Handler
// (net/http style; returning nil acks, an error redelivers the message
// after a backoff and dead-letters it after RedeliveryPolicy.MaxDeliveries
// deliveries, a panic is recovered, reported as a *PanicError and counts as
// an error), and kombu-style Callbacks dispatched by Connection.DrainEvents.
// A Worker (kombu's ConsumerMixin) runs a Handler for as long as the
// program runs: it reconnects with backoff after every lost connection,
// declares its queues again and goes on consuming.
//
// # Observability
//
// ConsumerOptions.Middleware wraps a Consumer's or Worker's Handler in
// Middleware (package kombu/middleware has recovery, timeouts, retries,
// dedup, limits and correlation ids). Options.Observer sees every publish,
// handler run, settlement and connection event: package kombu/otelkombu
// implements it with OpenTelemetry traces and metrics, and any other
// backend can. Options.Logger gets the connection's lifecycle events
// (connect, reconnect, failover, retry, consumer start and stop, channel
// errors) as structured log/slog records; without it nothing is logged.
// See docs/observability.md.
//
// # Errors
//
// Methods return *Error (operation, transport, entity name) wrapping the
// cause, so errors.Is(err, kombu.ErrNotFound) and errors.As(err,
// &amqpErr) both work. Context errors come back unwrapped: a method given
// a context that is already done returns its error and does nothing, on
// every transport. Values no broker accepts (a prefetch count above 65535,
// a TTL beyond MaxExpiry, a negative queue length) are refused with
// ErrInvalidArgument before any I/O. See the Err variables for the
// sentinels.
//
// # Closing
//
// Close (Connection, Channel, Consumer, SimpleQueue) is immediate and
// idempotent; afterwards every method fails with ErrClosed, except a
// Consumer's Consume and Receive, which return ErrConsumerStopped after
// its own Close or Shutdown: a loop stops on that and reconnects on
// ErrClosed or ErrConnectionLost (a channel or connection lost under it).
// Consumer.Shutdown and Worker.Shutdown are the graceful forms: they stop
// fetching and wait for running handlers.
package kombu
