// Package mongodb is the MongoDB transport: kombu's virtual transport on
// MongoDB collections, wire-compatible with Python kombu 5.x's mongodb
// transport (same database, collections and documents), on the official
// driver go.mongodb.org/mongo-driver/v2.
//
// Import it for its side effect:
//
//	import _ "github.com/kombu-go/kombu/transport/mongodb"
//	conn, err := kombu.Dial(ctx, "mongodb://localhost:27017/kombu_default", nil)
//
// It is tested on FerretDB 1.24 (SQLite backend), a MongoDB-compatible
// server, and written for MongoDB itself: it needs no transaction, no
// atomic findAndModify and no change stream.
//
// # URLs
//
//	mongodb://[user:password@]host[:port][,host2...][/database][?options]
//	mongodb+srv://[user:password@]host[/database][?options]
//
// The database holds kombu's collections: the path, else default_database,
// else "kombu_default" (Python kombu's rule). The host defaults to
// 127.0.0.1 and the port to 27017. Every option that is not one of
// kombu's below goes to the driver unchanged (authSource, replicaSet, tls,
// tlsCAFile, maxPoolSize, w, ...); an option neither knows is an error.
//
// # Options
//
// Durations are seconds as in kombu ("30", "0.5") or Go durations ("1m").
//
//	default_database=kombu_default   database when the URL has no path
//	messages_collection=messages, routing_collection=messages.routing,
//	broadcast_collection=messages.broadcast, queues_collection=messages.queues
//	                                 Python kombu's collections
//	unacked_collection=messages.unacked       leased deliveries (kombu-go only)
//	quarantine_collection=messages.quarantine undecodable documents (kombu-go only)
//	ttl=false                 write expire_at on messages, bindings and queues and ask for
//	                          TTL indexes, as Python kombu's ttl option
//	capped_queue_size=100000  bytes of the broadcast capped collection (created once)
//	calc_queue_size=true      false: queue sizes are reported as 0 without counting
//	visibility_timeout=1800   seconds a delivery stays leased before any consumer puts it back (>= 1)
//	polling_interval=0.1      longest pause between two polls of empty queues
//	connect_timeout           dial and server selection timeout (driver default: 30 s)
//	ssl, ssl_ca_certs, ssl_certfile, ssl_keyfile, ssl_cert_reqs, ssl_check_hostname,
//	ssl_server_hostname, insecure   kombu's TLS options (transport.Query.TLS)
//
// # Wire format
//
// A queue is the set of documents {_id, queue, payload, priority,
// [expire_at]} of the messages collection with that queue name. payload is
// the kombu JSON envelope as a string; priority is 9 minus the message
// priority (0..9), and consumers take the smallest (priority, _id) first:
// higher priorities first, FIFO within one (Python kombu relies on the
// index order for FIFO; this transport sorts on _id explicitly). Bindings
// are documents {exchange, queue, routing_key, pattern} of the routing
// collection (pattern: kombu's topic regex, else null), read by every
// publisher, Go or Python. A fanout publish is one document {payload,
// queue: EXCHANGE} in the broadcast capped collection, read by each bound
// queue through a tailable cursor opened at bind time (see Fanout).
//
// # Message delivery semantics
//
// Python kombu deletes a message when it receives it, so a consumer that
// crashes loses what it held. Here a message is leased instead: receiving
// moves its document from messages to the unacked collection, with the
// same _id and a lease_until (now + visibility_timeout); ack deletes the
// lease; reject with requeue, a closing channel and a crashed consumer's
// expired lease (any consumer sweeps them about once a second) move it
// back to messages, marked redelivered in its payload, at its old place in
// its queue. A message is therefore always in messages, in unacked, or
// (for an instant, or after a crash between the two steps) in both: never
// lost. Python consumers see only messages, so a leased message is
// invisible to them, as it is to other Go consumers.
//
// Each move inserts the document at its destination first, then deletes it
// at its source. The insert is what makes a claim atomic: _id is unique,
// so of several consumers racing for a message exactly one insert
// succeeds. It does not rely on findAndModify or a conditional update:
// FerretDB runs both as a read followed by a write by _id, so two
// consumers both "win" (measured with 4 consumers: conditional updates
// succeeded 303 times for 300 documents; the unique insert exactly 300).
// A lease whose ready copy is already gone when its consumer deletes it
// (taken and acked by another consumer meanwhile, or by Python) is dropped
// and not delivered. Acks name the lease's token, so a late ack cannot
// delete a later consumer's lease of the same message.
//
// Round trips per message, measured (docs/benchmarks.md): 4 one at a
// time (publish insert; lease insert; ready delete; ack delete; the
// sorted find is shared by many messages), 3 in batches of 100 (the
// publishes go in one insertMany). Each claim names one _id, the only
// filter FerretDB runs without reading the collection, and only a delete
// by _id says exactly which ready copy this consumer took. Python kombu's
// protocol takes 2 (insert, findAndModify) and keeps no lease.
//
// ExtendLease moves lease_until. A message whose consumer is slower than
// visibility_timeout is delivered again; keep it above the longest
// handler (and above the redelivery policy's MaxBackoff).
//
// # TTL and expiry
//
// Queue x-message-ttl and message expiration become the document's
// expire_at (Python kombu's field); a consumer drops (or dead-letters)
// an expired message when it takes it, on any server. With ttl=true the
// transport also creates Python kombu's TTL indexes so that the server
// deletes expired messages, bindings and queue documents that nobody
// reads, and writes x-expires as expire_at on the queue's documents.
// FerretDB has no TTL indexes (NotImplemented, ignored): there only the
// consumer-side expiry applies.
//
// # Fanout
//
// As in Python kombu, broadcasts are held by the process that bound the
// queue (the tailable cursor lives in the connection's Store): a queue
// whose consumers are away misses them (no Features.DurableFanout), and
// a broadcast is acked in process only; a requeued one becomes an
// ordinary message of its queue. FerretDB serves tailable cursors only
// with batch size 1, which this transport uses; a cursor the server
// closes is reopened after the last _id read (which may skip a document
// another process inserted with a smaller ObjectID in the same second).
//
// # FerretDB
//
// FerretDB (SQLite) filters and sorts in its own process: every find but
// one by _id reads the whole collection, so a receive costs O(messages in
// the database). Consumers therefore claim from the candidates of one
// sorted read for up to a second: messages this process puts after them
// are appended, one that sorts before their end (a higher priority) makes
// the list stale, and an empty list that held the whole queue is read
// again once per polling interval, so messages other processes put are
// seen within it, or within the second when they sort before the list's
// end. A consumer that meets another's lease jumps ahead in its list, so
// consumers of one queue spread over it. Its throughput figures in
// docs/benchmarks.md describe that server, not MongoDB.
//
// # Errors
//
// Failures to reach the server wrap driver.ErrConnectionLost; a publish
// whose outcome is unknown (the connection failed after sending) wraps
// driver.ErrUnconfirmed and is never retried by kombu. Undecodable
// documents in a queue (no payload, not a string, not a kombu envelope)
// are delivered with a decode error, never dropped; rejected without a
// dead-letter exchange, they move to the quarantine collection with the
// reason.
//
// # Without the registry
//
// ParseURL returns typed Options; NewConnector(opts) is a driver.Connector:
//
//	conn := kombu.NewConnectionFromConnector(mongodb.NewConnector(opts), nil)
//
// # As
//
// Connection.As and Channel.As hand out the driver beneath: a
// **mongo.Client or a **mongo.Database (see Store.As).
package mongodb
