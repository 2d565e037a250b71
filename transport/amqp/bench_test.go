package amqp

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
)

// Benchmarks against raw amqp091-go on the same broker, in the same run,
// with the same settings: confirm window 100, prefetch 100 (basic.qos
// global=false on both sides, as the transport sends), a 1 KiB JSON body,
// persistent messages, a durable queue, one ack per message.
//
//	go test -run '^$' -bench . ./transport/amqp
//
// TestBenchmarkTable runs every scenario in interleaved rounds (Python
// kombu too) and writes BENCHMARKS.md; see that file for the command.

const (
	benchWindow   = 100
	benchPrefetch = 100
)

var benchBody = func() []byte {
	b, _ := json.Marshal(map[string]any{"task": "bench", "args": []int{1, 2, 3}, "pad": ""})
	pad := strings.Repeat("x", 1024-len(b))
	b, _ = json.Marshal(map[string]any{"task": "bench", "args": []int{1, 2, 3}, "pad": pad})
	return b
}()

// benchEnv holds one queue per scenario run.
type benchEnv struct {
	url   string
	queue string
}

func newBenchEnv(tb testing.TB, tag string) *benchEnv {
	tb.Helper()
	u := serverURL(tb)
	_, ch := setup(tb)
	q := declareQueue(tb, ch, driver.Queue{Name: unique(tb, "bench."+tag), Durable: true})
	return &benchEnv{url: u, queue: q}
}

func (e *benchEnv) purge(tb testing.TB) {
	tb.Helper()
	_, ch := setup(tb)
	if _, err := ch.QueuePurge(context.Background(), e.queue); err != nil {
		tb.Fatal(err)
	}
}

