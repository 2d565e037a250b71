package amqp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu/driver"
)

// serverURL returns the RabbitMQ URL of `make test` (skips elsewhere).
func serverURL(t testing.TB) string {
	t.Helper()
	return testenv.ServerURL(t, testenv.AMQPURL)
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// withQuery adds options to a URL string.
func withQuery(t testing.TB, s string, kv ...string) string {
	t.Helper()
	u := mustURL(t, s)
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func dial(t testing.TB, rawURL string) *Conn {
	t.Helper()
	cn, err := Transport.OpenConnector(mustURL(t, rawURL))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := cn.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*Conn)
}

func openChannel(t testing.TB, c *Conn) *Channel {
	t.Helper()
	ch, err := c.Channel(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ch.Close() })
	return ch.(*Channel)
}

// setup dials the test broker and opens one channel.
func setup(t testing.TB, opts ...string) (*Conn, *Channel) {
	t.Helper()
	u := serverURL(t)
	if len(opts) > 0 {
		u = withQuery(t, u, opts...)
	}
	c := dial(t, u)
	return c, openChannel(t, c)
}

func unique(t testing.TB, prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
	return "kgo." + prefix + "." + name + "." + hex.EncodeToString(b[:])
}

func tctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// declareQueue declares a queue that is deleted at the end of the test.
func declareQueue(t testing.TB, ch *Channel, q driver.Queue) string {
	t.Helper()
	if q.Name == "" {
		q.Name = unique(t, "q")
	}
	info, err := ch.QueueDeclare(tctx(t), q)
	if err != nil {
		t.Fatalf("declare %s: %v", q.Name, err)
	}
	t.Cleanup(func() {
		c2 := dial(t, serverURL(t))
		ch2, err := c2.Channel(context.Background())
		if err == nil {
			_, _ = ch2.QueueDelete(context.Background(), info.Name, false, false)
		}
	})
	return info.Name
}

func declareExchange(t testing.TB, ch *Channel, typ string) string {
	t.Helper()
	name := unique(t, "x."+typ)
	if err := ch.ExchangeDeclare(tctx(t), driver.Exchange{Name: name, Type: typ, AutoDelete: false}); err != nil {
		t.Fatalf("declare exchange: %v", err)
	}
	t.Cleanup(func() {
		c2 := dial(t, serverURL(t))
		ch2, err := c2.Channel(context.Background())
		if err == nil {
			_ = ch2.ExchangeDelete(context.Background(), name, false)
		}
	})
	return name
}

func pub(t testing.TB, ch *Channel, exchange, key, body string) {
	t.Helper()
	err := ch.Publish(tctx(t), &driver.Publishing{Exchange: exchange, RoutingKey: key,
		Message: driver.Message{Body: []byte(body), ContentType: "text/plain", ContentEncoding: "utf-8"}})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// getBody fetches one message with basic.get and acks it; "" when empty
// after waiting up to wait.
func getBody(t testing.TB, ch *Channel, queue string, wait time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		d, err := ch.Get(tctx(t), queue, true)
		if err == nil {
			return string(d.Body)
		}
		if !isEmpty(err) {
			t.Fatalf("get %s: %v", queue, err)
		}
		if time.Now().After(deadline) {
			return ""
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func isEmpty(err error) bool {
	return errors.Is(err, driver.ErrEmpty)
}

// receiveN receives n deliveries (or fails after a timeout).
func receiveN(t testing.TB, ch *Channel, n int) []*driver.Delivery {
	t.Helper()
	var out []*driver.Delivery
	deadline := time.Now().Add(10 * time.Second)
	for len(out) < n {
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d deliveries", len(out), n)
		}
		ds, err := ch.Receive(tctx(t), n-len(out))
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		out = append(out, ds...)
	}
	return out
}
