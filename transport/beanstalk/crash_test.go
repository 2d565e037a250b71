package beanstalk

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/faulttest"
	"github.com/kombu-go/kombu/kombu"
)

// envCrashHelper makes TestCrashConsumerProcess the consumer that
// TestConsumerKilled starts.
const envCrashHelper = "KOMBU_TEST_BEANSTALK_CRASH_HELPER"

// TestCrashConsumerProcess consumes CRASH_QUEUE with prefetch
// CRASH_PREFETCH, printing "delivered BODY REDELIVERED" for every delivery
// and "acked BODY" after each ack returned nil. After CRASH_ACKS acks it
// stops acking and prints "holding" once it holds a full prefetch window,
// then waits to be killed.
func TestCrashConsumerProcess(t *testing.T) {
	if os.Getenv(envCrashHelper) != "1" {
		t.Skip("the consumer process of TestConsumerKilled")
	}
	prefetch, _ := strconv.Atoi(os.Getenv("CRASH_PREFETCH"))
	acks, _ := strconv.Atoi(os.Getenv("CRASH_ACKS"))
	ctx := context.Background()
	conn, err := kombu.Dial(ctx, os.Getenv("CRASH_URL"), nil)
	if err != nil {
		t.Fatal(err)
	}
	q := kombu.NewQueue(os.Getenv("CRASH_QUEUE"), kombu.DefaultExchange, "")
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: prefetch})
	if err != nil {
		t.Fatal(err)
	}
	out := bufio.NewWriter(os.Stdout)
	held := 0
	for {
		m, err := c.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(out, "delivered %s %t\n", m.Body, m.Redelivered)
		if acks > 0 {
			if err := m.Ack(ctx); err == nil {
				fmt.Fprintf(out, "acked %s\n", m.Body)
			}
			acks--
		} else if held++; held == prefetch {
			fmt.Fprintln(out, "holding")
		}
		out.Flush()
	}
}

// TestConsumerKilled: a consumer process holding a prefetch window of
// unacked jobs is killed with SIGKILL. beanstalkd releases the jobs of the
// dead connection at once: a second consumer receives every message that
// was not acked, the held ones flagged redelivered. lost = 0, and no
// message is delivered twice without the redelivered flag.
func TestConsumerKilled(t *testing.T) {
	raw := serverURL(t)
	start := time.Now()
	const total, prefetch, ackFirst = 1000, 50, 300
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ledger := faulttest.NewLedger(total)
	qname := "kombu-go.crash." + ledger.Run()
	conn, err := kombu.Dial(ctx, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q := kombu.NewQueue(qname, kombu.DefaultExchange, "")
	q.Durable = true
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for seq := range total {
		err := p.Publish(ctx, ledger.Body(seq), &kombu.PublishOptions{RoutingKey: qname, Headers: ledger.Headers(seq),
			ContentType: "application/data"})
		ledger.Publish(seq, err, nil)
	}

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashConsumerProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envCrashHelper+"=1", "CRASH_URL="+raw, "CRASH_QUEUE="+qname,
		"CRASH_PREFETCH="+strconv.Itoa(prefetch), "CRASH_ACKS="+strconv.Itoa(ackFirst))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	holding := false
	childAcked := 0
	lines := bufio.NewScanner(stdout)
	for !holding && lines.Scan() {
		word, rest, _ := strings.Cut(lines.Text(), " ")
		switch word {
		case "delivered":
			body, redelivered, _ := strings.Cut(rest, " ")
			ledger.Delivery(nil, []byte(body), redelivered == "true")
		case "acked":
			if seq, ok := ledger.Seq(nil, []byte(rest)); ok {
				ledger.Ack(seq, nil)
				childAcked++
			}
		case "holding":
			holding = true
		}
	}
	if !holding {
		t.Fatalf("the consumer process ended before holding its window: %v", lines.Err())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	c, err := conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: prefetch})
	if err != nil {
		t.Fatal(err)
	}
	heldRedelivered := 0
	for ledger.Missing() > 0 || ledger.Acked() < int64(total) {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := c.Receive(rctx)
		rcancel()
		if err != nil {
			t.Fatalf("drain after %d acks: %v", ledger.Acked(), err)
		}
		seq, ok := ledger.Delivery(m.Headers, m.Body, m.Redelivered)
		if ok && m.Redelivered {
			heldRedelivered++
		}
		err = m.Ack(ctx)
		if ok {
			ledger.Ack(seq, err)
		}
	}
	res := ledger.Check()
	faulttest.Record(t, faulttest.Row{Test: "consumer process killed holding its window", Transport: "beanstalk",
		Fault: fmt.Sprintf("SIGKILL after %d acks, %d unacked", childAcked, prefetch), Result: res, Elapsed: time.Since(start),
		Note: fmt.Sprintf("redelivered after the kill %d", heldRedelivered)})
	if !res.OK() || res.Unexplained != 0 || res.Published != total {
		t.Fatalf("lost %d (%v), unexpected %d, unexplained duplicates %d, published %d of %d",
			res.Lost, res.LostSeqs, res.Unexpected, res.Unexplained, res.Published, total)
	}
	if heldRedelivered < prefetch {
		t.Errorf("%d redelivered messages after the kill, want the %d the dead consumer held", heldRedelivered, prefetch)
	}
	if n, err := c.Queues()[0].Len(ctx, c.Channel()); err != nil || n != 0 {
		t.Errorf("queue holds %d jobs after the drain (%v)", n, err)
	}
	_ = c.Close()
	if ch, err := conn.DefaultChannel(ctx); err == nil {
		_, _ = q.Delete(ctx, ch, false, false)
	}
}

