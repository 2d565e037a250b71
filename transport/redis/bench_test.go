package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
)

// Benchmarks against raw go-redis on the same server, in the same run,
// with a 1 KiB JSON body:
//
//   - one at a time: raw LPUSH and BRPOP, one command per message, versus
//     kombu-go Publish and Receive/Ack with prefetch 1;
//   - batched: raw pipelines of 100 LPUSH and 100 BRPOP, versus kombu-go
//     PublishBatch of 100 and Receive/Ack with prefetch 100.
//
// Each Go benchmark reports msgs/s; TestBenchmarkTable runs every scenario
// in interleaved rounds (Python kombu too) and writes BENCHMARKS.md.

var benchBody = func() []byte {
	b, _ := json.Marshal(map[string]any{"task": "bench", "args": []int{1, 2, 3}, "pad": ""})
	b, _ = json.Marshal(map[string]any{"task": "bench", "args": []int{1, 2, 3}, "pad": strings.Repeat("x", 1024-len(b))})
	return b
}()

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

type benchEnv struct {
	queue string
	raw   *redis.Client
	store *Store
	msgs  [][]byte // made by prepare for the raw publishers
}

// prepare makes the raw publishers' n envelopes, untimed.
func (e *benchEnv) prepare(n int) { e.msgs = e.envelopes(n) }

func newBenchEnv(tb testing.TB, tag string) *benchEnv {
	tb.Helper()
	requireRealServer(tb, "numbers of an in-process emulator say nothing about kombu-go on redis")
	s := openStore(tb, nil)
	e := &benchEnv{queue: uniqueName(tb, "bench."+tag), store: s}
	e.raw = rawClient(tb, s)
	tb.Cleanup(func() { _, _ = s.Purge(context.Background(), e.queue) })
	return e
}

// envelopes returns n envelopes as a kombu publisher writes them for the
// bench body, each with its own delivery tag (made before any timing).
func (e *benchEnv) envelopes(n int) [][]byte {
	env := newEnv(string(benchBody), 0)
	env.RoutingKey = e.queue
	out := make([][]byte, n)
	for i := range out {
		out[i], _ = env.Marshal()
	}
	return out
}

// raw one at a time ----------------------------------------------------

func rawPublishOne(tb testing.TB, e *benchEnv, n int) time.Duration {
	ctx := context.Background()
	msgs := e.msgs[:n]
	start := time.Now()
	for _, m := range msgs {
		must(tb, e.raw.LPush(ctx, e.queue, m).Err())
	}
	return time.Since(start)
}

func rawConsumeOne(tb testing.TB, e *benchEnv, n int) time.Duration {
	ctx := context.Background()
	c := newClient(e.store.o)
	defer c.Close()
	start := time.Now()
	for range n {
		must(tb, c.BRPop(ctx, 5*time.Second, e.queue).Err())
	}
	return time.Since(start)
}

// raw pipelined by 100 --------------------------------------------------

func rawPublish100(tb testing.TB, e *benchEnv, n int) time.Duration {
	ctx := context.Background()
	msgs := e.msgs[:n]
	start := time.Now()
	for done := 0; done < n; done += 100 {
		p := e.raw.Pipeline()
		for _, m := range msgs[done:min(done+100, n)] {
			p.LPush(ctx, e.queue, m)
		}
		_, err := p.Exec(ctx)
		must(tb, err)
	}
	return time.Since(start)
}

func rawConsume100(tb testing.TB, e *benchEnv, n int) time.Duration {
	ctx := context.Background()
	c := newClient(e.store.o)
	defer c.Close()
	start := time.Now()
	for done := 0; done < n; done += 100 {
		p := c.Pipeline()
		for range min(100, n-done) {
			p.BRPop(ctx, 5*time.Second, e.queue)
		}
		_, err := p.Exec(ctx)
		must(tb, err)
	}
	return time.Since(start)
}

// kombu-go ------------------------------------------------------------

func goChannel(tb testing.TB, e *benchEnv) driver.Channel {
	tb.Helper()
	ch := openChannel(tb, dialDriver(tb, nil))
	_, err := ch.QueueDeclare(context.Background(), driver.Queue{Name: e.queue})
	must(tb, err)
	return ch
}

func goPublishing(q string) *driver.Publishing {
	return &driver.Publishing{RoutingKey: q, Message: driver.Message{Body: benchBody,
		ContentType: "application/json", ContentEncoding: "utf-8", Headers: map[string]any{}}}
}

