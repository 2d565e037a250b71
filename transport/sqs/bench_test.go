package sqs

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

// Benchmarks against raw aws-sdk-go-v2 calls on the same emulator, in the
// same run, with a 1 KiB JSON body, end to end (publish n, then receive
// and delete n):
//
//   - single: raw SendMessage, ReceiveMessage of 1, DeleteMessage per
//     message, versus kombu-go Publish and Receive/Ack with prefetch 1;
//   - batched: raw SendMessageBatch of 10, ReceiveMessage of 10,
//     DeleteMessageBatch of 10, versus kombu-go PublishBatch and
//     Receive with prefetch 10 and AckMultiple per 10.
//
// The raw side sends the same bytes kombu-go sends (the base64 envelope,
// made before timing). TestBenchmarkTable runs the four in interleaved
// rounds and prints the table of docs/benchmarks.md.

var benchBody = func() []byte {
	b, _ := json.Marshal(map[string]any{"task": "bench", "args": []int{1, 2, 3}, "pad": ""})
	b, _ = json.Marshal(map[string]any{"task": "bench", "args": []int{1, 2, 3}, "pad": strings.Repeat("x", 1024-len(b))})
	return b
}()

type benchEnv struct {
	raw   string
	store *Store
	conn  *kombu.Connection
}

func newBenchEnv(tb testing.TB) *benchEnv {
	tb.Helper()
	// A short visibility timeout: a ReceiveMessage whose response is lost
	// on the way (seen twice in about ten runs on this loaded machine, see
	// docs/benchmarks.md) costs 10 s, not a hang.
	raw := testenv.ServerURL(tb, testURLVar) + "&wait_time_seconds=1&visibility_timeout=10"
	e := &benchEnv{raw: raw, store: openStore(tb, raw)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := kombu.Dial(ctx, raw, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	e.conn = conn
	return e
}

// queue declares a fresh queue and returns its name and URL.
func (e *benchEnv) queue(tb testing.TB, tag string) (string, string) {
	tb.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("bench.%s.%08x", tag, rand.Uint32())
	u, err := e.store.createQueue(ctx, name, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = e.store.Delete(context.Background(), name) })
	return name, u
}

// wireBody is the MessageBody kombu-go sends for the bench body.
func (e *benchEnv) wireBody(tb testing.TB, queue string) string {
	env := &virtual.Envelope{Message: driver.Message{Body: benchBody, ContentType: "application/json", ContentEncoding: "utf-8",
		Properties: driver.Properties{DeliveryMode: 2}}, RoutingKey: queue}
	b, err := e.store.encodeBody(env)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

type scenario struct {
	name string
	run  func(tb testing.TB, e *benchEnv, n int) time.Duration
}

var scenarios = []scenario{
	{"raw SDK, single calls", rawSingle},
	{"kombu-go, one at a time (prefetch 1)", kombuSingle},
	{"raw SDK, batches of 10", rawBatch},
	{"kombu-go, batched (PublishBatch, prefetch 10, AckMultiple)", kombuBatch},
}

func check(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func rawSingle(tb testing.TB, e *benchEnv, n int) time.Duration {
	_, u := e.queue(tb, "raw1")
	body, c, ctx := e.wireBody(tb, u), e.store.client, context.Background()
	start := time.Now()
	for range n {
		_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(u), MessageBody: aws.String(body)})
		check(tb, err)
	}
	for got := 0; got < n; {
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(u), MaxNumberOfMessages: 1, WaitTimeSeconds: 1})
		check(tb, err)
		for _, m := range out.Messages {
			_, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(u), ReceiptHandle: m.ReceiptHandle})
			check(tb, err)
			got++
		}
	}
	return time.Since(start)
}

func rawBatch(tb testing.TB, e *benchEnv, n int) time.Duration {
	_, u := e.queue(tb, "raw10")
	body, c, ctx := e.wireBody(tb, u), e.store.client, context.Background()
	start := time.Now()
	for sent := 0; sent < n; sent += maxBatch {
		entries := make([]types.SendMessageBatchRequestEntry, min(maxBatch, n-sent))
		for i := range entries {
			entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(body)}
		}
		_, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(u), Entries: entries})
		check(tb, err)
	}
	for got := 0; got < n; {
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(u), MaxNumberOfMessages: maxBatch, WaitTimeSeconds: 1})
		check(tb, err)
		if len(out.Messages) == 0 {
			continue
		}
		entries := make([]types.DeleteMessageBatchRequestEntry, len(out.Messages))
		for i, m := range out.Messages {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle}
		}
		_, err = c.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(u), Entries: entries})
		check(tb, err)
		got += len(out.Messages)
	}
	return time.Since(start)
}

