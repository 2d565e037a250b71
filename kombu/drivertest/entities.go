package drivertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

var entityCases = []testCase{
	{"PurgeAndLen", testPurgeAndLen},
	{"Delete", testDelete},
	{"DeleteConditions", testDeleteConditions},
	{"Get", testGet},
	{"SimpleQueue", testSimpleQueue},
	{"SimpleQueueCloseReturnsUnacked", testSimpleQueueUnacked},
	{"SimpleQueueAccept", testSimpleQueueAccept},
	{"SimpleBuffer", testSimpleBuffer},
	{"PublishDeclares", testPublishDeclares},
	{"AutoDelete", testAutoDelete},
	{"Exclusive", testExclusive},
	{"MaxLength", testMaxLength},
	{"QueueArgumentRanges", testQueueArgumentRanges},
	{"ServerNamedQueue", testServerNamedQueue},
	{"BoundEntities", testBoundEntities},
}

// testSimpleQueueAccept checks that a SimpleQueue decodes what it puts:
// its Accept list is used by GetNowait and by the blocking Get, and with
// no Accept list its own serializer is accepted too. A refused message
// would be rejected, and lost.
func testSimpleQueueAccept(e *env) {
	cases := []struct {
		name string
		opts kombu.SimpleQueueOptions
		put  *kombu.PublishOptions
	}{
		{"msgpack", kombu.SimpleQueueOptions{Serializer: "msgpack", Accept: []string{"msgpack"}}, nil},
		{"own", kombu.SimpleQueueOptions{Serializer: "msgpack"}, nil},
		{"yaml", kombu.SimpleQueueOptions{Accept: []string{"yaml"}}, &kombu.PublishOptions{Serializer: "yaml"}},
	}
	for _, tc := range cases {
		name := e.name(tc.name)
		e.remember(kombu.NewQueue(name, kombu.NewExchange(name, kombu.Direct), name))
		ctx, cancel := e.wait()
		defer cancel()
		opts := tc.opts
		sq, err := e.conn.SimpleQueue(ctx, name, &opts)
		if err != nil {
			e.t.Fatalf("simple queue %s: %v", tc.name, err)
		}
		e.t.Cleanup(func() { _ = sq.Close() })
		length := func() int {
			n, err := sq.Len(ctx)
			if err != nil {
				e.t.Fatalf("len: %v", err)
			}
			return n
		}
		if err := sq.Put(ctx, map[string]any{"n": 1}, tc.put); err != nil {
			e.t.Fatalf("put: %v", err)
		}
		e.eventually("the message in the simple queue", func() bool { return length() == 1 })
		m, err := sq.GetNowait(ctx)
		if err != nil {
			e.t.Fatalf("%s: get nowait of its own message: %v (queue now holds %d)", tc.name, err, length())
		}
		e.checkSimpleMessage(tc.name, m)
		if n := length(); n != 0 {
			e.t.Errorf("%s: %d messages left", tc.name, n)
		}
		// The blocking Get goes through a consumer with the same accept list.
		got := make(chan *kombu.Message, 1)
		go func() {
			m, err := sq.Get(ctx)
			if err != nil {
				e.t.Errorf("%s: blocking get of its own message: %v", tc.name, err)
			}
			got <- m
		}()
		time.Sleep(50 * time.Millisecond) // let Get start waiting
		if err := sq.Put(ctx, map[string]any{"n": 1}, tc.put); err != nil {
			e.t.Fatalf("put: %v", err)
		}
		if m := e.take(got, tc.name+": the blocking get"); m != nil {
			e.checkSimpleMessage(tc.name, m)
		}
		if n := length(); n != 0 {
			e.t.Errorf("%s: %d messages left after the blocking get", tc.name, n)
		}
	}
}

// checkSimpleMessage checks that m decodes to {"n": 1} and acks it.
func (e *env) checkSimpleMessage(what string, m *kombu.Message) {
	e.t.Helper()
	var v struct {
		N int `json:"n" msgpack:"n" yaml:"n"`
	}
	if err := m.Decode(&v); err != nil || v.N != 1 {
		e.t.Errorf("%s: message (content type %q) decodes to %+v, %v; want n=1", what, m.ContentType, v, err)
	}
	e.ack(m)
}