func rawDial(tb testing.TB, url string) *amqp.Connection {
	tb.Helper()
	c, err := amqp.DialConfig(url, amqp.Config{Heartbeat: 60 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func rawPublishing() amqp.Publishing {
	return amqp.Publishing{ContentType: "application/json", ContentEncoding: "utf-8",
		DeliveryMode: amqp.Persistent, Body: benchBody}
}

// The kombu-go rows go through the user API (kombu.Producer and
// kombu.Consumer), the path an application takes; the body is the same
// pre-serialized JSON as the raw rows publish.
func kombuConn(tb testing.TB, e *benchEnv, opts ...string) *kombu.Connection {
	tb.Helper()
	u := e.url
	if len(opts) > 0 {
		u = withQuery(tb, u, opts...)
	}
	c, err := kombu.Dial(context.Background(), u, nil)
	must(tb, err)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func kombuProducer(tb testing.TB, e *benchEnv, opts ...string) *kombu.Producer {
	tb.Helper()
	p, err := kombuConn(tb, e, opts...).Producer(context.Background(), &kombu.ProducerOptions{RoutingKey: e.queue})
	must(tb, err)
	return p
}

var benchPublish = &kombu.PublishOptions{ContentType: "application/json", ContentEncoding: "utf-8"}

func goPublishing(q string) *driver.Publishing {
	return &driver.Publishing{RoutingKey: q, Message: driver.Message{Body: benchBody,
		ContentType: "application/json", ContentEncoding: "utf-8", Headers: map[string]any{}}}
}

// rawPublish publishes n messages with a sliding window of confirms.
func rawPublish(tb testing.TB, e *benchEnv, n int) time.Duration {
	c := rawDial(tb, e.url)
	ch, err := c.Channel()
	must(tb, err)
	must(tb, ch.Confirm(false))
	msg := rawPublishing()
	ring := make([]*amqp.DeferredConfirmation, 0, benchWindow)
	start := time.Now()
	for range n {
		if len(ring) == benchWindow {
			if !ring[0].Wait() {
				tb.Fatal("nack")
			}
			ring = ring[1:]
		}
		dc, err := ch.PublishWithDeferredConfirm("", e.queue, false, false, msg)
		must(tb, err)
		ring = append(ring, dc)
	}
	for _, dc := range ring {
		if !dc.Wait() {
			tb.Fatal("nack")
		}
	}
	return time.Since(start)
}

// goPublishBatch publishes n messages through PublishBatch (sliding window
// of 100 confirms), in batches of 1000.
func goPublishBatch(tb testing.TB, e *benchEnv, n int) time.Duration {
	return goPublishBatchOpts(tb, e, n, "confirm_window", fmt.Sprint(benchWindow))
}

func goPublishBatchOpts(tb testing.TB, e *benchEnv, n int, opts ...string) time.Duration {
	p := kombuProducer(tb, e, opts...)
	const batch = 1000
	bodies := make([]any, batch)
	for i := range bodies {
		bodies[i] = benchBody
	}
	ctx := context.Background()
	start := time.Now()
	for done := 0; done < n; done += batch {
		must(tb, p.PublishBatch(ctx, bodies[:min(batch, n-done)], benchPublish))
	}
	return time.Since(start)
}

// goPublishConcurrent publishes n messages with plain Publish calls from
// 100 goroutines sharing one channel (each waits for its own confirm).
func goPublishConcurrent(tb testing.TB, e *benchEnv, n int) time.Duration {
	p := kombuProducer(tb, e, "confirm_window", fmt.Sprint(benchWindow))
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	start := time.Now()
	for range benchWindow {
		wg.Go(func() {
			for {
				mu.Lock()
				if next >= n {
					mu.Unlock()
					return
				}
				next++
				mu.Unlock()
				if err := p.Publish(ctx, benchBody, benchPublish); err != nil {
					tb.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// goPublishSerial: one goroutine, one Publish (and confirm) at a time.
func goPublishSerial(tb testing.TB, e *benchEnv, n int) time.Duration {
	p := kombuProducer(tb, e)
	ctx := context.Background()
	start := time.Now()
	for range n {
		must(tb, p.Publish(ctx, benchBody, benchPublish))
	}
	return time.Since(start)
}

// fill puts n messages in the queue (untimed).
func fill(tb testing.TB, e *benchEnv, n int) {
	tb.Helper()
	rawPublish(tb, e, n)
}

func rawConsume(tb testing.TB, e *benchEnv, n int) time.Duration {
	c := rawDial(tb, e.url)
	ch, err := c.Channel()
	must(tb, err)
	must(tb, ch.Qos(benchPrefetch, 0, false))
	start := time.Now()
	ds, err := ch.Consume(e.queue, "raw", false, false, false, false, nil)
	must(tb, err)
	for range n {
		d := <-ds
		must(tb, d.Ack(false))
	}
	el := time.Since(start)
	must(tb, ch.Cancel("raw", false))
	return el
}

func goConsume(tb testing.TB, e *benchEnv, n int) time.Duration {
	conn := kombuConn(tb, e)
	ctx := context.Background()
	q := kombu.Queue{Name: e.queue, NoDeclare: true}
	start := time.Now()
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: benchPrefetch, NoDeclare: true})
	must(tb, err)
	for range n {
		m, err := c.Receive(ctx)
		must(tb, err)
		must(tb, m.Ack(ctx))
	}
	el := time.Since(start)
	must(tb, c.Close())
	return el
}

// e2e runs a publisher and a consumer at the same time and times until
// the consumer acked n messages.
func rawE2E(tb testing.TB, e *benchEnv, n int) time.Duration {
	done := make(chan time.Duration)
	start := time.Now()
	go func() { done <- rawConsume(tb, e, n) }()
	rawPublish(tb, e, n)
	<-done
	return time.Since(start)
}

func goE2E(tb testing.TB, e *benchEnv, n int) time.Duration {
	done := make(chan time.Duration)
	start := time.Now()
	go func() { done <- goConsume(tb, e, n) }()
	goPublishBatch(tb, e, n)
	<-done
	return time.Since(start)
}

// goE2ENoConfirm is goE2E with confirm_publish=false, kombu's default and
// the setting of Python's no-confirm row.
func goE2ENoConfirm(tb testing.TB, e *benchEnv, n int) time.Duration {
	done := make(chan time.Duration)
	start := time.Now()
	go func() { done <- goConsume(tb, e, n) }()
	goPublishBatchOpts(tb, e, n, "confirm_publish", "false")
	<-done
	return time.Since(start)
}

// pythonE2E runs testdata/bench_e2e.py (Python kombu, a producer thread
// with confirm_publish and a consumer with prefetch 100) and returns its
// elapsed time as measured inside Python.
func pythonE2E(tb testing.TB, e *benchEnv, n int) time.Duration {
	return python(tb, e, n, true)
}

// pythonE2ENoConfirm is the same without publisher confirms (kombu's
// default for pyamqp).
func pythonE2ENoConfirm(tb testing.TB, e *benchEnv, n int) time.Duration {
	return python(tb, e, n, false)
}

func python(tb testing.TB, e *benchEnv, n int, confirm bool) time.Duration {
	out := runPython(tb, "bench_e2e.py", map[string]any{"url": e.url, "queue": e.queue, "n": n,
		"body": string(benchBody), "confirm": confirm})
	var res struct{ Seconds float64 }
	if err := json.Unmarshal(out, &res); err != nil {
		tb.Fatalf("%v: %s", err, out)
	}
	return time.Duration(res.Seconds * float64(time.Second))
}

func runBench(b *testing.B, tag string, pre func(testing.TB, *benchEnv, int), f func(testing.TB, *benchEnv, int) time.Duration) {
	e := newBenchEnv(b, tag)
	if pre != nil {
		pre(b, e, b.N)
	}
	b.ResetTimer()
	el := f(b, e, b.N)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
	b.SetBytes(int64(len(benchBody)))
}

// The names match what cmd/kombu-benchtable tracks: PublishConfirmed vs
// RawPublishConfirmed, ConsumeAck vs RawConsumeAck, EndToEndJSON vs
// PythonKombuEndToEnd.

func BenchmarkRawPublishConfirmed(b *testing.B)   { runBench(b, "pub-raw", nil, rawPublish) }
func BenchmarkPublishConfirmed(b *testing.B)      { runBench(b, "pub-batch", nil, goPublishBatch) }
func BenchmarkPublishConcurrent(b *testing.B)     { runBench(b, "pub-conc", nil, goPublishConcurrent) }
func BenchmarkPublishSerial(b *testing.B)         { runBench(b, "pub-serial", nil, goPublishSerial) }
func BenchmarkRawConsumeAck(b *testing.B)         { runBench(b, "con-raw", fill, rawConsume) }
func BenchmarkConsumeAck(b *testing.B)            { runBench(b, "con-go", fill, goConsume) }
func BenchmarkRawEndToEnd(b *testing.B)           { runBench(b, "e2e-raw", nil, rawE2E) }
func BenchmarkEndToEndJSON(b *testing.B)          { runBench(b, "e2e-go", nil, goE2E) }
func BenchmarkPythonKombuEndToEnd(b *testing.B)   { runBench(b, "e2e-py", nil, pythonE2E) }
func BenchmarkEndToEndJSONNoConfirm(b *testing.B) { runBench(b, "e2e-go-nc", nil, goE2ENoConfirm) }
func BenchmarkPythonKombuEndToEndNoConfirm(b *testing.B) {
	runBench(b, "e2e-py-nc", nil, pythonE2ENoConfirm)
}

// TestBenchmarkTable measures every scenario in interleaved rounds and
// writes BENCHMARKS.md. It runs only with KOMBU_AMQP_BENCH=1.
func TestBenchmarkTable(t *testing.T) {
	if os.Getenv("KOMBU_AMQP_BENCH") == "" {
		t.Skip("set KOMBU_AMQP_BENCH=1 to measure and write BENCHMARKS.md")
	}
	n := 20000
	if s := os.Getenv("KOMBU_AMQP_BENCH_N"); s != "" {
		fmt.Sscan(s, &n)
	}
	rounds := 5
	if s := os.Getenv("KOMBU_AMQP_BENCH_ROUNDS"); s != "" {
		fmt.Sscan(s, &rounds)
	}
	type scenario struct {
		name string
		n    int
		pre  func(testing.TB, *benchEnv, int)
		f    func(testing.TB, *benchEnv, int) time.Duration
	}
	pyN := min(n, 1000)
	scenarios := []scenario{
		{"publish/raw", n, nil, rawPublish},
		{"publish/batch", n, nil, goPublishBatch},
		{"publish/concurrent", n, nil, goPublishConcurrent},
		{"publish/serial", n / 4, nil, goPublishSerial},
		{"consume/raw", n, fill, rawConsume},
		{"consume/go", n, fill, goConsume},
		{"e2e/raw", n, nil, rawE2E},
		{"e2e/go", n, nil, goE2E},
		{"e2e/go-noconfirm", n, nil, goE2ENoConfirm},
		{"e2e/python", pyN, nil, pythonE2E},
		{"e2e/python-noconfirm", n, nil, pythonE2ENoConfirm},
	}
	rates := map[string][]float64{}
	for r := range rounds {
		for _, s := range scenarios {
			e := newBenchEnv(t, strings.ReplaceAll(s.name, "/", "-"))
			if s.pre != nil {
				s.pre(t, e, s.n)
			}
			el := s.f(t, e, s.n)
			if el > 0 {
				rates[s.name] = append(rates[s.name], float64(s.n)/el.Seconds())
			}
			e.purge(t)
			t.Logf("round %d %-20s %8.0f msgs/s", r, s.name, float64(s.n)/el.Seconds())
		}
	}
	med := func(name string) float64 {
		v := slices.Clone(rates[name])
		if len(v) == 0 {
			return 0
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "# transport/amqp benchmarks\n\n")
	fmt.Fprintf(&sb, "Measured %s on RabbitMQ %s (Debian rabbitmq-server, one local node on loopback), %s, 2 cores.\n",
		time.Now().UTC().Format("2006-01-02"), brokerVersion(t), goVersionLine())
	fmt.Fprintf(&sb, "Settings for every row: 1 KiB JSON body, persistent messages, durable classic queue, confirm window 100, prefetch 100 (basic.qos global=false on both sides), one ack per message. ")
	fmt.Fprintf(&sb, "%d messages per run (Python with confirms: %d; serial publish: %d), %d interleaved rounds; msgs/s is the median over rounds, a ratio the median of the per-round ratios.\n\n", n, pyN, n/4, rounds)
	fmt.Fprintf(&sb, "| scenario | msgs/s | ratio | target |\n|---|---:|---:|---|\n")
	// The ratio is the median of the per-round ratios: the two sides of a
	// ratio run one right after the other, so slow drifts of a shared
	// machine cancel out.
	ratio := func(name, base string) float64 {
		a, b := rates[name], rates[base]
		var rs []float64
		for i := range min(len(a), len(b)) {
			if b[i] > 0 {
				rs = append(rs, a[i]/b[i])
			}
		}
		if len(rs) == 0 {
			return 0
		}
		slices.Sort(rs)
		return rs[len(rs)/2]
	}
	row := func(label, name, base, target string) {
		r := ""
		if base != "" && med(base) > 0 {
			r = fmt.Sprintf("%.2f× %s", ratio(name, base), strings.Split(base, "/")[1])
		}
		fmt.Fprintf(&sb, "| %s | %.0f | %s | %s |\n", label, med(name), r, target)
	}
	row("publish with confirms, raw amqp091-go (sliding window 100)", "publish/raw", "", "")
	row("publish with confirms, kombu-go PublishBatch (window 100)", "publish/batch", "publish/raw", "≥ 0.90× raw")
	row("publish with confirms, kombu-go Publish from 100 goroutines", "publish/concurrent", "publish/raw", "")
	row("publish with confirms, kombu-go Publish, one at a time", "publish/serial", "publish/raw", "(one round trip each)")
	row("consume + ack, raw amqp091-go", "consume/raw", "", "")
	row("consume + ack, kombu-go Receive/Ack", "consume/go", "consume/raw", "≥ 0.90× raw")
	row("end to end, raw amqp091-go", "e2e/raw", "", "")
	row("end to end, kombu-go", "e2e/go", "e2e/raw", "")
	row("end to end, kombu-go, confirm_publish=false", "e2e/go-noconfirm", "", "")
	row("end to end, Python kombu 5.2.4, confirm_publish=True, prefetch 100", "e2e/python", "", "")
	row("end to end, Python kombu 5.2.4, no confirms (kombu's default), prefetch 100", "e2e/python-noconfirm", "", "")
	if med("e2e/python") > 0 {
		fmt.Fprintf(&sb, "\nEnd to end, kombu-go / Python kombu on the same broker (target ≥ 2×): with confirms on both sides **%.1f×**; "+
			"without confirms on both sides (kombu's default) **%.1f×**; kombu-go with confirms / Python without **%.1f×**.\n",
			ratio("e2e/go", "e2e/python"), ratio("e2e/go-noconfirm", "e2e/python-noconfirm"), ratio("e2e/go", "e2e/python-noconfirm"))
	}
	fmt.Fprintf(&sb, "\nAll rounds (msgs/s):\n\n")
	for _, s := range scenarios {
		var parts []string
		for _, r := range rates[s.name] {
			parts = append(parts, fmt.Sprintf("%.0f", r))
		}
		fmt.Fprintf(&sb, "- %s: %s\n", s.name, strings.Join(parts, ", "))
	}
	fmt.Fprintf(&sb, "\nReproduce (after `make services-up`, or with KOMBU_TEST_AMQP_URL pointing at a broker):\n\n")
	fmt.Fprintf(&sb, "    KOMBU_AMQP_BENCH=1 go test -count=1 -run TestBenchmarkTable -v ./transport/amqp\n\n")
	fmt.Fprintf(&sb, "Go benchmarks for the same scenarios: `go test -run '^$' -bench . ./transport/amqp`.\n")
	fmt.Fprintf(&sb, "Python kombu end to end: testdata/bench_e2e.py (a producer thread publishing with confirm_publish=True, one confirm per message as kombu does, and a consumer acking each message).\n")
	must(t, os.WriteFile(filepath.Join(".", "BENCHMARKS.md"), []byte(sb.String()), 0o644))
	t.Log("\n" + sb.String())
}

func brokerVersion(t *testing.T) string {
	c := dial(t, serverURL(t))
	var ac *amqp.Connection
	c.As(&ac)
	if v, ok := ac.Properties["version"].(string); ok {
		return v
	}
	return "?"
}

func goVersionLine() string {
	return "Go " + strings.TrimPrefix(runtime.Version(), "go")
}
