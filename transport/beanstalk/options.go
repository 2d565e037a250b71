package beanstalk

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
)

// Defaults of the transport options.
const (
	// DefaultPort is beanstalkd's port.
	DefaultPort = 11300
	// DefaultTTR is the time to run of the jobs a connection puts: how
	// long a consumer may hold a job before beanstalkd gives it to another
	// (the visibility timeout). An hour, as kombu's redis transport.
	DefaultTTR = time.Hour
	// DefaultConnectTimeout bounds a dial.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultMaxJobSize is beanstalkd's default -z, the largest job body,
	// assumed when the server does not report its own.
	DefaultMaxJobSize = 65535
)

// Options are the parsed URL and query options of one beanstalk URL.
type Options struct {
	// Addr is the server's host:port.
	Addr string
	// TTR is the time to run given to every job put, in whole seconds
	// (beanstalkd has no finer unit; at least 1 s). Touch (ExtendLease)
	// restarts it, a delete acks, and a job held longer goes back to its
	// tube for another consumer. Option ttr, seconds.
	TTR time.Duration
	// ConnectTimeout bounds each dial (connect_timeout, seconds).
	ConnectTimeout time.Duration
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: beanstalk: %s", driver.ErrInvalidURL, fmt.Sprintf(format, args...))
}

// ParseURL parses beanstalk://HOST[:PORT][?ttr=S&connect_timeout=S].
// It does no I/O. Errors wrap driver.ErrInvalidURL.
func ParseURL(u *url.URL) (*Options, error) {
	if u == nil {
		return nil, invalid("nil URL")
	}
	if !strings.EqualFold(u.Scheme, "beanstalk") {
		return nil, invalid("unsupported scheme %q", u.Scheme)
	}
	if u.Opaque != "" {
		return nil, invalid("the URL must have the form beanstalk://host:port")
	}
	if u.User != nil {
		return nil, invalid("beanstalkd has no authentication; remove the user info")
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		return nil, invalid("beanstalkd has no virtual hosts; remove the path %q", u.Path)
	}
	host := u.Hostname()
	if host == "" {
		host = "127.0.0.1"
	}
	port := DefaultPort
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return nil, invalid("invalid port %q", p)
		}
		port = n
	}
	o := &Options{
		Addr:           net.JoinHostPort(host, strconv.Itoa(port)),
		TTR:            DefaultTTR,
		ConnectTimeout: DefaultConnectTimeout,
	}
	q, err := transport.NewQuery(u)
	if err != nil {
		return nil, err
	}
	q.SetTransport("beanstalk")
	q.Duration("ttr", &o.TTR)
	q.Duration("connect_timeout", &o.ConnectTimeout)
	if err := q.Err(); err != nil {
		return nil, err
	}
	if o.TTR < time.Second || o.TTR%time.Second != 0 {
		return nil, invalid("ttr %v: beanstalkd counts whole seconds, at least 1", o.TTR)
	}
	return o, nil
}