func testPurgeAndLen(e *env) {
	q := e.simpleQueue("q")
	if n := e.queueLen(q); n != 0 {
		e.t.Errorf("new queue holds %d messages", n)
	}
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "1", "2", "3", "4", "5")
	e.eventuallyLen(q, 5)
	ctx, cancel := e.wait()
	defer cancel()
	info, err := q.Declare(ctx, e.ch)
	if err != nil || info.Messages != 5 || info.Name != q.Name {
		e.t.Errorf("redeclare reports %+v, %v; want name %q, 5 messages", info, err, q.Name)
	}
	n, err := q.Purge(ctx, e.ch)
	if err != nil || n != 5 {
		e.t.Errorf("purge = %d, %v; want 5", n, err)
	}
	if n := e.queueLen(q); n != 0 {
		e.t.Errorf("after purge the queue holds %d messages", n)
	}
	if n, err := q.Purge(ctx, e.ch); err != nil || n != 0 {
		e.t.Errorf("purge of an empty queue = %d, %v; want 0", n, err)
	}
	// The queue still works after a purge.
	e.sendTo(p, q.Name, "after")
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	if got := e.recvAck(c); got != "after" {
		e.t.Errorf("received %q after purge, want \"after\"", got)
	}
	e.expectNone(c)
}

func testDelete(e *env) {
	x := e.declareExchange(kombu.NewExchange(e.name("x"), kombu.Direct))
	q := e.declareQueue(kombu.NewQueue(e.name("q"), x, "k"))
	p := e.producer(nil, &kombu.ProducerOptions{Exchange: x, RoutingKey: "k"})
	for i := range 3 {
		e.publish(p, fmt.Sprint(i), nil)
	}
	e.eventuallyLen(q, 3)
	ctx, cancel := e.wait()
	defer cancel()
	n, err := q.Delete(ctx, e.ch, false, false)
	if err != nil || n != 3 {
		e.t.Errorf("delete = %d, %v; want 3", n, err)
	}
	passive := kombu.Queue{Name: q.Name, Passive: true}
	if _, err := passive.Declare(ctx, e.channel(e.conn)); !errors.Is(err, kombu.ErrNotFound) {
		e.t.Errorf("passive declare of the deleted queue: %v, want ErrNotFound", err)
	}
	// Deleting what is gone is not an error.
	if n, err := q.Delete(ctx, e.channel(e.conn), false, false); err != nil || n != 0 {
		e.t.Errorf("second delete = %d, %v; want 0, nil", n, err)
	}
	// A redeclared queue of the same name starts empty, with its binding.
	q = e.declareQueue(q)
	if n := e.queueLen(q); n != 0 {
		e.t.Errorf("redeclared queue holds %d messages", n)
	}
	e.publish(p, "new", nil)
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	if got := e.recvAck(c); got != "new" {
		e.t.Errorf("received %q, want \"new\"", got)
	}
	// Deleting the exchange: its queue stays.
	if err := x.Delete(ctx, e.channel(e.conn), false); err != nil {
		e.t.Errorf("exchange delete: %v", err)
	}
	passiveX := x
	passiveX.Passive = true
	if err := passiveX.Declare(ctx, e.channel(e.conn)); !errors.Is(err, kombu.ErrNotFound) {
		e.t.Errorf("passive declare of the deleted exchange: %v, want ErrNotFound", err)
	}
	if _, err := passive.Declare(ctx, e.channel(e.conn)); err != nil {
		e.t.Errorf("queue after its exchange was deleted: %v", err)
	}
}

