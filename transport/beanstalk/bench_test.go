package beanstalk

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/virtual"
)

// Benchmarks against raw go-beanstalk on the same beanstalkd, in the same
// run, with a 1 KiB JSON body (docs/benchmarks.md):
//
//	go test -run '^$' -bench . -count 5 ./transport/beanstalk
//
// Raw: one put, or one reserve and one delete, per message, the job body
// being the envelope kombu-go writes (made before timing). kombu-go: the
// user API, one Publish (or PublishBatch of 100) per message, Receive and
// Ack with prefetch 1 or 100. beanstalkd has no batch command, so there is
// no raw batched row: a batch is one put per message on both sides.

var benchBody = func() []byte {
	b, _ := json.Marshal(map[string]any{"task": "bench", "args": []int{1, 2, 3}, "pad": ""})
	b, _ = json.Marshal(map[string]any{"task": "bench", "args": []int{1, 2, 3}, "pad": strings.Repeat("x", 1024-len(b))})
	return b
}()

type benchEnv struct {
	tube string
	raw  *beanstalk.Conn
	conn *kombu.Connection
	q    kombu.Queue
	job  []byte // the envelope of benchBody as a job body
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	ctx := context.Background()
	e := &benchEnv{tube: fmt.Sprintf("kombu-go.bench.%s.%08x", b.Name()[len("Benchmark"):], rand.Uint32()), raw: rawConn(b)}
	e.q = kombu.NewQueue(e.tube, kombu.DefaultExchange, "")
	conn, err := kombu.Dial(ctx, serverURL(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	e.conn = conn
	env := &virtual.Envelope{RoutingKey: e.tube}
	env.Body, env.ContentType, env.ContentEncoding = benchBody, "application/json", "utf-8"
	if e.job, err = encodeJob(env); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if ch, err := conn.DefaultChannel(ctx); err == nil {
			_, _ = e.q.Delete(ctx, ch, false, false)
		}
		_ = conn.Close()
	})
	return e
}

// fill puts n jobs with the raw client, untimed.
func (e *benchEnv) fill(b *testing.B, n int) {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	tube := beanstalk.Tube{Conn: e.raw, Name: e.tube}
	for range n {
		if _, err := tube.Put(e.job, 0, 0, DefaultTTR); err != nil {
			b.Fatal(err)
		}
	}
}

func report(b *testing.B, start time.Time) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

func (e *benchEnv) rawPublish(b *testing.B, n int) {
	tube := beanstalk.Tube{Conn: e.raw, Name: e.tube}
	for range n {
		if _, err := tube.Put(e.job, 0, 0, DefaultTTR); err != nil {
			b.Fatal(err)
		}
	}
}

func (e *benchEnv) rawConsume(b *testing.B, c *beanstalk.Conn, n int) {
	ts := beanstalk.NewTubeSet(c, e.tube)
	for range n {
		id, _, err := ts.Reserve(5 * time.Second)
		if err == nil {
			err = c.Delete(id)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func (e *benchEnv) publish(b *testing.B, n, batch int) {
	ctx := context.Background()
	p, err := e.conn.Producer(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	opts := &kombu.PublishOptions{RoutingKey: e.tube, ContentType: "application/json"}
	if batch <= 1 {
		for range n {
			if err := p.Publish(ctx, benchBody, opts); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	bodies := make([]any, batch)
	for i := range bodies {
		bodies[i] = benchBody
	}
	for done := 0; done < n; done += batch {
		if err := p.PublishBatch(ctx, bodies[:min(batch, n-done)], opts); err != nil {
			b.Fatal(err)
		}
	}
}

func (e *benchEnv) consume(b *testing.B, n, prefetch int) {
	ctx := context.Background()
	c, err := e.conn.Consumer(ctx, []kombu.Queue{e.q}, &kombu.ConsumerOptions{PrefetchCount: prefetch})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for range n {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		m, err := c.Receive(rctx)
		cancel()
		if err == nil {
			err = m.Ack(ctx)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawPublish(b *testing.B) {
	e := newBenchEnv(b)
	start := time.Now()
	e.rawPublish(b, b.N)
	report(b, start)
}

func BenchmarkPublish(b *testing.B) {
	e := newBenchEnv(b)
	start := time.Now()
	e.publish(b, b.N, 1)
	report(b, start)
}

func BenchmarkPublishBatch100(b *testing.B) {
	e := newBenchEnv(b)
	start := time.Now()
	e.publish(b, b.N, 100)
	report(b, start)
}

func BenchmarkRawConsume(b *testing.B) {
	e := newBenchEnv(b)
	e.fill(b, b.N)
	c := rawConn(b)
	start := time.Now()
	e.rawConsume(b, c, b.N)
	report(b, start)
}

func BenchmarkConsumePrefetch1(b *testing.B) {
	e := newBenchEnv(b)
	e.fill(b, b.N)
	start := time.Now()
	e.consume(b, b.N, 1)
	report(b, start)
}

func BenchmarkConsumePrefetch100(b *testing.B) {
	e := newBenchEnv(b)
	e.fill(b, b.N)
	start := time.Now()
	e.consume(b, b.N, 100)
	report(b, start)
}

// endToEnd runs a producer and a consumer side by side.
func endToEnd(b *testing.B, produce, consume func()) {
	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(produce)
	consume()
	wg.Wait()
	report(b, start)
}

func BenchmarkRawEndToEnd(b *testing.B) {
	e := newBenchEnv(b)
	c := rawConn(b)
	endToEnd(b, func() { e.rawPublish(b, b.N) }, func() { e.rawConsume(b, c, b.N) })
}

func BenchmarkEndToEnd(b *testing.B) {
	e := newBenchEnv(b)
	endToEnd(b, func() { e.publish(b, b.N, 1) }, func() { e.consume(b, b.N, 1) })
}

func BenchmarkEndToEndBatched(b *testing.B) {
	e := newBenchEnv(b)
	endToEnd(b, func() { e.publish(b, b.N, 100) }, func() { e.consume(b, b.N, 100) })
}
