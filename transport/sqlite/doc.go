// Package sqlite is the SQLite transport: a durable broker in one file,
// with no server to run, on Python kombu's SQLAlchemy tables (kombu_queue,
// kombu_message), so that Python kombu with sqla+sqlite:/// shares its
// queues. It uses modernc.org/sqlite (no cgo).
//
// Import it for its side effect:
//
//	import _ "github.com/kombu-go/kombu/transport/sqlite"
//	conn, err := kombu.Dial(ctx, "sqlite:////var/lib/app/queue.db", nil)
//
// # URLs
//
//	sqlite:///relative/path.db       relative to the working directory (SQLAlchemy's rule)
//	sqlite:////absolute/path.db      absolute
//	sqla+sqlite:///..., sqlalchemy+sqlite:///...   Python kombu's forms, same paths
//
// The file is created when missing. sqlite:// without a path (SQLAlchemy's
// in-memory database) is refused: use memory://.
//
// # Options
//
//	queue_tablename=kombu_queue, message_tablename=kombu_message   as in Python kombu
//	visibility_timeout=3600   seconds a claimed message stays invisible unless acked (>= 1 s)
//	polling_interval=0.1      pause between looks at empty queues for other processes' writes
//	busy_timeout=10           how long a writer waits for another's lock before failing
//	synchronous=normal        normal: a commit survives a crash of the process; full: an fsync
//	                          per commit, so it also survives a crash of the machine
//	max_connections=4         database/sql pool size of one connection
//
// # Semantics
//
// The schema, leases, acks, requeues, priorities, TTL, bindings and
// quarantine are those of transport/postgres (see its documentation); the
// tables are created as SQLAlchemy creates them for SQLite, then completed
// with our columns, indexes and tables.
//
// Several processes may use one file: the database runs in WAL mode, so
// readers never wait; writers take turns (busy_timeout). A claim is one
// UPDATE ... RETURNING statement, atomic because SQLite has one writer at
// a time: concurrent consumers never get the same row, but their claims
// are serialised with every publish. Pending acks (see transport/postgres)
// are deleted in the transaction of the next claim, so that claim and acks
// cost one commit. A consumer first looks with a read
// (no lock) and claims only when a row is ready, so idle consumers do not
// take the write lock. Publishes of the same process wake its consumers
// at once; another process's publish is seen at the next poll.
//
// # As
//
// kombu.Connection.As and kombu.Channel.As hand out the *sql.DB beneath a
// connection.
package sqlite
