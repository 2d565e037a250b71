package drivertest

import (
	"context"
	"slices"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

var healCases = []testCase{
	{"EnsureRevivesAfterReconnect", testEnsureRevivesAfterReconnect},
}

// testEnsureRevivesAfterReconnect: a producer and a consumer bound to a
// channel of a connection that was dropped work again under Ensure, moved
// to the new connection, and no message is lost: the one published before
// the drop and the one published after both arrive.
func testEnsureRevivesAfterReconnect(e *env) {
	conn := e.dial(nil)
	q := e.simpleQueue("q")
	ctx, cancel := e.wait()
	defer cancel()
	ch, err := conn.DefaultChannel(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := kombu.NewProducer(ctx, ch, &kombu.ProducerOptions{RoutingKey: q.Name})
	if err != nil {
		e.t.Fatal(err)
	}
	// The consumer declares its queue on every channel it is revived on: on
	// redis an empty queue is known only to the connection that declared
	// it (Python kombu's rule), and the old connection's unacked messages
	// may not be back in the queue yet when the new one consumes.
	c, err := kombu.NewConsumer(ctx, ch, []kombu.Queue{q}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	if err := p.Publish(ctx, "before", nil); err != nil {
		e.t.Fatal(err)
	}
	if err := conn.Reconnect(ctx, false); err != nil {
		e.t.Fatalf("reconnect: %v", err)
	}
	var got []string
	published := false
	roundTrip := func(ctx context.Context) error {
		if !published {
			if err := p.Publish(ctx, "after", nil); err != nil {
				return err
			}
			published = true
		}
		for len(got) < 2 {
			m, err := c.Receive(ctx)
			if err != nil {
				return err
			}
			if isProbe(m) {
				continue
			}
			body, _ := m.Payload()
			if s, _ := body.(string); !slices.Contains(got, s) {
				got = append(got, s)
			}
			if err := m.Ack(ctx); err != nil {
				return err
			}
		}
		return nil
	}
	policy := &kombu.RetryPolicy{MaxRetries: 5, IntervalStep: 50 * time.Millisecond}
	if err := conn.Ensure(ctx, policy, roundTrip, p, c); err != nil {
		e.t.Fatalf("ensure: %v (received %q)", err, got)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"after", "before"}) {
		e.t.Fatalf("received %q, want before and after", got)
	}
	if p.Channel() == ch || c.Channel() != p.Channel() {
		e.t.Error("producer and consumer were not revived on the new default channel")
	}
	e.expectNone(c)
}
