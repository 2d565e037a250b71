package faulttest

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
	"syscall"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

// killedConsumerEnv carries a consumer process's orders (JSON childOrders)
// when a KilledConsumer scenario runs the test binary again.
const killedConsumerEnv = "KOMBU_FAULTTEST_KILLED_CONSUMER"

// HelperTest is the test a package names to run its consumer process: a
// one-line test whose body is faulttest.KilledConsumerProcess(t).
const HelperTest = "TestHelperProcessConsumer"

// KilledConsumer is the F8 scenario: Total messages are published to
// Queue; a consumer process (this test binary run again, see
// [KilledConsumerProcess]) acks the first Acks it receives, then receives
// Hold more without acking them and is killed with SIGKILL. A consumer on a
// fresh connection then takes everything the dead one did not ack, within
// Drain. Every message is counted by id with a [Ledger]: nothing may be
// lost or unexpected, every held message must come back flagged
// redelivered, and a message is delivered twice only when it was held (or
// its ack was written behind, up to AckedAgain). The figures go to the
// fault table ([Record]).
type KilledConsumer struct {
	Transport string // the table's transport column, e.g. "sqs"
	URL       string // what both consumers and the publisher dial (the visibility timeout set in it)
	Queue     string // a name of the test's own; deleted at the end

	Total, Acks, Hold int
	Prefetch          int // of both consumers; at least Hold
	// AckMultipleEvery, when above 1, makes the killed consumer ack with
	// one multiple ack every that many messages (Acks a multiple of it)
	// instead of one by one.
	AckMultipleEvery int

	// Drain bounds the fresh consumer's work after the kill (default 30 s).
	Drain time.Duration

	// InFlight, when set, counts on the server the messages out to a
	// consumer (leases, unacked entries, in-flight SQS messages); it is
	// read just before the kill. It must lie in [Hold, MaxInFlight]
	// (default Prefetch), and exactly that many messages must be
	// redelivered after the kill.
	InFlight    func(ctx context.Context) (int, error)
	MaxInFlight int

	// EarliestRedelivery and LatestRedelivery bound the time from the kill
	// to the last redelivery (0: not checked): a held message must not come
	// back before its visibility timeout could expire, nor long after.
	EarliestRedelivery, LatestRedelivery time.Duration

	// AckedAgain is how many messages the killed consumer acked may be
	// delivered again: a transport that writes acks behind (batched) loses
	// the last ones with the process. 0 for one that acks synchronously.
	AckedAgain int

	// CheckRedelivered checks a message redelivered after the kill (e.g.
	// its delivery count header); nil: nothing more.
	CheckRedelivered func(m *kombu.Message) error

	// Leftover, when set, counts what the server still holds for the queue
	// after the drain and the fresh consumer's close (leases, unacked
	// entries): it must be 0.
	Leftover func(ctx context.Context) (int, error)

	Note string // added to the row's note, e.g. "visibility timeout 2 s"
}

// childOrders tell the consumer process what to do.
type childOrders struct {
	URL      string `json:"url"`
	Queue    string `json:"queue"`
	Prefetch int    `json:"prefetch"`
	Acks     int    `json:"acks"`
	Hold     int    `json:"hold"`
	Every    int    `json:"every"` // AckMultipleEvery
}

// InKilledConsumerProcess reports whether this test binary runs as the
// consumer process of a KilledConsumer scenario (a TestMain that starts
// servers for the tests can then leave them to the parent).
func InKilledConsumerProcess() bool { return os.Getenv(killedConsumerEnv) != "" }

// KilledConsumerProcess is the consumer process of a [KilledConsumer]
// scenario when the test binary was started as one, and skips t
// otherwise. It prints "delivered BODY REDELIVERED" for every delivery,
// "acked BODY" after each ack that returned nil, and "holding" once it holds
// Hold messages unacked; then it waits to be killed. "error ..." ends it.
func KilledConsumerProcess(t *testing.T) {
	raw := os.Getenv(killedConsumerEnv)
	if raw == "" {
		t.Skip("the consumer process of a KilledConsumer scenario")
	}
	var o childOrders
	if err := json.Unmarshal([]byte(raw), &o); err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	if _, err := consumeAndHold(o, os.Stdout); err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	time.Sleep(time.Hour) // killed long before
	os.Exit(3)
}

