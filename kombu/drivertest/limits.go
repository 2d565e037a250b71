package drivertest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

// The ranges every transport accepts for queue arguments, prefetch counts
// and durations (see kombu.MaxExpiry and kombu.MaxPrefetchCount).

// testQueueArgumentRanges checks that queue arguments reach the broker
// whole (a 30-day TTL does not wrap around to a negative int32) and that
// values no broker accepts are refused before any I/O, with nothing
// declared.
func testQueueArgumentRanges(e *env) {
	x := kombu.NewExchange(e.name("month.x"), kombu.Direct)
	q := kombu.NewQueue(e.name("month"), x, "k")
	q.MessageTTL = 30 * 24 * time.Hour
	q.Expires = 40 * 24 * time.Hour
	q.Arguments = map[string]any{"x-max-length-bytes": int64(5) << 30}
	q = e.declareQueue(q)
	// Redeclaring the same queue is not a conflict.
	e.declareQueue(q)
	p := e.producer(nil, &kombu.ProducerOptions{Exchange: x, RoutingKey: "k"})
	e.publish(p, "kept for a month", nil)
	e.eventuallyLen(q, 1)
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	if got := e.recvAck(c); got != "kept for a month" {
		e.t.Errorf("received %q from a queue with a 30-day TTL", got)
	}

	tooLong := kombu.MaxExpiry + time.Millisecond
	cases := []struct {
		name string
		set  func(*kombu.Queue)
	}{
		{"negative MessageTTL", func(q *kombu.Queue) { q.MessageTTL = -time.Second }},
		{"MessageTTL beyond MaxExpiry", func(q *kombu.Queue) { q.MessageTTL = tooLong }},
		{"MessageTTL under a millisecond", func(q *kombu.Queue) { q.MessageTTL = time.Microsecond }},
		{"negative Expires", func(q *kombu.Queue) { q.Expires = -time.Millisecond }},
		{"Expires beyond MaxExpiry", func(q *kombu.Queue) { q.Expires = tooLong }},
		{"MaxPriority 256", func(q *kombu.Queue) { q.MaxPriority = 256 }},
		{"negative MaxPriority", func(q *kombu.Queue) { q.MaxPriority = -1 }},
		{"negative MaxLength", func(q *kombu.Queue) { q.MaxLength = -1 }},
		{"negative MaxLengthBytes", func(q *kombu.Queue) { q.MaxLengthBytes = -1 }},
		{"x-message-ttl float", func(q *kombu.Queue) { q.Arguments = map[string]any{"x-message-ttl": 1.5} }},
		{"x-message-ttl string", func(q *kombu.Queue) { q.Arguments = map[string]any{"x-message-ttl": "100"} }},
		{"x-message-ttl negative", func(q *kombu.Queue) { q.Arguments = map[string]any{"x-message-ttl": int64(-5)} }},
		{"x-message-ttl above MaxExpiry", func(q *kombu.Queue) {
			q.Arguments = map[string]any{"x-message-ttl": tooLong.Milliseconds()}
		}},
		{"x-expires zero", func(q *kombu.Queue) { q.Arguments = map[string]any{"x-expires": 0} }},
		{"x-max-length beyond int64", func(q *kombu.Queue) { q.Arguments = map[string]any{"x-max-length": uint64(math.MaxInt64) + 1} }},
		{"x-max-priority 300", func(q *kombu.Queue) { q.Arguments = map[string]any{"x-max-priority": int32(300)} }},
	}
	_, closedCh := e.closedConnection()
	ctx, cancel := e.wait()
	defer cancel()
	for i, tc := range cases {
		x := kombu.NewExchange(e.name(fmt.Sprintf("bad%d.x", i)), kombu.Direct)
		bad := kombu.NewQueue(e.name(fmt.Sprintf("bad%d", i)), x, "k")
		tc.set(&bad)
		e.remember(bad)
		for _, ch := range []*kombu.Channel{e.ch, closedCh} {
			_, err := bad.Declare(ctx, ch)
			if !errors.Is(err, kombu.ErrInvalidArgument) {
				e.t.Errorf("declare with %s: %v, want ErrInvalidArgument", tc.name, err)
			}
		}
		// Refused before any I/O: not even the queue's exchange exists.
		e.expectNoExchange(x.Name, tc.name)
		e.expectGone(bad.Name, "after a declare with "+tc.name)
	}
}

// closedConnection returns a connection and one of its channels, both
// closed: a call that fails on them with anything but ErrClosed failed
// before any I/O.
func (e *env) closedConnection() (*kombu.Connection, *kombu.Channel) {
	e.t.Helper()
	conn := e.dial(nil)
	ch := e.channel(conn)
	if err := conn.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	return conn, ch
}

// expectNoExchange checks that no exchange called name exists.
func (e *env) expectNoExchange(name, why string) {
	e.t.Helper()
	ctx, cancel := e.wait()
	defer cancel()
	err := kombu.Exchange{Name: name, Type: kombu.Direct, Passive: true}.Declare(ctx, e.ch)
	if !errors.Is(err, kombu.ErrNotFound) {
		e.t.Errorf("exchange %q exists after %s: passive declare says %v", name, why, err)
	}
}

