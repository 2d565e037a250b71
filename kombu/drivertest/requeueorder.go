package drivertest

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

// requeueOrderCount is how many unacked messages the requeue order cases
// hand back at once; requeueOrderBehind more wait in the queue behind them,
// never delivered.
const requeueOrderCount, requeueOrderBehind = 10, 5

// testRequeueOrder delivers requeueOrderCount messages without acking
// them while requeueOrderBehind more wait behind them, hands the unacked
// ones back together (how: "close" closes their channel, "recover" calls
// Recover) and consumes everything. Every message comes back once, the
// requeued ones marked redelivered and the others not. With
// Features.RequeueOrder the requeued ones come back in the order they
// were first delivered, as on RabbitMQ (pushing them back to the front of
// the queue one at a time would reverse them). Where they go, before or
// after the others, is the transport's (see docs/transports.md); the
// others keep their order either way.
func testRequeueOrder(e *env, how string) {
	q, sent := fillRequeueOrderQueue(e)

	conn := e.dial(nil)
	ch := e.channel(conn)
	ctx, cancel := e.wait()
	c, err := kombu.NewConsumer(ctx, ch, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: requeueOrderCount})
	cancel()
	if err != nil {
		e.t.Fatalf("consumer: %v", err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	first := e.recvUnacked(c, requeueOrderCount)

	again := c
	switch how {
	case "close":
		if err := ch.Close(); err != nil {
			e.t.Fatalf("channel close: %v", err)
		}
		again = e.consumer(nil, []kombu.Queue{q}, nil)
	case "recover":
		ctx, cancel := e.wait()
		err := c.Recover(ctx, true)
		cancel()
		if err != nil {
			e.t.Fatalf("recover: %v", err)
		}
	}
	e.checkRequeueOrder(again, how, first, sent)
}

// checkRequeueOrder consumes every message of sent from c: those in
// first were handed back by how and come back marked redelivered (in
// order with Features.RequeueOrder), the others not, in order.
func (e *env) checkRequeueOrder(c *kombu.Consumer, how string, first, sent []string) {
	e.t.Helper()
	var requeued, others []string
	for range sent {
		m := e.recv(c)
		body := string(m.Body)
		if slices.Contains(first, body) {
			requeued = append(requeued, body)
		} else {
			others = append(others, body)
		}
		if m.Redelivered != slices.Contains(first, body) {
			e.t.Errorf("message %q came back with Redelivered %t", body, m.Redelivered)
		}
		e.ack(m)
	}
	e.expectNone(c)

	all := slices.Concat(requeued, others)
	slices.SortFunc(all, strings.Compare)
	if !slices.Equal(all, sent) || len(requeued) != len(first) {
		e.t.Fatalf("delivered %q first, then after %s %q and %q; want each of %q once", first, how, requeued, others, sent)
	}
	if !e.s.features.RequeueOrder {
		return
	}
	if !slices.Equal(requeued, first) {
		e.t.Errorf("after %s, the requeued messages came back as %q; want the order of their first delivery %q", how, requeued, first)
	}
	if !slices.IsSorted(others) {
		e.t.Errorf("after %s, the messages never delivered came as %q; want them in the order they were sent", how, others)
	}
}

// testRequeueOrderConsumerClose: a consumer closing on a channel it shares
// hands back the messages it had fetched but not handed out (kombu's
// inbox), and they too keep their order with Features.RequeueOrder.
func testRequeueOrderConsumerClose(e *env) {
	q, sent := fillRequeueOrderQueue(e)

	ctx, cancel := e.wait()
	c, err := kombu.NewConsumer(ctx, e.ch, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: requeueOrderCount})
	cancel()
	if err != nil {
		e.t.Fatalf("consumer: %v", err)
	}
	held := e.recv(c)
	if string(held.Body) != sent[0] {
		e.t.Fatalf("first delivery %q, want %q", held.Body, sent[0])
	}
	// The consumer fetches more of its prefetch than it handed out (how
	// many at once is the transport's): wait until it has at least 3
	// and stops, as nothing asks it for more.
	fetched := 0
	e.eventually("the consumer to fetch messages it does not hand out", func() bool {
		n := len(sent) - e.queueLen(q)
		stable := n == fetched
		fetched = n
		if !stable {
			time.Sleep(100 * time.Millisecond)
		}
		return stable && n >= 3
	})
	if err := c.Close(); err != nil {
		e.t.Fatalf("consumer close: %v", err)
	}
	e.ack(held) // the channel is still open
	e.checkRequeueOrder(e.consumer(nil, []kombu.Queue{q}, nil), "consumer close", sent[1:fetched], sent[1:])
}

// fillRequeueOrderQueue publishes the messages m00, m01, ... of a
// requeue-order case to a new queue and waits until they are all in it.
func fillRequeueOrderQueue(e *env) (kombu.Queue, []string) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	var sent []string
	for i := range requeueOrderCount + requeueOrderBehind {
		sent = append(sent, fmt.Sprintf("m%02d", i))
	}
	e.sendTo(p, q.Name, sent...)
	e.eventuallyLen(q, len(sent))
	return q, sent
}