// TestConcurrentConsumers: four consumers on four connections share one
// queue; every message is delivered exactly once (no redelivery happens,
// so no message may come twice), and every one is acked.
func TestConcurrentConsumers(t *testing.T) {
	raw := serverURL(t)
	start := time.Now()
	const total, consumers = 2000, 4
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ledger := faulttest.NewLedger(total)
	qname := "kombu-go.concurrent." + ledger.Run()
	q := kombu.NewQueue(qname, kombu.DefaultExchange, "")
	var wg sync.WaitGroup
	perConsumer := make([]int, consumers)
	for i := range consumers {
		conn, err := kombu.Dial(ctx, raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		c, err := conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: 10})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for ledger.Acked() < total && ctx.Err() == nil {
				rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
				m, err := c.Receive(rctx)
				rcancel()
				if err != nil {
					continue // nothing within 2 s: look at the count again
				}
				seq, ok := ledger.Delivery(m.Headers, m.Body, m.Redelivered)
				err = m.Ack(ctx)
				if ok {
					ledger.Ack(seq, err)
					perConsumer[i]++
				}
			}
		})
	}
	pconn, err := kombu.Dial(ctx, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pconn.Close()
	p, err := pconn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for seq := range total {
		err := p.Publish(ctx, ledger.Body(seq), &kombu.PublishOptions{RoutingKey: qname, Headers: ledger.Headers(seq),
			ContentType: "application/data"})
		ledger.Publish(seq, err, nil)
	}
	wg.Wait()
	res := ledger.Check()
	faulttest.Record(t, faulttest.Row{Test: "4 concurrent consumers", Transport: "beanstalk", Fault: "none",
		Result: res, Elapsed: time.Since(start), Note: fmt.Sprintf("per consumer %v", perConsumer)})
	if !res.OK() || res.Duplicated != 0 || res.Acked != total {
		t.Fatalf("lost %d, unexpected %d, delivered twice %d, acked %d of %d", res.Lost, res.Unexpected, res.Duplicated, res.Acked, total)
	}
	for i, n := range perConsumer {
		if n == 0 {
			t.Errorf("consumer %d received nothing: the queue was not shared", i)
		}
	}
}