func testDeleteConditions(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "keep")
	e.eventuallyLen(q, 1)
	ctx, cancel := e.wait()
	defer cancel()
	if _, err := q.Delete(ctx, e.channel(e.conn), false, true); !errors.Is(err, kombu.ErrPreconditionFailed) {
		e.t.Errorf("delete if-empty of a queue with a message: %v, want ErrPreconditionFailed", err)
	}
	c := e.consumer(nil, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: 1})
	if _, err := q.Delete(ctx, e.channel(e.conn), true, false); !errors.Is(err, kombu.ErrPreconditionFailed) {
		e.t.Errorf("delete if-unused of a queue with a consumer: %v, want ErrPreconditionFailed", err)
	}
	if got := e.recvAck(c); got != "keep" {
		e.t.Errorf("received %q, want \"keep\"", got)
	}
	if err := c.Close(); err != nil {
		e.t.Fatalf("consumer close: %v", err)
	}
	e.eventually("the consumer to go away", func() bool {
		info, err := q.Declare(ctx, e.ch)
		return err == nil && info.Consumers == 0
	})
	if n, err := q.Delete(ctx, e.channel(e.conn), true, true); err != nil || n != 0 {
		e.t.Errorf("delete if-unused if-empty of an idle empty queue = %d, %v", n, err)
	}
	// An exchange with a binding is in use.
	x := e.declareExchange(kombu.NewExchange(e.name("x"), kombu.Direct))
	bq := e.declareQueue(kombu.NewQueue(e.name("bound"), x, "k"))
	if err := x.Delete(ctx, e.channel(e.conn), true); !errors.Is(err, kombu.ErrPreconditionFailed) {
		e.t.Errorf("delete if-unused of an exchange with a binding: %v, want ErrPreconditionFailed", err)
	}
	if err := bq.UnbindFrom(ctx, e.ch, x, "k", nil); err != nil {
		e.t.Fatalf("unbind: %v", err)
	}
	if err := x.Delete(ctx, e.channel(e.conn), true); err != nil {
		e.t.Errorf("delete if-unused of an exchange with no binding: %v", err)
	}
}

// getEventually calls Queue.Get until a message is there.
func (e *env) getEventually(q kombu.Queue, ch *kombu.Channel, noAck bool) *kombu.Message {
	e.t.Helper()
	var m *kombu.Message
	e.eventually("a message from basic.get", func() bool {
		ctx, cancel := e.wait()
		defer cancel()
		var err error
		m, err = q.Get(ctx, ch, noAck, nil)
		if err != nil && !errors.Is(err, kombu.ErrEmpty) {
			e.t.Fatalf("get: %v", err)
		}
		return err == nil
	})
	return m
}

func testGet(e *env) {
	q := e.simpleQueue("q")
	ctx, cancel := e.wait()
	defer cancel()
	if m, err := q.Get(ctx, e.ch, false, nil); !errors.Is(err, kombu.ErrEmpty) {
		e.t.Fatalf("get from an empty queue = %v, %v; want ErrEmpty", m, err)
	}
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "first")
	m := e.getEventually(q, e.ch, false)
	if string(m.Body) != "first" || m.Redelivered || m.RoutingKey != q.Name {
		e.t.Errorf("get: body %q redelivered %t routing key %q", m.Body, m.Redelivered, m.RoutingKey)
	}
	if err := m.Requeue(ctx); err != nil {
		e.t.Fatalf("requeue: %v", err)
	}
	m = e.getEventually(q, e.ch, false)
	if string(m.Body) != "first" || !m.Redelivered {
		e.t.Errorf("get after requeue: body %q redelivered %t, want \"first\", true", m.Body, m.Redelivered)
	}
	e.ack(m)
	if _, err := q.Get(ctx, e.ch, false, nil); !errors.Is(err, kombu.ErrEmpty) {
		e.t.Errorf("get after ack: %v, want ErrEmpty", err)
	}
	// no-ack: the broker forgets the message on delivery.
	e.sendTo(p, q.Name, "noack")
	ch := e.channel(e.conn)
	m = e.getEventually(q, ch, true)
	if string(m.Body) != "noack" {
		e.t.Errorf("no-ack get: body %q", m.Body)
	}
	if err := ch.Close(); err != nil {
		e.t.Fatalf("channel close: %v", err)
	}
	if n := e.queueLen(q); n != 0 {
		e.t.Errorf("a no-ack get came back on channel close: %d messages", n)
	}
	// An unacked get goes back when its channel closes.
	e.sendTo(p, q.Name, "unacked")
	ch = e.channel(e.conn)
	e.getEventually(q, ch, false)
	if err := ch.Close(); err != nil {
		e.t.Fatalf("channel close: %v", err)
	}
	m = e.getEventually(q, e.ch, false)
	if string(m.Body) != "unacked" || !m.Redelivered {
		e.t.Errorf("after channel close: body %q redelivered %t, want \"unacked\", true", m.Body, m.Redelivered)
	}
	e.ack(m)
}

