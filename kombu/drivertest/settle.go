package drivertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
)

var settlementCases = []testCase{
	{"AckRemoves", testAckRemoves},
	{"RejectDrops", testRejectDrops},
	{"RequeueRedelivers", testRequeueRedelivers},
	{"DoubleSettle", testDoubleSettle},
	{"ConcurrentSettle", testConcurrentSettle},
	{"AckAfterChannelClose", testAckAfterChannelClose},
	{"AckAfterReconnect", testAckAfterReconnect},
	{"AckMultiple", testAckMultiple},
	{"UnknownDeliveryTag", testUnknownDeliveryTag},
	{"Recover", testRecover},
	{"RecoverInOrder", func(e *env) { testRequeueOrder(e, "recover") }},
	{"ExtendLease", testExtendLease},
	{"NoAck", testNoAck},
}

var prefetchCases = []testCase{
	{"Limit", testPrefetchLimit},
	{"QosRaised", testQosRaised},
	{"BoundsConsume", testPrefetchBoundsConsume},
	{"FairAcrossQueues", testFairAcrossQueues},
	{"Range", testPrefetchRange},
}

var priorityCases = []testCase{
	{"Order", testPriorityOrder},
}

func testAckRemoves(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "m")
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	m := e.recv(c)
	if string(m.Body) != "m" || m.Redelivered {
		e.t.Errorf("first delivery: body %q redelivered %t, want \"m\", false", m.Body, m.Redelivered)
	}
	if m.State() != kombu.Received {
		e.t.Errorf("state before ack = %v, want RECEIVED", m.State())
	}
	e.ack(m)
	if m.State() != kombu.Acked || !m.Acknowledged() {
		e.t.Errorf("state after ack = %v, want ACK", m.State())
	}
	if err := c.Close(); err != nil {
		e.t.Fatalf("consumer close: %v", err)
	}
	// An acked message never comes back, even when its channel closes.
	e.eventuallyLen(q, 0)
	e.expectNone(e.consumer(e.dial(nil), []kombu.Queue{q}, nil))
}

func testRejectDrops(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "m", "next")
	c := e.consumer(nil, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: 1})
	m := e.recv(c)
	ctx, cancel := e.wait()
	defer cancel()
	if err := m.Reject(ctx); err != nil {
		e.t.Fatalf("reject: %v", err)
	}
	if m.State() != kombu.Rejected {
		e.t.Errorf("state after reject = %v, want REJECTED", m.State())
	}
	if got := e.recvAck(c); got != "next" {
		e.t.Errorf("after reject received %q, want \"next\"", got)
	}
	if err := c.Close(); err != nil {
		e.t.Fatalf("consumer close: %v", err)
	}
	e.eventuallyLen(q, 0)
	e.expectNone(e.consumer(e.dial(nil), []kombu.Queue{q}, nil))
}

func testRequeueRedelivers(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "again")
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	m := e.recv(c)
	if m.Redelivered {
		e.t.Errorf("first delivery has Redelivered set")
	}
	ctx, cancel := e.wait()
	defer cancel()
	if err := m.Requeue(ctx); err != nil {
		e.t.Fatalf("requeue: %v", err)
	}
	if m.State() != kombu.Requeued {
		e.t.Errorf("state after requeue = %v, want REQUEUED", m.State())
	}
	m2 := e.recv(c)
	if string(m2.Body) != "again" || !m2.Redelivered {
		e.t.Errorf("second delivery: body %q redelivered %t, want \"again\", true", m2.Body, m2.Redelivered)
	}
	e.ack(m2)
	e.expectNone(c)
}

type settleOp struct {
	name  string
	state kombu.MessageState
	do    func(*kombu.Message, context.Context) error
}

var (
	opAck     = settleOp{"ack", kombu.Acked, (*kombu.Message).Ack}
	opReject  = settleOp{"reject", kombu.Rejected, (*kombu.Message).Reject}
	opRequeue = settleOp{"requeue", kombu.Requeued, (*kombu.Message).Requeue}
)

