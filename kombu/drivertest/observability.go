package drivertest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

var observabilityCases = []testCase{
	{"TraceHeaders", testTraceHeaders},
	{"ForeignTraceHeaders", testForeignTraceHeaders},
}

// W3C Trace Context and Baggage headers as OpenTelemetry writes them, in
// Go (otelkombu) and in Python (the Celery instrumentation): plain string
// application headers.
var traceHeaders = map[string]string{
	"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	"tracestate":  "kombu=go,congo=t61rcWkgMzE",
	"baggage":     "tenant=acme,request.id=r-42",
}

// traceObserver injects traceHeaders into every publish, as a tracer
// does, and records what the handler and the events see.
type traceObserver struct {
	mu      sync.Mutex
	handled []map[string]any
	ends    []error
	events  map[kombu.EventKind]int
}

func (o *traceObserver) StartPublish(ctx context.Context, p *kombu.PublishInfo) (context.Context, func(error)) {
	if p.Headers == nil {
		p.Headers = map[string]any{}
	}
	for k, v := range traceHeaders {
		p.Headers[k] = v
	}
	return ctx, func(err error) {
		o.mu.Lock()
		o.ends = append(o.ends, err)
		o.mu.Unlock()
	}
}

func (o *traceObserver) StartHandle(ctx context.Context, m *kombu.Message) (context.Context, func(error)) {
	o.mu.Lock()
	o.handled = append(o.handled, m.Headers)
	o.mu.Unlock()
	return ctx, func(error) {}
}

func (o *traceObserver) Observe(_ context.Context, e kombu.Event) {
	o.mu.Lock()
	o.events[e.Kind]++
	o.mu.Unlock()
}

// checkTraceHeaders reports each trace header that did not arrive as the
// same string.
func (e *env) checkTraceHeaders(what string, h map[string]any) {
	e.t.Helper()
	for k, want := range traceHeaders {
		if got, ok := h[k].(string); !ok || got != want {
			e.t.Errorf("%s: header %s = %#v, want %q", what, k, h[k], want)
		}
	}
}

// testTraceHeaders: the headers an Observer adds at publish reach the
// handler unchanged on every transport, also on the copy the redelivery
// policy publishes after a failure, so a trace goes on across retries;
// and the observer hears each step.
func testTraceHeaders(e *env) {
	obs := &traceObserver{events: map[kombu.EventKind]int{}}
	opts := e.options()
	opts.Observer = obs
	conn := e.dial(&opts)
	q := e.simpleQueue("q")
	p := e.producer(conn, nil)
	e.publish(p, "traced", &kombu.PublishOptions{RoutingKey: q.Name})
	c := e.consumer(conn, []kombu.Queue{q}, &kombu.ConsumerOptions{
		Redelivery: &kombu.RedeliveryPolicy{InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond, MaxDeliveries: 5}})
	done := make(chan struct{})
	calls := 0
	stop := e.consume(c, func(ctx context.Context, m *kombu.Message) error {
		if calls++; calls == 1 {
			return errors.New("first delivery fails")
		}
		close(done)
		return nil
	})
	e.waitFor(done, "the redelivered message")
	stop()
	// The redelivery's event comes once its publish and ack are done,
	// which may be after the new copy was handled.
	e.eventually("the redelivered event", func() bool {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return obs.events[kombu.EventRedelivered] > 0
	})
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.handled) != 2 {
		e.t.Fatalf("handled %d deliveries, want 2", len(obs.handled))
	}
	e.checkTraceHeaders("first delivery", obs.handled[0])
	e.checkTraceHeaders("redelivery", obs.handled[1])
	if len(obs.ends) != 1 || obs.ends[0] != nil {
		e.t.Errorf("publish outcomes %v, want one success", obs.ends)
	}
	for kind, want := range map[kombu.EventKind]int{kombu.EventDelivered: 2, kombu.EventRedelivered: 1, kombu.EventAcked: 1} {
		if got := obs.events[kind]; got != want {
			e.t.Errorf("observer saw %v %d times, want %d (all %v)", kind, got, want, obs.events)
		}
	}
}

// testForeignTraceHeaders: trace headers set by a producer that knows
// nothing of kombu-go's observer (a Python Celery client writes them
// beside its own headers) arrive unchanged.
func testForeignTraceHeaders(e *env) {
	q := e.simpleQueue("q")
	h := map[string]any{"id": "3149beef-4e06-4ae5-a9d6-9ab1c6e7f0b1", "task": "tasks.add", "lang": "py"}
	for k, v := range traceHeaders {
		h[k] = v
	}
	e.publish(e.producer(nil, nil), "task", &kombu.PublishOptions{RoutingKey: q.Name, Headers: h})
	m := e.recv(e.consumer(nil, []kombu.Queue{q}, nil))
	e.checkTraceHeaders("foreign publish", m.Headers)
	if m.Headers["task"] != "tasks.add" {
		e.t.Errorf("task header %#v", m.Headers["task"])
	}
	e.ack(m)
}