func testSimpleQueue(e *env) {
	name := e.name("simple")
	e.remember(kombu.NewQueue(name, kombu.NewExchange(name, kombu.Direct), name))
	ctx, cancel := e.wait()
	defer cancel()
	sq, err := e.conn.SimpleQueue(ctx, name, nil)
	if err != nil {
		e.t.Fatalf("simple queue: %v", err)
	}
	for i := range 3 {
		if err := sq.Put(ctx, map[string]any{"i": i}, nil); err != nil {
			e.t.Fatalf("put: %v", err)
		}
	}
	e.eventually("3 messages in the simple queue", func() bool {
		n, err := sq.Len(ctx)
		return err == nil && n == 3
	})
	m, err := sq.Get(ctx)
	if err != nil {
		e.t.Fatalf("get: %v", err)
	}
	var v struct{ I int }
	if err := m.Decode(&v); err != nil || v.I != 0 || m.ContentType != "application/json" {
		e.t.Errorf("first message decodes to %+v, %v (content type %q); want i=0 JSON", v, err, m.ContentType)
	}
	if m.Properties.DeliveryMode != uint8(kombu.Persistent) {
		e.t.Errorf("simple queue message delivery mode %d, want persistent", m.Properties.DeliveryMode)
	}
	e.ack(m)
	m, err = sq.GetNowait(ctx)
	if err != nil {
		e.t.Fatalf("get nowait: %v", err)
	}
	if err := m.Decode(&v); err != nil || v.I != 1 {
		e.t.Errorf("second message decodes to %+v, %v", v, err)
	}
	e.ack(m)
	if n, err := sq.Clear(ctx); err != nil || n != 1 {
		e.t.Errorf("clear = %d, %v; want 1", n, err)
	}
	if _, err := sq.GetNowait(ctx); !errors.Is(err, kombu.ErrEmpty) {
		e.t.Errorf("get nowait of an empty simple queue: %v, want ErrEmpty", err)
	}
	short, cancelShort := context.WithTimeout(ctx, negativeWait)
	if _, err := sq.Get(short); !errors.Is(err, context.DeadlineExceeded) {
		e.t.Errorf("blocking get of an empty simple queue: %v, want context.DeadlineExceeded", err)
	}
	cancelShort()
	// A blocking Get returns a message put while it waits.
	got := make(chan *kombu.Message, 1)
	go func() {
		m, err := sq.Get(ctx)
		if err != nil {
			e.t.Errorf("blocking get: %v", err)
		}
		got <- m
	}()
	if err := sq.Put(ctx, "late", nil); err != nil {
		e.t.Fatalf("put: %v", err)
	}
	select {
	case m := <-got:
		if m != nil {
			if string(m.Body) != "late" {
				e.t.Errorf("blocking get returned %q, want \"late\"", m.Body)
			}
			e.ack(m)
		}
	case <-ctx.Done():
		e.t.Fatalf("blocking get did not return")
	}
	if n, err := sq.Len(ctx); err != nil || n != 0 {
		e.t.Errorf("len at the end = %d, %v; want 0", n, err)
	}
	if err := sq.Close(); err != nil {
		e.t.Errorf("close: %v", err)
	}
	if err := sq.Close(); err != nil {
		e.t.Errorf("second close: %v", err)
	}
	if err := sq.Put(ctx, "closed", nil); !errors.Is(err, kombu.ErrClosed) {
		e.t.Errorf("put after close: %v, want ErrClosed", err)
	}
	if _, err := sq.Get(ctx); !errors.Is(err, kombu.ErrClosed) {
		e.t.Errorf("get after close: %v, want ErrClosed", err)
	}
	if _, err := sq.GetNowait(ctx); !errors.Is(err, kombu.ErrClosed) {
		e.t.Errorf("get nowait after close: %v, want ErrClosed", err)
	}
}