func testDoubleSettle(e *env) {
	combos := [][2]settleOp{
		{opAck, opAck}, {opAck, opReject}, {opAck, opRequeue},
		{opReject, opAck}, {opReject, opRequeue},
		{opRequeue, opAck}, {opRequeue, opRequeue},
	}
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	for i := range combos {
		e.sendTo(p, q.Name, fmt.Sprint(i))
	}
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	msgs := make([]*kombu.Message, len(combos))
	for range combos {
		m := e.recv(c)
		var i int
		if _, err := fmt.Sscan(string(m.Body), &i); err != nil || i < 0 || i >= len(combos) || msgs[i] != nil {
			e.t.Fatalf("unexpected message %q", m.Body)
		}
		msgs[i] = m
	}
	ctx, cancel := e.wait()
	defer cancel()
	var requeued []string
	for i, cb := range combos {
		m := msgs[i]
		if err := cb[0].do(m, ctx); err != nil {
			e.t.Fatalf("%s: %v", cb[0].name, err)
		}
		err := cb[1].do(m, ctx)
		if !errors.Is(err, kombu.ErrAlreadyAcknowledged) {
			e.t.Errorf("%s after %s: %v, want ErrAlreadyAcknowledged", cb[1].name, cb[0].name, err)
		}
		if m.State() != cb[0].state {
			e.t.Errorf("state after %s then %s = %v, want %v", cb[0].name, cb[1].name, m.State(), cb[0].state)
		}
		if cb[0].name == opRequeue.name {
			requeued = append(requeued, string(m.Body))
		}
	}
	// Only the requeued messages come back, once each.
	var again []string
	for range requeued {
		m := e.recv(c)
		if !m.Redelivered {
			e.t.Errorf("requeued message %q delivered with Redelivered unset", m.Body)
		}
		again = append(again, string(m.Body))
		e.ack(m)
	}
	slices.Sort(again)
	if !slices.Equal(again, requeued) {
		e.t.Errorf("redelivered %q, want %q", again, requeued)
	}
	e.expectNone(c)
}

func testAckAfterChannelClose(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "orphan")
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	m := e.recv(c)
	if err := c.Close(); err != nil {
		e.t.Fatalf("consumer close: %v", err)
	}
	ctx, cancel := e.wait()
	defer cancel()
	for _, op := range []settleOp{opAck, opReject, opRequeue} {
		if err := op.do(m, ctx); !errors.Is(err, kombu.ErrClosed) {
			e.t.Errorf("%s after the channel closed: %v, want ErrClosed", op.name, err)
		}
	}
	// The connection is still usable, and the message came back.
	c2 := e.consumer(nil, []kombu.Queue{q}, nil)
	m2 := e.recv(c2)
	if string(m2.Body) != "orphan" || !m2.Redelivered {
		e.t.Errorf("after channel close: body %q redelivered %t, want \"orphan\", true", m2.Body, m2.Redelivered)
	}
	e.ack(m2)
	e.sendTo(p, q.Name, "fresh")
	if got := e.recvAck(c2); got != "fresh" {
		e.t.Errorf("received %q, want \"fresh\"", got)
	}
	e.expectNone(c2)
}

func testAckAfterReconnect(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "before")
	conn := e.dial(nil)
	c := e.consumer(conn, []kombu.Queue{q}, nil)
	m := e.recv(c)
	ctx, cancel := e.wait()
	defer cancel()
	if err := conn.Reconnect(ctx, false); err != nil {
		e.t.Fatalf("reconnect: %v", err)
	}
	if err := m.Ack(ctx); err == nil {
		e.t.Errorf("ack of a delivery from before the reconnect succeeded")
	} else if errors.Is(err, kombu.ErrAlreadyAcknowledged) {
		e.t.Errorf("ack after reconnect: %v, want a channel error", err)
	}
	c2 := e.consumer(conn, []kombu.Queue{q}, nil)
	m2 := e.recv(c2)
	if string(m2.Body) != "before" || !m2.Redelivered {
		e.t.Errorf("after reconnect: body %q redelivered %t, want \"before\", true", m2.Body, m2.Redelivered)
	}
	e.ack(m2)
	e.expectNone(c2)
}

