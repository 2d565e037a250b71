package beanstalk

import (
	"testing"
	"time"
)

// Every redelivery carries beanstalkd's own reserve count less one as
// x-delivery-count (a first delivery none), whichever store reserves it:
// the count lives in the broker, not in a consumer.
func TestDeliveryCountIsTheReserveCount(t *testing.T) {
	ctx, tube := testCtx(t), tubeName(t)
	first := openStore(t)
	if err := first.Put(ctx, tube, env("counted", 0)); err != nil {
		t.Fatal(err)
	}
	it, err := first.Get(ctx, []string{tube}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := it.Envelope.Headers[headerDeliveryCount]; ok || it.Envelope.Redelivered {
		t.Fatalf("first delivery: x-delivery-count %v (present %t), redelivered %t; want none, false", v, ok, it.Envelope.Redelivered)
	}
	for want := int64(1); want <= 3; want++ {
		if err := first.Requeue(ctx, it); err != nil {
			t.Fatal(err)
		}
		// Each time a new store, as a restarted consumer would be.
		s := openStore(t)
		if it, err = s.Get(ctx, []string{tube}, time.Second); err != nil {
			t.Fatal(err)
		}
		if got := it.Envelope.Headers[headerDeliveryCount]; got != want || !it.Envelope.Redelivered {
			t.Fatalf("delivery %d: x-delivery-count %v, redelivered %t; want %d, true", want+1, got, it.Envelope.Redelivered, want)
		}
		first = s
	}
	if err := first.Ack(ctx, it); err != nil {
		t.Fatal(err)
	}
}
