package kombu_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

// recorder is an Observer that writes down what it is told.
type recorder struct {
	mu        sync.Mutex
	log       []string // "publish ex/rk", "publish-end <err>", "handle q", "handle-end <err>", event names
	events    []kombu.Event
	addHeader bool
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.log = append(r.log, s)
	r.mu.Unlock()
}

func (r *recorder) StartPublish(ctx context.Context, p *kombu.PublishInfo) (context.Context, func(error)) {
	r.add(fmt.Sprintf("publish %s/%s size=%d", p.Exchange, p.RoutingKey, p.BodySize))
	if r.addHeader {
		if p.Headers == nil {
			p.Headers = map[string]any{}
		}
		p.Headers["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	}
	return ctx, func(err error) { r.add(fmt.Sprintf("publish-end %v", err != nil)) }
}

func (r *recorder) StartHandle(ctx context.Context, m *kombu.Message) (context.Context, func(error)) {
	r.add("handle " + m.Queue)
	return context.WithValue(ctx, recorderKey{}, "seen"), func(err error) { r.add(fmt.Sprintf("handle-end %v", err)) }
}

type recorderKey struct{}

func (r *recorder) Observe(ctx context.Context, e kombu.Event) {
	r.mu.Lock()
	r.log = append(r.log, e.Kind.String())
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) count(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.log {
		if l == s {
			n++
		}
	}
	return n
}

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

func dialObserved(t *testing.T, obs kombu.Observer, logger *slog.Logger) *kombu.Connection {
	t.Helper()
	conn, err := kombu.Dial(context.Background(), "memory://"+strings.ReplaceAll(t.Name(), "/", "-"), &kombu.Options{Observer: obs, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// consumeAll runs h on queue until n messages were handled.
func consumeAll(t *testing.T, conn *kombu.Connection, q kombu.Queue, opts *kombu.ConsumerOptions, n int, h kombu.HandlerFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	handled := 0
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	err = c.Consume(cctx, kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
		err := h(ctx, m)
		if handled++; handled == n {
			stop()
		}
		return err
	}))
	if !errors.Is(err, context.Canceled) || ctx.Err() != nil {
		t.Fatalf("Consume: %v (handled %d of %d)", err, handled, n)
	}
}

func TestObserverSeesPublishHandleAndSettlements(t *testing.T) {
	rec := &recorder{addHeader: true}
	conn := dialObserved(t, rec, nil)
	ctx := context.Background()
	q := kombu.NewQueue("observed", kombu.DefaultExchange, "observed")
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := &kombu.PublishOptions{RoutingKey: q.Name, Declare: []kombu.Declarable{q}, ContentType: "text/plain"}
	for _, body := range []string{"ok", "fail", "bad"} {
		o := *pub
		if body == "bad" {
			o.ContentType = "application/x-unknown"
		}
		if err := p.Publish(ctx, body, &o); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.PublishBatch(ctx, []any{"ok", "ok"}, pub); err != nil {
		t.Fatal(err)
	}
	var headers []any
	failures := 0
	consumeAll(t, conn, q, &kombu.ConsumerOptions{
		Redelivery: &kombu.RedeliveryPolicy{MaxDeliveries: 2, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond},
	}, 5, func(ctx context.Context, m *kombu.Message) error {
		if ctx.Value(recorderKey{}) != "seen" {
			t.Error("the handler did not get StartHandle's context")
		}
		headers = append(headers, m.Headers["traceparent"])
		if string(m.Body) == "fail" {
			failures++
			return fmt.Errorf("failure %d", failures)
		}
		return nil
	})
	// 5 published: ok, fail, bad, ok, ok. The undecodable one never
	// reaches the handler; "fail" is delivered twice, then dead-lettered.
	for name, want := range map[string]int{
		"publish /observed size=2": 3, "publish /observed size=4": 1, "publish /observed size=3": 1,
		"publish-end false": 5, "delivered": 6, "decode_error": 1, "rejected": 1,
		"handle observed": 5, "acked": 3, "redelivered": 1, "dead_lettered": 1,
		"handle-end <nil>": 3, "handle-end failure 1": 1, "handle-end failure 2": 1,
		"consumer_started": 1, "consumer_stopped": 1,
	} {
		if got := rec.count(name); got != want {
			t.Errorf("%q seen %d times, want %d\nlog: %q", name, got, want, rec.snapshot())
		}
	}
	for _, h := range headers {
		if h != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" {
			t.Errorf("header added by StartPublish arrived as %v", h)
		}
	}
	for _, e := range rec.events {
		if e.Kind == kombu.EventDeadLettered && (e.Attempt != 2 || e.Message == nil || e.Queue != "observed" || e.Transport != "memory") {
			t.Errorf("dead-letter event %+v", e)
		}
		if e.Kind == kombu.EventDecodeError && !errors.Is(e.Err, kombu.ErrContentDisallowed) {
			t.Errorf("decode error event err = %v", e.Err)
		}
	}
}

func TestObserverSeesReturnsAndFailedPublish(t *testing.T) {
	rec := &recorder{}
	conn := dialObserved(t, rec, nil)
	ctx := context.Background()
	var returned int
	p, err := conn.Producer(ctx, &kombu.ProducerOptions{OnReturn: func(kombu.Return) { returned++ }})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, "x", &kombu.PublishOptions{RoutingKey: "nowhere", Mandatory: true}); err != nil {
		t.Fatal(err)
	}
	bare, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bare.Publish(ctx, "x", &kombu.PublishOptions{RoutingKey: "nowhere", Mandatory: true}); !errors.Is(err, kombu.ErrUnroutable) {
		t.Fatalf("err = %v, want ErrUnroutable", err)
	}
	if returned != 1 || rec.count("returned") != 2 || rec.count("publish-end true") != 1 || rec.count("publish-end false") != 1 {
		t.Errorf("returned=%d, log %q", returned, rec.snapshot())
	}
}

func TestObserversChainsContextsAndEndsInReverse(t *testing.T) {
	var order []string
	mk := func(name string) kombu.Observer {
		return &namedObserver{name: name, order: &order}
	}
	if kombu.Observers() != nil || kombu.Observers(nil, nil) != nil {
		t.Error("Observers of nothing should be nil")
	}
	one := mk("solo")
	if kombu.Observers(nil, one) != one {
		t.Error("Observers of one should be that one")
	}
	obs := kombu.Observers(mk("a"), nil, mk("b"))
	ctx, end := obs.StartHandle(context.Background(), &kombu.Message{})
	if ctx.Value(namedKey("a")) == nil || ctx.Value(namedKey("b")) == nil {
		t.Error("contexts not threaded")
	}
	end(nil)
	_, end = obs.StartPublish(context.Background(), &kombu.PublishInfo{})
	end(nil)
	obs.Observe(context.Background(), kombu.Event{Kind: kombu.EventAcked})
	want := []string{"a start", "b start", "b end", "a end", "a start", "b start", "b end", "a end", "a acked", "b acked"}
	if !slices.Equal(order, want) {
		t.Errorf("order %q, want %q", order, want)
	}
}

type namedKey string

type namedObserver struct {
	name  string
	order *[]string
}

func (o *namedObserver) start(ctx context.Context) (context.Context, func(error)) {
	*o.order = append(*o.order, o.name+" start")
	return context.WithValue(ctx, namedKey(o.name), true), func(error) { *o.order = append(*o.order, o.name+" end") }
}

func (o *namedObserver) StartPublish(ctx context.Context, _ *kombu.PublishInfo) (context.Context, func(error)) {
	return o.start(ctx)
}

func (o *namedObserver) StartHandle(ctx context.Context, _ *kombu.Message) (context.Context, func(error)) {
	return o.start(ctx)
}

func (o *namedObserver) Observe(_ context.Context, e kombu.Event) {
	*o.order = append(*o.order, o.name+" "+e.Kind.String())
}

func TestEventKindNames(t *testing.T) {
	for k := kombu.EventConnected; k <= kombu.EventReturned; k++ {
		if s := k.String(); s == "" || strings.HasPrefix(s, "event(") {
			t.Errorf("EventKind %d has no name", k)
		}
	}
	if s := kombu.EventKind(200).String(); s != "event(200)" {
		t.Errorf("unknown kind: %q", s)
	}
}

func TestMiddlewareChainOrderOnConsumerAndWorker(t *testing.T) {
	var order []string
	var mu sync.Mutex
	mark := func(name string) kombu.Middleware {
		return func(next kombu.Handler) kombu.Handler {
			return kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
				mu.Lock()
				order = append(order, name)
				mu.Unlock()
				return next.HandleMessage(ctx, m)
			})
		}
	}
	h := kombu.Chain(kombu.HandlerFunc(func(context.Context, *kombu.Message) error {
		order = append(order, "handler")
		return nil
	}), mark("outer"), nil, mark("inner"))
	_ = h.HandleMessage(context.Background(), &kombu.Message{})
	if want := []string{"outer", "inner", "handler"}; !slices.Equal(order, want) {
		t.Fatalf("Chain order %q, want %q", order, want)
	}

	conn := dialObserved(t, nil, nil)
	ctx := context.Background()
	q := kombu.NewQueue("mw", kombu.DefaultExchange, "mw")
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, "x", &kombu.PublishOptions{RoutingKey: "mw", Declare: []kombu.Declarable{q}}); err != nil {
		t.Fatal(err)
	}
	order = nil
	handled := make(chan struct{})
	w, err := kombu.NewWorker(conn, []kombu.Queue{q}, kombu.HandlerFunc(func(context.Context, *kombu.Message) error {
		close(handled)
		return nil
	}), &kombu.WorkerOptions{Consumer: kombu.ConsumerOptions{Middleware: []kombu.Middleware{mark("first"), mark("second")}}})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = w.Run(ctx) }()
	select {
	case <-handled:
	case <-time.After(10 * time.Second):
		t.Fatal("worker handled nothing")
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"first", "second"}; !slices.Equal(order, want) {
		t.Errorf("worker middleware order %q, want %q", order, want)
	}

	// A middleware that returns nil is refused, not a panic per message.
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{
		Middleware: []kombu.Middleware{func(kombu.Handler) kombu.Handler { return nil }}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Consume(ctx, kombu.HandlerFunc(func(context.Context, *kombu.Message) error { return nil })); !errors.Is(err, kombu.ErrInvalidArgument) {
		t.Errorf("nil handler from middleware: %v", err)
	}
}

