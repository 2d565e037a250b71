// Package amqp is the kombu transport for RabbitMQ (AMQP 0-9-1), written by
// hand over github.com/rabbitmq/amqp091-go. It registers the schemes amqp,
// amqps and pyamqp:
//
//	import _ "github.com/kombu-go/kombu/transport/amqp"
//
// # URLs
//
//	amqp://[user[:password]@]host[:port][/vhost][?option=value&...]
//
// Defaults: localhost, port 5672 (5671 for amqps), guest/guest, vhost "/".
// The vhost follows kombu: "amqp://h", "amqp://h/" and "amqp://h//" all
// mean "/", "amqp://h/%2F" too, and "amqp://h/app" means "app". Options:
//
//	heartbeat=60          heartbeat interval in seconds (default 60; kombu's
//	                      own default is 0 = off, Celery's 120). 0 takes the
//	                      broker's proposal: amqp091-go cannot turn
//	                      heartbeats off when the broker asks for them.
//	connect_timeout=5     TCP + TLS + AMQP handshake, seconds (kombu: 5)
//	login_method=PLAIN    PLAIN (default, as kombu), AMQPLAIN or EXTERNAL
//	                      (TLS client certificate, no password sent)
//	channel_max=0         channels asked for (0: the broker's limit)
//	frame_max=131072      largest frame asked for (4096..16777216)
//	locale=en_US
//	confirm_publish=true  publisher confirms (default on)
//	confirm_timeout=30    how long Publish waits for its confirm, seconds
//	confirm_window=100    publishes of one channel waiting for confirms at once
//	ssl=true              TLS on an amqp:// URL (amqps:// implies it)
//	ssl_ca_certs=FILE     CA bundle (PEM) instead of the system roots
//	ssl_certfile=FILE     client certificate (PEM), with ssl_keyfile
//	ssl_keyfile=FILE
//	ssl_server_hostname=H name sent (SNI) and verified instead of the URL's host
//	ssl_check_hostname=0  verify the chain but not the host name
//	ssl_cert_reqs=required|optional|none (also CERT_REQUIRED, ...), insecure=true
//
// These TLS options are read by transport.Query.TLS and mean the same on
// every scheme; any of them turns TLS on.
//
// TLS always checks the certificate chain and the host name unless
// insecure=true (or ssl_cert_reqs=CERT_NONE) says otherwise; the minimum
// version is TLS 1.2. Unknown options are errors (driver.ErrInvalidURL).
//
// # Message delivery semantics
//
// Messages are persistent (delivery mode 2) unless the publishing says
// otherwise, as in kombu. With confirm_publish on (the default), Publish
// returns nil only after the broker confirmed the message: one Publish call
// waits for its own confirm, while publishes from other goroutines on the
// same channel go on (at most confirm_window of them wait at once).
// PublishBatch sends up to confirm_window messages before waiting for their
// confirms, so one goroutine gets pipelined throughput; it returns nil only
// when every message was confirmed. A nack wraps ErrNacked, and the AMQP
// channel is replaced by a fresh one as soon as no consumer, unsettled
// delivery or awaited confirm depends on it (RabbitMQ 3.10 can nack every
// later publish of a channel that met a quorum queue's leader election);
// no confirm in
// time wraps driver.ErrTimeout; a channel or connection that closed before
// the confirm wraps ErrUnconfirmed (the message may or may not have been
// taken). None of them is driver.ErrConnectionLost, because retrying could
// duplicate the message.
//
// A mandatory publish that no queue takes is reported synchronously as a
// *driver.ReturnError when confirms are on (mandatory publishes of a
// channel then go one at a time, so the basic.return can be matched to
// its publish); otherwise, and for PublishBatch, the return goes to the
// handler set with NotifyReturn.
//
// Consuming: Qos sends basic.qos(prefetch_count, global=false), the per
// consumer limit kombu sends and the only one quorum queues accept; running
// consumers are started again so the new count reaches them. Receive never
// hands out more unsettled deliveries than the prefetch count either. Ack, Reject and multiple acks are checked
// against the deliveries the channel handed out, so a double ack or an
// unknown tag returns driver.ErrUnknownDeliveryTag instead of letting the
// broker close the channel. Recover uses basic.recover(requeue=true)
// (RabbitMQ implements nothing else). Flow pauses Receive locally
// (RabbitMQ does not implement channel.flow from clients). Cancel gives
// back (requeues) the consumer's deliveries that Receive has not handed
// out yet; those handed out stay the caller's to settle. Close, of a
// channel or the connection, makes the broker requeue unacked deliveries.
//
// A consumer that ends without Cancel is reported once by Receive, after
// the deliveries that arrived before its end, as a *ConsumerError: it wraps
// driver.ErrNotFound when the broker cancelled it (its queue was deleted),
// or driver.ErrClosed and the cause when its AMQP channel died.
//
// # Errors
//
// Broker replies map to driver sentinels, with the *amqp091.Error kept
// reachable: 404 NOT_FOUND is driver.ErrNotFound, 406 PRECONDITION_FAILED
// driver.ErrPreconditionFailed, 403 ACCESS_REFUSED and 405 RESOURCE_LOCKED
// driver.ErrAccessRefused. Such a channel exception closes the AMQP channel;
// the Channel opens a new one on its next call and applies the prefetch
// count and confirm mode again, so it stays usable. Deliveries of the dead
// channel went back to their queues: their tags become unknown. Operations
// that amqp091-go refused to send because the connection was already gone
// wrap driver.ErrConnectionLost; refused logins and vhosts wrap
// driver.ErrAccessRefused.
//
// # Wire compatibility with Python kombu
//
// The same properties as kombu travel: content type and encoding, delivery
// mode, priority, headers, expiration (milliseconds as a string),
// correlation id, reply to, message id, type, app id, user id, timestamp.
// Header integers are sent as int32 ('I') when they fit and as signed int64
// otherwise, and received headers hold int64 for every integer type.
// py-amqp writes large integers with the tag 'L', which amqp091-go cannot
// decode (it closes the connection): a wrapper around the socket rewrites
// 'L' to 'l' inside content-header frames on the way in (same width), and
// 'l' to 'L' on the way out (py-amqp reads 'l' as unsigned).
//
// # Headers amqp091-go cannot read
//
// RabbitMQ and py-amqp accept header tables that amqp091-go v1.16.0 refuses
// by closing the whole connection: tables and arrays nested more than 32
// deep, more than 8192 entries in one, field types it does not know. Such
// a message would come back to the head of its queue and kill every later
// consumer. The same socket wrapper replaces its headers table on the way
// in with a one-entry marker table; the delivery then carries no headers
// and a driver.Delivery.DecodeError saying why, so kombu reports it
// through the decode-error path and rejects it (a dead-letter exchange gets
// it whole), and the connection lives. A driver.Return carries the reason
// under the header "x-kombu-go-refused-headers" instead.
//
// # Extensions
//
// *Channel also implements ExchangeBinder (exchange-to-exchange bindings),
// driver.BatchPublisher (PublishBatch, pipelined confirms) and
// driver.ReturnNotifier. Connector.Dial replaces the TCP dial (tests use it
// to put a fault proxy in between).
//
// # Without the registry
//
// ParseURL turns a URL into typed Options, and NewConnector(opts) returns a
// driver.Connector that kombu.NewConnectionFromConnector takes as it is
// (see ExampleNewConnector).
//
// # As
//
// kombu.Connection.As reaches the *amqp091.Connection (pass a
// **amqp091.Connection), kombu.Channel.As the *amqp091.Channel in use
// (pass a **amqp091.Channel; a new one replaces it after a channel
// exception), and kombu.Message.As the amqp091.Delivery or
// *amqp091.Delivery (see ExampleConn_As). They belong to kombu: do not
// close them.
package amqp
