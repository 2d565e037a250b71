package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/middleware"
	_ "github.com/kombu-go/kombu/transport/memory"
)

// consume publishes a message per PublishOptions to queue on conn and
// runs h, wrapped in mw, until handled messages went through, then stops.
func consume(conn *kombu.Connection, queue string, publish []*kombu.PublishOptions, handled int, h kombu.Handler, mw ...kombu.Middleware) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q := kombu.NewQueue(queue, kombu.DefaultExchange, queue)
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		panic(err)
	}
	defer p.Close()
	for i, o := range publish {
		o.RoutingKey, o.Declare = queue, []kombu.Declarable{q}
		if err := p.Publish(ctx, fmt.Sprintf("message %d", i+1), o); err != nil {
			panic(err)
		}
	}
	var settled atomic.Int32
	done := make(chan struct{})
	count := func(next kombu.Handler) kombu.Handler { // outermost: sees every message
		return kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
			err := next.HandleMessage(ctx, m)
			if settled.Add(1) == int32(handled) {
				close(done)
			}
			return err
		})
	}
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{
		Middleware: append([]kombu.Middleware{count}, mw...), RejectOnError: true})
	if err != nil {
		panic(err)
	}
	go func() {
		<-done
		_ = c.Shutdown(ctx)
	}()
	if err := c.Consume(ctx, h); !errors.Is(err, kombu.ErrConsumerStopped) {
		panic(err)
	}
}

func dial(name string) *kombu.Connection {
	conn, err := kombu.Dial(context.Background(), "memory://"+name, nil)
	if err != nil {
		panic(err)
	}
	return conn
}

// Recover turns a panic into an error that the middleware outside it
// (here Retry) handles like any other failure.
func ExampleRecover() {
	conn := dial("example-recover")
	defer conn.Close()
	calls := 0
	handler := kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
		calls++
		if calls == 1 {
			panic("first call fails")
		}
		fmt.Println("handled", string(m.Body), "on call", calls)
		return nil
	})
	onPanic := func(ctx context.Context, m *kombu.Message, p *kombu.PanicError) {
		fmt.Println("recovered:", p.Value)
	}
	consume(conn, "recover", []*kombu.PublishOptions{{ContentType: "text/plain"}}, 1, handler,
		middleware.Retry(middleware.RetryOptions{InitialInterval: time.Millisecond}),
		middleware.Recover(onPanic))
	// Output:
	// recovered: first call fails
	// handled message 1 on call 2
}

// Timeout ends the handler's context after the given time; the error
// says that the deadline passed.
func ExampleTimeout() {
	conn := dial("example-timeout")
	defer conn.Close()
	handler := kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
		select {
		case <-time.After(time.Minute): // slow work
			return nil
		case <-ctx.Done():
			err := ctx.Err()
			fmt.Println("handler stopped:", err)
			return err
		}
	})
	var result error
	record := func(next kombu.Handler) kombu.Handler {
		return kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
			result = next.HandleMessage(ctx, m)
			return result
		})
	}
	consume(conn, "timeout", []*kombu.PublishOptions{{}}, 1, handler, record, middleware.Timeout(20*time.Millisecond))
	fmt.Println("timed out:", errors.Is(result, middleware.ErrTimeout))
	// Output:
	// handler stopped: context deadline exceeded
	// timed out: true
}

// Retry runs a failing handler again in-process before the failure goes
// to the consumer's redelivery policy; Permanent errors are not retried.
func ExampleRetry() {
	conn := dial("example-retry")
	defer conn.Close()
	calls := 0
	handler := kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
		calls++
		if calls < 3 {
			return errors.New("database busy")
		}
		fmt.Println("handled", string(m.Body), "on attempt", calls)
		return nil
	})
	retry := middleware.Retry(middleware.RetryOptions{
		Attempts: 5, InitialInterval: time.Millisecond,
		OnRetry: func(ctx context.Context, m *kombu.Message, attempt int, err error, wait time.Duration) {
			fmt.Printf("attempt %d failed: %v\n", attempt, err)
		},
	})
	consume(conn, "retry", []*kombu.PublishOptions{{ContentType: "text/plain"}}, 1, handler, retry)
	// Output:
	// attempt 1 failed: database busy
	// attempt 2 failed: database busy
	// handled message 1 on attempt 3
}

