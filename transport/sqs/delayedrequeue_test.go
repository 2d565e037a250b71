package sqs

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
)

// RequeueAfter is one ChangeMessageVisibility to the delay rounded up to
// whole seconds: the message stays invisible in SQS that long, then comes
// back counted.
func TestRequeueAfterSetsVisibility(t *testing.T) {
	ch, _, cc := countedChannel(t, "")
	ctx := ctxT(t, 30*time.Second)
	q := fmt.Sprintf("delayed.%08x", rand.Uint32())
	if _, err := ch.QueueDeclare(ctx, driver.Queue{Name: q}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish(ctx, publishings(q, 1)[0]); err != nil {
		t.Fatal(err)
	}
	if err := ch.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "c"}); err != nil {
		t.Fatal(err)
	}
	d := receiveN(t, ch, 1)[0]
	cc.take()
	requeued := time.Now()
	if err := ch.(driver.DelayedRequeuer).RequeueAfter(ctx, d.Tag, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got := cc.take(); got["ChangeMessageVisibility"] != 1 {
		t.Errorf("RequeueAfter made %v, want one ChangeMessageVisibility", got)
	}
	back := receiveN(t, ch, 1)[0]
	if gap := time.Since(requeued); gap < 1900*time.Millisecond || back.Headers[headerDeliveryCount] != int64(1) {
		t.Errorf("back after %v with x-delivery-count %v; want after 2 s, 1", gap, back.Headers[headerDeliveryCount])
	}
	if err := ch.Ack(ctx, back.Tag, false); err != nil {
		t.Fatal(err)
	}
}
