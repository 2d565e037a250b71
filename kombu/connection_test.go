package kombu_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
	"github.com/kombu-go/kombu/transport/memory"
)

// flaky wraps the memory transport: dials to hosts named "down" fail, and
// the first failPublishes publishes of the process fail with
// ErrConnectionLost (before anything is stored).
type flaky struct {
	dials         atomic.Int32
	failPublishes atomic.Int32
	endQueue      atomic.Value // string: the next Receive ends this queue's consumer
}

func (f *flaky) Describe() driver.Description {
	d := memory.Description
	d.Name, d.DefaultHost, d.DefaultPort, d.DefaultUser = "flaky", "localhost", 4242, "guest"
	return d
}

func (f *flaky) OpenConnector(u *url.URL) (driver.Connector, error) {
	inner, err := memory.Transport.OpenConnector(&url.URL{Scheme: "memory", Host: "flaky-" + u.Host})
	if err != nil {
		return nil, err
	}
	return connectorFunc(func(ctx context.Context) (driver.Conn, error) {
		f.dials.Add(1)
		if u.Hostname() == "down" {
			return nil, fmt.Errorf("%w: dial %s: connection refused", driver.ErrConnectionLost, u.Host)
		}
		c, err := inner.Connect(ctx)
		if err != nil {
			return nil, err
		}
		return &flakyConn{Conn: c, f: f}, nil
	}), nil
}

type connectorFunc func(ctx context.Context) (driver.Conn, error)

func (f connectorFunc) Connect(ctx context.Context) (driver.Conn, error) { return f(ctx) }

type flakyConn struct {
	driver.Conn
	f *flaky
}

func (c *flakyConn) Channel(ctx context.Context) (driver.Channel, error) {
	ch, err := c.Conn.Channel(ctx)
	if err != nil {
		return nil, err
	}
	return &flakyChannel{Channel: ch, f: c.f}, nil
}

type flakyChannel struct {
	driver.Channel
	f    *flaky
	tags sync.Map // queue -> consumer tag
}

func (ch *flakyChannel) Consume(ctx context.Context, a driver.ConsumeArgs) error {
	ch.tags.Store(a.Queue, a.ConsumerTag)
	return ch.Channel.Consume(ctx, a)
}

// Receive ends the consumer of endQueue as a broker would when its queue is
// deleted.
func (ch *flakyChannel) Receive(ctx context.Context, max int) ([]*driver.Delivery, error) {
	if q, _ := ch.f.endQueue.Swap("").(string); q != "" {
		tag, _ := ch.tags.Load(q)
		_ = ch.Channel.Cancel(ctx, tag.(string))
		return nil, &driver.ConsumerError{ConsumerTag: tag.(string), Queue: q, Cancelled: true,
			Err: fmt.Errorf("%w: queue deleted", driver.ErrNotFound)}
	}
	return ch.Channel.Receive(ctx, max)
}

func (ch *flakyChannel) Publish(ctx context.Context, p *driver.Publishing) error {
	if ch.f.failPublishes.Add(-1) >= 0 {
		return fmt.Errorf("%w: broken pipe", driver.ErrConnectionLost)
	}
	return ch.Channel.Publish(ctx, p)
}

var nameSeq atomic.Int64

// uniqueName names a broker for one run of a test, so that -count=N runs
// do not see each other's messages.
func uniqueName(t *testing.T) string {
	return fmt.Sprintf("%s-%d", t.Name(), nameSeq.Add(1))
}

func flakyRegistry(t *testing.T) (*kombu.Options, *flaky) {
	reg := transport.NewRegistry()
	f := &flaky{}
	reg.Register("flaky", f)
	reg.Register("memory", memory.Transport)
	return &kombu.Options{Transports: reg, ConnectTimeout: time.Second}, f
}

