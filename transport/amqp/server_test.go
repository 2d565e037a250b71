package amqp

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kombu-go/kombu/kombu/driver"
)

// Tests in this file run against the RabbitMQ of `make test`.

func TestRoundTripProperties(t *testing.T) {
	t.Parallel()
	_, ch := setup(t)
	q := declareQueue(t, ch, driver.Queue{Durable: true})
	ts := time.Unix(1700000000, 0)
	p := &driver.Publishing{RoutingKey: q, Message: driver.Message{
		Body: []byte(`{"n": 1}`), ContentType: "application/json", ContentEncoding: "utf-8",
		Headers: map[string]any{
			"small": 7, "big": int64(1) << 40, "neg": int64(-3000000000), "f": 1.5,
			"s": "v", "b": true, "nil": nil, "list": []any{1, "a", nil},
			"nested": map[string]any{"x": int64(-1) << 35},
		},
		Properties: driver.Properties{Priority: 3, CorrelationID: "corr-1", ReplyTo: "reply.q",
			Expiration: "60000", MessageID: "mid-1", Timestamp: ts, Type: "t1", AppID: "app"},
	}}
	if err := ch.Publish(tctx(t), p); err != nil {
		t.Fatal(err)
	}
	d, err := ch.Get(tctx(t), q, false)
	if err != nil {
		t.Fatal(err)
	}
	if string(d.Body) != `{"n": 1}` || d.ContentType != "application/json" || d.ContentEncoding != "utf-8" {
		t.Errorf("body/content: %q %q %q", d.Body, d.ContentType, d.ContentEncoding)
	}
	pr := d.Properties
	if pr.DeliveryMode != 2 || pr.Priority != 3 || pr.CorrelationID != "corr-1" || pr.ReplyTo != "reply.q" ||
		pr.Expiration != "60000" || pr.MessageID != "mid-1" || !pr.Timestamp.Equal(ts) || pr.Type != "t1" || pr.AppID != "app" {
		t.Errorf("properties: %+v", pr)
	}
	h := d.Headers
	want := map[string]any{"small": int64(7), "big": int64(1) << 40, "neg": int64(-3000000000), "f": 1.5, "s": "v", "b": true}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("header %s = %#v (%T), want %#v", k, h[k], h[k], v)
		}
	}
	if v, ok := h["nil"]; !ok || v != nil {
		t.Errorf("header nil = %#v", v)
	}
	if l, _ := h["list"].([]any); len(l) != 3 || l[0] != int64(1) || l[1] != "a" || l[2] != nil {
		t.Errorf("list = %#v", h["list"])
	}
	if n, _ := h["nested"].(map[string]any); n["x"] != int64(-1)<<35 {
		t.Errorf("nested = %#v", h["nested"])
	}
	if d.Queue != q || d.RoutingKey != q || d.Exchange != "" {
		t.Errorf("delivery info: %q %q %q", d.Queue, d.RoutingKey, d.Exchange)
	}
	var raw amqp.Delivery
	if !d.As(&raw) || raw.DeliveryTag == 0 {
		t.Error("As(*amqp091.Delivery) failed")
	}
	if err := ch.Ack(tctx(t), d.Tag, false); err != nil {
		t.Fatal(err)
	}
	if err := ch.Ack(tctx(t), d.Tag, false); !errors.Is(err, driver.ErrUnknownDeliveryTag) {
		t.Fatalf("double ack: %v", err)
	}
	// The channel is still fine.
	pub(t, ch, "", q, "after")
	if got := getBody(t, ch, q, 2*time.Second); got != "after" {
		t.Fatalf("got %q", got)
	}
}

