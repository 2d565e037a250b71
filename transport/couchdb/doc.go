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
// when missing, with the design document _design/kombu_go. Credentials go
// as HTTP basic auth. Options:
//
//	visibility_timeout  seconds a claimed message stays invisible to other
//	                    consumers (default 3600, at least 1)
//	polling_interval    longest pause of a waiting consumer between two
//	                    looks at its queues when the _changes feed reports
//	                    nothing; also how often expired claims are looked
//	                    for (default 1, at least 0.01)
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
// "m:QUEUE:TIME" with QUEUE %-escaped outside [A-Za-z0-9._-], so ids of one
// queue sort in publish order. Queues are records "q:QUEUE"; bindings are
// documents "b:EXCHANGE:HASH" holding exchange, routing_key, pattern (kombu's
// topic regex) and queue, shared by every connection to the database, and
// read at each publish to route it (direct, topic and fanout exchanges;
// headers exchanges route from the declaring process's own table).
//
// # Semantics
//
// The view "ready" indexes unclaimed messages by [queue, 9-priority], so a
// consumer reads the head of a queue highest priority first and FIFO within
// a priority. It claims what it read by writing a lease (the end of its
// claim, unix ms) into each document with the revision the view indexed,
// in one _bulk_docs request: CouchDB's MVCC refuses the write of every
// other consumer that read the same revision (409), so no message goes to
// two consumers at once. An ack deletes the document; a requeue (reject
// with requeue, a closed channel, a closed connection) writes it back
// without a lease and marked redelivered, in its old place. The claim is a
// lease: ExtendLease moves its end; once it has passed (the consumer
// crashed or hung), any consumer of the database finds it in the view
// "leases" and puts it back, marked redelivered. An ack after the lease
// was lost does nothing: the message is with its new consumer.
//
// Consumers wait on the database's _changes feed (longpoll: pouchdb-server
// ignores the feed's timeout parameter, so each request has a client
// deadline, and the continuous feed delivers nothing through kivik), which
// tells them which queue's documents changed, instead of polling the view;
// polling_interval is the safety net. Message TTL (per-message expiration
// and x-message-ttl) travels in the document's "expires". Undecodable
// documents reach the consumer's decode error path; one that is settled
// without a dead-letter exchange is set aside, never deleted: "kombu"
// becomes "quarantined" with the reason.
//
// # As
//
// kombu.Connection.As and kombu.Channel.As hand out the **kivik.Client or
// the **kivik.DB beneath (see ExampleStore_As). They belong to the
// connection: do not close them.
package couchdb