func testAckMultiple(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "1", "2", "3", "4")
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	var msgs []*kombu.Message
	for range 4 {
		msgs = append(msgs, e.recv(c))
	}
	sort.Slice(msgs, func(i, j int) bool { return msgs[i].DeliveryTag < msgs[j].DeliveryTag })
	ctx, cancel := e.wait()
	defer cancel()
	if err := msgs[2].AckMultiple(ctx); err != nil {
		e.t.Fatalf("ack multiple: %v", err)
	}
	if err := msgs[3].Requeue(ctx); err != nil {
		e.t.Fatalf("requeue: %v", err)
	}
	m := e.recv(c)
	if string(m.Body) != string(msgs[3].Body) || !m.Redelivered {
		e.t.Errorf("after multiple ack of the first three, received %q (redelivered %t), want only %q", m.Body, m.Redelivered, msgs[3].Body)
	}
	e.ack(m)
	if err := c.Close(); err != nil {
		e.t.Fatalf("consumer close: %v", err)
	}
	e.eventuallyLen(q, 0)
}

func testPrefetchLimit(e *env) {
	const prefetch = 3
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "0", "1", "2", "3", "4")
	c := e.consumer(nil, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: prefetch})
	var held []*kombu.Message
	for range prefetch {
		held = append(held, e.recv(c))
	}
	// A slow consumer holding prefetch unacked messages gets no more.
	e.expectNone(c)
	e.eventuallyLen(q, 5-prefetch)
	e.ack(held[0])
	m := e.recv(c)
	held = append(held[1:], m)
	e.expectNone(c)
	for _, m := range held {
		e.ack(m)
	}
	last := e.recvAck(c)
	var got []string
	for _, m := range held {
		got = append(got, string(m.Body))
	}
	got = append(got, last)
	slices.Sort(got)
	if want := []string{"1", "2", "3", "4"}; !slices.Equal(got, want) {
		e.t.Errorf("received %q after the first, want %q", got, want)
	}
	e.expectNone(c)
}

// priorityLevel maps a message priority to the level a transport with
// the given distinct levels serves it at: the largest level not above it.
func priorityLevel(levels []int, p int) int {
	if len(levels) == 0 {
		return p
	}
	lv := slices.Sorted(slices.Values(levels))
	out := lv[0]
	for _, l := range lv {
		if l <= p {
			out = l
		}
	}
	return out
}

func testPriorityOrder(e *env) {
	order := e.s.features.Priority
	e.require(order != driver.PriorityNone, "Priority")
	q := kombu.NewQueue(e.name("q"), kombu.DefaultExchange, "")
	q.MaxPriority = 10
	q = e.declareQueue(q)
	prios := []int{3, 7, 0, 9, 1, 5, 8, 2, 6, 4, 5, 9, 0}
	type sent struct {
		body  string
		level int
		seq   int
	}
	var want []sent
	p := e.producer(nil, nil)
	for i, pr := range prios {
		body := fmt.Sprintf("p%d-%d", pr, i)
		e.publish(p, body, &kombu.PublishOptions{RoutingKey: q.Name, Priority: uint8(pr)})
		want = append(want, sent{body, priorityLevel(e.s.features.PriorityLevels, pr), i})
	}
	e.eventuallyLen(q, len(prios))
	sort.SliceStable(want, func(i, j int) bool {
		if order == driver.PriorityLowFirst {
			return want[i].level < want[j].level
		}
		return want[i].level > want[j].level
	})
	c := e.consumer(nil, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: 1})
	got := e.recvBodies(c, len(prios))
	wantBodies := make([]string, len(want))
	for i, w := range want {
		wantBodies[i] = w.body
	}
	if !slices.Equal(got, wantBodies) {
		e.t.Errorf("consumed in order %q, want %q (priority order %v, levels %v)", got, wantBodies, order, e.s.features.PriorityLevels)
	}
}