func TestTransientDeliveryMode(t *testing.T) {
	t.Parallel()
	_, ch := setup(t)
	q := declareQueue(t, ch, driver.Queue{})
	err := ch.Publish(tctx(t), &driver.Publishing{RoutingKey: q, Message: driver.Message{Body: []byte("x"),
		Properties: driver.Properties{DeliveryMode: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := ch.Get(tctx(t), q, true)
	if err != nil || d.Properties.DeliveryMode != 1 {
		t.Fatalf("%v %+v", err, d)
	}
}

func TestExchangeTypes(t *testing.T) {
	t.Parallel()
	_, ch := setup(t)
	ctx := tctx(t)

	t.Run("direct", func(t *testing.T) {
		x := declareExchange(t, ch, "direct")
		q1 := declareQueue(t, ch, driver.Queue{})
		q2 := declareQueue(t, ch, driver.Queue{})
		must(t, ch.QueueBind(ctx, driver.Binding{Queue: q1, Exchange: x, RoutingKey: "a"}))
		must(t, ch.QueueBind(ctx, driver.Binding{Queue: q2, Exchange: x, RoutingKey: "b"}))
		pub(t, ch, x, "a", "to-a")
		pub(t, ch, x, "b", "to-b")
		if g1, g2 := getBody(t, ch, q1, time.Second), getBody(t, ch, q2, time.Second); g1 != "to-a" || g2 != "to-b" {
			t.Fatalf("%q %q", g1, g2)
		}
	})
	t.Run("topic", func(t *testing.T) {
		x := declareExchange(t, ch, "topic")
		q1 := declareQueue(t, ch, driver.Queue{})
		q2 := declareQueue(t, ch, driver.Queue{})
		must(t, ch.QueueBind(ctx, driver.Binding{Queue: q1, Exchange: x, RoutingKey: "*.info"}))
		must(t, ch.QueueBind(ctx, driver.Binding{Queue: q2, Exchange: x, RoutingKey: "a.#"}))
		pub(t, ch, x, "a.b.info", "deep")
		pub(t, ch, x, "x.info", "shallow")
		if g := getBody(t, ch, q1, time.Second); g != "shallow" {
			t.Fatalf("q1 %q", g)
		}
		if g := getBody(t, ch, q1, 100*time.Millisecond); g != "" {
			t.Fatalf("q1 extra %q", g)
		}
		if g := getBody(t, ch, q2, time.Second); g != "deep" {
			t.Fatalf("q2 %q", g)
		}
	})
	t.Run("fanout", func(t *testing.T) {
		x := declareExchange(t, ch, "fanout")
		q1 := declareQueue(t, ch, driver.Queue{})
		q2 := declareQueue(t, ch, driver.Queue{})
		must(t, ch.QueueBind(ctx, driver.Binding{Queue: q1, Exchange: x, RoutingKey: "ignored"}))
		must(t, ch.QueueBind(ctx, driver.Binding{Queue: q2, Exchange: x}))
		pub(t, ch, x, "whatever", "all")
		if g1, g2 := getBody(t, ch, q1, time.Second), getBody(t, ch, q2, time.Second); g1 != "all" || g2 != "all" {
			t.Fatalf("%q %q", g1, g2)
		}
	})
	t.Run("headers", func(t *testing.T) {
		x := declareExchange(t, ch, "headers")
		q1 := declareQueue(t, ch, driver.Queue{})
		must(t, ch.QueueBind(ctx, driver.Binding{Queue: q1, Exchange: x,
			Args: map[string]any{"x-match": "all", "kind": "img", "size": 2}}))
		for _, h := range []map[string]any{{"kind": "img"}, {"kind": "img", "size": 2}} {
			err := ch.Publish(ctx, &driver.Publishing{Exchange: x, Message: driver.Message{Body: []byte(fmt.Sprint(len(h))), Headers: h}})
			must(t, err)
		}
		if g := getBody(t, ch, q1, time.Second); g != "2" {
			t.Fatalf("got %q", g)
		}
		if g := getBody(t, ch, q1, 100*time.Millisecond); g != "" {
			t.Fatalf("extra %q", g)
		}
	})
	t.Run("exchange-to-exchange", func(t *testing.T) {
		src := declareExchange(t, ch, "topic")
		dst := declareExchange(t, ch, "fanout")
		q := declareQueue(t, ch, driver.Queue{})
		must(t, ch.QueueBind(ctx, driver.Binding{Queue: q, Exchange: dst}))
		var eb ExchangeBinder = ch
		must(t, eb.ExchangeBind(ctx, dst, src, "k.*", nil))
		pub(t, ch, src, "k.1", "via")
		pub(t, ch, src, "other", "not")
		if g := getBody(t, ch, q, time.Second); g != "via" {
			t.Fatalf("got %q", g)
		}
		must(t, eb.ExchangeUnbind(ctx, dst, src, "k.*", nil))
		pub(t, ch, src, "k.2", "after-unbind")
		if g := getBody(t, ch, q, 200*time.Millisecond); g != "" {
			t.Fatalf("after unbind got %q", g)
		}
	})
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestErrorsRecoverChannel(t *testing.T) {
	t.Parallel()
	_, ch := setup(t, "heartbeat", "10")
	ctx := tctx(t)
	q := declareQueue(t, ch, driver.Queue{Durable: true})
	must(t, ch.Qos(ctx, 5))

	// 404 on a passive queue declare, then the channel still works.
	_, err := ch.QueueDeclare(ctx, driver.Queue{Name: unique(t, "missing"), Passive: true})
	var ae *amqp.Error
	if !errors.Is(err, driver.ErrNotFound) || !errors.As(err, &ae) || ae.Code != 404 {
		t.Fatalf("passive declare: %v", err)
	}
	err = ch.ExchangeDeclare(ctx, driver.Exchange{Name: unique(t, "missing"), Type: "direct", Passive: true})
	if !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("passive exchange declare: %v", err)
	}
	pub(t, ch, "", q, "one")
	if g := getBody(t, ch, q, time.Second); g != "one" {
		t.Fatalf("after 404: %q", g)
	}

	// 406 on a redeclare with other arguments.
	_, err = ch.QueueDeclare(ctx, driver.Queue{Name: q, Durable: true, Args: map[string]any{"x-max-length": 3}})
	if !errors.Is(err, driver.ErrPreconditionFailed) || !errors.As(err, &ae) || ae.Code != 406 {
		t.Fatalf("redeclare: %v", err)
	}
	// Publishing to a missing exchange: the channel dies asynchronously;
	// the confirm never comes, so Publish reports it.
	err = ch.Publish(ctx, &driver.Publishing{Exchange: unique(t, "nox"), RoutingKey: "k", Message: driver.Message{Body: []byte("x")}})
	if !errors.Is(err, driver.ErrNotFound) || !errors.Is(err, ErrUnconfirmed) {
		t.Fatalf("publish to missing exchange: %v", err)
	}
	// Still usable, with the prefetch re-applied (checked via Receive).
	for i := range 8 {
		pub(t, ch, "", q, fmt.Sprint(i))
	}
	must(t, ch.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "c1"}))
	ds := receiveN(t, ch, 5)
	more, err := ch.Receive(ctx, 10)
	if err != nil || len(more) != 0 {
		t.Fatalf("prefetch 5 exceeded: %d more, %v", len(more), err)
	}
	must(t, ch.Ack(ctx, ds[4].Tag, true))
	rest := receiveN(t, ch, 3)
	for _, d := range rest {
		must(t, ch.Ack(ctx, d.Tag, false))
	}

	// 403: RabbitMQ refuses new amq.* names but accepts redeclaring its
	// own amq.* exchanges with their attributes.
	must(t, ch.ExchangeDeclare(ctx, driver.Exchange{Name: "amq.direct", Type: "direct", Durable: true}))
	if err := ch.ExchangeDeclare(ctx, driver.Exchange{Name: "amq.kombu-go-test", Type: "direct"}); !errors.Is(err, driver.ErrAccessRefused) {
		t.Fatalf("amq. exchange: %v", err)
	}
	_, err = ch.QueueDeclare(ctx, driver.Queue{Name: "amq.kombu-go-test"})
	if !errors.Is(err, driver.ErrAccessRefused) {
		t.Fatalf("amq. queue: %v", err)
	}
	pub(t, ch, "", q, "still")
	if g := getBody(t, ch, q, time.Second); g != "still" {
		t.Fatalf("after 403: %q", g)
	}
}

func TestConsumerLostWithChannel(t *testing.T) {
	t.Parallel()
	_, ch := setup(t)
	ctx := tctx(t)
	q := declareQueue(t, ch, driver.Queue{})
	must(t, ch.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "lost"}))
	_, err := ch.QueueDeclare(ctx, driver.Queue{Name: unique(t, "missing"), Passive: true})
	if !errors.Is(err, driver.ErrNotFound) {
		t.Fatal(err)
	}
	_, err = ch.Receive(ctx, 1)
	var ce *ConsumerError
	if !errors.As(err, &ce) || ce.ConsumerTag != "lost" || !errors.Is(err, driver.ErrClosed) || ce.Cancelled {
		t.Fatalf("receive after channel death: %v", err)
	}
	// The tag is free again and consuming works on the reopened channel.
	must(t, ch.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "lost"}))
	pub(t, ch, "", q, "x")
	ds := receiveN(t, ch, 1)
	must(t, ch.Ack(ctx, ds[0].Tag, false))
}

