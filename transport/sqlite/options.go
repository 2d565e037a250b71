package sqlite

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/kombu-go/kombu/internal/sqlstore"
	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
)

// Defaults of the transport options.
const (
	// DefaultVisibilityTimeout is Python kombu's visibility timeout of its
	// lease-based transports (redis, SQS).
	DefaultVisibilityTimeout = time.Hour
	// DefaultPollingInterval is how often an empty queue is looked at for
	// messages written by other processes (one read, no write lock).
	// Writers of this process wake its consumers at once.
	DefaultPollingInterval = 100 * time.Millisecond
	// DefaultBusyTimeout is how long a statement waits for another
	// connection's write lock before it fails with SQLITE_BUSY.
	DefaultBusyTimeout = 10 * time.Second
)

// Options are the parsed options of one SQLite URL.
type Options struct {
	// Path is the database file (absolute after ParseURL).
	Path string
	// QueueTable and MessageTable are Python kombu's queue_tablename and
	// message_tablename.
	QueueTable, MessageTable string
	// VisibilityTimeout: how long a claimed message stays invisible unless
	// acked or its lease extended (visibility_timeout, seconds).
	VisibilityTimeout time.Duration
	// PollingInterval: pause between looks at empty queues
	// (polling_interval, seconds).
	PollingInterval time.Duration
	// BusyTimeout: SQLite's busy_timeout (busy_timeout, seconds).
	BusyTimeout time.Duration
	// Synchronous is SQLite's synchronous pragma in WAL mode: "normal"
	// (the default: a commit survives a crash of the process, not
	// necessarily of the machine) or "full" (fsync on every commit).
	Synchronous string
	// MaxConnections bounds the database/sql pool of one connection.
	MaxConnections int
}

// Tables returns the tables the options name.
func (o *Options) Tables() sqlstore.Tables { return sqlstore.TablesFor(o.QueueTable, o.MessageTable) }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: sqlite: %s", driver.ErrInvalidURL, fmt.Sprintf(format, args...))
}

// ParseURL parses a sqlite://, sqla+sqlite:// or sqlalchemy+sqlite:// URL.
// As in SQLAlchemy, sqlite:///rel/file.db names a path relative to the
// working directory and sqlite:////abs/file.db an absolute one. It does no
// I/O but resolving the path against the working directory. Errors wrap
// driver.ErrInvalidURL.
func ParseURL(u *url.URL) (*Options, error) {
	if u == nil {
		return nil, invalid("nil URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "sqlite", "sqla+sqlite", "sqlalchemy+sqlite":
	default:
		return nil, invalid("unsupported scheme %q", u.Scheme)
	}
	if u.Opaque != "" || u.Host != "" || u.User != nil {
		return nil, invalid("the URL names a file, not a host: sqlite:///relative/file.db or sqlite:////absolute/file.db")
	}
	p := strings.TrimPrefix(u.Path, "/")
	if p == "" || strings.HasSuffix(p, "/") || p == ":memory:" {
		return nil, invalid("the URL must name a database file (sqlite:///file.db); for an in-process broker use memory://")
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, invalid("path %q: %v", p, err)
	}
	o := &Options{
		Path:              abs,
		QueueTable:        "kombu_queue",
		MessageTable:      "kombu_message",
		VisibilityTimeout: DefaultVisibilityTimeout,
		PollingInterval:   DefaultPollingInterval,
		BusyTimeout:       DefaultBusyTimeout,
		Synchronous:       "normal",
		MaxConnections:    4,
	}
	q, err := transport.NewQuery(u)
	if err != nil {
		return nil, err
	}
	q.SetTransport("sqlite")
	q.String("queue_tablename", &o.QueueTable)
	q.String("message_tablename", &o.MessageTable)
	q.Duration("visibility_timeout", &o.VisibilityTimeout)
	q.Duration("polling_interval", &o.PollingInterval)
	q.Duration("busy_timeout", &o.BusyTimeout)
	q.String("synchronous", &o.Synchronous)
	q.IntRange("max_connections", &o.MaxConnections, 1, 64)
	if err := q.Err(); err != nil {
		return nil, err
	}
	for _, t := range []struct{ opt, name string }{{"queue_tablename", o.QueueTable}, {"message_tablename", o.MessageTable}} {
		if err := sqlstore.ValidateTableName(t.opt, t.name); err != nil {
			return nil, invalid("%v", err)
		}
	}
	o.Synchronous = strings.ToLower(o.Synchronous)
	if o.Synchronous != "normal" && o.Synchronous != "full" {
		return nil, invalid("option synchronous must be normal or full, got %q", o.Synchronous)
	}
	if o.PollingInterval <= 0 {
		return nil, invalid("option polling_interval must be positive")
	}
	if o.VisibilityTimeout < time.Second {
		return nil, invalid("option visibility_timeout must be at least 1 second")
	}
	return o, nil
}

// dsn is modernc.org/sqlite's data source name for o: WAL, so readers
// never wait for the writer; a busy timeout, so writers of several
// processes queue instead of failing; BEGIN IMMEDIATE for transactions,
// so they take the write lock first and never fail to upgrade.
func (o *Options) dsn() string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(o.Path)
	return "file:" + esc + fmt.Sprintf("?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(%s)&_txlock=immediate",
		o.BusyTimeout.Milliseconds(), strings.ToUpper(o.Synchronous))
}
