package redis

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
)

// Defaults of the transport options, as in Python kombu 5.2.4 where kombu
// has the option.
const (
	DefaultPort                = 6379
	DefaultSentinelPort        = 26379
	DefaultVisibilityTimeout   = time.Hour
	DefaultPollingInterval     = 50 * time.Millisecond
	DefaultUnackedMutexExpire  = 300 * time.Second
	DefaultHealthCheckInterval = 25 * time.Second
	DefaultBindingCacheTTL     = time.Second
	DefaultFanoutPrefix        = "/{db}."

	// Sep separates a queue name from its priority step in list names and
	// the three fields of a binding-table member. It is not configurable:
	// other kombu clients on the same keys must agree on it.
	Sep = "\x06\x16"
)

// DefaultPrioritySteps are kombu's priority lists: 0-2 in the base list,
// 3-5, 6-8 and 9 in lists suffixed with Sep and the step.
var DefaultPrioritySteps = []int{0, 3, 6, 9}

// Options are the parsed URL and query options of one redis URL. The zero
// value is not usable; ParseURL fills in every default.
type Options struct {
	// Addrs holds the server's host:port, or the sentinel's for
	// sentinel:// (go-redis finds the other sentinels of the master).
	Addrs      []string
	Sentinel   bool
	MasterName string // sentinel: master_name, required
	Username   string
	Password   string
	// SentinelPassword authenticates with the sentinels themselves
	// (sentinel_password); the URL password is the master's.
	SentinelPassword string
	DB               int
	// TLS is nil for plain TCP. rediss:// (or ssl=true) verifies the
	// server certificate and host name unless ssl_cert_reqs=none or
	// insecure=true is given explicitly.
	TLS *tls.Config

	VisibilityTimeout time.Duration // visibility_timeout, seconds
	// PollingInterval is the longest pause between two polls of empty
	// queues (polling_interval, seconds); polls back off from 0.5 ms up
	// to it.
	PollingInterval     time.Duration
	FanoutPrefix        string // fanout_prefix resolved: "/{db}." with {db} filled in, a custom string, or ""
	FanoutPatterns      bool   // fanout_patterns
	GlobalKeyPrefix     string // global_keyprefix
	PrioritySteps       []int  // priority_steps, sorted, starting at 0
	SocketTimeout       time.Duration
	ConnectTimeout      time.Duration
	MaxConnections      int
	HealthCheckInterval time.Duration
	UnackedKey          string
	UnackedIndexKey     string
	UnackedMutexKey     string
	UnackedMutexExpire  time.Duration
	UnackedRestoreLimit int // 0: no limit
	// BindingCacheTTL bounds how long a binding table read from redis is
	// reused by publishers of this process (binding_cache_ttl, seconds; 0
	// reads SMEMBERS on every publish, as Python kombu does).
	BindingCacheTTL time.Duration
}

// UnackedQueueKey names the hash that remembers which queue an unacked
// delivery came from (delivery tag -> queue name) when its unacked record
// does not name it. Python kombu does not have it; see the package
// documentation.
func (o *Options) UnackedQueueKey() string { return o.UnackedKey + "_queue" }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: redis: %s", driver.ErrInvalidURL, fmt.Sprintf(format, args...))
}