// consumeAndHold is the consumer process's work; it returns its connection,
// still consuming, once it holds o.Hold messages.
func consumeAndHold(o childOrders, w io.Writer) (*kombu.Connection, error) {
	ctx := context.Background()
	conn, err := kombu.Dial(ctx, o.URL, nil)
	if err != nil {
		return nil, err
	}
	c, err := conn.Consumer(ctx, []kombu.Queue{consumedQueue(o.Queue)}, &kombu.ConsumerOptions{PrefetchCount: o.Prefetch})
	if err != nil {
		return conn, err
	}
	out := bufio.NewWriter(w)
	var unacked []*kombu.Message // received, not yet covered by a multiple ack
	for acked, held := 0, 0; held < o.Hold; {
		// Bounded: a consumer that gets nothing ends, and the parent
		// reports it instead of waiting for ever.
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		m, err := c.Receive(rctx)
		cancel()
		if err != nil {
			return conn, fmt.Errorf("receive after %d acks, %d held: %w", acked, held, err)
		}
		fmt.Fprintf(out, "delivered %s %t\n", m.Body, m.Redelivered)
		switch {
		case acked < o.Acks && o.Every > 1:
			if unacked = append(unacked, m); len(unacked) < o.Every {
				break
			}
			if err := m.AckMultiple(ctx); err != nil {
				return conn, fmt.Errorf("ack multiple: %w", err)
			}
			for _, u := range unacked {
				fmt.Fprintf(out, "acked %s\n", u.Body)
			}
			acked += len(unacked)
			unacked = unacked[:0]
		case acked < o.Acks:
			if err := m.Ack(ctx); err != nil {
				return conn, fmt.Errorf("ack: %w", err)
			}
			acked++
			fmt.Fprintf(out, "acked %s\n", m.Body)
		default:
			held++
		}
		if err := out.Flush(); err != nil {
			return conn, err
		}
	}
	fmt.Fprintln(out, "holding")
	return conn, out.Flush()
}

// consumedQueue is the queue of the scenario, bound to the default exchange
// under its own name.
func consumedQueue(name string) kombu.Queue {
	q := kombu.NewQueue(name, kombu.DefaultExchange, name)
	q.Durable = true
	return q
}

// dialDeclared connects to url and declares the scenario's queue (a
// declaration, not a passive one: redis knows no empty queue), failing
// t on error. The caller closes the connection.
func dialDeclared(t testing.TB, ctx context.Context, url, queue string) (*kombu.Connection, kombu.QueueInfo) {
	t.Helper()
	conn, err := kombu.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.DefaultChannel(ctx)
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	info, err := consumedQueue(queue).Declare(ctx, ch)
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	return conn, info
}

