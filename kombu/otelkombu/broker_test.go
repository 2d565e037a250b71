package otelkombu_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/otelkombu"
	_ "github.com/kombu-go/kombu/transport/amqp"
	_ "github.com/kombu-go/kombu/transport/redis"
)

// The trace and the counts of runTrace on the real servers: the trace
// context travels in the message headers through the broker.
func TestTraceFromPublisherThroughHandlerOnRedis(t *testing.T) {
	runTrace(t, testenv.ServerURL(t, "KOMBU_TEST_REDIS_URL"), newTelemetry(t))
}

func TestTraceFromPublisherThroughHandlerOnRabbitMQ(t *testing.T) {
	runTrace(t, testenv.ServerURL(t, "KOMBU_TEST_AMQP_URL"), newTelemetry(t))
}

// The queue gauges read the real servers' counts.
func TestQueueDepthOnBrokers(t *testing.T) {
	for _, env := range []string{"KOMBU_TEST_REDIS_URL", "KOMBU_TEST_AMQP_URL"} {
		t.Run(env, func(t *testing.T) {
			url := testenv.ServerURL(t, env)
			tel := newTelemetry(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			conn, err := kombu.Dial(ctx, url, &kombu.Options{Observer: tel.obs})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			name := fmt.Sprintf("otel-depth-%d-%d", time.Now().UnixNano(), seq.Add(1))
			q := kombu.NewQueue(name, kombu.DefaultExchange, name)
			p, err := conn.Producer(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if err := p.Publish(ctx, "x", &kombu.PublishOptions{RoutingKey: name, Declare: []kombu.Declarable{q}}); err != nil {
					t.Fatal(err)
				}
			}
			defer func() {
				if ch, err := conn.Channel(ctx); err == nil {
					_, _ = q.Delete(ctx, ch, false, false)
					_ = ch.Close()
				}
			}()
			reg, err := tel.obs.ObserveQueues(conn, name, name+"-missing")
			if err != nil {
				t.Fatal(err)
			}
			defer reg.Unregister()
			depth, consumers := otelkombu.MetricQueueDepth+" "+name, otelkombu.MetricQueueConsumers+" "+name
			var counts map[string]int64
			for ctx.Err() == nil {
				if counts = tel.counters(t); counts[depth] == 3 {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if counts[depth] != 3 || counts[consumers] != 0 {
				t.Errorf("depth %d consumers %d, want 3 and 0", counts[depth], counts[consumers])
			}
			if _, ok := counts[otelkombu.MetricQueueDepth+" "+name+"-missing"]; ok {
				t.Error("a missing queue reported a depth")
			}
		})
	}
}
