// Package storetest checks a virtual.Store's primitives directly, below
// the AMQP emulation: the fast first test a new transport runs before the
// full conformance suite (kombu/drivertest).
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) virtual.Store { return openMyStore(t) })
//	}
//
// Each test gets a fresh store from open and uses queue names of its own.
// Stores that implement Acker, BatchPutter or BatchGetter are checked for
// those too.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

// Run runs every check against stores made by open.
func Run(t *testing.T, open func(t *testing.T) virtual.Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s virtual.Store, q func(string) string)
	}{
		{"FIFO", testFIFO},
		{"RoundTrip", testRoundTrip},
		{"EmptyGet", testEmptyGet},
		{"BlockingGetWakes", testBlockingGetWakes},
		{"BlockingGetHonoursContext", testBlockingGetContext},
		{"SeveralQueues", testSeveralQueues},
		{"SizePurgeDelete", testSizePurgeDelete},
		{"Batches", testBatches},
		{"AckAndRequeue", testAckAndRequeue},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			prefix := fmt.Sprintf("storetest.%s.%08x.", c.name, rand.Uint32())
			c.fn(t, s, func(name string) string { return prefix + name })
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func envelope(body string) *virtual.Envelope {
	return &virtual.Envelope{Message: driver.Message{Body: []byte(body), ContentType: "text/plain",
		ContentEncoding: "utf-8", Properties: driver.Properties{DeliveryMode: 2}}, RoutingKey: "rk"}
}

func put(t *testing.T, s virtual.Store, queue string, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		if err := s.Put(ctxFor(t), queue, envelope(b)); err != nil {
			t.Fatalf("put %q to %s: %v", b, queue, err)
		}
	}
}

func get(t *testing.T, s virtual.Store, queues ...string) virtual.Item {
	t.Helper()
	it, err := s.Get(ctxFor(t), queues, time.Second)
	if err != nil {
		t.Fatalf("get from %v: %v", queues, err)
	}
	return it
}

// settle acks items of stores that keep unacked state, so tests leave
// nothing behind.
func settle(t *testing.T, s virtual.Store, items ...virtual.Item) {
	t.Helper()
	if a, ok := s.(virtual.Acker); ok {
		for _, it := range items {
			if err := a.Ack(ctxFor(t), it); err != nil {
				t.Fatalf("ack: %v", err)
			}
		}
	}
}

func testFIFO(t *testing.T, s virtual.Store, q func(string) string) {
	queue := q("fifo")
	put(t, s, queue, "1", "2", "3")
	for _, want := range []string{"1", "2", "3"} {
		it := get(t, s, queue)
		if string(it.Envelope.Body) != want || it.Queue != queue {
			t.Fatalf("got %q from %q, want %q from %q", it.Envelope.Body, it.Queue, want, queue)
		}
		settle(t, s, it)
	}
}

func testRoundTrip(t *testing.T, s virtual.Store, q func(string) string) {
	queue := q("rt")
	in := envelope("")
	in.Body = []byte{0, 1, 0xfe, 0xff}
	in.ContentType, in.ContentEncoding = "application/data", "binary"
	in.Headers = map[string]any{"k": "v", "n": int64(7)}
	in.Properties.CorrelationID, in.Properties.ReplyTo, in.Properties.Priority = "c", "r", 0
	in.Exchange, in.RoutingKey = "ex", "key"
	if err := s.Put(ctxFor(t), queue, in); err != nil {
		t.Fatal(err)
	}
	it := get(t, s, queue)
	defer settle(t, s, it)
	out := it.Envelope
	if string(out.Body) != string(in.Body) || out.ContentType != in.ContentType || out.ContentEncoding != in.ContentEncoding ||
		out.Headers["k"] != "v" || out.Headers["n"] != int64(7) || out.Properties.CorrelationID != "c" ||
		out.Properties.ReplyTo != "r" || out.Exchange != "ex" || out.RoutingKey != "key" {
		t.Fatalf("round trip changed the envelope:\n in %+v\nout %+v", in, out)
	}
}

func testEmptyGet(t *testing.T, s virtual.Store, q func(string) string) {
	start := time.Now()
	_, err := s.Get(ctxFor(t), []string{q("empty")}, 0)
	if !errors.Is(err, driver.ErrEmpty) {
		t.Fatalf("get from an empty queue: %v, want ErrEmpty", err)
	}
	if time.Since(start) > time.Second {
		t.Fatalf("a non-blocking get took %v", time.Since(start))
	}
	_, err = s.Get(ctxFor(t), []string{q("empty")}, 200*time.Millisecond)
	if !errors.Is(err, driver.ErrEmpty) {
		t.Fatalf("a blocking get that times out: %v, want ErrEmpty", err)
	}
}

