package drivertest

import (
	"errors"
	"strings"

	"github.com/kombu-go/kombu/kombu"
)

// portabilityCases check that the same input gives the same result on
// every transport: the same refusals, before any I/O, with the same
// error.
var portabilityCases = []testCase{
	{"InvalidNames", testInvalidNames},
}

// testInvalidNames gives every operation that takes a queue name,
// exchange name, routing key or consumer tag a name that is not UTF-8 and
// one of 256 bytes. Every transport refuses each with the error of
// driver.ValidateName (ErrInvalidArgument) before any I/O, so the
// connection lives: RabbitMQ would close it (501 FRAME_ERROR). A consumer
// started before on the same connection still receives afterwards.
func testInvalidNames(e *env) {
	q := e.simpleQueue("q")
	x := e.declareExchange(kombu.NewExchange(e.name("x"), kombu.Direct))
	before := e.consumer(e.conn, []kombu.Queue{q}, nil)
	ctx, cancel := e.wait()
	defer cancel()
	bads := []struct{ label, name, says string }{
		{"not UTF-8", "bad\xff" + e.id, "not valid UTF-8"},
		{"256 bytes", longName(e.id+".", 256), "bytes long; AMQP allows at most 255"},
	}
	for _, bad := range bads {
		check := func(what string, err error) {
			e.t.Helper()
			if !errors.Is(err, kombu.ErrInvalidArgument) || !strings.Contains(err.Error(), bad.says) {
				e.t.Errorf("%s %s: %v, want ErrInvalidArgument saying %q", what, bad.label, err, bad.says)
			}
		}
		name := bad.name
		ch := e.channel(e.conn)
		bq := kombu.NewQueue(name, kombu.DefaultExchange, "")
		bx := kombu.Exchange{Name: name, Type: kombu.Direct}
		_, err := bq.Declare(ctx, ch)
		check("queue declare", err)
		_, err = kombu.Queue{Name: name, Passive: true}.Declare(ctx, ch)
		check("passive queue declare", err)
		check("exchange declare", bx.Declare(ctx, ch))
		check("passive exchange declare", kombu.Exchange{Name: name, Type: kombu.Direct, Passive: true}.Declare(ctx, ch))
		check("bind: routing key", q.BindTo(ctx, ch, x, name, nil))
		check("bind: exchange", q.BindTo(ctx, ch, kombu.Exchange{Name: name, NoDeclare: true}, "k", nil))
		check("bind: queue", kombu.Queue{Name: name}.BindTo(ctx, ch, x, "k", nil))
		check("unbind: routing key", q.UnbindFrom(ctx, ch, x, name, nil))
		_, err = bq.Purge(ctx, ch)
		check("purge", err)
		_, err = bq.Delete(ctx, ch, false, false)
		check("queue delete", err)
		check("exchange delete", bx.Delete(ctx, ch, false))
		_, err = bq.Len(ctx, ch)
		check("len", err)
		_, err = bq.Get(ctx, ch, false, nil)
		check("get", err)
		p := e.producer(e.conn, &kombu.ProducerOptions{Exchange: x, NoDeclare: true})
		check("publish: routing key", p.Publish(ctx, "x", &kombu.PublishOptions{RoutingKey: name}))
		check("publish: exchange", p.Publish(ctx, "x", &kombu.PublishOptions{RoutingKey: "k",
			Exchange: &kombu.Exchange{Name: name, NoDeclare: true}}))
		_, err = e.conn.Consumer(ctx, []kombu.Queue{{Name: name, NoDeclare: true}}, nil)
		check("consume: queue", err)
		_, err = e.conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{NoDeclare: true, TagPrefix: name})
		check("consume: consumer tag", err)
	}

	// Nothing reached the broker: the connection, and the consumer on it,
	// live on.
	e.sendTo(e.producer(e.conn, nil), q.Name, "after")
	if got := e.recvAck(before); got != "after" {
		e.t.Errorf("received %q after the invalid names", got)
	}
}
