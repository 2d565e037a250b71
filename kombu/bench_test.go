package kombu_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kombu-go/kombu/kombu"
)

// benchTask is a ~1 KiB JSON document, the body of every benchmark.
type benchTask struct {
	ID      int               `json:"id"`
	Task    string            `json:"task"`
	Args    []int             `json:"args"`
	Kwargs  map[string]string `json:"kwargs"`
	Payload string            `json:"payload"`
}

func newBenchTask(i int) benchTask {
	return benchTask{ID: i, Task: "tasks.process", Args: []int{1, 2, 3},
		Kwargs: map[string]string{"user": "alice", "region": "eu-west-1"}, Payload: strings.Repeat("x", 900)}
}

func TestBenchTaskIsOneKiB(t *testing.T) {
	b, _ := json.Marshal(newBenchTask(1))
	if len(b) < 1000 || len(b) > 1100 {
		t.Fatalf("bench body is %d bytes, want about 1 KiB", len(b))
	}
}

// BenchmarkBaselineChannelJSON is the yardstick of the end-to-end
// benchmarks: the same body through encoding/json and a Go channel.
func BenchmarkBaselineChannelJSON(b *testing.B) {
	c := make(chan []byte, 128)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for body := range c {
			var t benchTask
			if err := json.Unmarshal(body, &t); err != nil {
				panic(err)
			}
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		body, err := json.Marshal(newBenchTask(i))
		if err != nil {
			b.Fatal(err)
		}
		c <- body
	}
	close(c)
	<-done
}

var benchSeq atomic.Int64

func benchSetup(b *testing.B, prefetch int) (context.Context, *kombu.Producer, *kombu.Consumer, func()) {
	b.Helper()
	ctx := context.Background()
	conn, err := kombu.Dial(ctx, fmt.Sprintf("memory://bench-%d", benchSeq.Add(1)), nil)
	if err != nil {
		b.Fatal(err)
	}
	q := kombu.NewQueue("bench", kombu.DefaultExchange, "")
	p, err := conn.Producer(ctx, &kombu.ProducerOptions{RoutingKey: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: prefetch})
	if err != nil {
		b.Fatal(err)
	}
	return ctx, p, c, func() { conn.Close() }
}

func BenchmarkPublishJSON(b *testing.B) {
	ctx, p, _, done := benchSetup(b, 100)
	defer done()
	task := newBenchTask(1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.Publish(ctx, task, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkConsumeAckJSON(b *testing.B) {
	ctx, p, c, done := benchSetup(b, 100)
	defer done()
	task := newBenchTask(1)
	for i := 0; i < b.N; i++ {
		if err := p.Publish(ctx, task, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, err := c.Receive(ctx)
		if err != nil {
			b.Fatal(err)
		}
		var t benchTask
		if err := m.Decode(&t); err != nil {
			b.Fatal(err)
		}
		if err := m.Ack(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// endToEnd publishes b.N messages from one goroutine while another
// receives, decodes (unless raw) and acks them.
func endToEnd(b *testing.B, body func(i int) any, decode bool) {
	ctx, p, c, done := benchSetup(b, 256)
	defer done()
	errc := make(chan error, 1)
	go func() {
		for i := 0; i < b.N; i++ {
			m, err := c.Receive(ctx)
			if err != nil {
				errc <- err
				return
			}
			if decode {
				var t benchTask
				if err := m.Decode(&t); err != nil {
					errc <- err
					return
				}
			}
			if err := m.Ack(ctx); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.Publish(ctx, body(i), nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
}

func BenchmarkEndToEndJSON(b *testing.B) {
	endToEnd(b, func(i int) any { return newBenchTask(i) }, true)
}

func BenchmarkEndToEndRaw(b *testing.B) {
	raw, _ := json.Marshal(newBenchTask(1))
	endToEnd(b, func(int) any { return raw }, false)
}

// BenchmarkEndToEndRawBatched publishes raw bytes in batches of 100 with
// PublishBatch while another goroutine receives and acks one at a time.
func BenchmarkEndToEndRawBatched(b *testing.B) {
	raw, _ := json.Marshal(newBenchTask(1))
	ctx, p, c, done := benchSetup(b, 256)
	defer done()
	errc := make(chan error, 1)
	go func() {
		for i := 0; i < b.N; i++ {
			m, err := c.Receive(ctx)
			if err == nil {
				err = m.Ack(ctx)
			}
			if err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	batch := make([]any, 100)
	for i := range batch {
		batch[i] = raw
	}
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += len(batch) {
		n := min(len(batch), b.N-sent)
		if err := p.PublishBatch(ctx, batch[:n], nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
}
