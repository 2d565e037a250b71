package sqs

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

// TestFIFOQueueKeepsOrderAfterClose: Features.RequeueOrder is false for
// SQS because standard queues keep no order, but a FIFO queue (".fifo")
// keeps the order of a message group: an unacked message handed back by a
// channel close or Recover comes back before the later messages of its
// group, which follow in order. (SQS hands out a group's later messages
// only once the earlier ones are settled or visible again, except within
// one ReceiveMessage reply; fauxqs gives one message per group and reply,
// so a consumer holds one unacked message of the group here.)
func TestFIFOQueueKeepsOrderAfterClose(t *testing.T) {
	for _, how := range []string{"close", "recover"} {
		t.Run(how, func(t *testing.T) {
			conn, name := emulator(t, "")
			name += ".fifo"
			ctx := ctxT(t, 20*time.Second)
			q := kombu.Queue{Name: name, Durable: true}
			ch, err := conn.Channel(ctx)
			must(t, err)
			_, err = q.Declare(ctx, ch)
			must(t, err)
			t.Cleanup(func() {
				if dch, err := conn.DefaultChannel(ctx); err == nil {
					_, _ = q.Delete(ctx, dch, false, false)
				}
			})
			p, err := conn.Producer(ctx, nil)
			must(t, err)
			var sent []string
			for i := range 15 {
				sent = append(sent, fmt.Sprintf("m%02d", i))
				must(t, p.Publish(ctx, sent[i], &kombu.PublishOptions{RoutingKey: name}))
			}
			c, err := kombu.NewConsumer(ctx, ch, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: 1})
			must(t, err)
			m, err := c.Receive(ctx)
			must(t, err)
			if string(m.Body) != sent[0] {
				t.Fatalf("first delivery is %q, want %q", m.Body, sent[0])
			}
			if how == "close" {
				must(t, ch.Close())
				c, err = conn.Consumer(ctx, []kombu.Queue{q}, nil)
				must(t, err)
			} else {
				must(t, c.Recover(ctx, true))
			}
			defer c.Close()
			var again []string
			for range sent {
				m, err := c.Receive(ctx)
				must(t, err)
				if m.Redelivered != (len(again) == 0) {
					t.Errorf("%q came back with Redelivered %t", m.Body, m.Redelivered)
				}
				again = append(again, string(m.Body))
				must(t, m.Ack(ctx))
			}
			if !slices.Equal(again, sent) {
				t.Errorf("after %s, delivered as %q; want %q", how, again, sent)
			}
		})
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
