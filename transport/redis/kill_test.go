package redis

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

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

const helperEnv = "KOMBU_REDIS_HELPER_CONSUMER"

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
	cn, err := Transport.OpenConnector(u)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	ctx := context.Background()
	conn, err := cn.Connect(ctx)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	ch, _ := conn.Channel(ctx)
	_ = ch.Qos(ctx, prefetch)
	if err := ch.Consume(ctx, driver.ConsumeArgs{Queue: args.Get("queue"), ConsumerTag: "doomed"}); err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	acked := 0
	for acked < ackN {
		ds, err := ch.Receive(ctx, prefetch)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		for _, d := range ds {
			if acked == ackN {
				break // leave the rest unacked
			}
			if err := ch.Ack(ctx, d.Tag, false); err != nil {
				fmt.Println("error", err)
				os.Exit(2)
			}
			acked++
			fmt.Fprintf(out, "ack %s\n", d.Body)
		}
	}
	// Fill the prefetch window with messages that will never be acked.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		ds, _ := ch.Receive(ctx, prefetch)
		if len(ds) == 0 {
			break
		}
	}
	fmt.Fprintln(out, "acked")
	out.Flush()
	time.Sleep(time.Hour)
}

// TestKilledConsumerLosesNothing is F8 for redis: a consumer process with
// prefetch 50 acks half the messages, takes more without acking, and is
// killed with SIGKILL. Every message it did not ack must come back after
// the visibility timeout: lost = 0, duplicates <= prefetch.
func TestKilledConsumerLosesNothing(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("in the helper process")
	}
	const (
		total    = 4000
		ackN     = 2000
		prefetch = 50
		vt       = 3 * time.Second
	)
	opts := isolated(t, url.Values{"visibility_timeout": {strconv.Itoa(int(vt / time.Second))}})
	prefix := opts.Get("global_keyprefix")
	s := openStore(t, opts)
	c := rawClient(t, s)
	cleanupKeys(t, c, prefix)
	ctx := testCtx(t)
	q := uniqueName(t, "q")
	var batch []virtual.QueuedEnvelope
	for i := range total {
		env := newEnv(strconv.Itoa(i), 0)
		env.RoutingKey = q
		batch = append(batch, virtual.QueuedEnvelope{Queue: q, Envelope: env})
	}
	if err := s.PutBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}

	spec := url.Values{"url": {serverURL(t, opts).String()}, "queue": {q}, "ack": {strconv.Itoa(ackN)}, "prefetch": {strconv.Itoa(prefetch)}}
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
	inFlight := c.HLen(ctx, prefix+"unacked").Val()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	_ = cmd.Wait()
	t.Logf("killed the consumer after %d acks with %d unacked entries in redis", len(ackedByHelper), inFlight)
	if inFlight == 0 || inFlight > prefetch {
		t.Errorf("%d unacked entries at the kill, want 1..%d", inFlight, prefetch)
	}

	// A new consumer drains the queue; the dead one's messages come back
	// after the visibility timeout.
	conn := dialDriver(t, opts)
	ch := openChannel(t, conn)
	_ = ch.Qos(ctx, 100)
	if err := ch.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "survivor"}); err != nil {
		t.Fatal(err)
	}
	got := map[int]int{}
	redelivered := 0
	var lastRedelivery time.Duration
	deadline := time.Now().Add(vt + 15*time.Second)
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
			_ = ch.Ack(ctx, d.Tag, false)
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
	if int64(redelivered) != inFlight {
		t.Errorf("%d redelivered, want the %d unacked at the kill", redelivered, inFlight)
	}
	if lastRedelivery > vt+12*time.Second {
		t.Errorf("redelivery took %v", lastRedelivery)
	}
	time.Sleep(50 * time.Millisecond)
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()
	if n := c.HLen(ctx, prefix+"unacked").Val(); n != 0 {
		t.Errorf("%d unacked entries left", n)
	}
	if n, _ := s.Size(ctx, q); n != 0 {
		t.Errorf("%d messages left in the queue", n)
	}
}