func testSimpleQueueUnacked(e *env) {
	name := e.name("simple")
	e.remember(kombu.NewQueue(name, kombu.NewExchange(name, kombu.Direct), name))
	ctx, cancel := e.wait()
	defer cancel()
	sq, err := e.conn.SimpleQueue(ctx, name, nil)
	if err != nil {
		e.t.Fatalf("simple queue: %v", err)
	}
	if err := sq.Put(ctx, "held", nil); err != nil {
		e.t.Fatalf("put: %v", err)
	}
	if _, err := sq.Get(ctx); err != nil {
		e.t.Fatalf("get: %v", err)
	}
	if err := sq.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	other, err := e.dial(nil).SimpleQueue(ctx, name, nil)
	if err != nil {
		e.t.Fatalf("simple queue on a second connection: %v", err)
	}
	defer other.Close()
	m, err := other.Get(ctx)
	if err != nil {
		e.t.Fatalf("get: %v", err)
	}
	if string(m.Body) != "held" || !m.Redelivered {
		e.t.Errorf("after close: body %q redelivered %t, want \"held\", true", m.Body, m.Redelivered)
	}
	e.ack(m)
}

func testSimpleBuffer(e *env) {
	name := e.name("buffer")
	e.remember(kombu.Queue{Name: name, Exchange: kombu.Exchange{Name: name}})
	ctx, cancel := e.wait()
	defer cancel()
	sb, err := e.conn.SimpleBuffer(ctx, name, nil)
	if err != nil {
		e.t.Fatalf("simple buffer: %v", err)
	}
	defer sb.Close()
	for _, s := range []string{"a", "b", "c"} {
		if err := sb.Put(ctx, s, nil); err != nil {
			e.t.Fatalf("put: %v", err)
		}
	}
	var got []string
	for range 3 {
		m, err := sb.Get(ctx)
		if err != nil {
			e.t.Fatalf("get: %v", err)
		}
		if m.Properties.DeliveryMode != uint8(kombu.Transient) {
			e.t.Errorf("buffer message delivery mode %d, want transient", m.Properties.DeliveryMode)
		}
		got = append(got, string(m.Body))
	}
	if fmt.Sprint(got) != "[a b c]" {
		e.t.Errorf("buffer returned %q, want [a b c]", got)
	}
	// Messages of a buffer are not acked: nothing comes back.
	short, cancelShort := context.WithTimeout(ctx, negativeWait)
	defer cancelShort()
	if m, err := sb.Get(short); !errors.Is(err, context.DeadlineExceeded) {
		e.t.Errorf("get from the drained buffer = %v, %v; want context.DeadlineExceeded", m, err)
	}
}

// testPublishDeclares checks PublishOptions.Declare: the entities are
// declared (once per connection) before the message is sent, and again
// after the queue was deleted through the same Queue value.
func testPublishDeclares(e *env) {
	x := kombu.NewExchange(e.name("x"), kombu.Direct)
	q := kombu.NewQueue(e.name("q"), x, "k")
	e.remember(q)
	p := e.producer(nil, &kombu.ProducerOptions{Exchange: x, RoutingKey: "k"})
	e.publish(p, "first", &kombu.PublishOptions{Declare: []kombu.Declarable{q}})
	e.eventuallyLen(q, 1)
	ctx, cancel := e.wait()
	defer cancel()
	if n, err := q.Delete(ctx, e.ch, false, false); err != nil || n != 1 {
		e.t.Fatalf("delete = %d, %v; want 1", n, err)
	}
	e.publish(p, "second", &kombu.PublishOptions{Declare: []kombu.Declarable{q}})
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	if got := e.recvAck(c); got != "second" {
		e.t.Errorf("received %q, want \"second\"", got)
	}
	e.expectNone(c)
}

// expectGone checks that a passive declare of name says ErrNotFound,
// waiting a little for brokers that delete asynchronously.
func (e *env) expectGone(name, why string) {
	e.t.Helper()
	var last error
	deadline := time.Now().Add(e.s.h.Timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := e.wait()
		_, last = kombu.Queue{Name: name, Passive: true}.Declare(ctx, e.channel(e.conn))
		cancel()
		if errors.Is(last, kombu.ErrNotFound) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Errorf("queue %q still exists %s: passive declare says %v", name, why, last)
}

func testAutoDelete(e *env) {
	q := kombu.Queue{Name: e.name("q"), AutoDelete: true}
	q = e.declareQueue(q)
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "x")
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	if got := e.recvAck(c); got != "x" {
		e.t.Errorf("received %q", got)
	}
	// Declared without consumers, it stays; losing its last consumer
	// deletes it.
	if n := e.queueLen(q); n != 0 {
		e.t.Errorf("queue holds %d messages", n)
	}
	if err := c.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	e.expectGone(q.Name, "after its last consumer went away")
}