// Run plays the scenario on t, records its row and returns its result.
func (k KilledConsumer) Run(t *testing.T) Result {
	t.Helper()
	if k.Acks <= 0 || k.Hold <= 0 || k.Total < k.Acks+k.Hold || k.Prefetch < k.Hold ||
		k.AckMultipleEvery > 1 && (k.Acks%k.AckMultipleEvery != 0 || k.Prefetch < k.AckMultipleEvery) {
		t.Fatalf("KilledConsumer: want 0 < Acks, 0 < Hold <= Prefetch, Acks+Hold <= Total, Acks a multiple of AckMultipleEvery <= Prefetch; got %+v", k)
	}
	if k.Drain <= 0 {
		k.Drain = 30 * time.Second
	}
	if k.MaxInFlight == 0 {
		k.MaxInFlight = k.Prefetch
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), k.Drain+2*time.Minute)
	defer cancel()
	ledger := NewLedger(k.Total)
	k.publish(t, ctx, ledger)

	child := k.startChild(t)
	acked, held := map[int]bool{}, map[int]bool{}
	received := 0
	for waiting := true; waiting; {
		line, err := child.next(60 * time.Second)
		if err != nil {
			t.Fatalf("the consumer process, after %d acks and %d held: %v", len(acked), len(held), err)
		}
		word, rest, _ := strings.Cut(line, " ")
		switch word {
		case "delivered":
			body, redelivered, _ := strings.Cut(rest, " ")
			seq, ok := ledger.Delivery(nil, []byte(body), redelivered == "true")
			if ok && received >= k.Acks {
				held[seq] = true
			}
			received++
		case "acked":
			seq, ok := ledger.Seq(nil, []byte(rest))
			if !ok {
				t.Fatalf("the consumer process acked %q, not a message of this run", rest)
			}
			ledger.Ack(seq, nil)
			acked[seq] = true
		case "holding":
			waiting = false
		default:
			t.Fatalf("the consumer process: %s", line)
		}
	}
	inFlight := -1
	if k.InFlight != nil {
		n, err := k.InFlight(ctx)
		if err != nil {
			t.Fatalf("counting the messages in flight: %v", err)
		}
		inFlight = n
	}
	killedAt := child.kill(t)

	redelivered, ackedAgain, firstBack, lastBack := k.drain(t, ctx, ledger, acked, killedAt)
	r := ledger.Check()
	note := fmt.Sprintf("redelivered %d, last %s after the kill", len(redelivered), fmtDur(lastBack))
	if k.Note != "" {
		note += "; " + k.Note
	}
	Record(t, Row{Test: "consumer process killed", Transport: k.Transport,
		Fault:  fmt.Sprintf("SIGKILL of a consumer holding %d unacked (after %d acks)", len(held), len(acked)),
		Result: r, Resume: firstBack, Elapsed: time.Since(start), Note: note})

	if !r.OK() || r.Unexplained != 0 || r.Published != k.Total {
		t.Errorf("published %d of %d, lost %d %v, unexpected %d %q, duplicates without the redelivered flag %d",
			r.Published, k.Total, r.Lost, r.LostSeqs, r.Unexpected, r.UnexpectedBodies, r.Unexplained)
	}
	if r.Acked != k.Total {
		t.Errorf("%d of %d messages acked in the end", r.Acked, k.Total)
	}
	if len(acked) != k.Acks || len(held) != k.Hold {
		t.Errorf("the killed consumer acked %d and held %d, want %d and %d", len(acked), len(held), k.Acks, k.Hold)
	}
	for seq := range held {
		if !redelivered[seq] {
			t.Errorf("message %d, held by the killed consumer, did not come back flagged redelivered", seq)
		}
	}
	if ackedAgain > k.AckedAgain {
		t.Errorf("%d messages acked by the killed consumer were delivered again, want at most %d", ackedAgain, k.AckedAgain)
	}
	if inFlight >= 0 {
		if inFlight < k.Hold || inFlight > k.MaxInFlight {
			t.Errorf("%d messages in flight on the server at the kill, want %d..%d", inFlight, k.Hold, k.MaxInFlight)
		}
		if len(redelivered) != inFlight {
			t.Errorf("%d messages redelivered after the kill, want the %d in flight at it", len(redelivered), inFlight)
		}
	}
	if k.EarliestRedelivery > 0 && lastBack < k.EarliestRedelivery {
		t.Errorf("the last redelivery came %v after the kill, before %v: earlier than the visibility timeout allows", lastBack, k.EarliestRedelivery)
	}
	if k.LatestRedelivery > 0 && lastBack > k.LatestRedelivery {
		t.Errorf("the last redelivery came %v after the kill, later than %v", lastBack, k.LatestRedelivery)
	}
	k.checkEmpty(t, ctx)
	counted := "not counted"
	if inFlight >= 0 {
		counted = strconv.Itoa(inFlight)
	}
	t.Logf("%d messages, %d acked and %d held by the killed consumer, in flight on the server at the kill: %s; %d redelivered (first %v, last %v after the kill)",
		k.Total, len(acked), len(held), counted, len(redelivered), firstBack.Round(time.Millisecond), lastBack.Round(time.Millisecond))
	return r
}

// publish puts messages 0..Total-1 to the queue, in batches.
func (k KilledConsumer) publish(t *testing.T, ctx context.Context, ledger *Ledger) {
	t.Helper()
	conn, _ := dialDeclared(t, ctx, k.URL, k.Queue)
	defer conn.Close()
	t.Cleanup(func() { k.deleteQueue(t) })
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	const batch = 200
	for from := 0; from < k.Total; from += batch {
		to := min(from+batch, k.Total)
		bodies := make([]any, 0, to-from)
		for seq := from; seq < to; seq++ {
			bodies = append(bodies, ledger.Body(seq))
		}
		// The body names the message; the run header marks it as this run's.
		err := p.PublishBatch(ctx, bodies, &kombu.PublishOptions{RoutingKey: k.Queue, ContentType: "application/data",
			Headers: map[string]any{HeaderRun: ledger.Run()}})
		if err != nil {
			t.Fatalf("publishing messages %d..%d: %v", from, to-1, err)
		}
		for seq := from; seq < to; seq++ {
			ledger.Publish(seq, nil, nil)
		}
	}
}

