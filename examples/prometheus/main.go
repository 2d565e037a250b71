// Command prometheus serves kombu-go's OpenTelemetry metrics to
// Prometheus: a worker consumes a queue, a producer feeds it, and
// http://ADDR/metrics shows the counters and histograms of otelkombu
// (messaging_client_sent_messages_total, messaging_process_duration_seconds,
// messaging_kombu_message_acked_total, ...) and the queue depth.
//
//	go run . -url redis://localhost:6379/0 -addr :2112
//
// It is a module of its own so that the Prometheus client stays out of
// kombu-go's dependencies.
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/otelkombu"
	_ "github.com/kombu-go/kombu/transport/amqp"
	_ "github.com/kombu-go/kombu/transport/memory"
	_ "github.com/kombu-go/kombu/transport/redis"
)

// setup connects to url with otelkombu's metrics exported to a new
// Prometheus registry, and returns the connection and the /metrics
// handler. The depth of queues is read at each scrape.
func setup(ctx context.Context, url string, queues ...string) (*kombu.Connection, http.Handler, func(), error) {
	registry := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry))
	if err != nil {
		return nil, nil, nil, err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	obs, err := otelkombu.New(otelkombu.WithMeterProvider(mp))
	if err != nil {
		return nil, nil, nil, err
	}
	conn, err := kombu.Dial(ctx, url, &kombu.Options{Observer: obs})
	if err != nil {
		return nil, nil, nil, err
	}
	reg, err := obs.ObserveQueues(conn, queues...)
	if err != nil {
		conn.Close()
		return nil, nil, nil, err
	}
	stop := func() {
		_ = reg.Unregister()
		_ = conn.Close()
		_ = mp.Shutdown(context.Background())
	}
	return conn, promhttp.HandlerFor(registry, promhttp.HandlerOpts{}), stop, nil
}

func main() {
	url := flag.String("url", "memory://prometheus-example", "broker URL")
	addr := flag.String("addr", "127.0.0.1:2112", "address of the /metrics endpoint")
	flag.Parse()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()

	conn, metrics, stop, err := setup(ctx, *url, "jobs")
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
	jobs := kombu.NewQueue("jobs", kombu.DefaultExchange, "jobs")
	worker, err := kombu.NewWorker(conn, []kombu.Queue{jobs}, kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
		time.Sleep(10 * time.Millisecond) // work
		return nil
	}), nil)
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = worker.Run(ctx) }()
	go func() {
		p, err := conn.Producer(ctx, nil)
		if err != nil {
			log.Fatal(err)
		}
		for ctx.Err() == nil {
			_ = p.Publish(ctx, map[string]any{"job": time.Now().Unix()}, &kombu.PublishOptions{RoutingKey: "jobs", Declare: []kombu.Declarable{jobs}})
			time.Sleep(100 * time.Millisecond)
		}
	}()
	http.Handle("/metrics", metrics)
	srv := &http.Server{Addr: *addr, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Printf("metrics on http://%s/metrics", *addr)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
