package otelkombu_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/otelkombu"
	_ "github.com/kombu-go/kombu/transport/memory"
)

// telemetry is an in-memory span exporter and metric reader around an
// otelkombu.Observer.
type telemetry struct {
	spans  *tracetest.InMemoryExporter
	reader *sdkmetric.ManualReader
	tp     *sdktrace.TracerProvider
	obs    *otelkombu.Observer
}

func newTelemetry(t testing.TB) *telemetry {
	t.Helper()
	tel := &telemetry{spans: tracetest.NewInMemoryExporter(), reader: sdkmetric.NewManualReader()}
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(tel.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	obs, err := otelkombu.New(otelkombu.WithTracerProvider(tel.tp), otelkombu.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	tel.obs = obs
	return tel
}

// span returns the one ended span named name.
func (tel *telemetry) span(t testing.TB, name string) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, s := range tel.spans.GetSpans() {
		if s.Name == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans named %q, want 1; spans: %v", len(found), name, tel.names())
	}
	return found[0]
}

func (tel *telemetry) names() []string {
	var names []string
	for _, s := range tel.spans.GetSpans() {
		names = append(names, s.Name)
	}
	return names
}

// counters sums every int64 sum metric by name and destination.
func (tel *telemetry) counters(t testing.TB) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					dest, _ := p.Attributes.Value("messaging.destination.name")
					out[m.Name+" "+dest.AsString()] += p.Value
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					dest, _ := p.Attributes.Value("messaging.destination.name")
					out[m.Name+" "+dest.AsString()] = p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					dest, _ := p.Attributes.Value("messaging.destination.name")
					out[m.Name+" "+dest.AsString()] += int64(p.Count)
				}
			}
		}
	}
	return out
}

func attr(s tracetest.SpanStub, key string) attribute.Value {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

var seq atomic.Int64

// runTrace publishes a message under a parent span; the handler answers
// on a reply queue with the handler's context, and a second handler
// consumes the reply. It checks the whole trace on url.
func runTrace(t *testing.T, url string, tel *telemetry) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := kombu.Dial(ctx, url, &kombu.Options{Observer: tel.obs})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	id := fmt.Sprintf("otel-%d-%d", time.Now().UnixNano(), seq.Add(1))
	tasks := kombu.Queue{Name: id + ".tasks", Exchange: kombu.DefaultExchange, RoutingKey: id + ".tasks", AutoDelete: true}
	replies := kombu.Queue{Name: id + ".replies", Exchange: kombu.DefaultExchange, RoutingKey: id + ".replies", AutoDelete: true}
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Consumers first: auto-delete queues exist once consumed.
	c, err := conn.Consumer(ctx, []kombu.Queue{tasks, replies}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	reqCtx, req := tel.tp.Tracer("test").Start(ctx, "request")
	if err := p.Publish(reqCtx, map[string]any{"n": 1}, &kombu.PublishOptions{RoutingKey: tasks.Name, MessageID: "m-1", CorrelationID: "c-1"}); err != nil {
		t.Fatal(err)
	}
	req.End()

	var handlerSpans []trace.SpanContext
	done := make(chan struct{})
	go func() {
		_ = c.Consume(ctx, kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
			handlerSpans = append(handlerSpans, trace.SpanContextFromContext(ctx))
			if m.Queue == tasks.Name {
				return p.Publish(ctx, "reply", &kombu.PublishOptions{RoutingKey: replies.Name})
			}
			close(done)
			return nil
		}))
	}()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("the reply was not handled")
	}
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	request := tel.span(t, "request")
	publish := tel.span(t, "publish "+tasks.Name)
	process := tel.span(t, "process "+tasks.Name)
	reply := tel.span(t, "publish "+replies.Name)
	processReply := tel.span(t, "process "+replies.Name)
	traceID := request.SpanContext.TraceID()
	for _, s := range []tracetest.SpanStub{publish, process, reply, processReply} {
		if s.SpanContext.TraceID() != traceID {
			t.Errorf("%s is in trace %s, want %s", s.Name, s.SpanContext.TraceID(), traceID)
		}
	}
	for _, link := range []struct{ child, parent tracetest.SpanStub }{
		{publish, request}, {process, publish}, {reply, process}, {processReply, reply},
	} {
		if link.child.Parent.SpanID() != link.parent.SpanContext.SpanID() {
			t.Errorf("%q's parent is %s, want %q (%s)", link.child.Name, link.child.Parent.SpanID(), link.parent.Name, link.parent.SpanContext.SpanID())
		}
	}
	if publish.SpanKind != trace.SpanKindProducer || process.SpanKind != trace.SpanKindConsumer {
		t.Errorf("kinds: publish %v, process %v", publish.SpanKind, process.SpanKind)
	}
	if len(handlerSpans) != 2 || handlerSpans[0].SpanID() != process.SpanContext.SpanID() {
		t.Errorf("the handler's context does not carry the process span")
	}
	transport := conn.TransportName()
	for key, want := range map[string]string{
		"messaging.system": otelkombu.System(transport), "messaging.operation.type": "send", "messaging.operation.name": "publish",
		"messaging.destination.name": tasks.Name, "messaging.message.id": "m-1", "messaging.message.conversation_id": "c-1",
	} {
		if got := attr(publish, key).Emit(); got != want {
			t.Errorf("publish span %s = %q, want %q", key, got, want)
		}
	}
	for key, want := range map[string]string{
		"messaging.operation.type": "process", "messaging.destination.name": tasks.Name, "messaging.message.id": "m-1",
		otelkombu.AttrDeliveryCount: "1", "messaging.message.body.size": "7",
	} {
		if got := attr(process, key).Emit(); got != want {
			t.Errorf("process span %s = %q, want %q", key, got, want)
		}
	}
	if got := attr(process, otelkombu.AttrSettlement).AsString(); got != "acked" || len(process.Events) != 0 {
		t.Errorf("process span settlement %q, events %v: want acked, and no event without WithSettlementEvents", got, process.Events)
	}

	counts := tel.counters(t)
	for name, want := range map[string]int64{
		otelkombu.MetricSent + " " + tasks.Name:              1,
		otelkombu.MetricSent + " " + replies.Name:            1,
		otelkombu.MetricConsumed + " " + tasks.Name:          1,
		otelkombu.MetricConsumed + " " + replies.Name:        1,
		otelkombu.MetricAcked + " " + tasks.Name:             1,
		otelkombu.MetricAcked + " " + replies.Name:           1,
		otelkombu.MetricOperationDuration + " " + tasks.Name: 1,
		otelkombu.MetricProcessDuration + " " + tasks.Name:   1,
		otelkombu.MetricConnections + " ":                    1,
	} {
		if counts[name] != want {
			t.Errorf("%s = %d, want %d (all: %v)", name, counts[name], want, counts)
		}
	}
}

