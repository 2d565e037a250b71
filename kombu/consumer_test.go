package kombu_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

// dialMemory connects to a private memory broker for the test's duration.
func dialMemory(t *testing.T, opts *kombu.Options) (context.Context, *kombu.Connection) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	conn, err := kombu.Dial(ctx, "memory://"+uniqueName(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return ctx, conn
}

// A handler that cancels the Consume context after its last message must
// still have that message acked.
func TestConsumeAcksLastMessageAfterHandlerCancels(t *testing.T) {
	ctx, conn := dialMemory(t, nil)
	q := kombu.NewQueue("lastack", kombu.DefaultExchange, "")
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := p.Publish(ctx, i, &kombu.PublishOptions{RoutingKey: q.Name, Declare: []kombu.Declarable{q}}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: 10})
	if err != nil {
		t.Fatal(err)
	}
	loopCtx, stop := context.WithCancel(ctx)
	seen := 0
	err = c.Consume(loopCtx, kombu.HandlerFunc(func(context.Context, *kombu.Message) error {
		if seen++; seen == 3 {
			stop()
		}
		return nil
	}))
	if err != context.Canceled {
		t.Fatalf("Consume returned %v, want context.Canceled", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := q.Len(ctx, ch); err != nil || n != 0 {
		t.Fatalf("queue holds %d messages (err %v) after all were handled; the last ack was lost", n, err)
	}
}

// The memory transport keeps published bodies as they are; a producer
// must not let it keep the caller's buffer, which the caller may reuse.
func TestPublishedRawBytesAreNotAliased(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := kombu.Dial(ctx, "memory://"+uniqueName(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sq, err := conn.SimpleQueue(ctx, "alias", nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := []byte("first")
	if err := sq.Put(ctx, buf, nil); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXX")
	m, err := sq.GetNowait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Body) != "first" {
		t.Fatalf("queued body changed with the caller's buffer: %q", m.Body)
	}
}

// A panic in OnDecodeError is recovered and reported, and the message it
// left unsettled is rejected, so the consumer goes on.
func TestOnDecodeErrorPanicIsReportedAndSettled(t *testing.T) {
	var mu sync.Mutex
	var reported []error
	ctx, conn := dialMemory(t, &kombu.Options{ErrorHandler: func(err error) {
		mu.Lock()
		reported = append(reported, err)
		mu.Unlock()
	}})
	q := kombu.NewQueue("bad", kombu.DefaultExchange, "")
	p, err := conn.Producer(ctx, &kombu.ProducerOptions{RoutingKey: q.Name})
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.MaybeDeclare(ctx, nil, q); err != nil {
		t.Fatal(err)
	}
	_ = p.Publish(ctx, "a: 1\n", &kombu.PublishOptions{ContentType: "application/x-yaml"})
	_ = p.Publish(ctx, "good", nil)
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{
		PrefetchCount: 1,
		OnDecodeError: func(*kombu.Message, error) { panic("callback bug") },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m, err := c.Receive(ctx)
	if err != nil || string(m.Body) != "good" {
		t.Fatalf("Receive = %v, %v; want the good message", m, err)
	}
	if err := m.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var pe *kombu.PanicError
	if len(reported) != 1 || !errors.As(reported[0], &pe) || pe.Value != "callback bug" {
		t.Fatalf("reported %v, want one *kombu.PanicError", reported)
	}
	ch, _ := conn.Channel(ctx)
	if n, err := q.Len(ctx, ch); err != nil || n != 0 {
		t.Fatalf("queue holds %d messages (err %v), want 0: the bad one was not rejected", n, err)
	}
}

type funcHandler func(context.Context, *kombu.Message) error

func (f funcHandler) HandleMessage(ctx context.Context, m *kombu.Message) error { return f(ctx, m) }

// Any nil function handler is refused, not only a nil HandlerFunc.
func TestConsumeRefusesNilFunctionHandlers(t *testing.T) {
	ctx, conn := dialMemory(t, nil)
	c, err := conn.Consumer(ctx, []kombu.Queue{kombu.NewQueue("q", kombu.DefaultExchange, "")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Consume(ctx, funcHandler(nil)); !errors.Is(err, kombu.ErrInvalidArgument) {
		t.Fatalf("Consume with a nil funcHandler: %v, want ErrInvalidArgument", err)
	}
}
