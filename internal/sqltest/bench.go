package sqltest

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu"
)

// BenchBody is the 1 KiB JSON body of every benchmark row.
var BenchBody = func() []byte {
	b, _ := json.Marshal(map[string]any{"task": "bench", "args": []int{1, 2, 3}, "pad": ""})
	b, _ = json.Marshal(map[string]any{"task": "bench", "args": []int{1, 2, 3}, "pad": strings.Repeat("x", 1024-len(b))})
	return b
}()

var benchPublish = &kombu.PublishOptions{ContentType: "application/json", ContentEncoding: "utf-8"}

// KombuE2E publishes n messages (PublishBatch of batch, or Publish when
// batch is 1) while a consumer with prefetch receives and acks them, on
// two connections; it returns the time until the consumer has all n.
func KombuE2E(tb testing.TB, raw, queue string, n, batch, prefetch int) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pc, cc := dial(tb, raw), dial(tb, raw)
	q := kombu.NewQueue(queue, kombu.Exchange{}, queue)
	c, err := cc.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: prefetch})
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	p, err := pc.Producer(ctx, &kombu.ProducerOptions{RoutingKey: queue})
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		for range n {
			m, err := c.Receive(ctx)
			if err == nil {
				err = m.Ack(ctx)
			}
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	bodies := make([]any, batch)
	for i := range bodies {
		bodies[i] = BenchBody
	}
	for sent := 0; sent < n; sent += batch {
		if batch == 1 {
			err = p.Publish(ctx, BenchBody, benchPublish)
		} else {
			err = p.PublishBatch(ctx, bodies[:min(batch, n-sent)], benchPublish)
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
	return time.Since(start)
}

// PythonE2E runs Python kombu's producer then consumer (prefetch 100) for
// n messages and returns its own timing.
func PythonE2E(tb testing.TB, pyURL, queue string, n int) time.Duration {
	py := testenv.Python(tb)
	_, file, _, _ := runtime.Caller(0)
	spec, _ := json.Marshal(map[string]any{"url": pyURL, "queue": queue, "n": n, "body": string(BenchBody)})
	cmd := exec.Command(py, "-I", filepath.Join(filepath.Dir(file), "testdata", "sql_bench.py"), string(spec))
	cmd.Dir = tb.TempDir()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("sql_bench.py: %v\n%s", err, stderr.String())
	}
	var res struct{ Seconds float64 }
	if err := json.Unmarshal(out, &res); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(res.Seconds * float64(time.Second))
}

// IdleCPU returns the CPU time this process spends while one consumer
// waits for d on an empty queue (nothing else runs in the process then).
func IdleCPU(tb testing.TB, raw, queue string, d time.Duration) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	conn := dial(tb, raw)
	c, err := conn.Consumer(ctx, []kombu.Queue{kombu.NewQueue(queue, kombu.Exchange{}, queue)}, &kombu.ConsumerOptions{PrefetchCount: 10})
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	wait := func(d time.Duration) {
		wctx, stop := context.WithTimeout(ctx, d)
		defer stop()
		if m, err := c.Receive(wctx); err == nil {
			tb.Fatalf("idle queue delivered %q", m.Body)
		}
	}
	wait(time.Second) // settle: the first empty look
	before := cpuTime()
	wait(d)
	return cpuTime() - before
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Median returns the median of ds.
func Median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

// Rate is messages per second.
func Rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// Scenario is one row of a benchmark table: run moves n messages through
// a new queue and returns how long it took.
type Scenario struct {
	Name string
	N    int
	Run  func(queue string, n int) time.Duration
}

// RunScenarios runs every scenario in interleaved rounds and returns each
// one's median rate (msgs/s) and the markdown table of them.
func RunScenarios(scenarios []Scenario, rounds int) (map[string]float64, string) {
	times := map[string][]time.Duration{}
	for r := range rounds {
		for _, s := range scenarios {
			q := fmt.Sprintf("bench.%s.%d.%d", s.Name, r, time.Now().UnixNano())
			times[s.Name] = append(times[s.Name], s.Run(q, s.N))
		}
	}
	rate := map[string]float64{}
	var sb strings.Builder
	fmt.Fprintf(&sb, "| scenario | msgs/s (median of %d) |\n|---|---:|\n", rounds)
	for _, s := range scenarios {
		rate[s.Name] = Rate(s.N, Median(times[s.Name]))
		fmt.Fprintf(&sb, "| %s | %.0f |\n", s.Name, rate[s.Name])
	}
	return rate, sb.String()
}
