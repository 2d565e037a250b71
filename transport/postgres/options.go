package postgres

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kombu-go/kombu/internal/sqlstore"
	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
)

// Defaults of the transport options.
const (
	DefaultPort = 5432
	// DefaultVisibilityTimeout is Python kombu's visibility timeout of its
	// other lease-based transports (redis, SQS).
	DefaultVisibilityTimeout = time.Hour
	// DefaultPollingInterval is how often empty queues are looked at while
	// the LISTEN connection is down (never otherwise).
	DefaultPollingInterval = time.Second
	DefaultMaxConnections  = 10
)

// libpqOptions are the connection parameters handed to pgx as they are
// (libpq's names, as SQLAlchemy and psycopg2 URLs carry them).
var libpqOptions = []string{
	"sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "sslsni",
	"connect_timeout", "application_name", "search_path", "target_session_attrs",
	"options", "passfile", "service", "servicefile", "statement_cache_capacity",
	"default_query_exec_mode", "krbsrvname", "krbspn",
}

// Options are the parsed options of one PostgreSQL URL.
type Options struct {
	// Config is pgx's connection configuration (host, port, database,
	// user, password, TLS), parsed from the URL without the kombu options.
	Config *pgx.ConnConfig
	// QueueTable and MessageTable are Python kombu's queue_tablename and
	// message_tablename.
	QueueTable, MessageTable string
	// VisibilityTimeout: how long a claimed message stays invisible unless
	// acked or its lease extended (visibility_timeout, seconds).
	VisibilityTimeout time.Duration
	// PollingInterval: pause between looks at empty queues while the
	// LISTEN connection is down (polling_interval, seconds).
	PollingInterval time.Duration
	// MaxConnections bounds the pool of one connection (max_connections).
	MaxConnections int
}

// Tables returns the tables the options name.
func (o *Options) Tables() sqlstore.Tables { return sqlstore.TablesFor(o.QueueTable, o.MessageTable) }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: postgres: %s", driver.ErrInvalidURL, fmt.Sprintf(format, args...))
}

// ParseURL parses a postgres://, postgresql://, sqla+postgresql://,
// sqlalchemy+postgresql:// or sqla+postgresql+psycopg2:// URL (see the
// package documentation). It does no I/O beyond what pgx's parser does
// (reading a passfile or TLS files the URL names). Errors wrap
// driver.ErrInvalidURL and never contain the password.
func ParseURL(u *url.URL) (*Options, error) {
	if u == nil {
		return nil, invalid("nil URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "postgres", "postgresql", "sqla+postgresql", "sqlalchemy+postgresql", "sqla+postgresql+psycopg2", "sqlalchemy+postgresql+psycopg2":
	default:
		return nil, invalid("unsupported scheme %q", u.Scheme)
	}
	if u.Opaque != "" {
		return nil, invalid("the URL must have the form postgres://host/database")
	}
	o := &Options{
		QueueTable:        "kombu_queue",
		MessageTable:      "kombu_message",
		VisibilityTimeout: DefaultVisibilityTimeout,
		PollingInterval:   DefaultPollingInterval,
		MaxConnections:    DefaultMaxConnections,
	}
	q, err := transport.NewQuery(u)
	if err != nil {
		return nil, err
	}
	q.SetTransport("postgres")
	q.String("queue_tablename", &o.QueueTable)
	q.String("message_tablename", &o.MessageTable)
	q.Duration("visibility_timeout", &o.VisibilityTimeout)
	q.Duration("polling_interval", &o.PollingInterval)
	q.IntRange("max_connections", &o.MaxConnections, 2, 1000)
	pass := url.Values{}
	for _, k := range libpqOptions {
		if !q.Has(k) {
			continue
		}
		var v string
		q.String(k, &v)
		pass.Set(k, v)
	}
	host := u.Hostname()
	tlsConf := q.TLS(false, host)
	if err := q.Err(); err != nil {
		return nil, err
	}
	for _, t := range []struct{ opt, name string }{{"queue_tablename", o.QueueTable}, {"message_tablename", o.MessageTable}} {
		if err := sqlstore.ValidateTableName(t.opt, t.name); err != nil {
			return nil, invalid("%v", err)
		}
	}
	if o.PollingInterval <= 0 {
		return nil, invalid("option polling_interval must be positive")
	}
	if o.VisibilityTimeout < time.Second {
		return nil, invalid("option visibility_timeout must be at least 1 second")
	}
	if tlsConf != nil && pass.Has("sslmode") {
		return nil, invalid("give TLS either as libpq's sslmode options or as kombu's ssl options, not both")
	}
	if host == "" {
		host = "127.0.0.1"
	}
	pu := url.URL{Scheme: "postgres", User: u.User, Host: host, Path: u.Path, RawQuery: pass.Encode()}
	if p := u.Port(); p != "" {
		pu.Host = host + ":" + p
	}
	if strings.Contains(host, ":") { // IPv6
		pu.Host = "[" + host + "]"
		if p := u.Port(); p != "" {
			pu.Host += ":" + p
		}
	}
	if tlsConf == nil && !pass.Has("sslmode") {
		// libpq's default "prefer" tries TLS first; a server without TLS
		// then costs a refused handshake on every dial.
		pass.Set("sslmode", "prefer")
		pu.RawQuery = pass.Encode()
	}
	cfg, err := pgx.ParseConfig(pu.String())
	if err != nil {
		return nil, invalid("%s", redactPassword(err.Error(), u))
	}
	if tlsConf != nil {
		cfg.TLSConfig = tlsConf
		cfg.Fallbacks = nil
	}
	o.Config = cfg
	return o, nil
}

func redactPassword(s string, u *url.URL) string {
	if u.User == nil {
		return s
	}
	if p, ok := u.User.Password(); ok && p != "" {
		s = strings.ReplaceAll(s, p, "xxxxx")
	}
	return s
}
