// Package redis is the Redis transport: kombu's virtual transport on
// Redis lists, wire-compatible with Python kombu 5.x's redis transport, so
// that Go and Python (kombu, Celery) producers and consumers share queues.
//
// Import it for its side effect:
//
//	import _ "github.com/kombu-go/kombu/transport/redis"
//	conn, err := kombu.Dial(ctx, "redis://localhost:6379/0", nil)
//
// It needs Redis 6.2 or later (RPOP with a count, Lua scripting).
//
// # URLs
//
//	redis://[[user]:password@]host[:port][/db][?options]
//	rediss://[[user]:password@]host[:port][/db][?options]    TLS
//	sentinel://[[user]:password@]host[:port][/db]?master_name=NAME[&options]
//
// The path is the database number (default 0). The default port is 6379,
// and 26379 for sentinel://, whose host is a sentinel: the client asks it
// for the master of master_name and follows failovers. For several
// sentinels, give a failover list of sentinel URLs, each with master_name
// ("sentinel://s1:26379/0?master_name=m;sentinel://s2:26379/0?master_name=m").
//
// # Options
//
// Durations are seconds as in kombu ("30", "0.5") or Go durations ("1m").
// Unknown options are errors.
//
//	visibility_timeout=3600      seconds an unacked delivery stays with its consumer before any
//	                             consumer's restore sweep returns it to its queue (>= 1 s)
//	polling_interval=0.05        longest pause between polls of empty queues (see below)
//	fanout_prefix=true           true: fanout channels start with "/{db}."; false: no prefix;
//	                             any other string: that prefix, {db} replaced by the database
//	fanout_patterns=true         fanout routing keys are part of the channel name
//	global_keyprefix=            prepended to every key and pub/sub channel
//	priority_steps=0,3,6,9       the priority lists (see below)
//	binding_cache_ttl=1          how long a publisher reuses a binding table (0: read it every publish)
//	socket_timeout, socket_connect_timeout   read/write and dial timeouts (go-redis defaults: 3 s, 5 s)
//	max_connections              connection pool size (go-redis default: 10 per CPU)
//	health_check_interval=25     ping interval of the pub/sub connection (0: off)
//	unacked_key=unacked, unacked_index_key=unacked_index, unacked_mutex_key=unacked_mutex
//	unacked_mutex_expire=300     lifetime of the restore mutex
//	unacked_restore_limit=0      most deliveries restored per sweep (0: all)
//	master_name, sentinel_password          sentinel:// only
//	ssl=true                     TLS on redis:// or sentinel:// (rediss:// implies it)
//	ssl_ca_certs=FILE            PEM file of the CAs that sign the server's certificate
//	ssl_certfile=FILE, ssl_keyfile=FILE     client certificate
//	ssl_cert_reqs=required       required | optional | none (also CERT_REQUIRED, ...)
//	ssl_check_hostname=true      false: verify the chain but not the host name
//	ssl_server_hostname=H        name sent (SNI) and verified instead of the URL's host
//	insecure=false               true: do not verify the server at all (as ssl_cert_reqs=none)
//
// These TLS options are read by transport.Query.TLS and mean the same on
// every scheme; any of them turns TLS on.
//
// TLS always verifies the server's certificate and host name, with the
// system roots or ssl_ca_certs, and requires TLS 1.2 or later. Unlike
// Python kombu, which turns verification off for rediss:// without
// options, only ssl_cert_reqs=none or insecure=true turns it off.
//
// # Wire format
//
// Exactly Python kombu's (see the project's kombu-wire-format reference):
//
//   - a queue is the list <queue> (priority step 0) and <queue>\x06\x16<step>
//     for the other steps; publishers LPUSH the JSON envelope, consumers
//     take from the right, so lists are FIFO; priority 0-2 go to the base
//     list, 3-5 to \x06\x163 and so on, and the lower step is served first
//     (the reverse of AMQP);
//   - bindings are the set _kombu.binding.<exchange>, members
//     "<routing key>\x06\x16<pattern>\x06\x16<queue>" with kombu's topic
//     regex as pattern, byte-identical to Python's;
//   - fanout exchanges PUBLISH to /<db>.<exchange>[/<routing key>], and
//     consumers PSUBSCRIBE to the same with "#" read as "*";
//   - a consumer records each delivery as unacked: HSET unacked <delivery
//     tag> "[<envelope>, <exchange>, <routing key>]" and ZADD unacked_index
//     <time received> <delivery tag>; an ack deletes both;
//   - every consumer restores deliveries older than visibility_timeout:
//     SET unacked_mutex NX PX, ZREVRANGEBYSCORE unacked_index, then each
//     delivery goes back to the front of its queue (RPUSH) with
//     headers.redelivered and delivery_info.redelivered set, and the mutex
//     is released with a compare-and-delete;
//   - global_keyprefix prefixes every key and channel.
//
// So a Python worker's restore brings back the messages of a Go consumer
// that died, and the reverse. kombu-go adds one hash, unacked_queue
// (<unacked_key>_queue), that maps a delivery tag to the queue it came from
// when its record does not name that queue (the exchange is not "" or the
// routing key is not the queue: one envelope can reach several queues), so
// that restores put every message back into exactly the queue it left;
// and a poison list per queue (see Store.Quarantine). Python ignores both.
// A queue exists as Python kombu decides (one of its lists exists: it holds
// messages), or while a binding row that names it is in redis (see
// Store.QueueExists), so that a delete made by either language is seen by
// both. (Earlier versions kept a set _kombu_go.queues of declared queues
// that outlived such deletes; it is no longer read or written, and can be
// deleted.) Once a consumer takes batches of 8 or more,
// unacked_index (and unacked_queue, once it records 8 in a take) also hold
// one member named "kombu-go.anchor: ..." with score +inf: it keeps redis
// from storing them in its compact listpack encoding, where every insert and
// delete scans the whole set (20% of the server's time per message at
// prefetch 100). No restore, Python's included, looks at a score of +inf.
//
// # Message delivery semantics
//
// Taking a message and recording it as unacked is one atomic step (a Lua
// script), so no crash can lose a message between them, as it can with
// Python kombu's BRPOP followed by a separate ZADD/HSET. A consumer
// process that dies with unacked messages gets them redelivered, marked
// redelivered, once visibility_timeout has passed: any consumer of the
// database runs the restore sweep, every visibility_timeout/10 (between
// 0.2 s and 10 s). A handler that runs longer than the visibility timeout
// extends its lease (LeaseExtender) instead of being delivered twice.
//
// A delivery's unacked_index score (kombu's "delivered at" time, in
// microseconds) is also its identity: each consumer gives its deliveries
// strictly increasing scores and remembers them, and acks, requeues and
// lease extensions act only when the entry still has a score this delivery
// gave it. So a late ack of a delivery that was already restored and
// delivered again leaves the new delivery alone (Python kombu's ack would
// delete it).
// Envelopes that several queues share a delivery tag for (kombu routes one
// envelope to every matching queue) are recorded under distinct tags.
//
// Acks are not confirmed, as AMQP's basic.ack is not: an ack travels with
// the consumer's next fetch, or on its own within 2 ms, and always before
// Close returns. If the process dies in between, the message is delivered
// again after the visibility timeout. Reject with requeue, Recover and
// Close put unacked messages back at the front of their queue (the list of
// their priority), marked redelivered as kombu's restore marks them
// (headers.redelivered and properties.delivery_info.redelivered). Recover
// and Close hand all of a channel's unacked messages back in one script
// (Store.RequeueBatch, one round trip per 1000), which pushes the last one
// delivered first, so that they come back in the order they were
// delivered, as on RabbitMQ. (Python kombu's restore_unacked pushes them
// one at a time in delivery order, which reverses them.)
//
// A value in a queue that is not a kombu envelope is never dropped: it
// reaches the consumer's decode error path (driver.Delivery.DecodeError,
// kombu's OnDecodeError) with its raw bytes, and a reject moves it to the
// queue's poison list "_kombu_go.poison.<queue>" (see Store.Quarantine),
// or to the queue's dead-letter exchange when it has one.
//
// Redis has no command that blocks on several lists and moves the element
// atomically, so an idle consumer polls: after an empty poll it pauses
// 0.5 ms, doubling up to polling_interval, and a publish or broadcast made
// by the same process wakes it at once. Busy queues are never paused on.
//
// Fanout is pub/sub, as in kombu: at most once, and only to queues whose
// binding is live (subscribed) when the message is published. Broadcasts
// wait in process until the queue's consumer fetches them, up to 10000 per
// queue; more are dropped (Store.FanoutDropped counts them). Exchange
// declarations live in each connection, as in Python kombu: a connection
// that publishes to an exchange it did not declare routes it as direct.
//
// Publishers read an exchange's binding table with SMEMBERS and reuse it
// for binding_cache_ttl; every connection of the process on the same
// database drops it at once when one of them binds or unbinds, and an
// empty table is never reused, so a binding made by another process is
// seen within binding_cache_ttl at worst.
//
// # Names
//
// Queue, exchange and routing-key names must not contain the bytes \x06
// or \x16 (kombu's separator), queues cannot be named after the
// transport's own keys (unacked, unacked_index, unacked_mutex,
// unacked_queue, _kombu.binding.*), and fanout exchange names must not
// contain "/" or glob characters (* ? [ ] \), nor fanout binding keys ? [ ]
// or \. Such names fail with driver.ErrInvalidArgument.
//
// # Errors
//
// A server that cannot be reached when dialling gives an error wrapping
// driver.ErrConnectionLost, and refused credentials one wrapping
// driver.ErrAccessRefused. go-redis never sends a command twice (its
// retries are off: a command whose reply was lost may have run). A
// failed connection, a socket timeout or a LOADING, BUSY, MASTERDOWN,
// READONLY or TRYAGAIN reply wrap driver.ErrConnectionLost, except for a
// publish (LPUSH, PUBLISH) that may have reached redis: that one wraps
// driver.ErrUnconfirmed, which kombu never retries, so a publish is stored
// at most once. A fetch whose reply was lost is undone as soon as redis
// answers (what it moved to unacked goes back to the front of its queue;
// see takeScript's score) and tried again, at most twice. Other error
// replies are wrapped with the operation ("redis take: ..."), context
// errors are returned as they are, and errors after Close wrap
// driver.ErrClosed.
//
// # Logs
//
// go-redis logs through one process-wide logger, to stderr by default. The
// first dial replaces it: each line goes to the Logger of every open
// connection that has one (kombu's Options.Logger, through
// Connector.SetLogger), and nowhere when none has.
//
// # Without the registry
//
// ParseURL turns a URL into typed Options, and NewConnector(opts) returns a
// driver.Connector that kombu.NewConnectionFromConnector takes as it is
// (see ExampleNewConnector); Connector.Dial returns the *Store itself for
// store-level use.
//
// # As
//
// kombu.Connection.As and kombu.Channel.As reach the go-redis client
// (github.com/redis/go-redis/v9) beneath them: pass a **redis.Client or a
// *redis.UniversalClient (see ExampleStore_As). The client belongs to the
// connection: do not close it. Store.Client returns the same client.
package redis
