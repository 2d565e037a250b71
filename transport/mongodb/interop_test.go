package mongodb

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu"
)

// Interop with Python kombu 5.2.4 (Debian python3-kombu and
// python3-pymongo 3.11) on the test server: pymongo talks to FerretDB
// without trouble, including kombu's capped broadcast collection and its
// tailable cursor.

// python runs testdata/kombu_mongodb.py with args; its stdout lines come
// on the returned channel, closed when it exits. A line written to stdin
// lets a consumer started with "wait_go" begin polling.
func python(t *testing.T, args map[string]any) (<-chan string, io.Writer) {
	t.Helper()
	py := testenv.Python(t)
	a, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs("testdata/kombu_mongodb.py")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	cmd := exec.CommandContext(ctx, py, "-I", script, string(a))
	cmd.Dir = t.TempDir() // no kombu/ folder beside the script's cwd
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		if err := cmd.Wait(); err != nil && ctx.Err() == nil {
			t.Errorf("python %v: %v\n%s", args["mode"], err, stderr.String())
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-exited
	})
	return lines, in
}

// pyLine waits for the script's next line.
func pyLine(t *testing.T, lines <-chan string, within time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("python exited early")
		}
		return l
	case <-time.After(within):
		t.Fatalf("python said nothing for %v", within)
	}
	return ""
}

// pyMessage is one message as the Python consumer reports it.
type pyMessage struct {
	N           int            `json:"n"`
	Redelivered bool           `json:"redelivered"`
	Priority    int            `json:"priority"`
	Exchange    string         `json:"exchange"`
	RoutingKey  string         `json:"routing_key"`
	Headers     map[string]any `json:"headers"`
}

// pyConsumed reads the consumer's message lines until "end".
func pyConsumed(t *testing.T, lines <-chan string) []pyMessage {
	t.Helper()
	var got []pyMessage
	for {
		l := pyLine(t, lines, 60*time.Second)
		if l == "end" {
			return got
		}
		var m pyMessage
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("python line %q: %v", l, err)
		}
		got = append(got, m)
	}
}

var interopCases = []struct{ typ, bindingKey, routingKey string }{
	{"direct", "interop.rk", "interop.rk"},
	{"topic", "interop.*.info", "interop.x.info"},
	{"fanout", "", ""},
}

const interopCount = 20

func interopNames() (exchange, queue string) {
	id := rand.Uint32()
	return fmt.Sprintf("interop.ex.%08x", id), fmt.Sprintf("interop.q.%08x", id)
}

