package otelkombu_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu"
)

// BenchmarkTracingCost measures what each observer variant adds to a
// message, paired against no Observer in the same process: the two
// pipelines (publish, a Consumer's Handler decoding ~1 KiB JSON, ack)
// run in alternating rounds of 2000 messages, so that the load of a shared
// machine, which swings the CPU time of a message by ±25 % from one
// minute to the next, weighs on both alike. Each round starts after a
// GC, and pays for the garbage it makes. b.N is the number of messages
// per pipeline. Reported: the medians over the rounds of the CPU time per
// message without and with the observer (process CPU, every goroutine
// and the GC), and what the second adds to the first as overhead-%.
func BenchmarkTracingCost(b *testing.B) {
	benchCost(b, func() string { return fmt.Sprintf("memory://otel-cost-%d", seq.Add(1)) }, 2000)
}

// BenchmarkTracingCostRedis is BenchmarkTracingCost on the redis server
// of KOMBU_TEST_REDIS_URL, in rounds of 200 messages.
func BenchmarkTracingCostRedis(b *testing.B) {
	url := testenv.ServerURL(b, "KOMBU_TEST_REDIS_URL")
	benchCost(b, func() string { return url }, 200)
}

func benchCost(b *testing.B, url func() string, round int) {
	for _, v := range observerVariants {
		b.Run(v.name, func(b *testing.B) {
			off := newPipeline(b, url(), nil)
			on := newPipeline(b, url(), v.observer(b))
			off.run(b, round) // warm up: connections, routes, pools
			on.run(b, round)
			var offCPU, onCPU []float64
			b.ResetTimer()
			for done, i := 0, 0; done < b.N; i++ {
				n := min(round, b.N-done)
				first, second := off, on
				if i%2 == 1 {
					first, second = on, off
				}
				a, c := first.run(b, n), second.run(b, n)
				if i%2 == 1 {
					a, c = c, a
				}
				offCPU, onCPU = append(offCPU, a/float64(n)), append(onCPU, c/float64(n))
				done += n
			}
			b.StopTimer()
			offMedian, onMedian := median(offCPU), median(onCPU)
			b.ReportMetric(offMedian, "off-cpu-ns/msg")
			b.ReportMetric(onMedian, "cpu-ns/msg")
			// The ratio of the medians: a median of per-round ratios would
			// lean high (a noisy denominator inflates a ratio more than it
			// shrinks it).
			b.ReportMetric(100*(onMedian-offMedian)/offMedian, "overhead-%")
		})
	}
}

func median(v []float64) float64 {
	slices.Sort(v)
	return v[len(v)/2]
}

// pipeline is a producer and a consuming Handler on one connection.
type pipeline struct {
	ctx     context.Context
	p       *kombu.Producer
	body    any
	handled atomic.Int64
	target  atomic.Int64
	done    chan struct{}
}

func newPipeline(b *testing.B, url string, obs kombu.Observer) *pipeline {
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := kombu.Dial(ctx, url, &kombu.Options{Observer: obs})
	if err != nil {
		b.Fatal(err)
	}
	name := fmt.Sprintf("otel-cost-%d-%d", time.Now().UnixNano(), seq.Add(1))
	q := kombu.NewQueue(name, kombu.DefaultExchange, name)
	pl := &pipeline{ctx: ctx, done: make(chan struct{}, 1),
		body: map[string]any{"task": "tasks.process", "args": []int{1, 2, 3}, "payload": strings.Repeat("x", 900)}}
	if pl.p, err = conn.Producer(ctx, &kombu.ProducerOptions{RoutingKey: name}); err != nil {
		b.Fatal(err)
	}
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: 256})
	if err != nil {
		b.Fatal(err)
	}
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		_ = c.Consume(ctx, kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
			var v map[string]any
			if err := m.Decode(&v); err != nil {
				return err
			}
			if pl.handled.Add(1) == pl.target.Load() {
				pl.done <- struct{}{}
			}
			return nil
		}))
	}()
	b.Cleanup(func() {
		cancel()
		<-consumed
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer dcancel()
		if ch, err := conn.Channel(dctx); err == nil {
			_, _ = q.Delete(dctx, ch, false, false)
			_ = ch.Close()
		}
		_ = conn.Close()
	})
	return pl
}

// run publishes n messages, waits until they are handled and returns the
// process CPU time it took, in ns.
func (pl *pipeline) run(b *testing.B, n int) float64 {
	runtime.GC()
	pl.target.Store(pl.handled.Load() + int64(n))
	cpu := cpuTime()
	for range n {
		if err := pl.p.Publish(pl.ctx, pl.body, nil); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-pl.done:
	case <-time.After(time.Minute):
		b.Fatalf("%d of %d messages handled after a minute", pl.handled.Load(), pl.target.Load())
	}
	return float64(cpuTime() - cpu)
}