func testBlockingGetWakes(t *testing.T, s virtual.Store, q func(string) string) {
	queue := q("wake")
	go func() {
		time.Sleep(100 * time.Millisecond)
		_ = s.Put(context.Background(), queue, envelope("late"))
	}()
	it, err := s.Get(ctxFor(t), []string{queue}, 5*time.Second)
	if err != nil || string(it.Envelope.Body) != "late" {
		t.Fatalf("blocking get: %v %v", it.Envelope, err)
	}
	settle(t, s, it)
}

func testBlockingGetContext(t *testing.T, s virtual.Store, q func(string) string) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := s.Get(ctx, []string{q("ctx")}, 10*time.Second)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("get with a cancelled context: %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("cancellation took %v", d)
	}
}

func testSeveralQueues(t *testing.T, s virtual.Store, q func(string) string) {
	a, b := q("a"), q("b")
	put(t, s, b, "from b")
	it := get(t, s, a, b)
	if it.Queue != b || string(it.Envelope.Body) != "from b" {
		t.Fatalf("got %q from %q, want the message of %q", it.Envelope.Body, it.Queue, b)
	}
	settle(t, s, it)
}

func testSizePurgeDelete(t *testing.T, s virtual.Store, q func(string) string) {
	ctx := ctxFor(t)
	queue := q("size")
	put(t, s, queue, "1", "2", "3")
	if n, err := s.Size(ctx, queue); err != nil || n != 3 {
		t.Fatalf("size %d %v, want 3", n, err)
	}
	if n, err := s.Purge(ctx, queue); err != nil || n != 3 {
		t.Fatalf("purge %d %v, want 3", n, err)
	}
	if n, err := s.Size(ctx, queue); err != nil || n != 0 {
		t.Fatalf("size after purge %d %v", n, err)
	}
	put(t, s, queue, "4")
	if err := s.Delete(ctx, queue); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Size(ctx, queue); err != nil || n != 0 {
		t.Fatalf("size after delete %d %v", n, err)
	}
}

func testBatches(t *testing.T, s virtual.Store, q func(string) string) {
	bp, okPut := s.(virtual.BatchPutter)
	bg, okGet := s.(virtual.BatchGetter)
	if !okPut && !okGet {
		t.Skip("the store has no batch operations")
	}
	ctx := ctxFor(t)
	queue := q("batch")
	var want []string
	var batch []virtual.QueuedEnvelope
	for i := range 25 {
		b := fmt.Sprint(i)
		want = append(want, b)
		batch = append(batch, virtual.QueuedEnvelope{Queue: queue, Envelope: envelope(b)})
	}
	if okPut {
		if err := bp.PutBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	} else {
		put(t, s, queue, want...)
	}
	var got []string
	for len(got) < len(want) {
		var items []virtual.Item
		if okGet {
			var err error
			if items, err = bg.GetBatch(ctx, []string{queue}, 10, time.Second); err != nil {
				t.Fatalf("get batch after %d: %v", len(got), err)
			}
			if len(items) > 10 {
				t.Fatalf("GetBatch returned %d items, max 10", len(items))
			}
		} else {
			items = []virtual.Item{get(t, s, queue)}
		}
		for _, it := range items {
			got = append(got, string(it.Envelope.Body))
		}
		settle(t, s, items...)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("batch order %v, want %v", got, want)
	}
}

func testAckAndRequeue(t *testing.T, s virtual.Store, q func(string) string) {
	a, ok := s.(virtual.Acker)
	if !ok {
		t.Skip("the store keeps no unacked state (not an Acker)")
	}
	ctx := ctxFor(t)
	queue := q("ack")
	put(t, s, queue, "m")
	it := get(t, s, queue)
	if err := a.Requeue(ctx, it); err != nil {
		t.Fatal(err)
	}
	again := get(t, s, queue)
	if string(again.Envelope.Body) != "m" || !again.Envelope.Redelivered {
		t.Fatalf("requeued message %q redelivered=%v", again.Envelope.Body, again.Envelope.Redelivered)
	}
	if err := a.Ack(ctx, again); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, []string{queue}, 0); !errors.Is(err, driver.ErrEmpty) {
		t.Fatalf("after ack: %v, want ErrEmpty", err)
	}
}