func (e *benchEnv) kombuEnds(tb testing.TB, tag string, prefetch int) (*kombu.Producer, *kombu.Consumer) {
	name, _ := e.queue(tb, tag)
	ctx := context.Background()
	q := kombu.NewQueue(name, kombu.DefaultExchange, name)
	p, err := e.conn.Producer(ctx, &kombu.ProducerOptions{RoutingKey: name, NoDeclare: true})
	check(tb, err)
	c, err := e.conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: prefetch})
	check(tb, err)
	tb.Cleanup(func() { _ = c.Close() })
	return p, c
}

var benchPublish = &kombu.PublishOptions{ContentType: "application/json", ContentEncoding: "utf-8"}

func kombuSingle(tb testing.TB, e *benchEnv, n int) time.Duration {
	p, c := e.kombuEnds(tb, "kombu1", 1)
	ctx := context.Background()
	start := time.Now()
	for range n {
		check(tb, p.Publish(ctx, benchBody, benchPublish))
	}
	for range n {
		m, err := c.Receive(ctx)
		check(tb, err)
		check(tb, m.Ack(ctx))
	}
	return time.Since(start)
}

func kombuBatch(tb testing.TB, e *benchEnv, n int) time.Duration {
	p, c := e.kombuEnds(tb, "kombu10", maxBatch)
	ctx := context.Background()
	bodies := make([]any, n)
	for i := range bodies {
		bodies[i] = benchBody
	}
	start := time.Now()
	check(tb, p.PublishBatch(ctx, bodies, benchPublish))
	for got := 0; got < n; {
		var last *kombu.Message
		for k := 0; k < maxBatch && got < n; k++ {
			m, err := c.Receive(ctx)
			check(tb, err)
			last = m
			got++
		}
		check(tb, last.AckMultiple(ctx))
	}
	return time.Since(start)
}

func runBench(b *testing.B, s scenario) {
	e := newBenchEnv(b)
	b.ResetTimer()
	d := s.run(b, e, b.N)
	b.ReportMetric(float64(b.N)/d.Seconds(), "msgs/s")
}

func BenchmarkRawSingle(b *testing.B)   { runBench(b, scenarios[0]) }
func BenchmarkKombuSingle(b *testing.B) { runBench(b, scenarios[1]) }
func BenchmarkRawBatch(b *testing.B)    { runBench(b, scenarios[2]) }
func BenchmarkKombuBatch(b *testing.B)  { runBench(b, scenarios[3]) }

// TestBenchmarkTable (KOMBU_SQS_BENCH=ROUNDS) runs every scenario in
// interleaved rounds of 500 (single) and 2000 (batched) messages, and
// prints the median msgs/s and the ratio to raw for docs/benchmarks.md.
func TestBenchmarkTable(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("KOMBU_SQS_BENCH"))
	if rounds <= 0 {
		t.Skip("set KOMBU_SQS_BENCH=ROUNDS to measure (numbers for docs/benchmarks.md)")
	}
	e := newBenchEnv(t)
	rates := make([][]float64, len(scenarios))
	for range rounds {
		for i, s := range scenarios {
			n := 500
			if i >= 2 {
				n = 2000
			}
			rates[i] = append(rates[i], float64(n)/s.run(t, e, n).Seconds())
		}
	}
	median := func(xs []float64) float64 {
		s := append([]float64(nil), xs...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	var b strings.Builder
	b.WriteString("| scenario | msgs/s (median of " + strconv.Itoa(rounds) + ") | vs raw |\n|---|---:|---:|\n")
	for i, s := range scenarios {
		ratio := "1.00×"
		if i%2 == 1 {
			ratio = fmt.Sprintf("%.2f×", median(rates[i])/median(rates[i-1]))
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s |\n", s.name, median(rates[i]), ratio)
	}
	t.Log("\n" + b.String())
}