// testUnknownDeliveryTag is B10's protocol misuse below the Message API:
// settling a tag the channel never handed out is an error, and the
// channel stays usable.
func testUnknownDeliveryTag(e *env) {
	q := e.simpleQueue("q")
	ch := e.channel(e.conn)
	ctx, cancel := e.wait()
	defer cancel()
	const bogus = 1 << 40
	if err := ch.Driver().Ack(ctx, bogus, false); !errors.Is(err, kombu.ErrUnknownDeliveryTag) {
		e.t.Errorf("ack of an unknown tag: %v, want ErrUnknownDeliveryTag", err)
	}
	if err := ch.Driver().Reject(ctx, bogus, true); !errors.Is(err, kombu.ErrUnknownDeliveryTag) {
		e.t.Errorf("reject of an unknown tag: %v, want ErrUnknownDeliveryTag", err)
	}
	p, err := kombu.NewProducer(ctx, ch, nil)
	if err != nil {
		e.t.Fatalf("producer on the channel: %v", err)
	}
	e.sendTo(p, q.Name, "still usable")
	m := e.getEventually(q, ch, false)
	if string(m.Body) != "still usable" {
		e.t.Errorf("get returned %q", m.Body)
	}
	e.ack(m)
}

func testRecover(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "a", "b")
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	first := e.recvUnacked(c, 2)
	ctx, cancel := e.wait()
	defer cancel()
	if err := c.Recover(ctx, true); err != nil {
		e.t.Fatalf("recover: %v", err)
	}
	var again []string
	for range 2 {
		m := e.recv(c)
		if !m.Redelivered {
			e.t.Errorf("message %q recovered without Redelivered", m.Body)
		}
		again = append(again, string(m.Body))
		e.ack(m)
	}
	slices.Sort(first)
	slices.Sort(again)
	if !slices.Equal(first, again) {
		e.t.Errorf("recovered %q, want %q", again, first)
	}
	e.expectNone(c)
}

func testExtendLease(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "leased")
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	m := e.recv(c)
	ctx, cancel := e.wait()
	defer cancel()
	err := m.ExtendLease(ctx, 30*time.Second)
	if e.s.features.Leases {
		if err != nil {
			e.t.Errorf("extend lease: %v", err)
		}
	} else if !errors.Is(err, kombu.ErrNotSupported) {
		e.t.Errorf("extend lease on a transport without Features.Leases: %v, want ErrNotSupported", err)
	}
	e.ack(m)
}

// testConcurrentSettle races acks, rejects and requeues of one message:
// exactly one wins, the others get ErrAlreadyAcknowledged.
func testConcurrentSettle(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "contended")
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	m := e.recv(c)
	ops := []settleOp{opAck, opReject, opRequeue, opAck, opReject, opRequeue, opAck, opAck}
	errs := make([]error, len(ops))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, op := range ops {
		wg.Go(func() {
			<-start
			errs[i] = op.do(m, e.ctx)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			e.t.Errorf("both %s and %s settled the message", ops[winner].name, ops[i].name)
		case err == nil:
			winner = i
		case !errors.Is(err, kombu.ErrAlreadyAcknowledged):
			e.t.Errorf("losing %s: %v, want ErrAlreadyAcknowledged", ops[i].name, err)
		}
	}
	if winner < 0 {
		e.t.Fatalf("no settle succeeded")
	}
	if m.State() != ops[winner].state {
		e.t.Errorf("state %v after %s won", m.State(), ops[winner].name)
	}
	if ops[winner].name == opRequeue.name {
		again := e.recv(c)
		if !again.Redelivered {
			e.t.Errorf("requeued message not marked redelivered")
		}
		e.ack(again)
	}
	e.expectNone(c)
}

