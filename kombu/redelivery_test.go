package kombu_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

// With no options at all, a handler that always fails gets its message
// back after a backoff, not at once: before the policy, memory:// spun
// through 2.2 million deliveries in 5 s at full CPU. Good messages
// beside it are all handled.
func TestFailingHandlerDoesNotHotLoopByDefault(t *testing.T) {
	const good = 1000
	ctx, conn := dialMemory(t, nil)
	q := kombu.NewQueue("hotloop", kombu.DefaultExchange, "")
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	bodies := []string{"poison"}
	for i := range good {
		bodies = append(bodies, fmt.Sprint(i))
	}
	for _, b := range bodies {
		if err := p.Publish(ctx, b, &kombu.PublishOptions{RoutingKey: q.Name, Declare: []kombu.Declarable{q}}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var poison, handled atomic.Int64
	window := time.Second
	cctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	err = c.Consume(cctx, kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
		if string(m.Body) == "poison" {
			poison.Add(1)
			return errors.New("always fails")
		}
		handled.Add(1)
		return nil
	}))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Consume: %v", err)
	}
	// Default backoff 200 ms, 400 ms, ...: deliveries at 0, 0.2 s, 0.6 s
	// at the most (later when the good ones ahead of it take longer).
	if n := poison.Load(); n < 1 || n > 3 {
		t.Errorf("failing message delivered %d times in %v, want 1 to 3 (backoff 200 ms doubling)", n, window)
	}
	if n := handled.Load(); n != good {
		t.Errorf("%d good messages handled, want %d", n, good)
	}
}
