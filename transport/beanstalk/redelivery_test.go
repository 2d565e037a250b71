package beanstalk

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"

	"github.com/kombu-go/kombu/kombu"
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

// A handler failure releases the job with the policy's backoff as its
// delay, rounded up to whole seconds: it waits in beanstalkd's delayed
// list, not in the consumer, so a consumer shut down mid-backoff leaves it
// there, and the next consumer gets it only after the delay, counted.
func TestFailedMessageReleasedWithDelay(t *testing.T) {
	ctx, tube, raw := testCtx(t), tubeName(t), rawConn(t)
	q := kombu.NewQueue(tube, kombu.DefaultExchange, "")
	policy := &kombu.RedeliveryPolicy{InitialBackoff: 1500 * time.Millisecond, MaxDeliveries: 5}
	conn, err := kombu.Dial(ctx, serverURL(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, []byte("fails once"), &kombu.PublishOptions{RoutingKey: tube}); err != nil {
		t.Fatal(err)
	}
	c1, err := conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{Redelivery: policy})
	if err != nil {
		t.Fatal(err)
	}
	failed := make(chan time.Time, 1)
	done := make(chan error, 1)
	go func() {
		done <- c1.Consume(ctx, kombu.HandlerFunc(func(context.Context, *kombu.Message) error {
			failed <- time.Now()
			return errors.New("handler fails")
		}))
	}()
	failedAt := <-failed

	// In the broker, delayed by 2 s: released, not held reserved.
	var stats map[string]string
	for {
		id, _, err := (&beanstalk.Tube{Conn: raw, Name: tube}).PeekDelayed()
		if err == nil {
			if stats, err = raw.StatsJob(id); err == nil {
				break
			}
		}
		if time.Since(failedAt) > time.Second {
			t.Fatalf("no delayed job in the tube 1 s after the failure: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if stats["state"] != "delayed" || stats["delay"] != "2" || stats["reserves"] != "1" {
		t.Errorf("after the failure, stats-job state %q delay %q reserves %q; want delayed, 2, 1", stats["state"], stats["delay"], stats["reserves"])
	}
	if err := c1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, kombu.ErrConsumerStopped) {
		t.Errorf("Consume returned %v, want ErrConsumerStopped", err)
	}

	conn2, err := kombu.Dial(ctx, serverURL(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	c2, err := conn2.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{Redelivery: policy})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c2.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if gap := time.Since(failedAt); gap < 2*time.Second || string(m.Body) != "fails once" || m.DeliveryCount() != 2 {
		t.Errorf("got %q with DeliveryCount %d %v after the failure; want \"fails once\", 2, after at least 2 s",
			m.Body, m.DeliveryCount(), gap)
	}
	if err := m.Ack(ctx); err != nil {
		t.Fatal(err)
	}
}
