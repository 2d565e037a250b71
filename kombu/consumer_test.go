package kombu_test

import (
	"context"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

// A handler that cancels the Consume context after its last message must
// still have that message acked.
func TestConsumeAcksLastMessageAfterHandlerCancels(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := kombu.Dial(ctx, "memory://"+uniqueName(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q := kombu.NewQueue("lastack", kombu.DefaultExchange, "")
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := p.Publish(ctx, i, &kombu.PublishOptions{RoutingKey: q.Name, Declare: []kombu.Declarable{q}}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: 10})
	if err != nil {
		t.Fatal(err)
	}
	loopCtx, stop := context.WithCancel(ctx)
	seen := 0
	err = c.Consume(loopCtx, kombu.HandlerFunc(func(context.Context, *kombu.Message) error {
		if seen++; seen == 3 {
			stop()
		}
		return nil
	}))
	if err != context.Canceled {
		t.Fatalf("Consume returned %v, want context.Canceled", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := q.Len(ctx, ch); err != nil || n != 0 {
		t.Fatalf("queue holds %d messages (err %v) after all were handled; the last ack was lost", n, err)
	}
}

// The memory transport keeps published bodies as they are; a producer
// must not let it keep the caller's buffer, which the caller may reuse.
func TestPublishedRawBytesAreNotAliased(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := kombu.Dial(ctx, "memory://"+uniqueName(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sq, err := conn.SimpleQueue(ctx, "alias", nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := []byte("first")
	if err := sq.Put(ctx, buf, nil); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXX")
	m, err := sq.GetNowait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Body) != "first" {
		t.Fatalf("queued body changed with the caller's buffer: %q", m.Body)
	}
}
