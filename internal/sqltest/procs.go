package sqltest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/faulttest"
	"github.com/kombu-go/kombu/kombu"
)

// childEnv carries a helper process's orders (JSON childArgs).
const childEnv = "KOMBU_SQLTEST_CHILD"

// childArgs tell a helper process what to do.
type childArgs struct {
	URL      string `json:"url"`
	Queue    string `json:"queue"`
	Prefetch int    `json:"prefetch"`
}

// ChildMain runs a helper process's work when this test binary was started
// as one (each engine has a TestHelperProcess calling it) and reports
// whether it was.
func ChildMain() bool {
	raw := os.Getenv(childEnv)
	if raw == "" {
		return false
	}
	var a childArgs
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		fmt.Fprintln(os.Stderr, "child args:", err)
		os.Exit(2)
	}
	if err := consume(a); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	os.Exit(0)
	return true
}

// consume receives from a.Queue until stdin closes, printing "ack N" after
// each successful ack of message N.
func consume(a childArgs) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // the parent closes stdin to stop us
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	conn, err := kombu.Dial(ctx, a.URL, nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel(ctx)
	if err != nil {
		return err
	}
	q := kombu.NewQueue(a.Queue, kombu.NewExchange(a.Queue, kombu.Direct), a.Queue)
	c, err := kombu.NewConsumer(ctx, ch, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: a.Prefetch})
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, "ready")
	_ = out.Flush()
	for {
		m, err := c.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		var n int
		if err := m.Decode(&n); err != nil {
			return err
		}
		if err := m.Ack(ctx); err != nil {
			return err
		}
		fmt.Fprintf(out, "ack %d redelivered=%t\n", n, m.Redelivered)
		_ = out.Flush()
	}
}

// child is a running helper process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	errb  *strings.Builder
	done  chan struct{}
}

func startChild(t *testing.T, a childArgs) *child {
	t.Helper()
	raw, _ := json.Marshal(a)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+string(raw))
	c := &child{cmd: cmd, lines: make(chan string, 4096), errb: &strings.Builder{}, done: make(chan struct{})}
	cmd.Stderr = &lockedWriter{b: c.errb}
	c.stdin, _ = cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		_ = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
	})
	return c
}

type lockedWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (c *child) stderr() string {
	w := c.cmd.Stderr.(*lockedWriter)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// ledger counts what consumers acked, per message number.
type ledger struct {
	mu    sync.Mutex
	acks  map[int]int
	total int
}

func newLedger() *ledger { return &ledger{acks: map[int]int{}} }

func (l *ledger) add(n int) {
	l.mu.Lock()
	l.acks[n]++
	l.total++
	l.mu.Unlock()
}

func (l *ledger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// check reports message numbers in [0, n) never acked (lost) and acked
// more than once.
func (l *ledger) check(t *testing.T, n int) (lost, dup int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range n {
		switch c := l.acks[i]; {
		case c == 0:
			lost++
		case c > 1:
			dup++
		}
	}
	if lost > 0 || dup > 0 {
		t.Errorf("of %d messages: %d lost, %d acked twice outside redelivery", n, lost, dup)
	}
	return lost, dup
}

// publishNumbers puts 0..n-1 into queue as JSON numbers, in batches.
func publishNumbers(t *testing.T, raw, queue string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	conn := dial(t, raw)
	sq, err := conn.SimpleQueue(ctx, queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	for i := range n {
		if err := sq.Put(ctx, i, nil); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// CrashedConsumer kills (SIGKILL) a consumer process that acked 50 of 200
// messages and holds a prefetch window of 20 unacked; the held ones come
// back after the visibility timeout (raw must set visibility_timeout=2) to
// a fresh consumer that acks everything else: lost = 0, only held messages
// are delivered twice, marked redelivered (faulttest.KilledConsumer; the
// package needs its TestHelperProcessConsumer). transport names the row
// of the fault table.
func CrashedConsumer(t *testing.T, transport, raw string) {
	faulttest.KilledConsumer{
		Transport: transport, URL: raw, Queue: fmt.Sprintf("crash.%d", time.Now().UnixNano()),
		Total: 200, Acks: 50, Hold: 20, Prefetch: 20,
		EarliestRedelivery: time.Second, // half the lease: no sooner
		// Acks ride the next claim or go alone 2 ms later: a kill loses
		// those not sent yet (at most a prefetch window), which come back.
		AckedAgain: 20,
		Note:       "visibility timeout 2 s",
	}.Run(t)
}

// ConcurrentConsumers runs four consumer processes on one queue of n
// messages: every message is acked exactly once.
func ConcurrentConsumers(t *testing.T, raw string, n int) {
	q := fmt.Sprintf("concurrent.%d", time.Now().UnixNano())
	l := newLedger()
	per := make([]int, 4)
	kids := make([]*child, 4)
	var ready sync.WaitGroup
	ready.Add(len(kids))
	for i := range kids {
		kids[i] = startChild(t, childArgs{URL: raw, Queue: q, Prefetch: 10})
		go func(i int) {
			for line := range kids[i].lines {
				if line == "ready" {
					ready.Done()
				}
				if rest, ok := strings.CutPrefix(line, "ack "); ok {
					m, _ := strconv.Atoi(strings.Fields(rest)[0])
					l.add(m)
					l.mu.Lock()
					per[i]++
					l.mu.Unlock()
				}
			}
		}(i)
	}
	ready.Wait() // every consumer is waiting on the queue: they compete from the first message
	start := time.Now()
	publishNumbers(t, raw, q, n)
	if !waitFor(120*time.Second, func() bool { return l.count() >= n }) {
		t.Errorf("only %d of %d acked", l.count(), n)
	}
	took := time.Since(start)
	time.Sleep(500 * time.Millisecond)
	for _, k := range kids {
		_ = k.stdin.Close()
	}
	for i, k := range kids {
		<-k.done
		if s := k.stderr(); strings.TrimSpace(s) != "" && !strings.Contains(s, "PASS") {
			t.Logf("consumer %d stderr: %s", i, s)
		}
	}
	l.check(t, n)
	l.mu.Lock()
	t.Logf("4 consumers, %d messages: each acked once; per consumer %v; %v", n, per, took.Round(time.Millisecond))
	busiest := 0
	for _, p := range per {
		busiest = max(busiest, p)
	}
	l.mu.Unlock()
	if busiest == n {
		t.Errorf("one consumer took all %d messages: the others never claimed beside it", n)
	}
}
