package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
)

const urlEnv = "KOMBU_URL"

// isURL tells a URL argument from a queue or file name.
func isURL(s string) bool { return strings.Contains(s, "://") }

// splitURL takes the leading URL argument, or KOMBU_URL when the first
// argument is not a URL, and checks that min..max arguments remain.
func (a *app) splitURL(args []string, min, max int, names string) (string, []string, error) {
	var raw string
	if len(args) > 0 && isURL(args[0]) {
		raw, args = args[0], args[1:]
	} else if raw = a.getenv(urlEnv); raw == "" {
		return "", nil, usagef("no broker URL: give it as the first argument or set %s", urlEnv)
	}
	if len(args) < min || (max >= 0 && len(args) > max) {
		return "", nil, usagef("want arguments [URL] %s, got %d after the URL", names, len(args))
	}
	return raw, args, nil
}

// connFlags are the connection settings every command that dials shares.
type connFlags struct {
	connectTimeout time.Duration
}

func (f *connFlags) register(c *cobra.Command) {
	c.Flags().DurationVar(&f.connectTimeout, "connect-timeout", 10*time.Second, "how long to try to reach the broker")
}

// session is a connection with one channel, as every command uses.
type session struct {
	conn *kombu.Connection
	ch   *kombu.Channel
	drv  driver.Channel
}

// dial connects to raw and opens a channel. A broker that cannot be
// reached in time is reported as unreachable (exit code 3).
func (a *app) dial(ctx context.Context, raw string, f connFlags) (*session, error) {
	conn, err := kombu.NewConnection(raw, &kombu.Options{ConnectTimeout: f.connectTimeout})
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, f.connectTimeout)
	defer cancel()
	if err := conn.Connect(dctx); err != nil {
		_ = conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &unreachableError{url: conn.URI(), err: err}
	}
	ch, err := conn.Channel(dctx)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return &session{conn: conn, ch: ch, drv: ch.Driver()}, nil
}

func (s *session) Close() error {
	err := s.ch.Close()
	if cerr := s.conn.Close(); err == nil {
		err = cerr
	}
	return err
}

// queueInfo checks that queue exists (passive declare) and returns its
// counts; a missing queue is an error wrapping ErrNotFound.
func (s *session) queueInfo(ctx context.Context, queue string) (driver.QueueInfo, error) {
	return s.drv.QueueDeclare(ctx, driver.Queue{Name: queue, Passive: true})
}

// declareQueue declares a durable queue, as kombu's Queue does by default.
func (s *session) declareQueue(ctx context.Context, queue string) (driver.QueueInfo, error) {
	return s.drv.QueueDeclare(ctx, driver.Queue{Name: queue, Durable: true})
}

// unreachableError is a dial that failed: exit code 3.
type unreachableError struct {
	url string
	err error
}

func (e *unreachableError) Error() string { return "cannot reach " + e.url + ": " + e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }

// declareExchange declares a durable exchange of type typ, when typ is
// given: on transports whose declarations live in the connection (redis,
// as in Python kombu) an exchange is known only once this connection
// declared it. An empty typ leaves it to the broker to know it.
func (s *session) declareExchange(ctx context.Context, name, typ string) error {
	if typ == "" || name == "" {
		return nil
	}
	if err := s.drv.ExchangeDeclare(ctx, driver.Exchange{Name: name, Type: typ, Durable: true}); err != nil {
		return fmt.Errorf("exchange %s: %w", name, err)
	}
	return nil
}

const exchangeTypeHelp = "declare the exchange first with this type (direct, topic, fanout, headers): needed where declarations live per connection (redis)"