// testQosRaised checks that a prefetch limit raised (or removed) while a
// consumer waits at it lets more messages out at once.
func testQosRaised(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "0", "1", "2")
	c := e.consumer(nil, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: 1})
	held := []*kombu.Message{e.recv(c)}
	e.expectNone(c)
	ctx, cancel := e.wait()
	defer cancel()
	if err := c.Qos(ctx, 2); err != nil {
		e.t.Fatalf("qos: %v", err)
	}
	held = append(held, e.recv(c))
	e.expectNone(c)
	if err := c.Qos(ctx, 0); err != nil { // unlimited
		e.t.Fatalf("qos: %v", err)
	}
	held = append(held, e.recv(c))
	var got []string
	for _, m := range held {
		got = append(got, string(m.Body))
		e.ack(m)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"0", "1", "2"}) {
		e.t.Errorf("received %q", got)
	}
}

// testPrefetchBoundsConsume checks that Consume runs no more handlers
// at once than the prefetch count lets messages out, whatever its
// Concurrency.
func testPrefetchBoundsConsume(e *env) {
	const prefetch = 2
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	for i := range 6 {
		e.sendTo(p, q.Name, fmt.Sprint(i))
	}
	c := e.consumer(nil, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: prefetch, Concurrency: 4})
	var active, maxActive, handled atomic.Int32
	gate := make(chan struct{})
	stop := e.consume(c, func(ctx context.Context, m *kombu.Message) error {
		n := active.Add(1)
		for old := maxActive.Load(); n > old && !maxActive.CompareAndSwap(old, n); old = maxActive.Load() {
		}
		select {
		case <-gate:
		case <-ctx.Done():
		}
		active.Add(-1)
		handled.Add(1)
		return nil
	})
	e.eventually("the handlers to fill the prefetch window", func() bool { return active.Load() == prefetch })
	time.Sleep(negativeWait)
	if n := maxActive.Load(); n != prefetch {
		e.t.Errorf("%d handlers ran at once with prefetch %d", n, prefetch)
	}
	close(gate)
	e.eventually("every message to be handled", func() bool { return handled.Load() == 6 })
	stop()
	if n := maxActive.Load(); n > prefetch {
		e.t.Errorf("%d handlers ran at once with prefetch %d", n, prefetch)
	}
}

// testNoAck checks no-ack consumers: the broker forgets messages on
// delivery, settling them is a no-op, and nothing comes back on close.
func testNoAck(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "0", "1", "2")
	c := e.consumer(nil, []kombu.Queue{q}, &kombu.ConsumerOptions{NoAck: true})
	got := e.recvBodies(c, 3) // acks are no-ops
	if fmt.Sprint(got) != "[0 1 2]" {
		e.t.Errorf("received %q, want [0 1 2]", got)
	}
	e.sendTo(p, q.Name, "3")
	m := e.recv(c)
	ctx, cancel := e.wait()
	defer cancel()
	if err := m.Requeue(ctx); err != nil || m.State() != kombu.Requeued {
		e.t.Errorf("requeue of a no-ack message = %v, state %v", err, m.State())
	}
	if err := c.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	e.eventuallyLen(q, 0)
	e.expectNone(e.consumer(nil, []kombu.Queue{q}, nil))
}

// testFairAcrossQueues checks that a consumer of several busy queues is
// served from all of them (kombu's round-robin cycle), not from the first
// until it is empty.
func testFairAcrossQueues(e *env) {
	a, b := e.simpleQueue("a"), e.simpleQueue("b")
	p := e.producer(nil, nil)
	const per = 60
	bodies := make([]any, per)
	for _, q := range []kombu.Queue{a, b} {
		for i := range bodies {
			bodies[i] = q.Name
		}
		ctx, cancel := e.wait()
		if err := p.PublishBatch(ctx, bodies, &kombu.PublishOptions{RoutingKey: q.Name}); err != nil {
			cancel()
			e.t.Fatalf("publish to %s: %v", q.Name, err)
		}
		cancel()
	}
	c := e.consumer(nil, []kombu.Queue{a, b}, &kombu.ConsumerOptions{PrefetchCount: 10})
	counts := map[string]int{}
	for _, body := range e.recvBodies(c, per) {
		counts[body]++
	}
	if counts[a.Name] < per/4 || counts[b.Name] < per/4 {
		e.t.Errorf("first %d deliveries from two full queues: %d from a, %d from b; want both served", per, counts[a.Name], counts[b.Name])
	}
}