// The kombu-go rows go through the user API (kombu.Producer and
// kombu.Consumer), the path an application takes, with the same
// pre-serialized JSON body as the raw rows.
func kombuConn(tb testing.TB) *kombu.Connection {
	tb.Helper()
	c, err := kombu.Dial(context.Background(), serverURL(tb, nil).String(), nil)
	must(tb, err)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func kombuProducer(tb testing.TB, e *benchEnv) *kombu.Producer {
	tb.Helper()
	p, err := kombuConn(tb).Producer(context.Background(), &kombu.ProducerOptions{RoutingKey: e.queue})
	must(tb, err)
	return p
}

var benchPublish = &kombu.PublishOptions{ContentType: "application/json", ContentEncoding: "utf-8"}

func goPublishOne(tb testing.TB, e *benchEnv, n int) time.Duration {
	p := kombuProducer(tb, e)
	ctx := context.Background()
	start := time.Now()
	for range n {
		must(tb, p.Publish(ctx, benchBody, benchPublish))
	}
	return time.Since(start)
}

func goPublish100(tb testing.TB, e *benchEnv, n int) time.Duration {
	p := kombuProducer(tb, e)
	ctx := context.Background()
	bodies := make([]any, 100)
	for i := range bodies {
		bodies[i] = benchBody
	}
	start := time.Now()
	for done := 0; done < n; done += 100 {
		must(tb, p.PublishBatch(ctx, bodies[:min(100, n-done)], benchPublish))
	}
	return time.Since(start)
}

func goConsume(prefetch int) func(testing.TB, *benchEnv, int) time.Duration {
	return func(tb testing.TB, e *benchEnv, n int) time.Duration {
		ctx := context.Background()
		q := kombu.Queue{Name: e.queue}
		c, err := kombuConn(tb).Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: prefetch})
		must(tb, err)
		start := time.Now()
		for range n {
			m, err := c.Receive(ctx)
			must(tb, err)
			must(tb, m.Ack(ctx))
		}
		el := time.Since(start)
		must(tb, c.Close())
		return el
	}
}

// e2e runs a publisher and a consumer at the same time, timed until the
// consumer has its n messages.
func e2e(pub, con func(testing.TB, *benchEnv, int) time.Duration) func(testing.TB, *benchEnv, int) time.Duration {
	return func(tb testing.TB, e *benchEnv, n int) time.Duration {
		done := make(chan struct{})
		start := time.Now()
		go func() {
			defer close(done)
			con(tb, e, n)
		}()
		pub(tb, e, n)
		<-done
		return time.Since(start)
	}
}

// crossProcess measures f as if publisher and consumer were in different
// processes: no in-process wake-up of the polling consumer.
func crossProcess(f func(testing.TB, *benchEnv, int) time.Duration) func(testing.TB, *benchEnv, int) time.Duration {
	return func(tb testing.TB, e *benchEnv, n int) time.Duration {
		noLocalWake.Store(true)
		defer noLocalWake.Store(false)
		return f(tb, e, n)
	}
}

func fillRaw(tb testing.TB, e *benchEnv, n int) {
	if len(e.msgs) < n {
		e.prepare(n)
	}
	rawPublish100(tb, e, n)
}

// pythonE2E runs testdata/py_bench.py and returns its elapsed time.
func pythonE2E(tb testing.TB, e *benchEnv, n int) time.Duration {
	py := testenv.Python(tb)
	spec, _ := json.Marshal(map[string]any{"url": pyURL(tb), "queue": e.queue, "n": n, "body": string(benchBody)})
	path, _ := filepath.Abs(filepath.Join("testdata", "py_bench.py"))
	cmd := exec.Command(py, "-I", path, string(spec))
	cmd.Dir = tb.TempDir()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("py_bench.py: %v\n%s", err, stderr.String())
	}
	var res struct{ Seconds float64 }
	must(tb, json.Unmarshal(out, &res))
	return time.Duration(res.Seconds * float64(time.Second))
}

var (
	e2eRawOne   = e2e(rawPublishOne, rawConsumeOne)
	e2eRaw100   = e2e(rawPublish100, rawConsume100)
	e2eGoOne    = e2e(goPublishOne, goConsume(1))
	e2eGoBatch  = e2e(goPublish100, goConsume(100))
	e2eGoOneXP  = crossProcess(e2eGoOne)
	e2eGoBatchX = crossProcess(e2eGoBatch)
)