// Dedup skips a message whose id was handled within the window, as when
// a publisher retried after a lost confirm and sent it twice.
func ExampleDedup() {
	conn := dial("example-dedup")
	defer conn.Close()
	handler := kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
		fmt.Println("handled", m.Properties.MessageID)
		return nil
	})
	dedup := middleware.Dedup(middleware.DedupOptions{
		Window: time.Minute,
		OnDuplicate: func(ctx context.Context, m *kombu.Message) {
			fmt.Println("skipped duplicate", m.Properties.MessageID)
		},
	})
	consume(conn, "dedup", []*kombu.PublishOptions{{MessageID: "order-1"}, {MessageID: "order-1"}, {MessageID: "order-2"}}, 3, handler, dedup)
	// Output:
	// handled order-1
	// skipped duplicate order-1
	// handled order-2
}

// ConcurrencyLimit bounds the handlers running at once across every
// consumer it is installed on; here two consumers of Concurrency 4 share a
// limit of 2.
func ExampleConcurrencyLimit() {
	conn := dial("example-concurrency")
	defer conn.Close()
	var running, peak atomic.Int32
	handler := kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		return nil
	})
	limit := middleware.ConcurrencyLimit(2)
	ctx := context.Background()
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		panic(err)
	}
	done := make(chan struct{})
	for _, queue := range []string{"images", "videos"} {
		go func() {
			defer func() { done <- struct{}{} }()
			q := kombu.NewQueue(queue, kombu.DefaultExchange, queue)
			c, err := conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{
				Concurrency: 4, Middleware: []kombu.Middleware{limit}})
			if err != nil {
				panic(err)
			}
			for range 8 {
				if err := p.Publish(ctx, "work", &kombu.PublishOptions{RoutingKey: queue}); err != nil {
					panic(err)
				}
			}
			var handled atomic.Int32
			cctx, cancel := context.WithCancel(ctx)
			_ = c.Consume(cctx, kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
				err := handler(ctx, m)
				if handled.Add(1) == 8 {
					cancel()
				}
				return err
			}))
			_ = c.Close()
		}()
	}
	<-done
	<-done
	fmt.Println("at most", peak.Load(), "handlers at once")
	// Output: at most 2 handlers at once
}

// RateLimit spaces messages out: 20 a second with bursts of 1 lets 3
// messages through in no less than 100 ms.
func ExampleRateLimit() {
	conn := dial("example-rate")
	defer conn.Close()
	handler := kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error { return nil })
	start := time.Now()
	consume(conn, "rate", []*kombu.PublishOptions{{}, {}, {}}, 3, handler, middleware.RateLimit(20, 1))
	fmt.Println("took at least 100ms:", time.Since(start) >= 100*time.Millisecond)
	// Output: took at least 100ms: true
}

// CorrelationID gives the handler the correlation id of the message it
// handles, and PropagateCorrelationID (the connection's observer) stamps
// it on what the handler publishes.
func ExampleCorrelationID() {
	ctx := context.Background()
	conn, err := kombu.Dial(ctx, "memory://example-correlation", &kombu.Options{
		Observer: middleware.PropagateCorrelationID{},
	})
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	replies := kombu.NewQueue("replies", kombu.DefaultExchange, "replies")
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		panic(err)
	}
	handler := kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
		id, _ := middleware.CorrelationIDFrom(ctx)
		fmt.Println("handling request", id)
		return p.Publish(ctx, "done", &kombu.PublishOptions{RoutingKey: "replies", Declare: []kombu.Declarable{replies}})
	})
	consume(conn, "requests", []*kombu.PublishOptions{{CorrelationID: "req-42"}}, 1, handler, middleware.CorrelationID())

	sq, err := conn.SimpleQueue(ctx, "replies", nil)
	if err != nil {
		panic(err)
	}
	defer sq.Close()
	getCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	reply, err := sq.Get(getCtx)
	if err != nil {
		panic(err)
	}
	fmt.Println("reply correlation id:", reply.Properties.CorrelationID)
	// Output:
	// handling request req-42
	// reply correlation id: req-42
}