// Lifecycle events are written to the Logger, structured and without the
// password, and reach the observer.
func TestLifecycleLogs(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rec := &recorder{}
	ctx := context.Background()
	opts, f := flakyRegistry(t)
	opts.Logger, opts.Observer = logger, rec
	name := uniqueName(t)
	conn, err := kombu.Dial(ctx, "flaky://user:s3cret@down:1;flaky://user:s3cret@"+name+":2", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q := kombu.NewQueue("logged", kombu.DefaultExchange, "logged")
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.failPublishes.Store(1) // the first publish finds the connection lost, the retry works
	if err := p.Publish(ctx, "x", &kombu.PublishOptions{RoutingKey: "logged", Declare: []kombu.Declarable{q}, Retry: true,
		RetryPolicy: &kombu.RetryPolicy{IntervalStep: time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	consumeAll(t, conn, q, nil, 1, func(context.Context, *kombu.Message) error { return nil })
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f.endQueue.Store("logged") // the broker ends the consumer
	if _, err := c.Receive(ctx); !errors.Is(err, kombu.ErrNotFound) {
		t.Fatalf("Receive after the broker ended the consumer: %v", err)
	}
	out := buf.String()
	if strings.Contains(out, "s3cret") {
		t.Errorf("the log shows the password:\n%s", out)
	}
	up := "flaky://user:**@" + name + ":2"
	for _, want := range []string{
		`"level":"WARN","msg":"kombu: failing over to the next URL","event":"failover","transport":"flaky","url":"flaky://user:**@down:1","to_url":"` + up + `","err":`,
		`"level":"INFO","msg":"kombu: connected","event":"connected","transport":"flaky","url":"` + up + `"}`,
		`"level":"WARN","msg":"kombu: connection lost","event":"connection_lost","transport":"flaky","err":"connection lost: broken pipe"}`,
		`"level":"WARN","msg":"kombu: retrying after a connection error","event":"retry","transport":"flaky","attempt":1,"wait":0,"err":`,
		`"level":"INFO","msg":"kombu: reconnected","event":"reconnected"`,
		`"level":"INFO","msg":"kombu: consumer started","event":"consumer_started","transport":"flaky","queue":"logged"}`,
		`"level":"INFO","msg":"kombu: consumer stopped","event":"consumer_stopped","transport":"flaky","queue":"logged","err":"context canceled"}`,
		`"level":"WARN","msg":"kombu: channel error","event":"channel_error","transport":"flaky","queue":"logged","err":`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s\nlog:\n%s", want, out)
		}
	}
	if strings.Contains(out, "acked") || strings.Contains(out, "delivered") {
		t.Errorf("message events must not be logged:\n%s", out)
	}
	for kind, want := range map[string]int{"failover": 3, "connected": 1, "connection_lost": 1, "retry": 1, "reconnected": 1,
		"consumer_started": 1, "consumer_stopped": 1, "channel_error": 1} {
		if rec.count(kind) != want {
			t.Errorf("observer saw %q %d times, want %d", kind, rec.count(kind), want)
		}
	}
}

// Without a Logger nothing is written, and with one Ensure's retries are
// counted one by one.
func TestRetryEventsAreLogged(t *testing.T) {
	var buf bytes.Buffer
	opts, _ := flakyRegistry(t)
	opts.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	conn, err := kombu.NewConnection("flaky://down:1", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = conn.EnsureConnection(context.Background(), &kombu.RetryPolicy{MaxRetries: 2, IntervalStep: time.Millisecond})
	if err == nil {
		t.Fatal("connected to a host that is down")
	}
	out := buf.String()
	if n := strings.Count(out, "event=retry"); n != 2 || !strings.Contains(out, "attempt=2") {
		t.Errorf("want 2 retry lines, attempt 1 and 2:\n%s", out)
	}
}

// A Worker's reconnect attempts are retry events, logged and observed,
// and OnConnectionError still hears each.
func TestWorkerRetriesAreEvents(t *testing.T) {
	var buf bytes.Buffer
	opts, _ := flakyRegistry(t)
	opts.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	rec := &recorder{}
	opts.Observer = rec
	conn, err := kombu.NewConnection("flaky://down:1", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var heard int
	w, err := kombu.NewWorker(conn, []kombu.Queue{kombu.NewQueue("q", kombu.DefaultExchange, "q")},
		kombu.HandlerFunc(func(context.Context, *kombu.Message) error { return nil }),
		&kombu.WorkerOptions{MaxRetries: 3, IntervalStart: time.Millisecond, IntervalStep: time.Millisecond,
			OnConnectionError: func(error, time.Duration) { heard++ }})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Run(context.Background()); err == nil {
		t.Fatal("Run connected to a host that is down")
	}
	out := buf.String()
	if rec.count("retry") != heard || heard < 2 || strings.Count(out, "event=retry") != heard || !strings.Contains(out, "attempt=2") {
		t.Errorf("retry events %d, OnConnectionError %d, log:\n%s", rec.count("retry"), heard, out)
	}
}
