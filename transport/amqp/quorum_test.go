package amqp

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

// A Consumer with a prefetch count reads a quorum queue (which refuses
// channels with a global basic.qos at basic.consume: 540 NOT_IMPLEMENTED),
// the broker keeps the rest back while the window is full, and a raised
// count reaches the running consumer.
func TestQuorumQueuePrefetch(t *testing.T) {
	const prefetch, total = 10, 25
	ctx := tctx(t)
	conn := dialTestConnection(t)
	q := kombu.NewQueue(unique(t, "quorum"), kombu.DefaultExchange, "")
	q.Durable = true
	q.Arguments = map[string]any{"x-queue-type": "quorum"}
	ch, err := conn.Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Declare(ctx, ch); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = q.Delete(context.Background(), ch, false, false) }()
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range total {
		if err := p.Publish(ctx, fmt.Sprint(i), &kombu.PublishOptions{RoutingKey: q.Name}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: prefetch})
	if err != nil {
		t.Fatalf("consumer with a prefetch count on a quorum queue: %v", err)
	}
	defer c.Close()
	var held []*kombu.Message
	receive := func(n int) {
		t.Helper()
		for range n {
			m, err := c.Receive(ctx)
			if err != nil {
				t.Fatalf("receive after %d: %v", len(held), err)
			}
			held = append(held, m)
		}
	}
	expectBounded := func(ready int) {
		t.Helper()
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if m, err := c.Receive(short); err == nil {
			t.Fatalf("received %q beyond the prefetch window with %d unacked", m.Body, len(held))
		} else if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("receive: %v", err)
		}
		if ready < 0 {
			return
		}
		// The broker keeps the rest: nothing waits unseen in the client.
		deadline := time.Now().Add(5 * time.Second)
		for {
			n, err := q.Len(ctx, ch)
			if err != nil {
				t.Fatal(err)
			}
			if n == ready {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d messages ready in the queue with %d unacked, want %d", n, len(held), ready)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	receive(prefetch)
	expectBounded(total - prefetch)
	if err := c.Qos(ctx, 2*prefetch); err != nil {
		t.Fatalf("raising the prefetch count: %v", err)
	}
	receive(prefetch)
	// The ten held from before the change no longer count at the broker
	// (they belong to the consumer it replaced), so up to ten more may
	// wait in the client: only the local bound is checked.
	expectBounded(-1)
	for _, m := range held {
		if err := m.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
	receive(total - 2*prefetch)
	seen := map[string]bool{}
	for _, m := range held {
		seen[string(m.Body)] = true
		if err := m.Ack(ctx); err != nil && !errors.Is(err, kombu.ErrAlreadyAcknowledged) {
			t.Fatal(err)
		}
	}
	if len(seen) != total {
		t.Errorf("received %d distinct messages of %d", len(seen), total)
	}
}
