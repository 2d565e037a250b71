package otelkombu_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/otelkombu"
)

// discard is a span exporter that drops every span: the cost measured is
// the SDK's (sampling, recording, attributes), not an export's.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// cpuTime is the CPU time of the process (every thread), to the
// nanosecond (getrusage counts in scheduler ticks).
func cpuTime() time.Duration {
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockProcessCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		panic(errno)
	}
	return time.Duration(ts.Nano())
}

const clockProcessCPUTimeID = 2 // CLOCK_PROCESS_CPUTIME_ID

// benchEndToEnd publishes b.N messages of about 1 KiB on url from one
// goroutine while a Consumer's Handler decodes and acks them.
func benchEndToEnd(b *testing.B, url string, obs kombu.Observer) {
	ctx := context.Background()
	conn, err := kombu.Dial(ctx, url, &kombu.Options{Observer: obs})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	name := fmt.Sprintf("otel-bench-%d-%d", time.Now().UnixNano(), seq.Add(1))
	q := kombu.NewQueue(name, kombu.DefaultExchange, name)
	p, err := conn.Producer(ctx, &kombu.ProducerOptions{RoutingKey: name})
	if err != nil {
		b.Fatal(err)
	}
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: 256})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if ch, err := conn.Channel(ctx); err == nil {
			_, _ = q.Delete(ctx, ch, false, false)
			_ = ch.Close()
		}
	}()
	body := map[string]any{"task": "tasks.process", "args": []int{1, 2, 3}, "payload": strings.Repeat("x", 900)}
	cctx, stop := context.WithCancel(ctx)
	handled := 0
	done := make(chan error, 1)
	go func() {
		done <- c.Consume(cctx, kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
			var v map[string]any
			if err := m.Decode(&v); err != nil {
				return err
			}
			if handled++; handled == b.N {
				stop()
			}
			return nil
		}))
	}()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		if err := p.Publish(ctx, body, nil); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.StopTimer()
	// CPU time of the process (every goroutine, GC included) per message:
	// steadier than wall time on a shared machine.
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	if handled != b.N {
		b.Fatalf("handled %d of %d", handled, b.N)
	}
}

// BenchmarkEndToEnd: the cost per message of tracing and metrics.
//
//   - Off: no Observer (what every program that does not import
//     otelkombu runs).
//   - HookOnly: an Observer that does nothing (the core's hook alone).
//   - NoopProviders: otelkombu with OpenTelemetry's no-op tracer and meter
//     providers (instrumented, nothing configured).
//   - SDKNotSampled: the SDK with sampling off (as head sampling leaves
//     most messages), metrics on.
//   - SDKDiscard: the OpenTelemetry SDK sampling every span, with an
//     exporter that drops them, and an SDK meter provider aggregating
//     every measurement.
//   - SDKDiscardNoExemplars: the same with the SDK's exemplars off (by
//     default every measurement under a sampled span offers one).
//   - SDKSampled10pct: head sampling of one trace in ten
//     (ParentBased(TraceIDRatioBased(0.1))), metrics on.
//   - SDKBare: the floor, bareObserver below: the SDK's own spans,
//     propagation and measurements without otelkombu's attributes.
func BenchmarkEndToEnd(b *testing.B) {
	benchVariants(b, func() string { return fmt.Sprintf("memory://otel-bench-%d", seq.Add(1)) })
}

// BenchmarkEndToEndRedis is BenchmarkEndToEnd on the redis server of
// KOMBU_TEST_REDIS_URL: the same cost against a network round trip.
func BenchmarkEndToEndRedis(b *testing.B) {
	url := testenv.ServerURL(b, "KOMBU_TEST_REDIS_URL")
	benchVariants(b, func() string { return url })
}

func benchVariants(b *testing.B, url func() string) {
	b.Run("Off", func(b *testing.B) { benchEndToEnd(b, url(), nil) })
	for _, v := range observerVariants {
		b.Run(v.name, func(b *testing.B) { benchEndToEnd(b, url(), v.observer(b)) })
	}
}

// observerVariants are the Observers the benchmarks compare with none.
var observerVariants = []struct {
	name     string
	observer func(b *testing.B) kombu.Observer
}{
	{"HookOnly", func(*testing.B) kombu.Observer { return idleObserver{} }},
	{"NoopProviders", func(b *testing.B) kombu.Observer {
		return newObserver(b, tracenoop.NewTracerProvider(), metricnoop.NewMeterProvider())
	}},
	{"SDKNotSampled", func(b *testing.B) kombu.Observer {
		return newObserver(b, sdktrace.NewTracerProvider(sdktrace.WithSyncer(discard{}), sdktrace.WithSampler(sdktrace.NeverSample())), sdkMeter())
	}},
	{"SDKSampled10pct", func(b *testing.B) kombu.Observer {
		return newObserver(b, sdktrace.NewTracerProvider(sdktrace.WithSyncer(discard{}),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1)))), sdkMeter())
	}},
	{"SDKDiscard", func(b *testing.B) kombu.Observer {
		return newObserver(b, sdktrace.NewTracerProvider(sdktrace.WithSyncer(discard{})), sdkMeter())
	}},
	{"SDKDiscardNoExemplars", func(b *testing.B) kombu.Observer {
		return newObserver(b, sdktrace.NewTracerProvider(sdktrace.WithSyncer(discard{})),
			sdkMeter(sdkmetric.WithExemplarFilter(exemplar.AlwaysOffFilter)))
	}},
	{"SDKBare", func(b *testing.B) kombu.Observer {
		return newBareObserver(b, sdktrace.NewTracerProvider(sdktrace.WithSyncer(discard{})), sdkMeter())
	}},
}

