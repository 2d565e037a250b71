// Package couchdb is the CouchDB transport (couchdb://, couchdbs://), built
// on package virtual over github.com/go-kivik/kivik/v4 and its couchdb
// driver. It is tested against npm pouchdb-server 4.2.0, "a drop-in
// replacement for CouchDB"; Python kombu dropped its couchdb transport in
// 4.0.
//
//	import _ "github.com/kombu-go/kombu/transport/couchdb"
//	conn, err := kombu.Dial(ctx, "couchdb://user:secret@localhost:5984/kombu_default", nil)
//
// # URLs
//
//	couchdb://[USER:PASSWORD@]HOST[:PORT][/DATABASE][?OPTIONS]   HTTP, port 5984
//	couchdbs://...                                              HTTPS (or ssl=true)
//
// DATABASE holds every message, queue record and binding of the
// connection (default kombu_default, Python kombu 3's name); it is created
// when missing. Credentials go as HTTP basic auth. Options:
//
//	visibility_timeout  seconds a claimed message stays invisible to other
//	                    consumers (default 3600, at least 1)
//	polling_interval    longest pause of a waiting consumer between two
//	                    looks at its queues when the _changes feed reports
//	                    nothing, which is how it notices an expired claim
//	                    (default 1, at least 0.01)
//	ssl, ssl_cert_reqs, insecure, ssl_ca_certs, ssl_certfile, ssl_keyfile,
//	ssl_check_hostname, ssl_server_hostname   TLS, as on every scheme
//
// Without the registry, ParseURL and NewConnector give a Connector for
// kombu.NewConnectionFromConnector (see ExampleNewConnector).
//
// # Documents
//
// Each message is one document {"kombu": "message", "queue": Q,
// "priority": 0-9, "payload": ENVELOPE, "lease": 0, ...}: payload is
// Python kombu's JSON envelope as a string (the field names of kombu 3's
// couchdb transport; an object is read too). The id is
// "m:QUEUE:D:TIME" with QUEUE %-escaped outside [A-Za-z0-9._-] and D = 9
// minus the priority, so _all_docs lists a queue highest priority first,
// then in publish order, with no view to keep up to date (pouchdb-server
// indexes a view at query time, about 1.5 ms per changed document: claiming
// through one ran batched consumers at a quarter of the speed; see
// docs/benchmarks.md). Queues are records "q:QUEUE"; bindings are
// documents "b:EXCHANGE:HASH" holding exchange, routing_key, pattern (kombu's
// topic regex) and queue, shared by every connection to the database, and
// read at each publish to route it (direct, topic and fanout exchanges;
// Features.Headers is false: headers bindings are not kept in the
// database).
//
// # Semantics
//
// A consumer reads the head of a queue from _all_docs and claims what it
// read by writing a lease (the end of its claim, unix ms) into each
// document with the revision it read, in one _bulk_docs request: CouchDB's
// MVCC refuses the write of every other consumer that read the same
// revision (409), so no message goes to two consumers at once. Documents
// under a live lease are skipped. An ack deletes the document: the
// deletion rides with the consumer's next claim, or is written on its own
// 20 ms later, or at Close (as AMQP's basic.ack, it is not waited for; a
// crash in between redelivers the message, never loses it). A requeue
// (reject with requeue, a closed channel, a closed connection) writes the
// document back without a lease and marked redelivered, in its old place.
// The claim is a lease: ExtendLease moves its end; once it has passed (the
// consumer crashed or hung), the next consumer to read the queue claims
// the message again, marked redelivered. An ack after the lease was lost
// does nothing: the message is with its new consumer. Size and Purge read
// the queue's documents, so their cost grows with the queue.
//
// Consumers wait on the database's _changes feed (longpoll: pouchdb-server
// ignores the feed's timeout parameter, so each request has a client
// deadline, and the continuous feed delivers nothing through kivik), which
// tells them which queue's documents changed, instead of polling; it runs
// only while a consumer waits. polling_interval is the safety net, and how
// a waiting consumer notices an expired claim (which changes no document). Message TTL (per-message expiration
// and x-message-ttl) travels in the document's "expires". Undecodable
// documents reach the consumer's decode error path; one that is settled
// without a dead-letter exchange is set aside, never deleted: "kombu"
// becomes "quarantined" with the reason.
//
// On pouchdb-server, destroy a database only after its consumers are gone
// (and a second more): the server crashes when a database is destroyed
// while it works on a longpoll _changes request of it.
//
// # As
//
// kombu.Connection.As and kombu.Channel.As hand out the **kivik.Client or
// the **kivik.DB beneath (see ExampleStore_As). They belong to the
// connection: do not close them.
package couchdb
