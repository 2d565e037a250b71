// Package postgres is the PostgreSQL transport: kombu's virtual transport
// on Python kombu's SQLAlchemy tables (kombu_queue, kombu_message), so that
// Go and Python (kombu, Celery with sqla+postgresql://) share queues, with
// leases, deletes on ack, SKIP LOCKED claims and LISTEN/NOTIFY wake-ups that
// Python kombu does not have.
//
// Import it for its side effect:
//
//	import _ "github.com/kombu-go/kombu/transport/postgres"
//	conn, err := kombu.Dial(ctx, "postgres://user:pw@localhost/app", nil)
//
// # URLs
//
//	postgres://[user[:password]@]host[:port]/database[?options]
//	postgresql://...                      the same
//	sqla+postgresql://..., sqlalchemy+postgresql://...      Python kombu's forms
//	sqla+postgresql+psycopg2://...        SQLAlchemy's driver suffix is accepted and ignored
//
// The default host is 127.0.0.1 and the default port 5432.
//
// # Options
//
// Durations are seconds as in kombu ("30", "0.5") or Go durations ("1m").
// Unknown options are errors.
//
//	queue_tablename=kombu_queue     Python kombu's table of queues
//	message_tablename=kombu_message Python kombu's table of messages; our tables are named after it:
//	                                MESSAGE_binding (bindings), MESSAGE_quarantine (undecodable rows)
//	visibility_timeout=3600         seconds a claimed message stays invisible unless acked (>= 1 s)
//	polling_interval=1              pause between looks at empty queues while LISTEN is down
//	max_connections=10              database/sql pool size of one connection (>= 2)
//	sslmode, sslrootcert, sslcert, sslkey, connect_timeout, application_name, search_path,
//	target_session_attrs, options, ... libpq's parameters, handed to pgx as they are
//	ssl, ssl_ca_certs, ssl_certfile, ssl_keyfile, ssl_cert_reqs, ssl_check_hostname,
//	ssl_server_hostname, insecure   kombu's TLS options (transport.Query.TLS), instead of sslmode
//
// # Schema
//
// The first connection creates Python kombu's tables exactly as SQLAlchemy
// does (the sequences queue_id_sequence and message_id_sequence, the same
// columns, types and indexes) when they are missing, and then adds, without
// dropping or rewriting anything: the columns priority, expires_at,
// lease_until and delivery_count (nullable or with a default, so Python's
// inserts still work), the indexes ix_MESSAGE_ready and ix_MESSAGE_lease,
// the tables MESSAGE_binding and MESSAGE_quarantine, and two triggers that
// call pg_notify on inserts and on rows made visible again. Concurrent
// first connections serialise on an advisory lock.
//
// # Semantics
//
// A consumer claims up to its free prefetch window in one statement
// (SELECT ... ORDER BY priority DESC, id FOR UPDATE SKIP LOCKED inside an
// UPDATE): concurrent consumers never wait for each other or get the same
// row. A claimed row is invisible with a lease (lease_until) of
// visibility_timeout; ack deletes it; requeue replaces it at the back of
// its queue, marked redelivered; closing a channel requeues its unacked
// rows; a consumer that dies leaves rows whose lease expires, and any
// connection's periodic sweep makes them visible again (redelivered).
// Rows Python kombu received (visible = false, no lease) are never touched.
//
// Acks are not a round trip of their own: an ack is held by the
// connection and its DELETE travels in the statement of the connection's
// next claim (a DELETE in a WITH, before the UPDATE that claims), or is
// sent on its own 2 ms after the ack when no claim comes, and always before
// Close returns; many acks are one DELETE. The delete matches the row and
// the version its claim set, so a late ack of a delivery whose lease
// expired and that was claimed again deletes nothing. Like an AMQP
// basic.ack it is not confirmed: if the process dies before the ack is
// sent, or the delete fails, the row stays leased and is delivered again
// after visibility_timeout (never lost). Requeue, reject and ExtendLease of
// a delivery already acked behave as after the delete.
// Priorities 0..9 are served highest first; message TTL, dead-lettering,
// mandatory returns and lease extension work. Bindings live in the
// database, so every process routes with them; exchange declarations are
// per connection, as in Python kombu.
//
// An idle consumer sends nothing but a lease sweep (an UPDATE that finds
// no row) every visibility_timeout/4, at most every 30 s: it waits on its
// LISTEN connection, and a publish from any process (Python included,
// through the trigger) wakes it within milliseconds. While the LISTEN
// connection is down, it polls every polling_interval.
//
// Undecodable rows (payloads that are not kombu envelopes) reach the
// consumer's decode error path; a reject without requeue moves them to
// MESSAGE_quarantine with the reason, never deletes them.
//
// # Errors
//
// Network errors and a server shutting down or starting up wrap
// driver.ErrConnectionLost, so kombu reconnects.
//
// # As
//
// kombu.Connection.As and kombu.Channel.As hand out the *sql.DB (pgx's
// database/sql driver) beneath a connection.
package postgres