// testPrefetchRange checks the one prefetch rule: 0..65535, 0 meaning
// unlimited (AMQP's uint16), checked before any I/O with the same error on
// every transport.
func testPrefetchRange(e *env) {
	closed, closedCh := e.closedConnection()
	ctx, cancel := e.wait()
	defer cancel()
	for i, n := range []int{-1, -5, kombu.MaxPrefetchCount + 1, 70000} {
		for _, ch := range []*kombu.Channel{e.ch, closedCh} {
			err := ch.Qos(ctx, n)
			if !errors.Is(err, kombu.ErrInvalidArgument) || !strings.Contains(err.Error(), "prefetch count") {
				e.t.Errorf("Qos(%d): %v, want ErrInvalidArgument naming the prefetch count", n, err)
			}
		}
		q := kombu.NewQueue(e.name(fmt.Sprintf("q%d", i)), kombu.DefaultExchange, "")
		e.remember(q)
		for _, conn := range []*kombu.Connection{e.conn, closed} {
			c, err := conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: n})
			if !errors.Is(err, kombu.ErrInvalidArgument) {
				e.t.Errorf("consumer with PrefetchCount %d: %v, want ErrInvalidArgument", n, err)
			}
			if c != nil {
				_ = c.Close()
			}
		}
		e.expectGone(q.Name, fmt.Sprintf("a consumer with PrefetchCount %d was refused", n))
	}
	for _, n := range []int{0, 1, kombu.MaxPrefetchCount} {
		if err := e.ch.Qos(ctx, n); err != nil {
			e.t.Errorf("Qos(%d): %v", n, err)
		}
	}
	// The largest window works.
	q := e.simpleQueue("max")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "a", "b")
	c := e.consumer(nil, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: kombu.MaxPrefetchCount})
	if got := e.recvBodies(c, 2); fmt.Sprint(got) != "[a b]" {
		e.t.Errorf("received %q with the largest prefetch window, want [a b]", got)
	}
}

// testDoneContext checks that every operation given a context that is
// already done returns the context's error and does nothing: no message
// published, no entity declared, bound, purged or deleted, no consumer
// cancelled, no message settled.
func testDoneContext(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "kept", "ready")
	e.eventuallyLen(q, 2)
	c := e.consumer(nil, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: 1})
	m := e.recv(c)
	e.eventuallyLen(q, 1)

	done, cancel := context.WithCancel(e.ctx)
	cancel()
	check := func(what string, err error) {
		e.t.Helper()
		if !errors.Is(err, context.Canceled) {
			e.t.Errorf("%s with a done context: %v, want context.Canceled", what, err)
		}
	}
	check("Message.Ack", m.Ack(done))
	check("Message.Requeue", m.Requeue(done))
	if m.State() != kombu.Received {
		e.t.Errorf("message is %v after settling with a done context, want RECEIVED", m.State())
	}
	check("Producer.Publish", p.Publish(done, "new", &kombu.PublishOptions{RoutingKey: q.Name}))
	check("Producer.Publish with Retry", p.Publish(done, "new", &kombu.PublishOptions{RoutingKey: q.Name, Retry: true}))
	check("Producer.PublishBatch", p.PublishBatch(done, []any{"a", "b"}, &kombu.PublishOptions{RoutingKey: q.Name}))

	nx := kombu.NewExchange(e.name("new.x"), kombu.Direct)
	nq := kombu.NewQueue(e.name("new"), nx, "k")
	e.remember(nq)
	_, err := nq.Declare(done, e.ch)
	check("Queue.Declare", err)
	check("Exchange.Declare", nx.Declare(done, e.ch))
	check("Connection.MaybeDeclare", e.conn.MaybeDeclare(done, e.ch, nq))
	check("Queue.BindTo", q.BindTo(done, e.ch, kombu.Exchange{Name: "amq.direct"}, e.name("rk"), nil))
	_, err = q.Purge(done, e.ch)
	check("Queue.Purge", err)
	_, err = q.Delete(done, e.ch, false, false)
	check("Queue.Delete", err)
	_, err = q.Len(done, e.ch)
	check("Queue.Len", err)
	_, err = q.Get(done, e.ch, false, nil)
	check("Queue.Get", err)
	check("Channel.Qos", e.ch.Qos(done, 5))
	check("Channel.Recover", c.Recover(done, true))
	check("Consumer.Cancel", c.Cancel(done))
	_, err = e.conn.Channel(done)
	check("Connection.Channel", err)
	_, err = e.conn.Producer(done, nil)
	check("Connection.Producer", err)
	_, err = e.conn.Consumer(done, []kombu.Queue{q}, nil)
	check("Connection.Consumer", err)
	check("Connection.Ping", e.conn.Ping(done))

	// Nothing happened: the first message is still unacked with this
	// consumer, which still consumes; the second is still ready and alone
	// in the queue; no new entity exists.
	e.expectNoExchange(nx.Name, "a declare with a done context")
	e.expectGone(nq.Name, "after a declare with a done context")
	if n := e.queueLen(q); n != 1 {
		e.t.Errorf("queue holds %d ready messages after operations with a done context, want 1", n)
	}
	e.ack(m)
	e.sendTo(p, q.Name, "after")
	if got := e.recvBodies(c, 2); fmt.Sprint(got) != "[ready after]" {
		e.t.Errorf("received %q after operations with a done context, want [ready after]", got)
	}
	e.expectNone(c)
	e.eventuallyLen(q, 0)
}
