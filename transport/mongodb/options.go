package mongodb

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
)

// Defaults of the transport options; those Python kombu 5.2.4 has are its
// values.
const (
	DefaultPort              = 27017
	DefaultDatabase          = "kombu_default"
	DefaultCappedQueueSize   = 100000 // bytes of the broadcast capped collection
	DefaultVisibilityTimeout = 30 * time.Minute
	DefaultPollingInterval   = 100 * time.Millisecond
)

// Options are the parsed URL and query options of one mongodb:// or
// mongodb+srv:// URL. ParseURL fills in every default.
type Options struct {
	// URI is what the MongoDB driver dials: the URL without kombu's own
	// options, so the driver's options (authSource, replicaSet, tls,
	// maxPoolSize, ...) pass through.
	URI string
	// Database holds the collections: the URL path, else default_database,
	// else "kombu_default", as in Python kombu.
	Database string
	// TLS is set by kombu's TLS options (ssl, ssl_ca_certs, ...); the
	// driver's own tls options in the URI work too.
	TLS *tls.Config

	MessagesCollection   string // messages_collection=messages
	RoutingCollection    string // routing_collection=messages.routing
	BroadcastCollection  string // broadcast_collection=messages.broadcast
	QueuesCollection     string // queues_collection=messages.queues
	UnackedCollection    string // unacked_collection=messages.unacked (kombu-go's leases)
	QuarantineCollection string // quarantine_collection=messages.quarantine

	// TTL writes expire_at on messages, routing and queue documents and
	// asks for TTL indexes (ttl=true), as Python kombu's ttl option does.
	// Expired messages are dropped by consumers whether or not the
	// server has TTL indexes.
	TTL bool
	// CappedQueueSize is the size in bytes of the fanout capped collection.
	CappedQueueSize int
	// CalcQueueSize false makes Size report 0 without counting
	// (calc_queue_size), as in Python kombu.
	CalcQueueSize bool
	// VisibilityTimeout is how long a delivery stays leased to its consumer
	// before any consumer's sweep puts it back (visibility_timeout, >= 1 s).
	VisibilityTimeout time.Duration
	// PollingInterval is the longest pause between two polls of empty
	// queues (polling_interval).
	PollingInterval time.Duration
	ConnectTimeout  time.Duration // connect_timeout (0: the driver's default)
	// Monitor, when set, sees every command the driver sends (tracing,
	// counting round trips); it has no URL form.
	Monitor *event.CommandMonitor
}

// kombuOptions are the query options kombu reads itself; every other
// option is the driver's and stays in URI.
var kombuOptions = map[string]bool{
	"ttl": true, "capped_queue_size": true, "calc_queue_size": true, "default_database": true,
	"messages_collection": true, "routing_collection": true, "broadcast_collection": true,
	"queues_collection": true, "unacked_collection": true, "quarantine_collection": true,
	"visibility_timeout": true, "polling_interval": true, "connect_timeout": true,
	"ssl": true, "insecure": true, "ssl_check_hostname": true, "ssl_cert_reqs": true,
	"ssl_ca_certs": true, "ssl_certfile": true, "ssl_keyfile": true, "ssl_server_hostname": true,
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: mongodb: %s", driver.ErrInvalidURL, fmt.Sprintf(format, args...))
}