func testExclusive(e *env) {
	conn := e.dial(nil)
	ch := e.channel(conn)
	q := kombu.Queue{Name: e.name("q"), Exclusive: true}
	e.remember(q)
	ctx, cancel := e.wait()
	defer cancel()
	if _, err := q.Declare(ctx, ch); err != nil {
		e.t.Fatalf("declare: %v", err)
	}
	if _, err := q.Declare(ctx, e.channel(conn)); err != nil {
		e.t.Errorf("redeclare on the owning connection: %v", err)
	}
	if e.s.features.SharedState {
		if _, err := q.Declare(ctx, e.channel(e.conn)); !errors.Is(err, kombu.ErrAccessRefused) {
			e.t.Errorf("declare of another connection's exclusive queue: %v, want ErrAccessRefused", err)
		}
	}
	if err := conn.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	e.expectGone(q.Name, "after its connection closed")
}

func testMaxLength(e *env) {
	e.require(e.s.features.QueueLimits, "QueueLimits")
	q := kombu.NewQueue(e.name("q"), kombu.DefaultExchange, "")
	q.MaxLength = 2
	q = e.declareQueue(q)
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "1", "2", "3")
	e.eventuallyLen(q, 2)
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	// The default overflow drops from the head.
	got := e.recvBodies(c, 2)
	if fmt.Sprint(got) != "[2 3]" {
		e.t.Errorf("received %q, want [2 3]", got)
	}
	e.expectNone(c)
}

func testServerNamedQueue(e *env) {
	x := e.declareExchange(kombu.NewExchange(e.name("x"), kombu.Direct))
	conn := e.dial(nil)
	c := e.consumer(conn, []kombu.Queue{{Exchange: x, RoutingKey: "k", Exclusive: true}}, nil)
	qs := c.Queues()
	if len(qs) != 1 || !strings.HasPrefix(qs[0].Name, "amq.gen-") || len(qs[0].Name) > 255 {
		e.t.Fatalf("server-named queue %+v, want a name starting with amq.gen-", qs)
	}
	p := e.producer(nil, &kombu.ProducerOptions{Exchange: x, RoutingKey: "k"})
	e.publish(p, "to the generated queue", nil)
	if got := e.recvAck(c); got != "to the generated queue" {
		e.t.Errorf("received %q", got)
	}
	// Exclusive: it goes away with its connection.
	if err := conn.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	e.expectGone(qs[0].Name, "after the connection that declared it closed")
}

// testBoundEntities checks entities bound to a channel with Bind, and
// ErrNotBound for unbound ones.
func testBoundEntities(e *env) {
	ctx, cancel := e.wait()
	defer cancel()
	x := kombu.NewExchange(e.name("x"), kombu.Direct)
	q := kombu.NewQueue(e.name("q"), x, "k")
	if err := x.Declare(ctx, nil); !errors.Is(err, kombu.ErrNotBound) {
		e.t.Errorf("declare of an unbound exchange: %v, want ErrNotBound", err)
	}
	if _, err := q.Len(ctx, nil); !errors.Is(err, kombu.ErrNotBound) {
		e.t.Errorf("len of an unbound queue: %v, want ErrNotBound", err)
	}
	e.remember(q)
	bx, bq := x.Bind(e.ch), q.Bind(e.ch)
	if err := bx.Declare(ctx, nil); err != nil {
		e.t.Fatalf("declare bound exchange: %v", err)
	}
	if _, err := bq.Declare(ctx, nil); err != nil {
		e.t.Fatalf("declare bound queue: %v", err)
	}
	p := e.producer(nil, &kombu.ProducerOptions{Exchange: x, RoutingKey: "k"})
	e.publish(p, "x", nil)
	e.eventually("the message in the bound queue", func() bool {
		n, err := bq.Len(ctx, nil)
		return err == nil && n == 1
	})
	if n, err := bq.Purge(ctx, nil); err != nil || n != 1 {
		e.t.Errorf("purge of the bound queue = %d, %v; want 1", n, err)
	}
}
