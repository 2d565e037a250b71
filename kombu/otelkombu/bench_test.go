package otelkombu_test

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/otelkombu"
)

// discard is a span exporter that drops every span: the cost measured is
// the SDK's (sampling, recording, attributes), not an export's.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchEndToEnd publishes b.N messages of about 1 KiB on memory:// from
// one goroutine while a Consumer's Handler decodes and acks them.
func benchEndToEnd(b *testing.B, obs kombu.Observer) {
	ctx := context.Background()
	conn, err := kombu.Dial(ctx, fmt.Sprintf("memory://otel-bench-%d", seq.Add(1)), &kombu.Options{Observer: obs})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	q := kombu.NewQueue("bench", kombu.DefaultExchange, "bench")
	p, err := conn.Producer(ctx, &kombu.ProducerOptions{RoutingKey: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: 256})
	if err != nil {
		b.Fatal(err)
	}
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
//   - NoopProviders: otelkombu with OpenTelemetry's no-op tracer and meter
//     providers (instrumented, nothing configured).
//   - SDKNotSampled: the SDK with sampling off (as head sampling leaves
//     most messages), metrics on.
//   - SDKDiscard: the OpenTelemetry SDK sampling every span, with an
//     exporter that drops them, and an SDK meter provider aggregating
//     every measurement.
func BenchmarkEndToEnd(b *testing.B) {
	b.Run("Off", func(b *testing.B) { benchEndToEnd(b, nil) })
	b.Run("NoopProviders", func(b *testing.B) {
		obs, err := otelkombu.New(otelkombu.WithTracerProvider(tracenoop.NewTracerProvider()),
			otelkombu.WithMeterProvider(metricnoop.NewMeterProvider()))
		if err != nil {
			b.Fatal(err)
		}
		benchEndToEnd(b, obs)
	})
	b.Run("SDKNotSampled", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(discard{}), sdktrace.WithSampler(sdktrace.NeverSample()))
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		obs, err := otelkombu.New(otelkombu.WithTracerProvider(tp), otelkombu.WithMeterProvider(mp))
		if err != nil {
			b.Fatal(err)
		}
		benchEndToEnd(b, obs)
	})
	b.Run("SDKDiscard", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(discard{}))
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		obs, err := otelkombu.New(otelkombu.WithTracerProvider(tp), otelkombu.WithMeterProvider(mp))
		if err != nil {
			b.Fatal(err)
		}
		benchEndToEnd(b, obs)
	})
}

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