func TestBrokerCancelNotification(t *testing.T) {
	t.Parallel()
	c, ch := setup(t)
	ctx := tctx(t)
	q := declareQueue(t, ch, driver.Queue{})
	must(t, ch.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "doomed"}))
	pub(t, ch, "", q, "before")
	ds := receiveN(t, ch, 1)
	other := openChannel(t, c)
	if _, err := other.QueueDelete(ctx, q, false, false); err != nil {
		t.Fatal(err)
	}
	var err error
	for range 5 {
		_, err = ch.Receive(ctx, 1)
		if err != nil {
			break
		}
	}
	var ce *ConsumerError
	if !errors.As(err, &ce) || !ce.Cancelled || !errors.Is(err, driver.ErrNotFound) || ce.Queue != q {
		t.Fatalf("want broker cancel, got %v", err)
	}
	// The channel itself is fine; the old delivery can no longer be acked
	// meaningfully but acking it is harmless (its queue is gone).
	_ = ch.Ack(ctx, ds[0].Tag, false)
	must(t, ch.Qos(ctx, 1))
}

func TestDuplicateConsumerTag(t *testing.T) {
	t.Parallel()
	_, ch := setup(t)
	q := declareQueue(t, ch, driver.Queue{})
	must(t, ch.Consume(tctx(t), driver.ConsumeArgs{Queue: q, ConsumerTag: "dup"}))
	err := ch.Consume(tctx(t), driver.ConsumeArgs{Queue: q, ConsumerTag: "dup"})
	if !errors.Is(err, driver.ErrPreconditionFailed) {
		t.Fatal(err)
	}
	must(t, ch.Cancel(tctx(t), "dup"))
	must(t, ch.Cancel(tctx(t), "unknown-tag"))
	must(t, ch.Consume(tctx(t), driver.ConsumeArgs{Queue: q, ConsumerTag: "dup"}))
}

