// Package sqs is the Amazon SQS transport: kombu's virtual transport on
// SQS queues through aws-sdk-go-v2, wire-compatible with Python kombu 5.x's
// sqs transport, so that Go and Python (kombu, Celery) producers and
// consumers share queues.
//
// Import it for its side effect:
//
//	import _ "github.com/kombu-go/kombu/transport/sqs"
//	conn, err := kombu.Dial(ctx, "sqs://", nil) // credentials from the SDK's default chain
//
// # URLs
//
//	sqs://[ACCESS_KEY_ID:SECRET_KEY@][host[:port]][?options]
//
// kombu's form. Without user info the SDK's default credential chain is
// used (environment, shared config files, container and instance roles);
// a secret holding '/' or '+' must be %-escaped (%2F, %2B). A host makes
// every request go to https://host[:port] (http:// with is_secure=false),
// as kombu builds its endpoint_url; the option endpoint_url says the same
// with a scheme (sqs://KEY:SECRET@?endpoint_url=http://127.0.0.1:4566).
// Without either, the SDK's AWS endpoint of region is used. Queue URLs
// returned by SQS are only used as identifiers: requests always go to
// the endpoint. The secret key never appears in errors, logs or String().
//
// # Options
//
// Durations are seconds as in kombu ("30", "0.5") or Go durations ("1m").
// Unknown options are errors.
//
//	region=us-east-1             the AWS region of every queue
//	endpoint_url=URL             http(s):// endpoint (emulators, SQS-compatible services)
//	is_secure=true               false: the URL's host is reached over http://
//	queue_name_prefix=           put before every queue name
//	visibility_timeout=1800      VisibilityTimeout of the queues this transport creates (1 s .. 12 h)
//	wait_time_seconds=10         longest long poll of one ReceiveMessage (0..20)
//	polling_interval=1           pause between rounds of short polls of a channel consuming several queues
//	predefined_queues=JSON       {"name": {"url": "...", "backoff_policy": {"1": 10, "2": 20},
//	                             "backoff_tasks": ["task.name"]}}: only these queues, no
//	                             GetQueueUrl/CreateQueue/DeleteQueue calls (per-queue credentials
//	                             are refused: one client serves every queue)
//	sqs-creation-attributes=JSON extra attributes of created queues, e.g. {"MessageRetentionPeriod": "86400"}
//	sqs_base64_encoding=true     false: the envelope JSON is sent as text
//
// # Wire format
//
// Python kombu's (see the project's kombu-wire-format reference, §5):
//
//   - the SQS name of a queue is QueueName(queue_name_prefix, name): '.'
//     becomes '-', other punctuation '_', ".fifo" is kept; names over 80
//     characters are cut and given a hash (kombu would fail on them);
//   - MessageBody is base64 of kombu's JSON envelope (whose body is base64
//     itself); a consumer reads base64 or plain JSON, as kombu does;
//   - the receipt handle identifies a delivery: an ack is DeleteMessage
//     (DeleteMessageBatch, 10 per call, for several); a requeue or reject
//     with requeue is ChangeMessageVisibility 0, so SQS counts the
//     receive; a message never acked comes back after the visibility
//     timeout, also when its consumer was killed;
//   - queues are created on declare (and on a publish to a missing queue,
//     as kombu does) with the VisibilityTimeout attribute, FifoQueue for
//     ".fifo" names, and sqs-creation-attributes.
//
// # Semantics
//
// Routing (direct, topic, fanout by one copy per bound queue) is done by
// package virtual in the publisher. Bindings are shared by every
// connection of one process to the same endpoint, region, access key and
// prefix; bindings made in another process are not seen (Python kombu
// keeps them per process too), so declare them where you publish, or
// publish to the default exchange with the queue's name.
//
// Deliveries: a channel consuming one queue long polls it (up to about a
// second per Receive, in whole seconds); several queues are short polled
// in turn. ReceiveMessage asks for min(prefetch room, 10) messages.
// Publishes of several messages (Producer.PublishBatch) use
// SendMessageBatch, 10 per call. Channel.Close, Connection.Close and
// Recover make unacked messages visible again at once
// (ChangeMessageVisibilityBatch 0), not after the visibility timeout. A
// ReceiveMessage is never cancelled mid-way, since SQS may hand messages
// to a request whose client left: messages of a poll whose caller stopped
// waiting are handed to the next poll of the connection, or made visible
// again after 2 s or at Close.
//
// Redelivery: SQS counts receives (ApproximateReceiveCount). A
// redelivered message carries the header x-delivery-count (receives
// before this one), so Message.DeliveryCount follows SQS's own counter and
// kombu's RedeliveryPolicy requeues (ChangeMessageVisibility to its
// backoff, whole seconds rounded up, at most 12 h: the message waits in
// SQS, not in the consumer) rather than republishing: the count survives
// consumers that die. For predefined
// queues with a backoff_policy (kombu's), a requeue sets the visibility
// timeout the policy gives for the message's receive count instead of 0.
// Lease extension (Message.ExtendLease) is ChangeMessageVisibility.
//
// Queue arguments for SQS's own dead-letter queue (redrive policy), set
// when the queue is declared:
//
//	x-sqs-dead-letter-queue   kombu name of the dead-letter queue (created if missing)
//	x-sqs-max-receive-count   receives (1..1000) after which SQS moves a message there
//
// FIFO queues (".fifo"): MessageGroupId and MessageDeduplicationId come
// from the publish properties of the same names (PublishOptions.Properties),
// else "default" and a random id, as kombu does; they also stay in the
// envelope. Properties DelaySeconds (0..900, standard queues only) and
// MessageAttributes (a map of strings and numbers, sent as SQS message
// attributes and left out of the envelope) are read too; received message
// attributes appear as the MessageAttributes property.
//
// Not supported: priorities, per-message TTL (the expiry is not in
// kombu's envelope), queue length limits, headers exchanges across
// connections. A message is at most 1 MiB as sent: bodies up to 512 KiB
// (Features.MaxBodySize) fit with kombu's double base64; larger publishes
// fail with ErrInvalidArgument. The emulator used by the tests (fauxqs)
// is more lenient than AWS in places (it accepts any queue name, lets a
// deleted name be reused at once).
//
// # Undecodable messages
//
// A message whose body is not a kombu envelope (another client's
// SendMessage) is never dropped: the consumer gets it as an undecodable
// delivery (driver.Delivery.DecodeError, raw body), and a reject or no-ack
// moves it to the queue "<queue>.quarantine" (SQS name translated as
// usual) unless the queue has an x-dead-letter-exchange.
//
// # Without the registry
//
//	o, err := sqs.ParseURL(u)
//	conn := kombu.NewConnectionFromConnector(sqs.NewConnector(o), nil)
//
// # As
//
// Connection.As and Channel.As give the SDK client:
//
//	var c *awssqs.Client
//	if conn.As(&c) { ... }
package sqs
