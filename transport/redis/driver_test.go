package redis

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

// dialDriver opens a driver.Conn through the registered transport.
func dialDriver(t testing.TB, extra url.Values) driver.Conn {
	t.Helper()
	cn, err := Transport.OpenConnector(serverURL(t, extra))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := cn.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func openChannel(t testing.TB, conn driver.Conn) driver.Channel {
	t.Helper()
	ch, err := conn.Channel(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// receiveN receives n deliveries or fails after the timeout.
func receiveN(t testing.TB, ch driver.Channel, n int, timeout time.Duration) []*driver.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*driver.Delivery
	for len(out) < n {
		ds, err := ch.Receive(ctx, n-len(out))
		if err != nil {
			t.Fatalf("Receive after %d of %d: %v", len(out), n, err)
		}
		out = append(out, ds...)
	}
	return out
}

func TestDriverDirectTopicFanout(t *testing.T) {
	opts := isolated(t, nil)
	conn := dialDriver(t, opts)
	ch := openChannel(t, conn)
	ctx := testCtx(t)
	ex, tx, fx := uniqueName(t, "direct"), uniqueName(t, "topic"), uniqueName(t, "fanout")
	qd, qt, qf := uniqueName(t, "qd"), uniqueName(t, "qt"), uniqueName(t, "qf")
	for _, e := range []driver.Exchange{{Name: ex, Type: "direct"}, {Name: tx, Type: "topic"}, {Name: fx, Type: "fanout"}} {
		if err := ch.ExchangeDeclare(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{qd, qt, qf} {
		if _, err := ch.QueueDeclare(ctx, driver.Queue{Name: q}); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range []driver.Binding{{Queue: qd, Exchange: ex, RoutingKey: "rk"}, {Queue: qt, Exchange: tx, RoutingKey: "a.*.c"}, {Queue: qf, Exchange: fx}} {
		if err := ch.QueueBind(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{qd, qt, qf} {
		if err := ch.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: q}); err != nil {
			t.Fatal(err)
		}
	}
	pubs := []*driver.Publishing{
		{Exchange: ex, RoutingKey: "rk", Message: driver.Message{Body: []byte("direct"), ContentType: "text/plain"}},
		{Exchange: ex, RoutingKey: "other", Message: driver.Message{Body: []byte("dropped")}},
		{Exchange: tx, RoutingKey: "a.b.c", Message: driver.Message{Body: []byte("topic")}},
		{Exchange: fx, Message: driver.Message{Body: []byte("fanout")}},
		{Exchange: "", RoutingKey: qd, Message: driver.Message{Body: []byte("default"), Headers: map[string]any{"h": "v"}}},
	}
	for _, p := range pubs {
		if err := ch.Publish(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]string{}
	for _, d := range receiveN(t, ch, 4, 5*time.Second) {
		got[string(d.Body)] = d.Queue
		if err := ch.Ack(ctx, d.Tag, false); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{"direct": qd, "topic": qt, "fanout": qf, "default": qd}
	for b, q := range want {
		if got[b] != q {
			t.Errorf("%q went to %q, want %q (all: %v)", b, got[b], q, got)
		}
	}
}

func TestDriverRejectRequeueAndCloseRestore(t *testing.T) {
	opts := isolated(t, nil)
	conn := dialDriver(t, opts)
	ch := openChannel(t, conn)
	ctx := testCtx(t)
	q := uniqueName(t, "q")
	if _, err := ch.QueueDeclare(ctx, driver.Queue{Name: q}); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"m1", "m2", "m3"} {
		if err := ch.Publish(ctx, &driver.Publishing{RoutingKey: q, Message: driver.Message{Body: []byte(b)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ch.Qos(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := ch.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "c"}); err != nil {
		t.Fatal(err)
	}
	d := receiveN(t, ch, 1, 5*time.Second)[0]
	if string(d.Body) != "m1" || d.Redelivered {
		t.Fatalf("first delivery %s", d.Body)
	}
	if err := ch.Reject(ctx, d.Tag, true); err != nil {
		t.Fatal(err)
	}
	d = receiveN(t, ch, 1, 5*time.Second)[0]
	if string(d.Body) != "m1" || !d.Redelivered {
		t.Fatalf("after requeue: %s redelivered=%v", d.Body, d.Redelivered)
	}
	if err := ch.Ack(ctx, d.Tag, false); err != nil {
		t.Fatal(err)
	}
	if err := ch.Ack(ctx, d.Tag, false); !errors.Is(err, driver.ErrUnknownDeliveryTag) {
		t.Errorf("double ack: %v", err)
	}
	d = receiveN(t, ch, 1, 5*time.Second)[0] // m2, left unacked
	if string(d.Body) != "m2" {
		t.Fatalf("got %s", d.Body)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	// Another connection sees m2 back at the front, redelivered, then m3.
	// It declares the queue, as a consumer does: an empty queue leaves no
	// trace in redis for a connection that did not declare it.
	ch2 := openChannel(t, dialDriver(t, url.Values{"global_keyprefix": {opts.Get("global_keyprefix")}}))
	if _, err := ch2.QueueDeclare(ctx, driver.Queue{Name: q}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"m2", "m3"} {
		d, err := ch2.Get(ctx, q, false)
		if err != nil {
			t.Fatal(err)
		}
		if string(d.Body) != want || d.Redelivered != (want == "m2") {
			t.Errorf("got %s redelivered=%v, want %s", d.Body, d.Redelivered, want)
		}
		_ = ch2.Ack(ctx, d.Tag, false)
	}
	if _, err := ch2.Get(ctx, q, false); !errors.Is(err, driver.ErrEmpty) {
		t.Errorf("queue not empty: %v", err)
	}
}

// storeOf returns the redis store under a driver.Conn of this transport.
func storeOf(t testing.TB, conn driver.Conn) *Store {
	t.Helper()
	vc, ok := conn.(*virtual.Conn)
	if !ok {
		t.Fatalf("conn is %T", conn)
	}
	return vc.Store().(*Store)
}