// drain consumes on a fresh connection until every message is acked (or
// Drain passes) and a last short wait brings no more. It returns the seqs
// delivered flagged redelivered, how many of the killed consumer's acked
// messages came again, and the first and last redelivery's time after
// the kill.
func (k KilledConsumer) drain(t *testing.T, ctx context.Context, ledger *Ledger, ackedBefore map[int]bool, killedAt time.Time) (redelivered map[int]bool, ackedAgain int, first, last time.Duration) {
	t.Helper()
	conn, err := kombu.Dial(ctx, k.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := conn.Consumer(ctx, []kombu.Queue{consumedQueue(k.Queue)}, &kombu.ConsumerOptions{PrefetchCount: k.Prefetch})
	if err != nil {
		t.Fatal(err)
	}
	redelivered = map[int]bool{}
	deadline := killedAt.Add(k.Drain)
	for {
		done := ledger.Acked() == int64(k.Total)
		if !done && time.Now().After(deadline) {
			t.Errorf("%d of %d messages acked %v after the kill", ledger.Acked(), k.Total, k.Drain)
			break
		}
		wait := time.Second
		if done {
			wait = 300 * time.Millisecond // a duplicate would show up now
		}
		rctx, cancel := context.WithTimeout(ctx, wait)
		m, err := c.Receive(rctx)
		cancel()
		if err != nil {
			if rctx.Err() == nil {
				ledger.Error("receive", err)
			}
			if done {
				break
			}
			continue
		}
		seq, ok := ledger.Delivery(m.Headers, m.Body, m.Redelivered)
		if ok && m.Redelivered {
			redelivered[seq] = true
			back := time.Since(killedAt)
			if first == 0 {
				first = back
			}
			last = back
			if k.CheckRedelivered != nil {
				if err := k.CheckRedelivered(m); err != nil {
					t.Errorf("message %d redelivered: %v", seq, err)
				}
			}
		}
		if ok && ackedBefore[seq] {
			ackedAgain++
		}
		err = m.Ack(ctx)
		if ok {
			ledger.Ack(seq, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Errorf("closing the consumer: %v", err)
	}
	if err := conn.Close(); err != nil { // writes acks a transport keeps behind
		t.Errorf("closing the connection: %v", err)
	}
	return redelivered, ackedAgain, first, last
}

// checkEmpty checks, on a new connection, that the queue is empty and that
// the server holds nothing more for it.
func (k KilledConsumer) checkEmpty(t *testing.T, ctx context.Context) {
	t.Helper()
	conn, info := dialDeclared(t, ctx, k.URL, k.Queue)
	defer conn.Close()
	if info.Messages != 0 {
		t.Errorf("%d messages left in the queue after the drain", info.Messages)
	}
	if k.Leftover != nil {
		if n, err := k.Leftover(ctx); err != nil || n != 0 {
			t.Errorf("%d messages still held for a consumer after the drain (%v)", n, err)
		}
	}
}

func (k KilledConsumer) deleteQueue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := kombu.Dial(ctx, k.URL, nil)
	if err != nil {
		t.Logf("deleting queue %s: %v", k.Queue, err)
		return
	}
	defer conn.Close()
	if ch, err := conn.DefaultChannel(ctx); err == nil {
		_, _ = consumedQueue(k.Queue).Delete(ctx, ch, false, false)
	}
}

// consumerProcess is the running consumer process of a scenario.
type consumerProcess struct {
	cmd   *exec.Cmd
	lines chan string // closed when its output ends
}

func (k KilledConsumer) startChild(t *testing.T) *consumerProcess {
	t.Helper()
	orders, _ := json.Marshal(childOrders{URL: k.URL, Queue: k.Queue, Prefetch: k.Prefetch, Acks: k.Acks, Hold: k.Hold, Every: k.AckMultipleEvery})
	cmd := exec.Command(os.Args[0], "-test.run=^"+HelperTest+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), killedConsumerEnv+"="+string(orders))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &consumerProcess{cmd: cmd, lines: make(chan string, 1024)}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return p
}

// next returns the process's next line of output.
func (p *consumerProcess) next(limit time.Duration) (string, error) {
	select {
	case line, ok := <-p.lines:
		if !ok {
			return "", fmt.Errorf("ended early")
		}
		return line, nil
	case <-time.After(limit):
		return "", fmt.Errorf("said nothing for %v", limit)
	}
}

// kill sends SIGKILL, waits for the process to be gone and returns when it
// was killed.
func (p *consumerProcess) kill(t *testing.T) time.Time {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	_ = p.cmd.Wait()
	return killedAt
}