func TestQueueArguments(t *testing.T) {
	t.Parallel()
	_, ch := setup(t)
	ctx := tctx(t)

	t.Run("max-priority", func(t *testing.T) {
		q := declareQueue(t, ch, driver.Queue{Args: map[string]any{"x-max-priority": 10}})
		for _, p := range []uint8{0, 5, 9, 1} {
			must(t, ch.Publish(ctx, &driver.Publishing{RoutingKey: q, Message: driver.Message{Body: []byte{'0' + p},
				Properties: driver.Properties{Priority: p}}}))
		}
		var got string
		for range 4 {
			got += getBody(t, ch, q, time.Second)
		}
		if got != "9510" {
			t.Fatalf("order %q", got)
		}
	})
	t.Run("message-ttl-and-expiration", func(t *testing.T) {
		q := declareQueue(t, ch, driver.Queue{Args: map[string]any{"x-message-ttl": 100}})
		pub(t, ch, "", q, "gone")
		q2 := declareQueue(t, ch, driver.Queue{})
		must(t, ch.Publish(ctx, &driver.Publishing{RoutingKey: q2, Message: driver.Message{Body: []byte("gone"),
			Properties: driver.Properties{Expiration: "100"}}}))
		time.Sleep(300 * time.Millisecond)
		if g := getBody(t, ch, q, 0); g != "" {
			t.Fatalf("x-message-ttl: %q", g)
		}
		if g := getBody(t, ch, q2, 0); g != "" {
			t.Fatalf("expiration: %q", g)
		}
	})
	t.Run("expires", func(t *testing.T) {
		name := unique(t, "exp")
		_, err := ch.QueueDeclare(ctx, driver.Queue{Name: name, Args: map[string]any{"x-expires": 200}})
		must(t, err)
		deadline := time.Now().Add(10 * time.Second)
		for {
			time.Sleep(time.Second)
			_, err = ch.QueueDeclare(ctx, driver.Queue{Name: name, Passive: true})
			if errors.Is(err, driver.ErrNotFound) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("queue did not expire: %v", err)
			}
			// A declare, even passive, renews the lease: check rarely.
			time.Sleep(time.Second)
		}
	})
	t.Run("max-length-and-dead-letter", func(t *testing.T) {
		dlx := declareExchange(t, ch, "direct")
		dlq := declareQueue(t, ch, driver.Queue{})
		must(t, ch.QueueBind(ctx, driver.Binding{Queue: dlq, Exchange: dlx, RoutingKey: "dead"}))
		q := declareQueue(t, ch, driver.Queue{Args: map[string]any{
			"x-max-length": 2, "x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": "dead"}})
		for _, b := range []string{"1", "2", "3"} {
			pub(t, ch, "", q, b)
		}
		// The oldest one overflowed into the dead-letter queue.
		if g := getBody(t, ch, dlq, time.Second); g != "1" {
			t.Fatalf("dead-lettered %q", g)
		}
		d, err := ch.Get(ctx, q, false)
		must(t, err)
		must(t, ch.Reject(ctx, d.Tag, false)) // rejected without requeue: dead-lettered
		var d2 *driver.Delivery
		for range 100 {
			if d2, err = ch.Get(ctx, dlq, true); !isEmpty(err) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		must(t, err)
		if string(d2.Body) != "2" {
			t.Fatalf("rejected message: %q", d2.Body)
		}
		if _, ok := d2.Headers["x-death"]; !ok {
			t.Errorf("no x-death header: %v", d2.Headers)
		}
	})
	t.Run("quorum", func(t *testing.T) {
		q := declareQueue(t, ch, driver.Queue{Durable: true, Args: map[string]any{"x-queue-type": "quorum"}})
		pub(t, ch, "", q, "q")
		if g := getBody(t, ch, q, 2*time.Second); g != "q" {
			t.Fatalf("quorum: %q", g)
		}
	})
}