// cpuUsage returns the CPU time used so far by redis-server (INFO cpu)
// and by this process, to report CPU per message: a figure that, unlike
// wall time, does not depend on what else the machine runs.
func cpuUsage(tb testing.TB, e *benchEnv) (server, client time.Duration) {
	info := e.raw.Info(context.Background(), "cpu").Val()
	var secs float64
	for l := range strings.SplitSeq(info, "\n") {
		l = strings.TrimSpace(l)
		for _, k := range []string{"used_cpu_sys:", "used_cpu_user:"} {
			if v, ok := strings.CutPrefix(l, k); ok {
				var f float64
				fmt.Sscan(v, &f)
				secs += f
			}
		}
	}
	var ru, ch syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ch) // Python, once it has exited
	client = time.Duration(ru.Utime.Nano() + ru.Stime.Nano() + ch.Utime.Nano() + ch.Stime.Nano())
	return time.Duration(secs * float64(time.Second)), client
}

func runBench(b *testing.B, tag string, pre func(testing.TB, *benchEnv, int), f func(testing.TB, *benchEnv, int) time.Duration) {
	e := newBenchEnv(b, tag)
	e.prepare(b.N)
	if pre != nil {
		pre(b, e, b.N)
	}
	report := reportCPU(b, e)
	b.ResetTimer()
	el := f(b, e, b.N)
	b.StopTimer()
	report()
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
	b.SetBytes(int64(len(benchBody)))
}

// The names below are the ones cmd/kombu-benchtable computes its ratios from.

func BenchmarkRawOneAtATime(b *testing.B)       { runBench(b, "raw1", nil, e2eRawOne) }
func BenchmarkRawPipelined100(b *testing.B)     { runBench(b, "raw100", nil, e2eRaw100) }
func BenchmarkEndToEndJSON(b *testing.B)        { runBench(b, "go1", nil, e2eGoOne) }
func BenchmarkEndToEndJSONBatched(b *testing.B) { runBench(b, "go100", nil, e2eGoBatch) }

func BenchmarkPythonKombuEndToEnd(b *testing.B) {
	b.N = min(b.N, 3000)
	runBench(b, "py", nil, pythonE2E)
}

func BenchmarkPublish(b *testing.B) {
	b.Run("raw-one", func(b *testing.B) { runBench(b, "p-raw1", nil, rawPublishOne) })
	b.Run("raw-pipelined100", func(b *testing.B) { runBench(b, "p-raw100", nil, rawPublish100) })
	b.Run("kombu-go-one", func(b *testing.B) { runBench(b, "p-go1", nil, goPublishOne) })
	b.Run("kombu-go-batch100", func(b *testing.B) { runBench(b, "p-go100", nil, goPublish100) })
}

func BenchmarkConsumeAck(b *testing.B) {
	b.Run("raw-one", func(b *testing.B) { runBench(b, "c-raw1", fillRaw, rawConsumeOne) })
	b.Run("raw-pipelined100", func(b *testing.B) { runBench(b, "c-raw100", fillRaw, rawConsume100) })
	b.Run("kombu-go-prefetch1", func(b *testing.B) { runBench(b, "c-go1", fillRaw, goConsume(1)) })
	b.Run("kombu-go-prefetch100", func(b *testing.B) { runBench(b, "c-go100", fillRaw, goConsume(100)) })
}