func TestFailoverTriesURLsInOrder(t *testing.T) {
	ctx := context.Background()
	opts, f := flakyRegistry(t)
	conn, err := kombu.NewConnection("flaky://down:1;flaky://up-"+t.Name()+":2", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if conn.Connected() || f.dials.Load() != 0 {
		t.Fatal("NewConnection must not dial")
	}
	if err := conn.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if !conn.Connected() || f.dials.Load() != 2 {
		t.Fatalf("connected=%v after %d dials, want true after 2", conn.Connected(), f.dials.Load())
	}
	info := conn.Info()
	if info.Hostname != "up-"+t.Name() || info.Port != 2 || info.Transport != "flaky" || len(info.Alternates) != 1 {
		t.Fatalf("info %+v", info)
	}
}

func TestConnectErrorListsEveryURLWithoutPasswords(t *testing.T) {
	opts, _ := flakyRegistry(t)
	conn, _ := kombu.NewConnection("flaky://u:pw-one@down:1;flaky://u:pw-two@down:2", opts)
	err := conn.Connect(context.Background())
	if !errors.Is(err, kombu.ErrConnectionLost) {
		t.Fatalf("err %v, want ErrConnectionLost", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "pw-one") || strings.Contains(msg, "pw-two") || !strings.Contains(msg, "down:1") || !strings.Contains(msg, "down:2") {
		t.Fatalf("error text %q", msg)
	}
}

func TestPublishRetryReconnects(t *testing.T) {
	ctx := context.Background()
	opts, f := flakyRegistry(t)
	conn, err := kombu.NewConnection("flaky://"+uniqueName(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q := kombu.NewQueue("retried", kombu.DefaultExchange, "")
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := func(retry bool) error {
		return p.Publish(ctx, "x", &kombu.PublishOptions{RoutingKey: q.Name, Declare: []kombu.Declarable{q}, Retry: retry,
			RetryPolicy: &kombu.RetryPolicy{MaxRetries: 3, IntervalStep: time.Millisecond}})
	}
	f.failPublishes.Store(1)
	if err := pub(false); !errors.Is(err, kombu.ErrConnectionLost) {
		t.Fatalf("without retry: %v, want ErrConnectionLost", err)
	}
	if conn.Connected() {
		t.Fatal("Connected() after a call failed with ErrConnectionLost: the lost connection must be dropped")
	}
	dials := f.dials.Load()
	f.failPublishes.Store(2)
	var retries []time.Duration
	err = p.Publish(ctx, "x", &kombu.PublishOptions{RoutingKey: q.Name, Retry: true, RetryPolicy: &kombu.RetryPolicy{
		MaxRetries: 3, IntervalStart: time.Millisecond, IntervalStep: 2 * time.Millisecond,
		OnRetry: func(err error, wait time.Duration) { retries = append(retries, wait) }}})
	if err != nil {
		t.Fatalf("with retry: %v", err)
	}
	// One dial replaces the connection the failed publish above dropped,
	// then one per retry.
	if fmt.Sprint(retries) != "[1ms 3ms]" || f.dials.Load() != dials+3 {
		t.Fatalf("retries %v, dials %d (was %d); want [1ms 3ms] and 3 dials", retries, f.dials.Load(), dials)
	}
	f.failPublishes.Store(10)
	if err := pub(true); !errors.Is(err, kombu.ErrConnectionLost) {
		t.Fatalf("retries exhausted: %v, want ErrConnectionLost", err)
	}
	f.failPublishes.Store(0)
	ch, _ := conn.Channel(ctx)
	if n, err := q.Len(ctx, ch); err != nil || n != 1 {
		t.Fatalf("queue holds %d (err %v), want exactly the one retried message", n, err)
	}
}

func TestURIMasksPasswordEverywhere(t *testing.T) {
	opts, _ := flakyRegistry(t)
	conn, err := kombu.NewConnection("flaky://user:p%40ss:w%2Frd%25@host:1/vh", opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{conn.URI(), conn.String(), fmt.Sprintf("%v %+v %#v %s", conn, conn, conn, conn), conn.Info().URI} {
		if strings.Contains(s, "ss:w") || strings.Contains(s, "%40ss") || !strings.Contains(s, "**") {
			t.Errorf("leaks or does not mask: %q", s)
		}
	}
	if !strings.Contains(conn.URIWithPassword(), "p%40ss") {
		t.Errorf("URIWithPassword %q", conn.URIWithPassword())
	}
	clone := conn.Clone()
	if clone.URI() != conn.URI() || clone.Connected() {
		t.Errorf("clone %q connected=%v", clone.URI(), clone.Connected())
	}
}

func TestInfoAppliesTransportDefaults(t *testing.T) {
	opts, _ := flakyRegistry(t)
	conn, _ := kombu.NewConnection("flaky://", opts)
	info := conn.Info()
	if info.Hostname != "localhost" || info.Port != 4242 || info.UserID != "guest" {
		t.Fatalf("info %+v", info)
	}
}

func TestBadURLsAndOptions(t *testing.T) {
	for _, raw := range []string{"", "nosuch://x", "memory://x?bogus=1", "memory://h:99999", "memory://x;;memory://y", "redis://a:pw@h/0"} {
		_, err := kombu.NewConnection(raw, nil)
		if !errors.Is(err, kombu.ErrInvalidURL) {
			t.Errorf("%q: %v, want ErrInvalidURL", raw, err)
		}
	}
	_, err := kombu.NewConnection("redis://a:pw@h/0", nil)
	if !strings.Contains(err.Error(), "transport/redis") || strings.Contains(err.Error(), "pw") {
		t.Errorf("unknown scheme error should name the import and hide the password: %v", err)
	}
}

func TestEntitiesNeedAChannel(t *testing.T) {
	ctx := context.Background()
	q := kombu.NewQueue("q", kombu.DefaultExchange, "")
	if _, err := q.Declare(ctx, nil); !errors.Is(err, kombu.ErrNotBound) {
		t.Fatalf("unbound declare: %v", err)
	}
	if err := kombu.NewExchange("x", kombu.Topic).Declare(ctx, nil); !errors.Is(err, kombu.ErrNotBound) {
		t.Fatalf("unbound exchange declare: %v", err)
	}
	conn, _ := kombu.Dial(ctx, "memory://"+uniqueName(t), nil)
	defer conn.Close()
	ch, _ := conn.Channel(ctx)
	bound := q.Bind(ch)
	if _, err := bound.Declare(ctx, nil); err != nil {
		t.Fatalf("bound declare: %v", err)
	}
	if n, err := bound.Len(ctx, nil); err != nil || n != 0 {
		t.Fatalf("bound len %d %v", n, err)
	}
}

func TestCloseIsIdempotentAndFinal(t *testing.T) {
	ctx := context.Background()
	conn, _ := kombu.Dial(ctx, "memory://"+uniqueName(t), nil)
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := conn.Channel(ctx); !errors.Is(err, kombu.ErrClosed) {
		t.Fatalf("Channel after Close: %v", err)
	}
	if err := conn.Connect(ctx); !errors.Is(err, kombu.ErrClosed) {
		t.Fatalf("Connect after Close: %v", err)
	}
}

func TestPublishBatch(t *testing.T) {
	ctx := context.Background()
	opts, f := flakyRegistry(t)
	conn, err := kombu.NewConnection("flaky://"+uniqueName(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ex := kombu.NewExchange("batch", kombu.Direct)
	q := kombu.NewQueue("batched", ex, "here")
	var returned []string
	p, err := conn.Producer(ctx, &kombu.ProducerOptions{Exchange: ex, RoutingKey: "here",
		OnReturn: func(r kombu.Return) { returned = append(returned, string(r.Body)) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.PublishBatch(ctx, []any{[]byte("a"), []byte("b"), func() {}}, &kombu.PublishOptions{Declare: []kombu.Declarable{q}}); err == nil {
		t.Fatal("an unserializable body must fail the batch before any I/O")
	}
	ch, _ := conn.Channel(ctx)
	if n, _ := q.Len(ctx, ch); n != 0 {
		t.Fatalf("%d messages published by a batch that failed to serialize", n)
	}
	bodies := []any{[]byte("1"), []byte("2"), []byte("3")}
	if err := p.PublishBatch(ctx, bodies, &kombu.PublishOptions{Declare: []kombu.Declarable{q}}); err != nil {
		t.Fatal(err)
	}
	// A mandatory batch to a key nobody binds goes to OnReturn, every message.
	if err := p.PublishBatch(ctx, []any{[]byte("x"), []byte("y")}, &kombu.PublishOptions{RoutingKey: "nowhere", Mandatory: true}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(returned) != "[x y]" {
		t.Fatalf("returned %v, want [x y]", returned)
	}
	// Connection failures: without retry the error says how many went
	// through; with retry only the rest is published again.
	f.failPublishes.Store(1)
	err = p.PublishBatch(ctx, []any{[]byte("4"), []byte("5")}, nil)
	var be *driver.BatchError
	if !errors.As(err, &be) || !errors.Is(err, kombu.ErrConnectionLost) {
		t.Fatalf("err %v, want a BatchError wrapping ErrConnectionLost", err)
	}
	f.failPublishes.Store(1)
	if err := p.PublishBatch(ctx, []any{[]byte("6"), []byte("7")}, &kombu.PublishOptions{Retry: true,
		RetryPolicy: &kombu.RetryPolicy{IntervalStep: time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	ch, _ = conn.Channel(ctx)
	var got []string
	for {
		m, err := q.Get(ctx, ch, true, nil)
		if err != nil {
			break
		}
		got = append(got, string(m.Body))
	}
	if fmt.Sprint(got) != fmt.Sprintf("[1 2 3 %s6 7]", prefixIf(be.Published > 0, "4 ")) {
		t.Fatalf("queue holds %v (first failed batch published %d)", got, be.Published)
	}
}

func prefixIf(cond bool, s string) string {
	if cond {
		return s
	}
	return ""
}

// A consumer the broker ends (its queue deleted) reports it once from
// Receive, and its other queues keep delivering.
func TestConsumerEndedByBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts, f := flakyRegistry(t)
	f.endQueue.Store("")
	conn, err := kombu.NewConnection("flaky://"+uniqueName(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	a, b := kombu.NewQueue("a", kombu.DefaultExchange, ""), kombu.NewQueue("b", kombu.DefaultExchange, "")
	c, err := conn.Consumer(ctx, []kombu.Queue{a, b}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.endQueue.Store("a")
	_, err = c.Receive(ctx)
	var ce *kombu.ConsumerError
	if !errors.As(err, &ce) || ce.Queue != "a" || !errors.Is(err, kombu.ErrNotFound) {
		t.Fatalf("Receive: %v, want a ConsumerError for queue a wrapping ErrNotFound", err)
	}
	if _, ok := c.ConsumerTags()["a"]; ok {
		t.Fatal("the ended consumer tag is still listed")
	}
	p, _ := conn.Producer(ctx, nil)
	if err := p.Publish(ctx, "still here", &kombu.PublishOptions{RoutingKey: "b"}); err != nil {
		t.Fatal(err)
	}
	m, err := c.Receive(ctx)
	if err != nil || string(m.Body) != "still here" {
		t.Fatalf("queue b after a ended: %v %v", m, err)
	}
}