func TestConsumeAckRejectRecover(t *testing.T) {
	t.Parallel()
	_, ch := setup(t)
	ctx := tctx(t)
	q := declareQueue(t, ch, driver.Queue{})
	for i := range 4 {
		pub(t, ch, "", q, fmt.Sprint(i))
	}
	must(t, ch.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "c"}))
	ds := receiveN(t, ch, 4)
	if ds[0].ConsumerTag != "c" || ds[0].Queue != q {
		t.Fatalf("delivery %+v", ds[0])
	}
	// requeue one: it comes back redelivered.
	must(t, ch.Reject(ctx, ds[0].Tag, true))
	re := receiveN(t, ch, 1)
	if !re[0].Redelivered || string(re[0].Body) != "0" {
		t.Fatalf("requeued: %+v", re[0])
	}
	if err := ch.Reject(ctx, ds[0].Tag, true); !errors.Is(err, driver.ErrUnknownDeliveryTag) {
		t.Fatalf("reject twice: %v", err)
	}
	// multiple ack of 1..2
	must(t, ch.Ack(ctx, ds[2].Tag, true))
	if err := ch.Ack(ctx, ds[1].Tag, false); !errors.Is(err, driver.ErrUnknownDeliveryTag) {
		t.Fatalf("ack after multiple: %v", err)
	}
	// recover: the unacked ones (3 and the redelivered 0) come again.
	must(t, ch.Recover(ctx, true))
	again := receiveN(t, ch, 2)
	bodies := []string{string(again[0].Body), string(again[1].Body)}
	slices.Sort(bodies)
	if !slices.Equal(bodies, []string{"0", "3"}) {
		t.Fatalf("recovered %v", bodies)
	}
	if err := ch.Ack(ctx, ds[3].Tag, false); !errors.Is(err, driver.ErrUnknownDeliveryTag) {
		t.Fatalf("ack of a tag from before recover: %v", err)
	}
	must(t, ch.Ack(ctx, 0, true)) // everything
	must(t, ch.Cancel(ctx, "c"))
	info, err := ch.QueueDeclare(ctx, driver.Queue{Name: q, Passive: true})
	must(t, err)
	if info.Messages != 0 || info.Consumers != 0 {
		t.Fatalf("queue %+v", info)
	}
}

