// Package memory is the in-process transport, for tests and for passing
// messages between goroutines with the full kombu API.
//
// Import it for its side effect and dial "memory://":
//
//	import _ "github.com/kombu-go/kombu/transport/memory"
//	conn, err := kombu.Dial(ctx, "memory://", nil)
//
// # URLs
//
// memory://NAME selects an isolated in-process broker; every connection to
// the same NAME in one process shares its queues, exchanges and bindings
// (memory:// is the broker named ""). Brokers live as long as the process.
// There are no options. Without the registry, NewConnector(&Options{Broker:
// NAME}) plugs into kombu.NewConnectionFromConnector (see
// ExampleNewConnector). There is no client library beneath memory://, so
// kombu.Connection.As and kombu.Channel.As report false.
//
// # Semantics
//
// Queues are FIFO within a priority; priorities 0..9 are served highest
// first, as AMQP does with x-max-priority. Message TTL (expiration,
// x-message-ttl), dead-letter exchanges, alternate exchanges, mandatory
// returns and headers exchanges work as on RabbitMQ. Unacked messages are
// returned to their queue when their channel closes. Nothing survives the
// process.
package memory
