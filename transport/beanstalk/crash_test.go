package beanstalk

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/faulttest"
	"github.com/kombu-go/kombu/kombu"
)

// TestHelperProcessConsumer is not a test: it is the consumer process
// TestConsumerKilled kills (see faulttest.KilledConsumer).
func TestHelperProcessConsumer(t *testing.T) { faulttest.KilledConsumerProcess(t) }

// TestConsumerKilled: a consumer process acks 300 of 1000 messages, holds a
// prefetch window of 50 unacked jobs and is killed with SIGKILL. beanstalkd
// releases the jobs of the dead connection at once: a second consumer
// receives every message that was not acked, the held ones flagged
// redelivered, within seconds. lost = 0, and no message is delivered twice
// without the redelivered flag.
func TestConsumerKilled(t *testing.T) {
	faulttest.KilledConsumer{
		Transport: "beanstalk", URL: serverURL(t), Queue: fmt.Sprintf("kombu-go.crash.%d", time.Now().UnixNano()),
		Total: 1000, Acks: 300, Hold: 50, Prefetch: 50,
		// Released when the connection drops, not after a timeout.
		LatestRedelivery: 5 * time.Second,
		Note:             "jobs released when the connection drops",
	}.Run(t)
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