// TestBenchmarkTable measures every scenario in interleaved rounds and
// writes BENCHMARKS.md. It runs only with KOMBU_REDIS_BENCH=1.
func TestBenchmarkTable(t *testing.T) {
	if os.Getenv("KOMBU_REDIS_BENCH") == "" {
		t.Skip("set KOMBU_REDIS_BENCH=1 to measure and write BENCHMARKS.md")
	}
	requireRealServer(t, "BENCHMARKS.md records redis-server's numbers")
	n, rounds := 20000, 5
	if s := os.Getenv("KOMBU_REDIS_BENCH_N"); s != "" {
		fmt.Sscan(s, &n)
	}
	if s := os.Getenv("KOMBU_REDIS_BENCH_ROUNDS"); s != "" {
		fmt.Sscan(s, &rounds)
	}
	pyN := min(n, 5000)
	type scenario struct {
		name string
		n    int
		pre  func(testing.TB, *benchEnv, int)
		f    func(testing.TB, *benchEnv, int) time.Duration
	}
	scenarios := []scenario{
		{"publish/raw-one", n, nil, rawPublishOne},
		{"publish/go-one", n, nil, goPublishOne},
		{"publish/raw-100", n, nil, rawPublish100},
		{"publish/go-100", n, nil, goPublish100},
		{"consume/raw-one", n, fillRaw, rawConsumeOne},
		{"consume/go-one", n, fillRaw, goConsume(1)},
		{"consume/raw-100", n, fillRaw, rawConsume100},
		{"consume/go-100", n, fillRaw, goConsume(100)},
		{"e2e/raw-one", n, nil, e2eRawOne},
		{"e2e/go-one", n, nil, e2eGoOne},
		{"e2e/go-one-xp", n, nil, e2eGoOneXP},
		{"e2e/raw-100", n, nil, e2eRaw100},
		{"e2e/go-100", n, nil, e2eGoBatch},
		{"e2e/go-100-xp", n, nil, e2eGoBatchX},
		{"e2e/python", pyN, nil, pythonE2E},
	}
	rates := map[string][]float64{}
	srvCPU, cliCPU := map[string][]float64{}, map[string][]float64{}
	for r := range rounds {
		for _, s := range scenarios {
			e := newBenchEnv(t, strings.ReplaceAll(s.name, "/", "-"))
			e.prepare(s.n)
			if s.pre != nil {
				s.pre(t, e, s.n)
			}
			s0, c0 := cpuUsage(t, e)
			el := s.f(t, e, s.n)
			s1, c1 := cpuUsage(t, e)
			rate := float64(s.n) / el.Seconds()
			rates[s.name] = append(rates[s.name], rate)
			srvCPU[s.name] = append(srvCPU[s.name], float64((s1-s0).Microseconds())/float64(s.n))
			cliCPU[s.name] = append(cliCPU[s.name], float64((c1-c0).Microseconds())/float64(s.n))
			_, _ = e.store.Purge(context.Background(), e.queue)
			t.Logf("round %d %-18s %8.0f msgs/s", r, s.name, rate)
		}
	}
	median := func(m map[string][]float64, name string) float64 {
		v := slices.Clone(m[name])
		if len(v) == 0 {
			return 0
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	med := func(name string) float64 { return median(rates, name) }
	info := newBenchEnv(t, "info").raw.Info(context.Background(), "server").Val()
	version := "?"
	for l := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "redis_version:"); ok {
			version = v
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "## transport/redis\n\n")
	fmt.Fprintf(&sb, "Measured %s on redis-server %s (Debian, loopback, no persistence), Go %s, %d cores. ",
		time.Now().UTC().Format("2006-01-02"), version, strings.TrimPrefix(runtime.Version(), "go"), runtime.NumCPU())
	fmt.Fprintf(&sb, "1 KiB JSON body; the raw rows push kombu envelopes like the Go publisher's, made before the clock starts, each with its own delivery tag. ")
	fmt.Fprintf(&sb, "%d messages per run (Python: %d), %d interleaved rounds, median shown. ", n, pyN, rounds)
	fmt.Fprintf(&sb, "\"End to end\" runs a publisher and a consumer (separate connections) at the same time and stops the clock at the last ack. ")
	fmt.Fprintf(&sb, "kombu-go rows go through the user API (kombu.Producer, kombu.Consumer) and the whole driver (virtual routing, QoS, delivery tags, unacked tracking in redis, acks).\n\n")
	fmt.Fprintf(&sb, "CPU columns: CPU time per message used by redis-server (INFO cpu) and by the Go test process (getrusage; publisher and consumer together in end-to-end rows; for Python, its process). ")
	fmt.Fprintf(&sb, "Unlike msgs/s they hardly depend on what else the machine runs, which on this shared 2-core machine was a lot.\n\n")
	fmt.Fprintf(&sb, "| scenario | msgs/s | ratio | target | redis CPU µs/msg | client CPU µs/msg |\n|---|---:|---:|---|---:|---:|\n")
	row := func(label, name, base, target string) {
		ratio := ""
		if base != "" && med(base) > 0 {
			ratio = fmt.Sprintf("%.2f× %s", med(name)/med(base), strings.Split(base, "/")[1])
		}
		fmt.Fprintf(&sb, "| %s | %.0f | %s | %s | %.1f | %.1f |\n", label, med(name), ratio, target, median(srvCPU, name), median(cliCPU, name))
	}
	row("publish, raw go-redis LPUSH, one at a time", "publish/raw-one", "", "")
	row("publish, kombu-go Publish, one at a time", "publish/go-one", "publish/raw-one", "")
	row("publish, raw go-redis LPUSH pipelined by 100", "publish/raw-100", "", "")
	row("publish, kombu-go PublishBatch of 100", "publish/go-100", "publish/raw-100", "")
	row("consume, raw go-redis BRPOP, one at a time", "consume/raw-one", "", "")
	row("consume + ack, kombu-go prefetch 1", "consume/go-one", "consume/raw-one", "")
	row("consume, raw go-redis BRPOP pipelined by 100", "consume/raw-100", "", "")
	row("consume + ack, kombu-go prefetch 100", "consume/go-100", "consume/raw-100", "")
	row("**end to end, raw go-redis, one at a time**", "e2e/raw-one", "", "")
	row("**end to end, kombu-go, one at a time** (Publish; prefetch 1)", "e2e/go-one", "e2e/raw-one", "≥ 0.50× raw-one")
	row("end to end, kombu-go, one at a time, no in-process wake-up", "e2e/go-one-xp", "e2e/raw-one", "")
	row("**end to end, raw go-redis pipelined by 100**", "e2e/raw-100", "", "")
	row("**end to end, kombu-go batched** (PublishBatch 100; prefetch 100)", "e2e/go-100", "e2e/raw-100", "≥ 0.25× raw-100")
	row("end to end, kombu-go batched, no in-process wake-up", "e2e/go-100-xp", "e2e/raw-100", "")
	row("end to end, Python kombu 5.2.4 (Producer thread + Consumer, prefetch 100)", "e2e/python", "", "")
	if py := med("e2e/python"); py > 0 {
		fmt.Fprintf(&sb, "\nkombu-go end to end one at a time / Python kombu end to end: **%.1f×**; batched: **%.1f×** (target ≥ 10×).\n",
			med("e2e/go-one")/py, med("e2e/go-100")/py)
	}
	cpu := func(name string) float64 { return median(srvCPU, name) + median(cliCPU, name) }
	fmt.Fprintf(&sb, "\nWhere the time goes. Every kombu-go fetch takes and records its deliveries as unacked in one Lua script (RPOP with a count; ")
	fmt.Fprintf(&sb, "kombu's [envelope, exchange, routing_key] records with one HSETNX for a single delivery, or one HMGET and one multi-field HSET for a batch; one ZADD unacked_index, whose score identifies the delivery; ")
	fmt.Fprintf(&sb, "an HSET unacked_queue only when the record does not name the queue, i.e. not for the default exchange) that also carries the acks of earlier deliveries ")
	fmt.Fprintf(&sb, "(ZSCORE or ZMSCORE to check the score, ZREM, HDEL, each with many members in a batch). One at a time that is 6 redis commands per message in straight-line Lua, where raw go-redis runs one BRPOP (and Python kombu runs the same commands in 3 round trips); ")
	fmt.Fprintf(&sb, "batched, about 6 commands per fetch plus the script's per-message work (finding the tag, exchange and routing key, building the record). PublishBatch sends one LPUSH of many values per list. ")
	fmt.Fprintf(&sb, "End to end one at a time, kombu-go spends %.0f µs of CPU per message (redis + client) against %.0f µs for raw go-redis; ", cpu("e2e/go-one"), cpu("e2e/raw-one"))
	fmt.Fprintf(&sb, "batched, %.0f µs against %.0f µs. With the publisher, the consumer and redis-server on 2 cores, the rates follow those totals. ", cpu("e2e/go-100"), cpu("e2e/raw-100"))
	fmt.Fprintf(&sb, "Python kombu spends %.0f µs per message.\n", cpu("e2e/python"))
	fmt.Fprintf(&sb, "\nAll rounds (msgs/s):\n\n")
	for _, s := range scenarios {
		var parts []string
		for _, r := range rates[s.name] {
			parts = append(parts, fmt.Sprintf("%.0f", r))
		}
		fmt.Fprintf(&sb, "- %s: %s\n", s.name, strings.Join(parts, ", "))
	}
	fmt.Fprintf(&sb, "\nReproduce (after `make services-up`, or with KOMBU_TEST_REDIS_URL pointing at a server):\n\n")
	fmt.Fprintf(&sb, "    KOMBU_REDIS_BENCH=1 go test -count=1 -run TestBenchmarkTable -v ./transport/redis\n\n")
	fmt.Fprintf(&sb, "Go benchmarks of the same scenarios: `go test -run '^$' -bench . ./transport/redis` ")
	fmt.Fprintf(&sb, "(BenchmarkRawOneAtATime, BenchmarkEndToEndJSON, BenchmarkRawPipelined100, BenchmarkEndToEndJSONBatched, BenchmarkPythonKombuEndToEnd feed cmd/kombu-benchtable).\n")
	must(t, os.WriteFile("BENCHMARKS.md", []byte(sb.String()), 0o644))
	t.Log("\n" + sb.String())
}