func TestTraceFromPublisherThroughHandlerOnMemory(t *testing.T) {
	runTrace(t, "memory://otel-trace", newTelemetry(t))
}

func TestMetricsCountSettlementsAndFailures(t *testing.T) {
	tel := newTelemetry(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := kombu.Dial(ctx, "memory://otel-metrics", &kombu.Options{Observer: tel.obs})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q := kombu.NewQueue("work", kombu.DefaultExchange, "work")
	p, err := conn.Producer(ctx, &kombu.ProducerOptions{OnReturn: func(kombu.Return) {}})
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"ok", "fail", "ok"} {
		if err := p.Publish(ctx, body, &kombu.PublishOptions{RoutingKey: "work", Declare: []kombu.Declarable{q}, ContentType: "text/plain"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Publish(ctx, "bad", &kombu.PublishOptions{RoutingKey: "work", ContentType: "application/x-refused"}); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, "lost", &kombu.PublishOptions{RoutingKey: "nowhere", Mandatory: true}); err != nil {
		t.Fatal(err)
	}
	reg, err := tel.obs.ObserveQueues(conn, "work", "missing-queue")
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()
	if depth := tel.counters(t)[otelkombu.MetricQueueDepth+" work"]; depth != 4 {
		t.Errorf("queue depth %d, want 4", depth)
	}
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{
		Redelivery: &kombu.RedeliveryPolicy{MaxDeliveries: 2, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	handled := 0
	cctx, stop := context.WithCancel(ctx)
	err = c.Consume(cctx, kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
		handled++
		if handled == 4 {
			stop()
		}
		if string(m.Body) == "fail" {
			return errors.New("handler failed")
		}
		return nil
	}))
	if !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	_ = c.Close()
	counts := tel.counters(t)
	for name, want := range map[string]int64{
		otelkombu.MetricSent + " work":              4,
		otelkombu.MetricSent + " nowhere":           1, // confirmed, then returned
		otelkombu.MetricReturned + " nowhere":       1,
		otelkombu.MetricConsumed + " work":          5, // ok, fail, ok, bad, fail again
		otelkombu.MetricAcked + " work":             2,
		otelkombu.MetricRedelivered + " work":       1,
		otelkombu.MetricDeadLettered + " work":      1,
		otelkombu.MetricDecodeErrors + " work":      1,
		otelkombu.MetricRejected + " work":          1,
		otelkombu.MetricProcessDuration + " work":   4,
		otelkombu.MetricQueueDepth + " work":        0,
		otelkombu.MetricQueueConsumers + " work":    0,
		otelkombu.MetricOperationDuration + " work": 4,
	} {
		if counts[name] != want {
			t.Errorf("%s = %d, want %d (all: %v)", name, counts[name], want, counts)
		}
	}
	if _, ok := counts[otelkombu.MetricQueueDepth+" missing-queue"]; ok {
		t.Error("a missing queue reported a depth")
	}
	// The failed handler's spans say so.
	var failed int
	for _, s := range tel.spans.GetSpans() {
		if s.Name == "process work" && s.Status.Description == "handler failed" {
			failed++
			if attr(s, "error.type").AsString() != "_OTHER" {
				t.Errorf("error.type %q", attr(s, "error.type").AsString())
			}
		}
	}
	if failed != 2 {
		t.Errorf("%d failed process spans, want 2", failed)
	}
	// Each process span says how its message was settled, if it was
	// while the span ran: the redelivery comes after a backoff (1ms),
	// before or after the failed handler's span has ended.
	settlements := map[string]int{}
	for _, s := range tel.spans.GetSpans() {
		if s.Name == "process work" {
			settlements[attr(s, otelkombu.AttrSettlement).AsString()]++
		}
	}
	settlements["redelivered"] += settlements[""]
	delete(settlements, "")
	if want := map[string]int{"acked": 2, "dead_lettered": 1, "redelivered": 1}; fmt.Sprint(settlements) != fmt.Sprint(want) {
		t.Errorf("settlements of the process spans %v, want %v (redelivered or none)", settlements, want)
	}
	// The second delivery of "fail" counts as attempt 2.
	attempts := map[int64]int{}
	for _, s := range tel.spans.GetSpans() {
		if s.Name == "process work" {
			attempts[attr(s, otelkombu.AttrDeliveryCount).AsInt64()]++
		}
	}
	if attempts[2] != 1 {
		t.Errorf("delivery attempts %v, want one span with attempt 2", attempts)
	}
}

// traceparentFormat is W3C Trace Context version 00, as OpenTelemetry's
// Python propagator writes and parses it.
var traceparentFormat = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$`)

func TestHeadersFollowW3CTraceContext(t *testing.T) {
	tel := newTelemetry(t)
	ctx := context.Background()
	conn, err := kombu.Dial(ctx, "memory://otel-headers", &kombu.Options{Observer: tel.obs})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sq, err := conn.SimpleQueue(ctx, "headers", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	// A Python producer's headers: traceparent and tracestate, strings
	// among Celery's own headers.
	pyTrace := "4bf92f3577b34da6a3ce929d0e0e4736"
	pyHeaders := map[string]any{"id": "task-1", "task": "tasks.add", "traceparent": "00-" + pyTrace + "-00f067aa0ba902b7-01", "tracestate": "congo=t61rcWkgMzE"}
	if err := sq.Put(ctx, "from python", &kombu.PublishOptions{Headers: pyHeaders}); err != nil {
		t.Fatal(err)
	}
	gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := sq.Get(gctx)
	if err != nil {
		t.Fatal(err)
	}
	// Our publish span became the parent: a Go publish under no span
	// starts a new trace, and the Python context is replaced.
	tp, _ := m.Headers["traceparent"].(string)
	if !traceparentFormat.MatchString(tp) || strings.Contains(tp, pyTrace) {
		t.Fatalf("traceparent %q: want a fresh W3C trace context", tp)
	}
	_ = m.Ack(ctx)

	// A message as Python publishes it (no observer on that connection)
	// continues its trace in the Go handler.
	plain, err := kombu.Dial(ctx, "memory://otel-headers", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	psq, err := plain.SimpleQueue(ctx, "headers", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer psq.Close()
	if err := psq.Put(ctx, "from python", &kombu.PublishOptions{Headers: pyHeaders}); err != nil {
		t.Fatal(err)
	}
	m, err = sq.Get(gctx)
	if err != nil {
		t.Fatal(err)
	}
	hctx, end := tel.obs.StartHandle(ctx, m)
	sc := trace.SpanContextFromContext(hctx)
	end(nil)
	if sc.TraceID().String() != pyTrace || sc.TraceState().Get("congo") != "t61rcWkgMzE" {
		t.Errorf("handler span %s / %q, want trace %s with tracestate congo", sc.TraceID(), sc.TraceState().String(), pyTrace)
	}
	if s := tel.span(t, "process headers"); s.Parent.SpanID().String() != "00f067aa0ba902b7" || !s.Parent.IsRemote() {
		t.Errorf("process span parent %s remote=%v", s.Parent.SpanID(), s.Parent.IsRemote())
	}
	_ = m.Ack(ctx)
}

func TestReceiveSpanLinksToPublisher(t *testing.T) {
	tel := newTelemetry(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := kombu.Dial(ctx, "memory://otel-receive", &kombu.Options{Observer: tel.obs})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q := kombu.NewQueue("pull", kombu.DefaultExchange, "pull")
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, "x", &kombu.PublishOptions{RoutingKey: "pull"}); err != nil {
		t.Fatal(err)
	}
	m, err := tel.obs.Receive(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	_ = m.Ack(ctx)
	recv, pub := tel.span(t, "receive pull"), tel.span(t, "publish pull")
	if len(recv.Links) != 1 || recv.Links[0].SpanContext.SpanID() != pub.SpanContext.SpanID() {
		t.Errorf("receive span links %v, want the publish span", recv.Links)
	}
	if attr(recv, "messaging.operation.type").AsString() != "receive" || recv.SpanKind != trace.SpanKindConsumer {
		t.Errorf("receive span attributes %v kind %v", recv.Attributes, recv.SpanKind)
	}
	// A receive that fails records the error.
	short, cancelShort := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancelShort()
	if _, err := tel.obs.Receive(short, c); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive on an empty queue: %v", err)
	}
	var failed bool
	for _, s := range tel.spans.GetSpans() {
		failed = failed || (s.Name == "receive pull" && attr(s, "error.type").AsString() == "deadline_exceeded")
	}
	if !failed {
		t.Error("no failed receive span")
	}
}

// A message handled by hand (Get, then StartHandle) gets its settlement
// on its own process span, even when settled from another goroutine, and
// not on the span of another message being handled; settled under a
// plain span, that span gets it.
func TestSettlementOnTheRightSpan(t *testing.T) {
	tel := newTelemetry(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := kombu.Dial(ctx, "memory://otel-settle", &kombu.Options{Observer: tel.obs})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sq, err := conn.SimpleQueue(ctx, "settle", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	for _, body := range []string{"first", "second", "third"} {
		if err := sq.Put(ctx, body, nil); err != nil {
			t.Fatal(err)
		}
	}
	first, err := sq.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second, err := sq.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Handling first, the handler requeues second: first's span has no
	// settlement.
	hctx, end := tel.obs.StartHandle(ctx, first)
	if err := second.Requeue(hctx); err != nil {
		t.Fatal(err)
	}
	end(nil)
	// Handling first again, it is rejected from another goroutine.
	hctx, end = tel.obs.StartHandle(ctx, first)
	settled := make(chan error)
	go func() { settled <- first.Reject(hctx) }()
	if err := <-settled; err != nil {
		t.Fatal(err)
	}
	end(nil)
	var got []string
	for _, s := range tel.spans.GetSpans() {
		if s.Name == "process settle" {
			got = append(got, attr(s, otelkombu.AttrSettlement).AsString())
		}
	}
	if want := []string{"", "rejected"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("settlements of the process spans %q, want %q", got, want)
	}

	third, err := sq.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	uctx, user := tel.tp.Tracer("test").Start(ctx, "user work")
	if err := third.Ack(uctx); err != nil {
		t.Fatal(err)
	}
	user.End()
	if got := attr(tel.span(t, "user work"), otelkombu.AttrSettlement).AsString(); got != "acked" {
		t.Errorf("user span settlement %q, want acked", got)
	}
}

// WithSettlementEvents adds a span event per settlement, with the
// decode error's message.
func TestSettlementEvents(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	obs, err := otelkombu.New(otelkombu.WithTracerProvider(tp), otelkombu.WithSettlementEvents())
	if err != nil {
		t.Fatal(err)
	}
	ctx, span := tp.Tracer("test").Start(context.Background(), "process q")
	obs.Observe(ctx, kombu.Event{Kind: kombu.EventRequeued, Transport: "memory", Queue: "q"})
	obs.Observe(ctx, kombu.Event{Kind: kombu.EventDecodeError, Transport: "memory", Queue: "q", Err: errors.New("bad json")})
	obs.Observe(ctx, kombu.Event{Kind: kombu.EventDelivered, Transport: "memory", Queue: "q"}) // not a settlement
	span.End()
	got := spans.GetSpans()[0]
	var events []string
	for _, e := range got.Events {
		desc := e.Name
		for _, kv := range e.Attributes {
			desc += " " + string(kv.Key) + "=" + kv.Value.Emit()
		}
		events = append(events, desc)
	}
	want := []string{"requeued messaging.kombu.event=requeued",
		"decode_error messaging.kombu.event=decode_error exception.message=bad json"}
	if fmt.Sprint(events) != fmt.Sprint(want) {
		t.Errorf("events %q, want %q", events, want)
	}
	if s := attr(got, otelkombu.AttrSettlement).AsString(); s != "decode_error" {
		t.Errorf("settlement %q, want the last one, decode_error", s)
	}
}

// An event kind this package does not know is ignored, not a panic.
func TestUnknownEventKind(t *testing.T) {
	tel := newTelemetry(t)
	tel.obs.Observe(context.Background(), kombu.Event{Kind: 250, Queue: "q"})
	if n := len(tel.counters(t)); n != 0 {
		t.Errorf("%d metrics recorded for an unknown kind", n)
	}
}

func TestSystemNames(t *testing.T) {
	for transport, want := range map[string]string{"amqp": "rabbitmq", "amqps": "rabbitmq", "sqs": "aws_sqs", "redis": "redis", "memory": "memory"} {
		if got := otelkombu.System(transport); got != want {
			t.Errorf("System(%q) = %q, want %q", transport, got, want)
		}
	}
}

// With spans sampled out, the metrics are still all recorded and the
// trace context still travels (not sampled); with no tracer at all
// (OpenTelemetry's no-op), no header is written.
func TestMetricsWithoutSampledSpans(t *testing.T) {
	for _, tc := range []struct {
		name       string
		tp         trace.TracerProvider
		wantHeader string
	}{
		{"never sampled", sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample())), "-00"},
		{"no-op tracer", tracenoop.NewTracerProvider(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reader := sdkmetric.NewManualReader()
			obs, err := otelkombu.New(otelkombu.WithTracerProvider(tc.tp),
				otelkombu.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
			if err != nil {
				t.Fatal(err)
			}
			tel := &telemetry{reader: reader, obs: obs}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := kombu.Dial(ctx, fmt.Sprintf("memory://otel-unsampled-%d", seq.Add(1)), &kombu.Options{Observer: obs})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			q := kombu.NewQueue("unsampled", kombu.DefaultExchange, "unsampled")
			c, err := conn.Consumer(ctx, []kombu.Queue{q}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			p, err := conn.Producer(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Publish(ctx, "x", &kombu.PublishOptions{RoutingKey: "unsampled"}); err != nil {
				t.Fatal(err)
			}
			var header string
			cctx, stop := context.WithCancel(ctx)
			_ = c.Consume(cctx, kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
				header, _ = m.Headers["traceparent"].(string)
				stop()
				return nil
			}))
			if !strings.HasSuffix(header, tc.wantHeader) || (tc.wantHeader == "") != (header == "") {
				t.Errorf("traceparent %q, want one ending in %q", header, tc.wantHeader)
			}
			counts := tel.counters(t)
			for _, name := range []string{otelkombu.MetricSent, otelkombu.MetricOperationDuration, otelkombu.MetricConsumed,
				otelkombu.MetricAcked, otelkombu.MetricProcessDuration} {
				if counts[name+" unsampled"] != 1 {
					t.Errorf("%s = %d, want 1 (all: %v)", name, counts[name+" unsampled"], counts)
				}
			}
		})
	}
}
