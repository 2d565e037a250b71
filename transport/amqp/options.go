package amqp

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

// Defaults of the URL options. See the package documentation.
const (
	DefaultPort           = 5672
	DefaultTLSPort        = 5671
	DefaultHeartbeat      = 60 * time.Second
	DefaultConnectTimeout = 5 * time.Second // kombu's Connection(connect_timeout=5)
	DefaultConfirmTimeout = 30 * time.Second
	DefaultConfirmWindow  = 100
	DefaultFrameMax       = 131072 // RabbitMQ's own default
	DefaultLocale         = "en_US"
)

// Options is the parsed form of an AMQP URL. A zero Options is not valid;
// use ParseURL, or OpenConnector through the transport registry.
type Options struct {
	Host     string // host name or address, without port
	Port     int
	Username string
	Password string
	VHost    string

	// LoginMethod is PLAIN (default, as kombu), AMQPLAIN or EXTERNAL
	// (TLS client certificate; no user name or password is sent).
	LoginMethod string

	// Heartbeat is the heartbeat interval asked for; 0 disables. Default
	// 60 s. (kombu's own default is 0, off; Celery uses 120 s. A Go
	// connection reads in the background, so heartbeats cost nothing and
	// a dead broker is noticed within 3 intervals / 2.)
	Heartbeat time.Duration
	// ConnectTimeout bounds TCP connect, TLS and AMQP handshakes together,
	// on top of the Connect ctx. Default 5 s, as kombu.
	ConnectTimeout time.Duration
	// ChannelMax and FrameMax are the tuning values asked for (0: broker's
	// limit for ChannelMax; FrameMax defaults to 131072).
	ChannelMax int
	FrameMax   int
	Locale     string

	// ConfirmPublish puts every channel in confirm mode (default true).
	ConfirmPublish bool
	// ConfirmTimeout bounds the wait for a publisher confirm (default 30 s).
	ConfirmTimeout time.Duration
	// ConfirmWindow is the most publishes of one channel that may wait for
	// their confirms at the same time (default 100).
	ConfirmWindow int

	// TLS is non-nil for amqps:// or ssl=true.
	TLS *tls.Config
}

func invalidURL(format string, args ...any) error {
	return fmt.Errorf("%w: amqp: %s", driver.ErrInvalidURL, fmt.Sprintf(format, args...))
}

// ParseURL parses an amqp://, amqps:// or pyamqp:// URL. Errors wrap
// driver.ErrInvalidURL and never contain the password. Certificate files
// named by the ssl_* options are read here.
func ParseURL(u *url.URL) (*Options, error) {
	o := &Options{
		Host:           "localhost",
		Username:       "guest",
		Password:       "guest",
		VHost:          "/",
		LoginMethod:    "PLAIN",
		Heartbeat:      DefaultHeartbeat,
		ConnectTimeout: DefaultConnectTimeout,
		FrameMax:       DefaultFrameMax,
		Locale:         DefaultLocale,
		ConfirmPublish: true,
		ConfirmTimeout: DefaultConfirmTimeout,
		ConfirmWindow:  DefaultConfirmWindow,
	}
	scheme := strings.ToLower(u.Scheme)
	useTLS := false
	switch scheme {
	case "amqp", "pyamqp", "py-amqp", "librabbitmq":
	case "amqps":
		useTLS = true
	default:
		return nil, invalidURL("unsupported scheme %q", u.Scheme)
	}
	if u.Opaque != "" {
		return nil, invalidURL("URL must be of the form amqp://[user[:pass]@]host[:port][/vhost]")
	}
	if h := u.Hostname(); h != "" {
		o.Host = h
	}
	if u.User != nil {
		if n := u.User.Username(); n != "" {
			o.Username = n
		}
		if p, ok := u.User.Password(); ok {
			o.Password = p
		}
	}
	if vh := transport.VirtualHost(u); vh != "" {
		o.VHost = vh
	}

	q, err := transport.NewQuery(u)
	if err != nil {
		return nil, err
	}
	q.SetTransport("amqp")
	q.Duration("heartbeat", &o.Heartbeat)
	q.Duration("connect_timeout", &o.ConnectTimeout)
	q.Duration("confirm_timeout", &o.ConfirmTimeout)
	q.String("login_method", &o.LoginMethod)
	q.IntRange("channel_max", &o.ChannelMax, 0, 65535)
	q.IntRange("frame_max", &o.FrameMax, 4096, 1<<24)
	q.IntRange("confirm_window", &o.ConfirmWindow, 1, 1<<20)
	q.String("locale", &o.Locale)
	q.Bool("confirm_publish", &o.ConfirmPublish)
	o.TLS = q.TLS(useTLS, o.Host)
	if err := q.Err(); err != nil {
		return nil, err
	}
	useTLS = o.TLS != nil
	if o.Heartbeat > 65535*time.Second {
		return nil, invalidURL("heartbeat above 65535 seconds")
	}
	switch m := strings.ToUpper(o.LoginMethod); m {
	case "PLAIN", "AMQPLAIN", "EXTERNAL":
		o.LoginMethod = m
	default:
		return nil, invalidURL("login_method must be PLAIN, AMQPLAIN or EXTERNAL, not %q", o.LoginMethod)
	}
	if o.Locale == "" || len(o.Locale) > 255 {
		return nil, invalidURL("bad locale")
	}
	if u.Port() != "" {
		p, err := strconv.Atoi(u.Port())
		if err != nil || p < 1 || p > 65535 {
			return nil, invalidURL("bad port %q", u.Port())
		}
		o.Port = p
	} else if useTLS {
		o.Port = DefaultTLSPort
	} else {
		o.Port = DefaultPort
	}

	if o.LoginMethod == "EXTERNAL" && (o.TLS == nil || len(o.TLS.Certificates) == 0) {
		return nil, invalidURL("login_method EXTERNAL needs TLS with a client certificate (ssl_certfile, ssl_keyfile)")
	}
	if len(o.Username) > 255*255 || len(o.Password) > 255*255 {
		return nil, invalidURL("user name or password too long")
	}
	return o, nil
}

// addr returns host:port for dialing.
func (o *Options) addr() string {
	return net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
}
