package mongodb

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/faulttest"
	"github.com/kombu-go/kombu/kombu"
)

// TestFourConsumersNeverShareAMessage: 4 consumers, each on a connection
// of its own (so each claims for itself, with no shared candidate list),
// drain one queue of 400 messages that a fifth connection keeps
// publishing meanwhile. Every message is delivered exactly once: the claim
// is atomic on FerretDB, whose findAndModify is not (4 consumers taking
// with findOneAndDelete there got 968 of 1000 messages twice).
func TestFourConsumersNeverShareAMessage(t *testing.T) {
	const total, consumers = 400, 4
	raw := isolatedURL(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, q := interopNames()
	ledger := faulttest.NewLedger(total)
	pub, err := kombu.Dial(ctx, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sq, err := pub.SimpleQueue(ctx, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	for seq := range total / 2 {
		ledger.Publish(seq, sq.Put(ctx, ledger.Body(seq), &kombu.PublishOptions{Headers: ledger.Headers(seq)}), nil)
	}
	perConsumer := make([]int, consumers)
	var wg sync.WaitGroup
	drained := make(chan struct{})
	for i := range consumers {
		c := consumerOn(t, ctx, raw, q, 10)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := c.Receive(ctx)
				if err != nil {
					select {
					case <-drained:
					default:
						t.Errorf("consumer %d: %v", i, err)
					}
					return
				}
				seq, ok := ledger.Delivery(m.Headers, m.Body, m.Redelivered)
				err = m.Ack(ctx)
				if ok {
					ledger.Ack(seq, err)
				}
				perConsumer[i]++
			}
		}()
	}
	for seq := total / 2; seq < total; seq++ {
		ledger.Publish(seq, sq.Put(ctx, ledger.Body(seq), &kombu.PublishOptions{Headers: ledger.Headers(seq)}), nil)
	}
	for ledger.Missing() > 0 && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // a second delivery of the last ones would show now
	close(drained)
	cancel()
	wg.Wait()
	r := ledger.Check()
	t.Logf("%d messages over %d consumers %v: delivered %d, duplicated %d, lost %d", total, consumers, perConsumer, r.Delivered, r.Duplicated, r.Lost)
	if r.Lost != 0 || r.Duplicated != 0 || r.Unexpected != 0 || r.Acked != total {
		t.Errorf("lost %d, duplicated %d, unexpected %d, acked %d of %d", r.Lost, r.Duplicated, r.Unexpected, r.Acked, total)
	}
	for i, n := range perConsumer {
		if n == 0 {
			t.Errorf("consumer %d got nothing: the test did not race", i)
		}
	}
}
