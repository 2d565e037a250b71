package drivertest

import (
	"time"

	"github.com/kombu-go/kombu/kombu"
)

var ttlCases = []testCase{
	{"MessageExpiration", testMessageExpiration},
	{"QueueMessageTTL", testQueueMessageTTL},
	{"DeadLetterOnReject", testDeadLetter},
	{"DeadLetterOnExpiry", testDeadLetterExpiry},
}

// expiryWait is how long the TTL tests let a 100-200 ms TTL pass.
const expiryWait = 600 * time.Millisecond

func testMessageExpiration(e *env) {
	e.require(e.s.features.TTL, "TTL")
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.publish(p, "short", &kombu.PublishOptions{RoutingKey: q.Name, Expiration: 100 * time.Millisecond})
	e.publish(p, "long", &kombu.PublishOptions{RoutingKey: q.Name, Expiration: time.Hour})
	e.publish(p, "none", &kombu.PublishOptions{RoutingKey: q.Name})
	time.Sleep(expiryWait)
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	e.collect(c, "queue with an expired message", []string{"long", "none"})
	e.expectNone(c)
}

func testQueueMessageTTL(e *env) {
	e.require(e.s.features.TTL, "TTL")
	// Both queues are bound with the same key; only one has a TTL.
	x := e.declareExchange(kombu.NewExchange(e.name("x"), kombu.Direct))
	short := kombu.NewQueue(e.name("ttl"), x, "k")
	short.MessageTTL = 200 * time.Millisecond
	short = e.declareQueue(short)
	plain := e.declareQueue(kombu.NewQueue(e.name("plain"), x, "k"))
	p := e.producer(nil, &kombu.ProducerOptions{Exchange: x, RoutingKey: "k"})
	// The shorter of the queue's and the message's TTL applies.
	e.publish(p, "m", &kombu.PublishOptions{Expiration: time.Hour})
	// Nothing consumes for longer than the queue's TTL.
	time.Sleep(expiryWait)
	cs := e.consumer(nil, []kombu.Queue{short}, nil)
	cp := e.consumer(nil, []kombu.Queue{plain}, nil)
	e.collect(cp, "queue without a TTL", []string{"m"})
	e.expectNoneAll(cs, cp)
}

func testDeadLetter(e *env) {
	e.require(e.s.features.TTL, "TTL")
	dlx := e.declareExchange(kombu.NewExchange(e.name("dlx"), kombu.Fanout))
	dlq := e.declareQueue(kombu.NewQueue(e.name("dlq"), dlx, ""))
	q := kombu.NewQueue(e.name("q"), kombu.DefaultExchange, "")
	q.Arguments = map[string]any{"x-dead-letter-exchange": dlx.Name}
	q = e.declareQueue(q)
	cd := e.consumer(nil, []kombu.Queue{dlq}, nil)
	p := e.producer(nil, nil)
	e.subscribe(p, dlx, cd)
	e.sendTo(p, q.Name, "requeued", "doomed")
	c := e.consumer(nil, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: 1})
	ctx, cancel := e.wait()
	defer cancel()
	m := e.recv(c)
	if err := m.Requeue(ctx); err != nil { // requeue does not dead-letter
		e.t.Fatalf("requeue: %v", err)
	}
	for range 2 {
		m := e.recv(c)
		if string(m.Body) == "doomed" {
			if err := m.Reject(ctx); err != nil {
				e.t.Fatalf("reject: %v", err)
			}
			continue
		}
		e.ack(m)
	}
	d := e.recv(cd)
	if string(d.Body) != "doomed" {
		e.t.Errorf("dead-lettered %q, want \"doomed\"", d.Body)
	}
	if r := d.Headers["x-first-death-reason"]; r != "rejected" {
		e.t.Errorf("x-first-death-reason = %#v, want \"rejected\"", r)
	}
	if dq := d.Headers["x-first-death-queue"]; dq != q.Name {
		e.t.Errorf("x-first-death-queue = %#v, want %q", dq, q.Name)
	}
	e.ack(d)
	e.expectNoneAll(c, cd)
	e.eventuallyLen(q, 0)
}

// testDeadLetterExpiry checks that an expired message goes to the queue's
// dead-letter exchange, with x-dead-letter-routing-key as its new key.
func testDeadLetterExpiry(e *env) {
	e.require(e.s.features.TTL, "TTL")
	dlx := e.declareExchange(kombu.NewExchange(e.name("dlx"), kombu.Direct))
	dlq := e.declareQueue(kombu.NewQueue(e.name("dlq"), dlx, "dead"))
	q := kombu.NewQueue(e.name("q"), kombu.DefaultExchange, "")
	q.Arguments = map[string]any{"x-dead-letter-exchange": dlx.Name, "x-dead-letter-routing-key": "dead"}
	q = e.declareQueue(q)
	p := e.producer(nil, nil)
	e.publish(p, "expiring", &kombu.PublishOptions{RoutingKey: q.Name, Expiration: 100 * time.Millisecond})
	time.Sleep(expiryWait)
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	e.expectNone(c) // nothing to deliver: it expired (and a lazy broker finds out now)
	cd := e.consumer(nil, []kombu.Queue{dlq}, nil)
	d := e.recv(cd)
	if string(d.Body) != "expiring" || d.RoutingKey != "dead" {
		e.t.Errorf("dead-lettered %q with routing key %q, want \"expiring\", \"dead\"", d.Body, d.RoutingKey)
	}
	if r := d.Headers["x-first-death-reason"]; r != "expired" {
		e.t.Errorf("x-first-death-reason = %#v, want \"expired\"", r)
	}
	if d.Properties.Expiration != "" {
		e.t.Errorf("dead-lettered message keeps expiration %q; RabbitMQ removes it", d.Properties.Expiration)
	}
	e.ack(d)
	e.expectNone(cd)
}