// TestInteropPythonProducerGoConsumer: Python kombu publishes through
// direct, topic and fanout exchanges; Go consumes every message once, in
// priority order (direct and topic), with Python's properties.
func TestInteropPythonProducerGoConsumer(t *testing.T) {
	raw := isolatedURL(t, "")
	for _, tc := range interopCases {
		t.Run(tc.typ, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			ex, qname := interopNames()
			conn, err := kombu.Dial(ctx, raw, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			q := kombu.Queue{Name: qname, Exchange: kombu.Exchange{Name: ex, Type: tc.typ}, RoutingKey: tc.bindingKey}
			args := map[string]any{"url": raw, "mode": "produce", "exchange": ex, "type": tc.typ, "queue": qname,
				"binding_key": tc.bindingKey, "routing_key": tc.routingKey, "count": interopCount}
			var got []*kombu.Message
			if tc.typ == "fanout" {
				// Broadcasts reach queues bound before they are published.
				ch, err := conn.Channel(ctx)
				if err != nil {
					t.Fatal(err)
				}
				c, err := kombu.NewConsumer(ctx, ch, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: interopCount})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				lines, _ := python(t, args)
				if l := pyLine(t, lines, 60*time.Second); l != "done" {
					t.Fatalf("python: %s", l)
				}
				for range interopCount {
					m, err := c.Receive(ctx)
					if err != nil {
						t.Fatalf("after %d: %v", len(got), err)
					}
					got = append(got, m)
				}
			} else {
				lines, _ := python(t, args)
				if l := pyLine(t, lines, 60*time.Second); l != "done" {
					t.Fatalf("python: %s", l)
				}
				sq, err := conn.SimpleQueue(ctx, qname, &kombu.SimpleQueueOptions{Queue: &q})
				if err != nil {
					t.Fatal(err)
				}
				for range interopCount {
					m, err := sq.Get(ctx)
					if err != nil {
						t.Fatalf("after %d: %v", len(got), err)
					}
					got = append(got, m)
				}
			}
			seen := map[int]bool{}
			for i, m := range got {
				var body struct {
					N    int    `json:"n"`
					Text string `json:"text"`
				}
				if err := json.Unmarshal(m.Body, &body); err != nil || body.Text != "héllo" {
					t.Fatalf("body %q: %v", m.Body, err)
				}
				seen[body.N] = true
				if m.ContentType != "application/json" || m.Headers["x-n"] != int64(body.N) ||
					m.Properties.Priority != uint8(body.N%10) || m.Exchange != ex || m.RoutingKey != tc.routingKey || m.Redelivered {
					t.Errorf("message %d: %+v", body.N, m)
				}
				if tc.typ != "fanout" && i > 0 {
					// Higher priority first, then publish order.
					var prev struct{ N int }
					_ = json.Unmarshal(got[i-1].Body, &prev)
					if p, c := prev.N%10, body.N%10; p < c || p == c && prev.N > body.N {
						t.Errorf("order: %d before %d", prev.N, body.N)
					}
				}
				if err := m.Ack(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if len(seen) != interopCount {
				t.Errorf("%d distinct messages of %d", len(seen), interopCount)
			}
		})
	}
}

// TestInteropGoProducerPythonConsumer: Go publishes through direct, topic
// and fanout exchanges that a Python consumer declared and bound (Go
// routes with the binding documents Python wrote); Python gets every
// message once.
func TestInteropGoProducerPythonConsumer(t *testing.T) {
	raw := isolatedURL(t, "")
	for _, tc := range interopCases {
		t.Run(tc.typ, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			ex, qname := interopNames()
			// Python kombu 5.2.4 reads broadcasts with pymongo's default
			// batch size; FerretDB closes such a tailable cursor (id 0) once
			// its first batch is read, and kombu does not reopen it: a
			// Python fanout consumer gets only what is there at its first
			// poll. So it polls after Go published (wait_go).
			lines, goOn := python(t, map[string]any{"url": raw, "mode": "consume", "exchange": ex, "type": tc.typ,
				"queue": qname, "binding_key": tc.bindingKey, "count": interopCount, "idle": 1.0,
				"wait_go": tc.typ == "fanout"})
			if l := pyLine(t, lines, 60*time.Second); l != "ready" {
				t.Fatalf("python: %s", l)
			}
			conn, err := kombu.Dial(ctx, raw, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			exchange := kombu.Exchange{Name: ex, Type: tc.typ}
			ch, err := conn.Channel(ctx)
			if err != nil {
				t.Fatal(err)
			}
			p, err := kombu.NewProducer(ctx, ch, &kombu.ProducerOptions{Exchange: exchange})
			if err != nil {
				t.Fatal(err)
			}
			for i := range interopCount {
				err := p.Publish(ctx, map[string]any{"n": i, "text": "héllo"}, &kombu.PublishOptions{
					RoutingKey: tc.routingKey, Priority: uint8(i % 10), Headers: map[string]any{"x-n": i},
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			if _, err := io.WriteString(goOn, "go\n"); err != nil {
				t.Fatal(err)
			}
			got := pyConsumed(t, lines)
			seen := map[int]int{}
			for _, m := range got {
				seen[m.N]++
				if m.Priority != m.N%10 || m.Exchange != ex || m.RoutingKey != tc.routingKey || m.Redelivered ||
					m.Headers["x-n"] != float64(m.N) {
					t.Errorf("python got %+v", m)
				}
			}
			if len(got) != interopCount || len(seen) != interopCount {
				t.Errorf("python got %d messages, %d distinct, want %d", len(got), len(seen), interopCount)
			}
		})
	}
}

// TestInteropPythonSeesLeasedMessagesOnce: while a Go consumer holds
// leased messages, a Python consumer of the same queue gets only the
// others; when the Go connection closes, the held ones go back and Python
// gets them, marked redelivered. Python sees each message exactly once.
func TestInteropPythonSeesLeasedMessagesOnce(t *testing.T) {
	raw := isolatedURL(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	_, qname := interopNames()
	conn, err := kombu.Dial(ctx, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	sq, err := conn.SimpleQueue(ctx, qname, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n, held = 20, 8
	for i := range n {
		if err := sq.Put(ctx, map[string]any{"n": i}, nil); err != nil {
			t.Fatal(err)
		}
	}
	goHeld := map[int]bool{}
	for range held {
		m, err := sq.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ N int }
		_ = json.Unmarshal(m.Body, &body)
		goHeld[body.N] = true // not acked
	}
	args := map[string]any{"url": raw, "mode": "consume", "exchange": "", "type": "direct", "queue": qname,
		"count": n - held, "idle": 1.5}
	lines, _ := python(t, args)
	first := pyConsumed(t, skipReady(t, lines))
	pySeen := map[int]int{}
	for _, m := range first {
		pySeen[m.N]++
		if goHeld[m.N] || m.Redelivered {
			t.Errorf("python got %+v while Go held %v", m, goHeld)
		}
	}
	if len(first) != n-held {
		t.Errorf("python got %d messages while Go held %d of %d", len(first), held, n)
	}
	if err := conn.Close(); err != nil { // the held messages go back
		t.Fatal(err)
	}
	args["count"] = held
	lines, _ = python(t, args)
	second := pyConsumed(t, skipReady(t, lines))
	for _, m := range second {
		pySeen[m.N]++
		if !goHeld[m.N] || !m.Redelivered {
			t.Errorf("after Go closed, python got %+v; Go held %v", m, goHeld)
		}
	}
	for i := range n {
		if pySeen[i] != 1 {
			t.Errorf("python saw message %d %d times", i, pySeen[i])
		}
	}
}

func skipReady(t *testing.T, lines <-chan string) <-chan string {
	t.Helper()
	if l := pyLine(t, lines, 60*time.Second); l != "ready" {
		t.Fatalf("python: %s", l)
	}
	return lines
}
