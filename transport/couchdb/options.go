package couchdb

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
)

// Defaults of the transport options.
const (
	DefaultPort = 5984
	// DefaultDatabase is the database of a URL without a path, the name
	// Python kombu 3's couchdb transport used.
	DefaultDatabase = "kombu_default"
	// DefaultVisibilityTimeout is how long a claimed message stays
	// invisible before another consumer may take it again, as on redis.
	DefaultVisibilityTimeout = time.Hour
	// DefaultPollingInterval is the longest a waiting consumer goes
	// without looking at its queues when the _changes feed reports
	// nothing; it is also how often expired leases are looked for.
	DefaultPollingInterval = time.Second
)

// Options are the parsed URL and query options of one couchdb URL. The
// zero value is not usable; ParseURL fills in every default.
type Options struct {
	// Server is the base URL of the server: http://host:port or https://.
	Server   string
	Username string
	Password string
	// Database holds the messages, queues and bindings of the connection.
	Database string
	// TLS is nil for plain HTTP.
	TLS *tls.Config
	// VisibilityTimeout is the length of a claim (visibility_timeout,
	// seconds): an unacked message whose consumer vanished is delivered
	// again once it has passed.
	VisibilityTimeout time.Duration
	// PollingInterval bounds a consumer's wait between two looks at its
	// queues (polling_interval, seconds); the _changes feed wakes it
	// sooner when a message arrives.
	PollingInterval time.Duration
}

// couchDB's rule for database names.
var databaseName = regexp.MustCompile(`^[a-z][a-z0-9_$()+/-]*$`)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: couchdb: %s", driver.ErrInvalidURL, fmt.Sprintf(format, args...))
}

// ParseURL parses a couchdb:// or couchdbs:// URL:
// couchdb://[user:password@]host[:port][/database][?options]. It does no
// I/O except reading the files named by the TLS options. Errors wrap
// driver.ErrInvalidURL and never contain the password.
func ParseURL(u *url.URL) (*Options, error) {
	if u == nil {
		return nil, invalid("nil URL")
	}
	o := &Options{VisibilityTimeout: DefaultVisibilityTimeout, PollingInterval: DefaultPollingInterval}
	useTLS := false
	switch strings.ToLower(u.Scheme) {
	case "couchdb":
	case "couchdbs":
		useTLS = true
	default:
		return nil, invalid("unsupported scheme %q", u.Scheme)
	}
	if u.Opaque != "" {
		return nil, invalid("the URL must have the form scheme://host")
	}
	if u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	host := u.Hostname()
	if host == "" {
		host = "127.0.0.1"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			return nil, invalid("invalid port %q", p)
		}
	}
	o.Database = transport.VirtualHost(u)
	if o.Database == "" {
		o.Database = DefaultDatabase
	}
	if !databaseName.MatchString(o.Database) {
		return nil, invalid("database name %q: CouchDB wants a lowercase letter then [a-z0-9_$()+/-]", o.Database)
	}

	q, err := transport.NewQuery(u)
	if err != nil {
		return nil, err
	}
	q.SetTransport("couchdb")
	q.Duration("visibility_timeout", &o.VisibilityTimeout)
	q.Duration("polling_interval", &o.PollingInterval)
	o.TLS = q.TLS(useTLS, u.Hostname())
	if err := q.Err(); err != nil {
		return nil, err
	}
	if o.VisibilityTimeout < time.Second {
		return nil, invalid("option visibility_timeout must be at least 1 second")
	}
	if o.PollingInterval < 10*time.Millisecond {
		return nil, invalid("option polling_interval must be at least 10 ms")
	}
	scheme := "http"
	if o.TLS != nil {
		scheme = "https"
	}
	o.Server = scheme + "://" + net.JoinHostPort(host, strconv.Itoa(transport.Port(u, DefaultPort)))
	return o, nil
}