// ParseURL parses a redis://, rediss:// or sentinel:// URL and its query
// options (see the package documentation). It does no I/O except reading
// the files named by ssl_ca_certs, ssl_certfile and ssl_keyfile. Errors
// wrap driver.ErrInvalidURL and never contain the password.
func ParseURL(u *url.URL) (*Options, error) {
	if u == nil {
		return nil, invalid("nil URL")
	}
	o := &Options{
		VisibilityTimeout:   DefaultVisibilityTimeout,
		PollingInterval:     DefaultPollingInterval,
		FanoutPatterns:      true,
		PrioritySteps:       append([]int(nil), DefaultPrioritySteps...),
		HealthCheckInterval: DefaultHealthCheckInterval,
		UnackedKey:          "unacked",
		UnackedIndexKey:     "unacked_index",
		UnackedMutexKey:     "unacked_mutex",
		UnackedMutexExpire:  DefaultUnackedMutexExpire,
		BindingCacheTTL:     DefaultBindingCacheTTL,
	}
	useTLS := false
	switch strings.ToLower(u.Scheme) {
	case "redis":
	case "rediss":
		useTLS = true
	case "sentinel":
		o.Sentinel = true
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
	defPort := DefaultPort
	if o.Sentinel {
		defPort = DefaultSentinelPort
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
	o.Addrs = []string{net.JoinHostPort(host, strconv.Itoa(transport.Port(u, defPort)))}
	vhost := transport.VirtualHost(u)
	if vhost != "" {
		n, err := strconv.Atoi(vhost)
		if err != nil || n < 0 || strconv.Itoa(n) != vhost {
			return nil, invalid("the path must be a database number, got %q", vhost)
		}
		o.DB = n
	}

	q, err := transport.NewQuery(u)
	if err != nil {
		return nil, err
	}
	q.SetTransport("redis")
	hasDB := q.Has("db")
	q.IntRange("db", &o.DB, 0, 1<<30)
	q.Duration("visibility_timeout", &o.VisibilityTimeout)
	q.Duration("polling_interval", &o.PollingInterval)
	q.Duration("socket_timeout", &o.SocketTimeout)
	q.Duration("socket_connect_timeout", &o.ConnectTimeout)
	q.Duration("health_check_interval", &o.HealthCheckInterval)
	q.Duration("unacked_mutex_expire", &o.UnackedMutexExpire)
	q.Duration("binding_cache_ttl", &o.BindingCacheTTL)
	q.IntRange("max_connections", &o.MaxConnections, 1, 1<<20)
	q.IntRange("unacked_restore_limit", &o.UnackedRestoreLimit, 0, 1<<30)
	q.Bool("fanout_patterns", &o.FanoutPatterns)
	fanoutPrefix := DefaultFanoutPrefix
	q.String("fanout_prefix", &fanoutPrefix)
	q.String("global_keyprefix", &o.GlobalKeyPrefix)
	q.String("unacked_key", &o.UnackedKey)
	q.String("unacked_index_key", &o.UnackedIndexKey)
	q.String("unacked_mutex_key", &o.UnackedMutexKey)
	var steps []int
	hasSteps := q.Has("priority_steps")
	q.IntList("priority_steps", &steps)
	hasMaster := q.Has("master_name")
	q.String("master_name", &o.MasterName)
	hasSentinelPW := q.Has("sentinel_password")
	q.String("sentinel_password", &o.SentinelPassword)
	tlsHost := u.Hostname() // sentinel:// verifies the master's address as the sentinels report it
	if o.Sentinel {
		tlsHost = ""
	}
	o.TLS = q.TLS(useTLS, tlsHost)
	if err := q.Err(); err != nil {
		return nil, err
	}

	if hasDB && vhost != "" {
		return nil, invalid("db given both in the path and as an option")
	}
	if o.PollingInterval <= 0 {
		return nil, invalid("option polling_interval must be positive")
	}
	if o.UnackedMutexExpire <= 0 {
		return nil, invalid("option unacked_mutex_expire must be positive")
	}
	if o.VisibilityTimeout < time.Second {
		// unacked_index scores are float seconds and kombu's restore works
		// in seconds; below a second every delivery would be restored.
		return nil, invalid("option visibility_timeout must be at least 1 second")
	}
	switch strings.ToLower(fanoutPrefix) {
	case "true", "1", "yes", "on":
		fanoutPrefix = DefaultFanoutPrefix
	case "false", "0", "no", "off", "":
		fanoutPrefix = ""
	}
	o.FanoutPrefix = strings.ReplaceAll(fanoutPrefix, "{db}", strconv.Itoa(o.DB))
	for _, k := range []struct{ name, v string }{
		{"unacked_key", o.UnackedKey},
		{"unacked_index_key", o.UnackedIndexKey},
		{"unacked_mutex_key", o.UnackedMutexKey},
	} {
		if k.v == "" {
			return nil, invalid("option %s must not be empty", k.name)
		}
	}
	if hasSteps {
		if err := checkPrioritySteps(steps); err != nil {
			return nil, err
		}
		o.PrioritySteps = steps
	}
	if hasMaster && !o.Sentinel {
		return nil, invalid("option master_name is only for sentinel://")
	}
	if hasSentinelPW && !o.Sentinel {
		return nil, invalid("option sentinel_password is only for sentinel://")
	}
	if o.Sentinel && o.MasterName == "" {
		return nil, invalid("sentinel:// needs the option master_name (on every sentinel URL of a failover list)")
	}
	return o, nil
}

func checkPrioritySteps(steps []int) error {
	if len(steps) == 0 || steps[0] != 0 {
		return invalid("option priority_steps must start with 0")
	}
	for i, n := range steps {
		if n < 0 || n > 9 {
			return invalid("option priority_steps: %d is not in 0..9", n)
		}
		if i > 0 && n <= steps[i-1] {
			return invalid("option priority_steps must be increasing")
		}
	}
	return nil
}
