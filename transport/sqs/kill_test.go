package sqs

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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

const helperEnv = "KOMBU_SQS_HELPER_CONSUMER"

// TestHelperProcessConsumer is not a test: TestKilledConsumerLosesNothing
// runs the test binary again with helperEnv set, and this function is then
// a consumer that acks "ack" messages, prints "acked" once it holds more
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
	ch, _ := conn.Channel(ctx)
	_ = ch.Qos(ctx, prefetch)
	if err := ch.Consume(ctx, driver.ConsumeArgs{Queue: args.Get("queue"), ConsumerTag: "doomed"}); err != nil {
		fail(err)
	}
	out := bufio.NewWriter(os.Stdout)
	acked, held := 0, 0
	for held == 0 {
		ds, err := ch.Receive(ctx, prefetch)
		if err != nil {
			fail(err)
		}
		for _, d := range ds {
			if acked == ackN {
				held++ // left unacked
				continue
			}
			if err := ch.Ack(ctx, d.Tag, false); err != nil {
				fail(err)
			}
			acked++
			fmt.Fprintf(out, "ack %s\n", d.Body)
		}
	}
	fmt.Fprintln(out, "acked")
	out.Flush()
	time.Sleep(time.Hour)
}

// TestKilledConsumerLosesNothing: a consumer process (prefetch 20) acks
// half the messages, holds more unacked and is killed with SIGKILL. Every
// message it did not ack comes back after the queue's visibility timeout
// (2 s here), counted by SQS: lost = 0, each redelivered message once.
func TestKilledConsumerLosesNothing(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("in the helper process")
	}
	const (
		total    = 400
		ackN     = 200
		prefetch = 20
		vt       = 2 * time.Second
	)
	raw := testenv.ServerURL(t, testURLVar) + "&visibility_timeout=" + strconv.Itoa(int(vt/time.Second))
	s := openStore(t, raw)
	ctx := ctxT(t, 90*time.Second)
	q := fmt.Sprintf("kill.%d", time.Now().UnixNano())
	if err := s.DeclareQueue(ctx, driver.Queue{Name: q}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Delete(context.Background(), q) })
	var batch []virtual.QueuedEnvelope
	for i := range total {
		batch = append(batch, virtual.QueuedEnvelope{Queue: q, Envelope: &virtual.Envelope{
			Message: driver.Message{Body: []byte(strconv.Itoa(i)), ContentType: "text/plain"}, RoutingKey: q}})
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
	u, _ := s.queueURL(ctx, q, false)
	attrs, err := s.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(u),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatal(err)
	}
	inFlight, _ := strconv.Atoi(attrs.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	_ = cmd.Wait()
	t.Logf("killed the consumer after %d acks with %d messages in flight", len(ackedByHelper), inFlight)
	if inFlight == 0 || inFlight > prefetch {
		t.Errorf("%d messages in flight at the kill, want 1..%d", inFlight, prefetch)
	}

	conn, err := NewConnector(testOptions(t, raw)).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, _ := conn.Channel(ctx)
	_ = ch.Qos(ctx, 100)
	if err := ch.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "survivor"}); err != nil {
		t.Fatal(err)
	}
	got := map[int]int{}
	redelivered := 0
	var lastRedelivery time.Duration
	for deadline := time.Now().Add(vt + 20*time.Second); time.Now().Before(deadline); {
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
				if n, _ := driver.Int64(d.Headers[headerDeliveryCount]); n != 1 {
					t.Errorf("message %d redelivered with x-delivery-count %v, want 1", i, d.Headers[headerDeliveryCount])
				}
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
	if lost != 0 || dup != 0 {
		t.Errorf("lost = %d, duplicates = %d; want 0, 0", lost, dup)
	}
	if redelivered != inFlight {
		t.Errorf("%d redelivered, want the %d in flight at the kill", redelivered, inFlight)
	}
	if lastRedelivery < vt-500*time.Millisecond || lastRedelivery > vt+10*time.Second {
		t.Errorf("last redelivery %v after the kill, want about the visibility timeout %v", lastRedelivery, vt)
	}
	if n, _ := s.Size(ctx, q); n != 0 {
		t.Errorf("%d messages left in the queue", n)
	}
}
