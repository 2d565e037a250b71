package otelkombu_test

import (
	"context"
	"fmt"
	"sort"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/otelkombu"
	_ "github.com/kombu-go/kombu/transport/memory"
)

// Tracing and metrics for a producer and a worker: the publish span
// travels in the message headers, and the handler's process span is its
// child, in the same trace. The exporter and reader here keep everything
// in memory; a program would export with OTLP or Prometheus instead.
func Example() {
	ctx := context.Background()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	obs, err := otelkombu.New(otelkombu.WithTracerProvider(tp), otelkombu.WithMeterProvider(mp))
	if err != nil {
		panic(err)
	}
	conn, err := kombu.Dial(ctx, "memory://otel-example", &kombu.Options{Observer: obs})
	if err != nil {
		panic(err)
	}
	defer conn.Close()

	orders := kombu.NewQueue("orders", kombu.DefaultExchange, "orders")
	handled := make(chan struct{})
	worker, err := kombu.NewWorker(conn, []kombu.Queue{orders}, kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
		close(handled)
		return nil
	}), nil)
	if err != nil {
		panic(err)
	}
	go func() { _ = worker.Run(ctx) }()

	p, err := conn.Producer(ctx, nil)
	if err != nil {
		panic(err)
	}
	reqCtx, req := tp.Tracer("shop").Start(ctx, "POST /orders")
	if err := p.Publish(reqCtx, map[string]any{"order": 42}, &kombu.PublishOptions{RoutingKey: "orders", Declare: []kombu.Declarable{orders}}); err != nil {
		panic(err)
	}
	req.End()
	<-handled
	stopCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = worker.Shutdown(stopCtx)

	byID := map[string]string{}
	for _, s := range spans.GetSpans() {
		byID[s.SpanContext.SpanID().String()] = s.Name
	}
	var links []string // sorted: spans end in no fixed order
	for _, s := range spans.GetSpans() {
		if parent := byID[s.Parent.SpanID().String()]; parent != "" {
			links = append(links, parent+" <- "+s.Name)
		}
	}
	sort.Strings(links)
	for _, l := range links {
		fmt.Println(l)
	}
	var rm metricdata.ResourceMetrics
	_ = reader.Collect(ctx, &rm)
	var counters []string
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name != otelkombu.MetricConnections {
			counters = append(counters, fmt.Sprintf("%s %d", m.Name, sum.DataPoints[0].Value))
		}
	}
	sort.Strings(counters)
	for _, c := range counters {
		fmt.Println(c)
	}
	// Output:
	// POST /orders <- publish orders
	// publish orders <- process orders
	// messaging.client.consumed.messages 1
	// messaging.client.sent.messages 1
	// messaging.kombu.message.acked 1
}