func TestNoAckAndFlow(t *testing.T) {
	t.Parallel()
	_, ch := setup(t)
	ctx := tctx(t)
	q := declareQueue(t, ch, driver.Queue{})
	must(t, ch.Qos(ctx, 1)) // does not limit no-ack consumers
	for i := range 3 {
		pub(t, ch, "", q, fmt.Sprint(i))
	}
	must(t, ch.Flow(ctx, false))
	must(t, ch.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "na", NoAck: true}))
	ds, err := ch.Receive(ctx, 10)
	if err != nil || len(ds) != 0 {
		t.Fatalf("paused receive: %d %v", len(ds), err)
	}
	must(t, ch.Flow(ctx, true))
	ds = receiveN(t, ch, 3)
	if err := ch.Ack(ctx, ds[0].Tag, false); !errors.Is(err, driver.ErrUnknownDeliveryTag) {
		t.Fatalf("ack of a no-ack delivery: %v", err)
	}
}

func TestCloseRequeuesUnacked(t *testing.T) {
	t.Parallel()
	c, ch := setup(t)
	ctx := tctx(t)
	q := declareQueue(t, ch, driver.Queue{})
	pub(t, ch, "", q, "keep")
	ch2 := openChannel(t, c)
	must(t, ch2.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "x"}))
	receiveN(t, ch2, 1)
	must(t, ch2.Close())
	must(t, ch2.Close()) // idempotent
	if _, err := ch2.Receive(ctx, 1); !errors.Is(err, driver.ErrClosed) {
		t.Fatalf("receive after close: %v", err)
	}
	if err := ch2.Publish(ctx, &driver.Publishing{RoutingKey: q}); !errors.Is(err, driver.ErrClosed) {
		t.Fatalf("publish after close: %v", err)
	}
	d, err := ch.Get(ctx, q, true)
	if err != nil || !d.Redelivered || string(d.Body) != "keep" {
		t.Fatalf("after close: %v %+v", err, d)
	}
}

func TestMandatory(t *testing.T) {
	t.Parallel()
	_, ch := setup(t)
	ctx := tctx(t)
	x := declareExchange(t, ch, "direct")
	err := ch.Publish(ctx, &driver.Publishing{Exchange: x, RoutingKey: "nobody", Mandatory: true,
		Message: driver.Message{Body: []byte("lost")}})
	var re *driver.ReturnError
	if !errors.Is(err, driver.ErrUnroutable) || !errors.As(err, &re) || re.Return.ReplyCode != 312 || string(re.Return.Body) != "lost" {
		t.Fatalf("mandatory: %v", err)
	}
	q := declareQueue(t, ch, driver.Queue{})
	must(t, ch.QueueBind(ctx, driver.Binding{Queue: q, Exchange: x, RoutingKey: "k"}))
	must(t, ch.Publish(ctx, &driver.Publishing{Exchange: x, RoutingKey: "k", Mandatory: true, Message: driver.Message{Body: []byte("ok")}}))

	// Without confirms the return goes to the handler.
	_, nc := setup(t, "confirm_publish", "false")
	got := make(chan driver.Return, 1)
	nc.NotifyReturn(func(r driver.Return) { got <- r })
	must(t, nc.Publish(ctx, &driver.Publishing{Exchange: x, RoutingKey: "nobody", Mandatory: true, Message: driver.Message{Body: []byte("r")}}))
	select {
	case r := <-got:
		if r.RoutingKey != "nobody" || string(r.Body) != "r" {
			t.Fatalf("return %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no return")
	}
	// Batches hand returns to the handler too.
	ch.NotifyReturn(func(r driver.Return) { got <- r })
	must(t, ch.PublishBatch(ctx, []*driver.Publishing{{Exchange: x, RoutingKey: "nobody", Mandatory: true, Message: driver.Message{Body: []byte("b")}}}))
	select {
	case r := <-got:
		if string(r.Body) != "b" {
			t.Fatalf("return %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no return from batch")
	}
}

func TestPublishBatchAndConcurrency(t *testing.T) {
	t.Parallel()
	c, ch := setup(t, "confirm_window", "16")
	ctx := tctx(t)
	q := declareQueue(t, ch, driver.Queue{Durable: true})
	ps := make([]*driver.Publishing, 250)
	for i := range ps {
		ps[i] = &driver.Publishing{RoutingKey: q, Message: driver.Message{Body: []byte(fmt.Sprint(i))}}
	}
	must(t, ch.PublishBatch(ctx, ps))
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				errs <- ch.Publish(ctx, &driver.Publishing{RoutingKey: q, Message: driver.Message{Body: []byte(fmt.Sprint(g, i))}})
			}
		})
	}
	// A consumer on another channel, in parallel.
	cc := openChannel(t, c)
	must(t, cc.Qos(ctx, 50))
	must(t, cc.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "cc"}))
	seen := 0
	for seen < 650 {
		ds, err := cc.Receive(ctx, 50)
		must(t, err)
		if len(ds) == 0 {
			t.Fatalf("stalled after %d", seen)
		}
		must(t, cc.Ack(ctx, ds[len(ds)-1].Tag, true))
		seen += len(ds)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
}