// ParseURL parses a mongodb:// or mongodb+srv:// URL (see the package
// documentation). It does no I/O besides reading TLS files; a
// mongodb+srv:// host is resolved at dial time. Errors wrap
// driver.ErrInvalidURL and never contain the password.
func ParseURL(u *url.URL) (*Options, error) {
	if u == nil {
		return nil, invalid("nil URL")
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "mongodb" && scheme != "mongodb+srv" {
		return nil, invalid("unsupported scheme %q", u.Scheme)
	}
	if u.Opaque != "" {
		return nil, invalid("the URL must have the form %s://host", scheme)
	}
	o := &Options{
		MessagesCollection:   "messages",
		RoutingCollection:    "messages.routing",
		BroadcastCollection:  "messages.broadcast",
		QueuesCollection:     "messages.queues",
		UnackedCollection:    "messages.unacked",
		QuarantineCollection: "messages.quarantine",
		CappedQueueSize:      DefaultCappedQueueSize,
		CalcQueueSize:        true,
		VisibilityTimeout:    DefaultVisibilityTimeout,
		PollingInterval:      DefaultPollingInterval,
	}
	values, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, invalid("malformed query: %v", err)
	}
	ours, theirs := url.Values{}, url.Values{}
	for k, vs := range values {
		if kombuOptions[k] {
			ours[k] = vs
		} else {
			theirs[k] = vs
		}
	}
	ku := *u
	ku.RawQuery = ours.Encode()
	q, err := transport.NewQuery(&ku)
	if err != nil {
		return nil, err
	}
	q.SetTransport("mongodb")
	defaultDB := DefaultDatabase
	q.String("default_database", &defaultDB)
	for _, c := range []struct {
		name string
		dst  *string
	}{
		{"messages_collection", &o.MessagesCollection}, {"routing_collection", &o.RoutingCollection},
		{"broadcast_collection", &o.BroadcastCollection}, {"queues_collection", &o.QueuesCollection},
		{"unacked_collection", &o.UnackedCollection}, {"quarantine_collection", &o.QuarantineCollection},
	} {
		q.String(c.name, c.dst)
		if q.Has(c.name) && *c.dst == "" {
			return nil, invalid("option %s must not be empty", c.name)
		}
	}
	q.Bool("ttl", &o.TTL)
	q.IntRange("capped_queue_size", &o.CappedQueueSize, 4096, 1<<40)
	q.Bool("calc_queue_size", &o.CalcQueueSize)
	q.Duration("visibility_timeout", &o.VisibilityTimeout)
	q.Duration("polling_interval", &o.PollingInterval)
	q.Duration("connect_timeout", &o.ConnectTimeout)
	o.TLS = q.TLS(false, u.Hostname())
	if err := q.Err(); err != nil {
		return nil, err
	}
	if o.VisibilityTimeout < time.Second {
		return nil, invalid("option visibility_timeout must be at least 1 second")
	}
	if o.PollingInterval <= 0 {
		return nil, invalid("option polling_interval must be positive")
	}
	if o.ConnectTimeout < 0 {
		return nil, invalid("option connect_timeout must not be negative")
	}
	if defaultDB == "" {
		return nil, invalid("option default_database must not be empty")
	}

	du := *u
	du.Scheme = scheme
	du.RawQuery = theirs.Encode()
	if du.Host == "" {
		du.Host = "127.0.0.1" // Python kombu's default_hostname
	}
	o.URI = du.String()
	cs, err := validateURI(&du, theirs)
	if err != nil {
		return nil, invalid("%s", withoutPassword(err.Error(), u))
	}
	if len(cs.UnknownOptions) > 0 {
		var unknown []string
		for k := range cs.UnknownOptions {
			unknown = append(unknown, k)
		}
		sort.Strings(unknown)
		return nil, invalid("unknown option(s) %s (neither kombu's nor the MongoDB driver's)", strings.Join(unknown, ", "))
	}
	o.Database = defaultDB
	if cs.Database != "" {
		o.Database = cs.Database
	}
	if err := validDatabaseName(o.Database); err != nil {
		return nil, err
	}
	return o, nil
}

// validDatabaseName applies MongoDB's rules for database names, so that
// a bad name fails at parse time and not at the first write.
func validDatabaseName(name string) error {
	if len(name) > 63 {
		return invalid("database name %q is longer than 63 bytes", name)
	}
	if i := strings.IndexAny(name, "/\\. \"$*<>:|?\x00"); i >= 0 {
		return invalid("database name %q contains %q", name, name[i])
	}
	return nil
}

// withoutPassword masks u's password in a driver error message.
func withoutPassword(msg string, u *url.URL) string {
	if u.User == nil {
		return msg
	}
	if pw, ok := u.User.Password(); ok && pw != "" {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
		msg = strings.ReplaceAll(msg, url.QueryEscape(pw), "xxxxx")
	}
	return msg
}

// validateURI checks the driver's URI with the driver's parser, without
// I/O: the parser looks mongodb+srv:// hosts up in DNS, so those are
// checked as mongodb:// (with their SRV-only options set aside) and
// resolved at dial time.
func validateURI(du *url.URL, driverOpts url.Values) (*connstring.ConnString, error) {
	if du.Scheme != "mongodb+srv" {
		return connstring.ParseAndValidate(du.String())
	}
	if du.Port() != "" {
		return nil, errors.New("a mongodb+srv:// URL cannot have a port")
	}
	if strings.Contains(du.Host, ",") {
		return nil, errors.New("a mongodb+srv:// URL has exactly one host")
	}
	v := *du
	v.Scheme = "mongodb"
	rest := url.Values{}
	for k, vs := range driverOpts {
		if lk := strings.ToLower(k); lk != "srvmaxhosts" && lk != "srvservicename" {
			rest[k] = vs
		}
	}
	v.RawQuery = rest.Encode()
	return connstring.ParseAndValidate(v.String())
}
