package amqp

import (
	"errors"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kombu-go/kombu/kombu"
)

// dialTestConnection dials a kombu Connection to the test broker, closed
// at the end of the test.
func dialTestConnection(t *testing.T) *kombu.Connection {
	t.Helper()
	conn, err := kombu.Dial(tctx(t), serverURL(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// fullQueue declares a queue that holds one message and nacks every
// publish beyond it (x-overflow reject-publish): a cheap real nack.
func fullQueue(t *testing.T, ch *kombu.Channel) kombu.Queue {
	t.Helper()
	ctx := tctx(t)
	q := kombu.NewQueue(unique(t, "full"), kombu.DefaultExchange, "")
	q.Arguments = map[string]any{"x-max-length": 1, "x-overflow": "reject-publish"}
	if _, err := q.Declare(ctx, ch); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = q.Delete(tctx(t), ch, false, false) })
	return q
}

func amqpChannel(t *testing.T, ch *kombu.Channel) *amqp.Channel {
	t.Helper()
	var ach *amqp.Channel
	if !ch.As(&ach) || ach == nil {
		t.Fatal("Channel.As(**amqp091.Channel) = false")
	}
	return ach
}

// TestNackReopensChannel: RabbitMQ 3.10 can nack every publish of a
// channel whose first publish met a quorum queue's leader election, while
// a new channel works at once. So after a nack the producer's next
// publish goes out on a fresh AMQP channel; the nacked publish itself
// still returns ErrNacked (which kombu never retries: see Recoverable).
func TestNackReopensChannel(t *testing.T) {
	ctx := tctx(t)
	conn := dialTestConnection(t)
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	full := fullQueue(t, p.Channel())
	other := kombu.NewQueue(unique(t, "other"), kombu.DefaultExchange, "")
	if _, err := other.Declare(ctx, p.Channel()); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = other.Delete(tctx(t), p.Channel(), false, false) }()

	if err := p.Publish(ctx, "fills it", &kombu.PublishOptions{RoutingKey: full.Name}); err != nil {
		t.Fatal(err)
	}
	before := amqpChannel(t, p.Channel())
	err = p.Publish(ctx, "refused", &kombu.PublishOptions{RoutingKey: full.Name})
	if !errors.Is(err, kombu.ErrNacked) {
		t.Fatalf("publish to a full reject-publish queue: %v, want ErrNacked", err)
	}
	if n, err := full.Len(ctx, p.Channel()); err != nil || n != 1 {
		t.Fatalf("the full queue holds %d (%v), want 1", n, err)
	}
	if err := p.Publish(ctx, "after", &kombu.PublishOptions{RoutingKey: other.Name}); err != nil {
		t.Fatalf("publish after a nack: %v", err)
	}
	after := amqpChannel(t, p.Channel())
	if after == before {
		t.Error("the publish after a nack went out on the nacked AMQP channel, want a fresh one")
	}
	if !before.IsClosed() {
		t.Error("the nacked AMQP channel is still open")
	}
	if n, err := other.Len(ctx, p.Channel()); err != nil || n != 1 {
		t.Errorf("the other queue holds %d (%v), want 1", n, err)
	}
}

// A channel with a running consumer is not replaced after a nack:
// closing it would requeue the consumer's deliveries and end it.
func TestNackKeepsChannelWithConsumer(t *testing.T) {
	ctx := tctx(t)
	conn := dialTestConnection(t)
	ch, err := conn.Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	full := fullQueue(t, ch)
	p, err := kombu.NewProducer(ctx, ch, nil)
	if err != nil {
		t.Fatal(err)
	}
	work := kombu.NewQueue(unique(t, "work"), kombu.DefaultExchange, "")
	c, err := kombu.NewConsumer(ctx, ch, []kombu.Queue{work}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = work.Delete(tctx(t), ch, false, false) }()
	if err := p.Publish(ctx, "fills it", &kombu.PublishOptions{RoutingKey: full.Name}); err != nil {
		t.Fatal(err)
	}
	before := amqpChannel(t, ch)
	if err := p.Publish(ctx, "refused", &kombu.PublishOptions{RoutingKey: full.Name}); !errors.Is(err, kombu.ErrNacked) {
		t.Fatalf("publish to a full reject-publish queue: %v, want ErrNacked", err)
	}
	if err := p.Publish(ctx, "work", &kombu.PublishOptions{RoutingKey: work.Name}); err != nil {
		t.Fatal(err)
	}
	m, err := c.Receive(ctx)
	if err != nil || string(m.Body) != "work" {
		t.Fatalf("the consumer after a nack on its channel: %v %v", m, err)
	}
	if err := m.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if amqpChannel(t, ch) != before {
		t.Error("a channel with a running consumer was replaced after a nack")
	}
}