func TestConnectErrors(t *testing.T) {
	t.Parallel()
	u := mustURL(t, serverURL(t))
	bad := *u
	bad.User = nil
	bad.User = url.UserPassword("guest", "wrong-password")
	cn, err := Transport.OpenConnector(&bad)
	must(t, err)
	_, err = cn.Connect(tctx(t))
	if !errors.Is(err, driver.ErrAccessRefused) {
		t.Fatalf("bad password: %v", err)
	}
	vh := *u
	vh.Path = "/no-such-vhost"
	cn, _ = Transport.OpenConnector(&vh)
	_, err = cn.Connect(tctx(t))
	if !errors.Is(err, driver.ErrAccessRefused) {
		t.Fatalf("bad vhost: %v", err)
	}
	cn, _ = Transport.OpenConnector(mustURL(t, "amqp://127.0.0.1:1/?connect_timeout=2"))
	_, err = cn.Connect(tctx(t))
	if !errors.Is(err, driver.ErrConnectionLost) {
		t.Fatalf("unreachable: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cn, _ = Transport.OpenConnector(u)
	if _, err = cn.Connect(ctx); err == nil {
		t.Fatal("connect with a cancelled ctx worked")
	}
}

func TestLoginMethodsAndPing(t *testing.T) {
	t.Parallel()
	for _, m := range []string{"PLAIN", "AMQPLAIN"} {
		c := dial(t, withQuery(t, serverURL(t), "login_method", m, "frame_max", "8192", "channel_max", "16"))
		must(t, c.Ping(tctx(t)))
		var ac *amqp.Connection
		if !c.As(&ac) || ac.Config.FrameSize != 8192 || ac.Config.ChannelMax != 16 {
			t.Fatalf("%s: tuned %+v", m, ac.Config)
		}
		ch := openChannel(t, c)
		q := declareQueue(t, ch, driver.Queue{})
		// A message bigger than the frame size spans frames.
		big := make([]byte, 50000)
		for i := range big {
			big[i] = byte('a' + i%26)
		}
		must(t, ch.Publish(tctx(t), &driver.Publishing{RoutingKey: q, Message: driver.Message{Body: big,
			Headers: map[string]any{"big": int64(1) << 50}}}))
		d, err := ch.Get(tctx(t), q, true)
		must(t, err)
		if string(d.Body) != string(big) || d.Headers["big"] != int64(1)<<50 {
			t.Fatal("big message mangled")
		}
		must(t, c.Close())
		must(t, c.Close())
		if err := c.Ping(tctx(t)); !errors.Is(err, driver.ErrClosed) {
			t.Fatalf("ping after close: %v", err)
		}
		if _, err := c.Channel(tctx(t)); !errors.Is(err, driver.ErrClosed) {
			t.Fatalf("channel after close: %v", err)
		}
	}
}

func TestConnectionLossSurfaces(t *testing.T) {
	t.Parallel()
	c, ch := setup(t)
	ctx := tctx(t)
	q := declareQueue(t, ch, driver.Queue{})
	must(t, ch.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "gone"}))
	var ac *amqp.Connection
	c.As(&ac)
	// Kill the socket under the library, as a network failure would.
	_ = ac.CloseDeadline(time.Now()) // best effort
	var err error
	for range 3 {
		if _, err = ch.Receive(ctx, 1); err != nil {
			break
		}
	}
	if !errors.Is(err, driver.ErrClosed) {
		t.Fatalf("receive: %v", err)
	}
	err = ch.Publish(ctx, &driver.Publishing{RoutingKey: q, Message: driver.Message{Body: []byte("x")}})
	if !errors.Is(err, driver.ErrConnectionLost) {
		t.Fatalf("publish on a dead connection: %v", err)
	}
	if _, err := c.Channel(ctx); !errors.Is(err, driver.ErrConnectionLost) {
		t.Fatalf("channel on a dead connection: %v", err)
	}
}
