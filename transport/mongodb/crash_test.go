package mongodb

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/kombu-go/kombu/internal/faulttest"
	"github.com/kombu-go/kombu/kombu"
)

const helperEnv = "KOMBU_MONGODB_HELPER_CONSUMER"

// TestHelperProcessConsumer is not a test: TestKilledConsumerLosesNothing
// runs the test binary again with helperEnv set, and this function is then
// a consumer process that acks ack messages (printing "ack SEQ" for each),
// fills its prefetch window without acking, prints "holding", and waits to
// be killed.
func TestHelperProcessConsumer(t *testing.T) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		t.Skip("helper process for TestKilledConsumerLosesNothing")
	}
	args, _ := url.ParseQuery(spec)
	ackN, _ := strconv.Atoi(args.Get("ack"))
	prefetch, _ := strconv.Atoi(args.Get("prefetch"))
	fail := func(err error) {
		fmt.Println("error", err)
		os.Exit(2)
	}
	ctx := context.Background()
	conn, err := kombu.Dial(ctx, args.Get("url"), nil)
	if err != nil {
		fail(err)
	}
	ch, err := conn.Channel(ctx)
	if err != nil {
		fail(err)
	}
	c, err := kombu.NewConsumer(ctx, ch, []kombu.Queue{{Name: args.Get("queue")}}, &kombu.ConsumerOptions{PrefetchCount: prefetch})
	if err != nil {
		fail(err)
	}
	out := bufio.NewWriter(os.Stdout)
	for acked := 0; acked < ackN; acked++ {
		m, err := c.Receive(ctx)
		if err != nil {
			fail(err)
		}
		if err := m.Ack(ctx); err != nil {
			fail(err)
		}
		fmt.Fprintf(out, "ack %s\n", m.Body)
	}
	// Take a prefetch window of messages that will never be acked.
	for range prefetch {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := c.Receive(rctx)
		cancel()
		if err != nil {
			break
		}
	}
	fmt.Fprintln(out, "holding")
	out.Flush()
	time.Sleep(time.Hour)
}

// TestKilledConsumerLosesNothing: a consumer process with prefetch 40 acks
// 100 of 300 messages, takes 40 more without acking and is killed with
// SIGKILL. Its leases expire after the visibility timeout and a new
// consumer gets every message it did not ack, marked redelivered: lost = 0,
// and no duplicate but the redeliveries. (Python kombu deletes a message
// when it is received: there the 40 would be lost.)
func TestKilledConsumerLosesNothing(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("in the helper process")
	}
	const (
		total    = 300
		ackN     = 100
		prefetch = 40
		vt       = 2 * time.Second
	)
	raw := isolatedURL(t, "visibility_timeout=2")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, q := interopNames()
	ledger := faulttest.NewLedger(total)
	conn, err := kombu.Dial(ctx, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sq, err := conn.SimpleQueue(ctx, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	for seq := range total {
		ledger.Publish(seq, sq.Put(ctx, ledger.Body(seq), &kombu.PublishOptions{Headers: ledger.Headers(seq)}), nil)
	}

	spec := url.Values{"url": {raw}, "queue": {q}, "ack": {strconv.Itoa(ackN)}, "prefetch": {strconv.Itoa(prefetch)}}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcessConsumer$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+spec.Encode())
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	holding := false
	for sc.Scan() {
		line := sc.Text()
		if body, ok := strings.CutPrefix(line, "ack "); ok {
			seq, ok := ledger.Delivery(nil, []byte(body), false)
			if !ok {
				t.Fatalf("helper acked %q, not a message of this run", body)
			}
			ledger.Ack(seq, nil)
			continue
		}
		if line == "holding" {
			holding = true
			break
		}
		t.Fatalf("helper: %s", line)
	}
	if !holding {
		t.Fatal("the helper consumer ended early")
	}
	leases := collection(t, raw, "messages.unacked")
	inFlight, err := leases.CountDocuments(ctx, bson.D{{Key: "queue", Value: q}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	_ = cmd.Wait()
	if inFlight < prefetch || inFlight > 2*prefetch {
		t.Errorf("%d leases at the kill, want the prefetch window (%d) or a little more", inFlight, prefetch)
	}

	// A new consumer drains the queue; the dead one's messages come back
	// once their leases expire.
	c := consumerOn(t, ctx, raw, q, 50)
	redelivered := 0
	for ledger.Missing() > 0 && time.Since(killedAt) < vt+30*time.Second {
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		m, err := c.Receive(rctx)
		rcancel()
		if err != nil {
			continue
		}
		seq, ok := ledger.Delivery(m.Headers, m.Body, m.Redelivered)
		if m.Redelivered {
			redelivered++
		}
		err = m.Ack(ctx)
		if ok {
			ledger.Ack(seq, err)
		}
	}
	r := ledger.Check()
	t.Logf("%d messages, %d acked before the kill, %d leased at the kill, %d redelivered after it (last %v after the kill): lost = %d, duplicated = %d, unexplained = %d",
		total, ackN, inFlight, redelivered, ledger.LastDelivery().Sub(killedAt).Round(10*time.Millisecond), r.Lost, r.Duplicated, r.Unexplained)
	if r.Lost != 0 || r.Unexplained != 0 || r.Unexpected != 0 {
		t.Errorf("lost %d (%v), unexplained duplicates %d, unexpected %d", r.Lost, r.LostSeqs, r.Unexplained, r.Unexpected)
	}
	if int64(redelivered) != inFlight {
		t.Errorf("%d redelivered, want the %d leased at the kill", redelivered, inFlight)
	}
	if left, _ := leases.CountDocuments(ctx, bson.D{{Key: "queue", Value: q}}); left != 0 {
		t.Errorf("%d leases left after the drain", left)
	}
}
