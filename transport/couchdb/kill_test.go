package couchdb

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

const helperEnv = "KOMBU_COUCHDB_HELPER_CONSUMER"

// TestHelperProcessConsumer is not a test: TestKilledConsumerLosesNothing
// runs the test binary again with helperEnv set, and this function is then
// a consumer that acks ackN messages, prints "acked", keeps taking messages
// without acking them, and waits to be killed.
func TestHelperProcessConsumer(t *testing.T) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		t.Skip("helper process for TestKilledConsumerLosesNothing")
	}
	args, _ := url.ParseQuery(spec)
	u, _ := url.Parse(args.Get("url"))
	ackN, _ := strconv.Atoi(args.Get("ack"))
	prefetch, _ := strconv.Atoi(args.Get("prefetch"))
	fail := func(err error) {
		fmt.Println("error", err)
		os.Exit(2)
	}
	cn, err := Transport.OpenConnector(u)
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	conn, err := cn.Connect(ctx)
	if err != nil {
		fail(err)
	}
	ch, err := conn.Channel(ctx)
	if err != nil {
		fail(err)
	}
	_ = ch.Qos(ctx, prefetch)
	if err := ch.Consume(ctx, driver.ConsumeArgs{Queue: args.Get("queue"), ConsumerTag: "doomed"}); err != nil {
		fail(err)
	}
	out := bufio.NewWriter(os.Stdout)
	acked := 0
	for acked < ackN {
		ds, err := ch.Receive(ctx, prefetch)
		if err != nil {
			fail(err)
		}
		for _, d := range ds {
			if acked == ackN {
				break // leave the rest unacked
			}
			if err := ch.Ack(ctx, d.Tag, false); err != nil {
				fail(err)
			}
			acked++
			fmt.Fprintf(out, "ack %s\n", d.Body)
		}
	}
	// Fill the prefetch window with messages that will never be acked.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		ds, _ := ch.Receive(rctx, prefetch)
		cancel()
		if len(ds) == 0 {
			break
		}
	}
	fmt.Fprintln(out, "acked")
	out.Flush()
	time.Sleep(time.Hour)
}

// heldIn counts the documents of queue under a lease.
func heldIn(t *testing.T, s *Store, queue string) int {
	t.Helper()
	ctx := testCtx(t)
	n := 0
	err := s.scanQueue(ctx, queue, maxPage, func(_ string, doc map[string]json.RawMessage) bool {
		if leaseOf(doc) > 0 {
			n++
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestKilledConsumerLosesNothing: a consumer process with prefetch 25 acks
// half the messages, claims more without acking, and is killed with
// SIGKILL. Every message it did not ack must come back once its lease has
// expired: lost = 0, duplicates <= prefetch, and exactly the messages it
// held come back marked redelivered.
func TestKilledConsumerLosesNothing(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("in the helper process")
	}
	const (
		total    = 400
		ackN     = 200
		prefetch = 25
		vt       = 3 * time.Second
	)
	raw := freshDatabaseURL(t, "visibility_timeout=3&polling_interval=0.2")
	s := openStore(t, raw)
	ctx := testCtx(t)
	const q = "killed"
	if err := s.DeclareQueue(ctx, driver.Queue{Name: q, Durable: true}); err != nil {
		t.Fatal(err)
	}
	var batch []virtual.QueuedEnvelope
	for i := range total {
		batch = append(batch, virtual.QueuedEnvelope{Queue: q, Envelope: newEnv(strconv.Itoa(i), 0)})
	}
	if err := s.PutBatch(ctx, batch); err != nil {
		t.Fatal(err)
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
	ackedByHelper := map[int]bool{}
	sc := bufio.NewScanner(stdout)
	ready := false
	for sc.Scan() {
		line := sc.Text()
		if n, ok := strings.CutPrefix(line, "ack "); ok {
			i, _ := strconv.Atoi(n)
			ackedByHelper[i] = true
			continue
		}
		if line == "acked" {
			ready = true
			break
		}
		if strings.HasPrefix(line, "error") {
			t.Fatalf("helper: %s", line)
		}
	}
	if !ready {
		t.Fatal("the helper consumer ended early")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	_ = cmd.Wait()
	inFlight := heldIn(t, s, q)
	t.Logf("killed the consumer after %d acks with %d messages under its lease", len(ackedByHelper), inFlight)
	if inFlight == 0 || inFlight > prefetch {
		t.Errorf("%d leased messages at the kill, want 1..%d", inFlight, prefetch)
	}

	// A new consumer drains the queue; the dead one's messages come back
	// once their leases have expired.
	cn, err := Transport.OpenConnector(mustURL(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := cn.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = ch.Qos(ctx, 100)
	if err := ch.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "survivor"}); err != nil {
		t.Fatal(err)
	}
	got := map[int]int{}
	redelivered := 0
	var lastRedelivery time.Duration
	deadline := time.Now().Add(vt + 20*time.Second)
	for time.Now().Before(deadline) {
		missing := 0
		for i := range total {
			if !ackedByHelper[i] && got[i] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		ds, err := ch.Receive(rctx, 100)
		cancel()
		if err != nil && rctx.Err() == nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			i, _ := strconv.Atoi(string(d.Body))
			got[i]++
			if d.Redelivered {
				redelivered++
				lastRedelivery = time.Since(killedAt)
			}
			if err := ch.Ack(ctx, d.Tag, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	lost, dup := 0, 0
	for i := range total {
		n := got[i]
		if ackedByHelper[i] {
			n++
		}
		switch {
		case n == 0:
			lost++
		case n > 1:
			dup += n - 1
		}
	}
	t.Logf("total %d: acked before the kill %d, received after %d (%d redelivered, last %v after the kill): lost = %d, duplicates = %d",
		total, len(ackedByHelper), len(got), redelivered, lastRedelivery.Round(10*time.Millisecond), lost, dup)
	if lost != 0 {
		t.Errorf("lost = %d", lost)
	}
	if dup > prefetch {
		t.Errorf("duplicates = %d > prefetch %d", dup, prefetch)
	}
	if redelivered != inFlight {
		t.Errorf("%d redelivered, want the %d leased at the kill", redelivered, inFlight)
	}
	if lastRedelivery < vt/3 {
		t.Errorf("the last redelivery came %v after the kill, before the lease could expire", lastRedelivery)
	}
	// Closing writes the survivor's last acks.
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Size(ctx, q); n != 0 {
		t.Errorf("%d messages left in the queue", n)
	}
	if n := heldIn(t, s, q); n != 0 {
		t.Errorf("%d messages still leased", n)
	}
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