func sdkMeter(opts ...sdkmetric.Option) metric.MeterProvider {
	return sdkmetric.NewMeterProvider(append(opts, sdkmetric.WithReader(sdkmetric.NewManualReader()))...)
}

func newObserver(b *testing.B, tp trace.TracerProvider, mp metric.MeterProvider) kombu.Observer {
	obs, err := otelkombu.New(otelkombu.WithTracerProvider(tp), otelkombu.WithMeterProvider(mp))
	if err != nil {
		b.Fatal(err)
	}
	return obs
}

// idleObserver does nothing: what remains is the core's hook.
type idleObserver struct{}

func (idleObserver) StartPublish(ctx context.Context, _ *kombu.PublishInfo) (context.Context, func(error)) {
	return ctx, func(error) {}
}

func (idleObserver) StartHandle(ctx context.Context, _ *kombu.Message) (context.Context, func(error)) {
	return ctx, func(error) {}
}

func (idleObserver) Observe(context.Context, kombu.Event) {}

// bareObserver is the least an OpenTelemetry observer can do per message
// with the SDK: the two spans without attributes, W3C inject and extract,
// and the five measurements otelkombu makes (sent, publish duration,
// consumed, acked, process duration) with one attribute set. otelkombu
// cannot cost less than this; the difference is its attributes.
type bareObserver struct {
	tracer                 trace.Tracer
	prop                   propagation.TraceContext
	sent, consumed, acked  metric.Int64Counter
	publishDur, processDur metric.Float64Histogram
	add                    []metric.AddOption
	rec                    []metric.RecordOption
}

func newBareObserver(b *testing.B, tp trace.TracerProvider, mp metric.MeterProvider) *bareObserver {
	m := mp.Meter("bare")
	o := &bareObserver{tracer: tp.Tracer("bare")}
	set := metric.WithAttributeSet(attribute.NewSet(attribute.String("messaging.destination.name", "bench")))
	o.add, o.rec = []metric.AddOption{set}, []metric.RecordOption{set}
	var errs [5]error
	o.sent, errs[0] = m.Int64Counter("sent")
	o.consumed, errs[1] = m.Int64Counter("consumed")
	o.acked, errs[2] = m.Int64Counter("acked")
	o.publishDur, errs[3] = m.Float64Histogram("publish")
	o.processDur, errs[4] = m.Float64Histogram("process")
	if err := errors.Join(errs[:]...); err != nil {
		b.Fatal(err)
	}
	return o
}

var (
	bareProducer = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer)}
	bareConsumer = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
)

func (o *bareObserver) StartPublish(ctx context.Context, p *kombu.PublishInfo) (context.Context, func(error)) {
	ctx, span := o.tracer.Start(ctx, "publish bench", bareProducer...)
	if p.Headers == nil {
		p.Headers = map[string]any{}
	}
	o.prop.Inject(ctx, bareCarrier(p.Headers))
	start := time.Now()
	return ctx, func(error) {
		o.publishDur.Record(ctx, time.Since(start).Seconds(), o.rec...)
		o.sent.Add(ctx, 1, o.add...)
		span.End()
	}
}

func (o *bareObserver) StartHandle(ctx context.Context, m *kombu.Message) (context.Context, func(error)) {
	ctx, span := o.tracer.Start(o.prop.Extract(ctx, bareCarrier(m.Headers)), "process bench", bareConsumer...)
	start := time.Now()
	return ctx, func(error) {
		o.processDur.Record(ctx, time.Since(start).Seconds(), o.rec...)
		span.End()
	}
}

func (o *bareObserver) Observe(ctx context.Context, e kombu.Event) {
	switch e.Kind {
	case kombu.EventDelivered:
		o.consumed.Add(ctx, 1, o.add...)
	case kombu.EventAcked:
		o.acked.Add(ctx, 1, o.add...)
	}
}

type bareCarrier map[string]any

func (c bareCarrier) Get(key string) string { s, _ := c[key].(string); return s }
func (c bareCarrier) Set(key, value string) { c[key] = value }
func (c bareCarrier) Keys() []string        { return nil }

// BenchmarkObserverPerMessage is the observer's own cost per message,
// without a broker: one publish span, one process span, and the events a
// message causes (delivered, acked).
func BenchmarkObserverPerMessage(b *testing.B) {
	ctx := context.Background()
	conn, err := kombu.Dial(ctx, fmt.Sprintf("memory://otel-bench-%d", seq.Add(1)), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	sq, err := conn.SimpleQueue(ctx, "bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer sq.Close()
	if err := sq.Put(ctx, "x", nil); err != nil {
		b.Fatal(err)
	}
	m, err := sq.Get(ctx)
	if err != nil {
		b.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(discard{}))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	obs, err := otelkombu.New(otelkombu.WithTracerProvider(tp), otelkombu.WithMeterProvider(mp))
	if err != nil {
		b.Fatal(err)
	}
	info := kombu.PublishInfo{Transport: "memory", RoutingKey: "bench", BodySize: 1000}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	defer func() { b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op") }()
	for i := 0; i < b.N; i++ {
		pi := info
		pctx, end := obs.StartPublish(ctx, &pi)
		end(nil)
		m.Headers = pi.Headers
		hctx, end := obs.StartHandle(pctx, m)
		obs.Observe(hctx, kombu.Event{Kind: kombu.EventDelivered, Transport: "memory", Queue: "bench", Message: m})
		obs.Observe(hctx, kombu.Event{Kind: kombu.EventAcked, Transport: "memory", Queue: "bench", Message: m})
		end(nil)
	}
}
