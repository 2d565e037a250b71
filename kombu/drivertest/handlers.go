package drivertest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

var handlerCases = []testCase{
	{"NilAcks", testHandlerNilAcks},
	{"ErrorRequeues", testHandlerErrorRequeues},
	{"RejectOnError", testHandlerRejectOnError},
	{"HandlerSettles", testHandlerSettles},
	{"PanicRequeues", testHandlerPanic},
	{"NilHandlerRefused", testNilHandler},
	{"Concurrency", testHandlerConcurrency},
	{"CallbacksDrainEvents", testCallbacks},
	{"OnMessage", testOnMessage},
}

var concurrencyCases = []testCase{
	{"PublishConsume", testConcurrentPublishConsume},
	{"SharedProducerAndChannel", testSharedProducer},
}

// errorLog collects the errors a connection reports in the background.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

func (l *errorLog) list() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

// dialLogged opens a connection whose background errors go to the log.
func (e *env) dialLogged(mod func(*kombu.Options)) (*kombu.Connection, *errorLog) {
	e.t.Helper()
	log := &errorLog{}
	opts := e.options()
	prev := opts.ErrorHandler
	opts.ErrorHandler = func(err error) {
		log.add(err)
		if prev != nil {
			prev(err)
		}
	}
	if mod != nil {
		mod(&opts)
	}
	return e.dial(&opts), log
}

// consume runs c.Consume(h) until the test ends or stop is called, and
// returns stop, which waits for Consume to return and checks its error.
func (e *env) consume(c *kombu.Consumer, h kombu.HandlerFunc) (stop func()) {
	ctx, cancel := context.WithCancel(e.ctx)
	errc := make(chan error, 1)
	go func() { errc <- c.Consume(ctx, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if !errors.Is(err, context.Canceled) {
					e.t.Errorf("Consume returned %v, want context.Canceled", err)
				}
			case <-time.After(promptly + e.s.h.Timeout):
				e.t.Errorf("Consume did not return after its context was cancelled")
			}
		})
	}
	e.t.Cleanup(stop)
	return stop
}

// take waits for a message on got within Harness.Timeout.
func (e *env) take(got <-chan *kombu.Message, what string) *kombu.Message {
	e.t.Helper()
	select {
	case m := <-got:
		return m
	case <-time.After(e.s.h.Timeout):
		e.t.Fatalf("timed out waiting for %s", what)
		return nil
	}
}

func (e *env) noBackgroundErrors(log *errorLog) {
	e.t.Helper()
	for _, err := range log.list() {
		e.t.Errorf("background error: %v", err)
	}
}

func testHandlerNilAcks(e *env) {
	conn, log := e.dialLogged(nil)
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "ok")
	c := e.consumer(conn, []kombu.Queue{q}, nil)
	got := make(chan *kombu.Message, 10)
	stop := e.consume(c, func(ctx context.Context, m *kombu.Message) error {
		got <- m
		return nil
	})
	m := e.take(got, "the handler to be called")
	e.eventually("the consumer to ack", func() bool { return m.State() == kombu.Acked })
	stop()
	if len(got) != 0 {
		e.t.Errorf("handler called %d more times", len(got))
	}
	e.eventuallyLen(q, 0)
	e.expectNone(e.consumer(nil, []kombu.Queue{q}, nil))
	e.noBackgroundErrors(log)
}

func testHandlerErrorRequeues(e *env) {
	conn, log := e.dialLogged(nil)
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "flaky")
	c := e.consumer(conn, []kombu.Queue{q}, nil)
	got := make(chan *kombu.Message, 10)
	var calls atomic.Int32
	stop := e.consume(c, func(ctx context.Context, m *kombu.Message) error {
		got <- m
		if calls.Add(1) == 1 {
			return errors.New("transient failure")
		}
		return nil
	})
	first := e.take(got, "the first delivery")
	second := e.take(got, "the redelivery")
	e.eventually("the redelivery to be acked", func() bool { return second.State() == kombu.Acked })
	stop()
	if string(first.Body) != "flaky" || first.Redelivered {
		e.t.Errorf("first delivery: body %q redelivered %t", first.Body, first.Redelivered)
	}
	if string(second.Body) != "flaky" || !second.Redelivered {
		e.t.Errorf("second delivery: body %q redelivered %t, want \"flaky\", true", second.Body, second.Redelivered)
	}
	if first.State() != kombu.Requeued || second.State() != kombu.Acked {
		e.t.Errorf("states %v, %v; want REQUEUED, ACK", first.State(), second.State())
	}
	if n := calls.Load(); n != 2 {
		e.t.Errorf("handler called %d times, want 2", n)
	}
	e.noBackgroundErrors(log)
}

func testHandlerRejectOnError(e *env) {
	conn, log := e.dialLogged(nil)
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "bad", "good")
	c := e.consumer(conn, []kombu.Queue{q}, &kombu.ConsumerOptions{RejectOnError: true})
	got := make(chan *kombu.Message, 10)
	stop := e.consume(c, func(ctx context.Context, m *kombu.Message) error {
		got <- m
		if string(m.Body) == "bad" {
			return errors.New("permanent failure")
		}
		return nil
	})
	bad := e.take(got, "the failing delivery")
	good := e.take(got, "the good delivery")
	e.eventually("the good message to be acked", func() bool { return good.State() == kombu.Acked })
	// Give a wrongly requeued message the time to come back.
	time.Sleep(negativeWait)
	stop()
	if bad.State() != kombu.Rejected {
		e.t.Errorf("failed message is %v, want REJECTED", bad.State())
	}
	if n := len(got); n != 0 {
		e.t.Errorf("%d more deliveries after a rejected failure", n)
	}
	e.eventuallyLen(q, 0)
	e.noBackgroundErrors(log)
}

func testHandlerSettles(e *env) {
	conn, log := e.dialLogged(nil)
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "reject-me", "requeue-me", "ack-me")
	c := e.consumer(conn, []kombu.Queue{q}, nil)
	var mu sync.Mutex
	var msgs []*kombu.Message
	done := make(chan struct{})
	stop := e.consume(c, func(ctx context.Context, m *kombu.Message) error {
		mu.Lock()
		msgs = append(msgs, m)
		n := len(msgs)
		mu.Unlock()
		var err error
		switch {
		case m.Redelivered:
			err = m.Ack(ctx)
		case string(m.Body) == "reject-me":
			err = m.Reject(ctx)
		case string(m.Body) == "requeue-me":
			err = m.Requeue(ctx)
		default:
			err = m.Ack(ctx)
		}
		if err != nil {
			e.t.Errorf("settle %q in the handler: %v", m.Body, err)
		}
		if n == 4 {
			close(done)
		}
		// The consumer must leave a settled message alone, whatever the
		// handler returns.
		if string(m.Body) == "ack-me" {
			return errors.New("returned after settling")
		}
		return nil
	})
	e.waitFor(done, "4 deliveries")
	time.Sleep(negativeWait)
	stop()
	mu.Lock()
	defer mu.Unlock()
	if len(msgs) != 4 {
		e.t.Errorf("%d deliveries, want 4", len(msgs))
	}
	for _, m := range msgs {
		want := kombu.Acked
		switch {
		case m.Redelivered:
		case string(m.Body) == "reject-me":
			want = kombu.Rejected
		case string(m.Body) == "requeue-me":
			want = kombu.Requeued
		}
		if m.State() != want {
			e.t.Errorf("%q (redelivered %t) is %v, want %v", m.Body, m.Redelivered, m.State(), want)
		}
	}
	e.eventuallyLen(q, 0)
	e.noBackgroundErrors(log)
}

// testHandlerPanic checks that a panicking handler does not kill the
// consumer: the panic is recovered, reported to the connection's
// ErrorHandler as a *kombu.PanicError, and the message is requeued like
// after a handler error.
func testHandlerPanic(e *env) {
	conn, log := e.dialLogged(nil)
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "boom")
	c := e.consumer(conn, []kombu.Queue{q}, nil)
	got := make(chan *kombu.Message, 10)
	var calls atomic.Int32
	stop := e.consume(c, func(ctx context.Context, m *kombu.Message) error {
		got <- m
		if calls.Add(1) == 1 {
			panic("handler bug")
		}
		return nil
	})
	first := e.take(got, "the first delivery")
	second := e.take(got, "the redelivery after the handler panicked")
	e.eventually("the redelivery to be acked", func() bool { return second.State() == kombu.Acked })
	// The consumer keeps running after a panic.
	e.sendTo(p, q.Name, "next")
	if m := e.take(got, "a message after the panic"); string(m.Body) != "next" {
		e.t.Errorf("received %q, want \"next\"", m.Body)
	}
	stop()
	if first.State() != kombu.Requeued || !second.Redelivered || string(second.Body) != "boom" {
		e.t.Errorf("panicking delivery is %v; redelivery %q redelivered %t", first.State(), second.Body, second.Redelivered)
	}
	errs := log.list()
	var pe *kombu.PanicError
	if len(errs) != 1 || !errors.As(errs[0], &pe) || pe.Value != "handler bug" || len(pe.Stack) == 0 {
		e.t.Errorf("background errors %v, want one *kombu.PanicError for \"handler bug\" with a stack", errs)
	} else if !strings.Contains(errs[0].Error(), q.Name) {
		e.t.Errorf("panic report %q does not name the queue %q", errs[0], q.Name)
	}
}

// testNilHandler checks that Consume refuses a nil handler, typed or not,
// before taking any message.
func testNilHandler(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "kept")
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	for _, h := range []kombu.Handler{nil, kombu.HandlerFunc(nil)} {
		ctx, cancel := e.wait()
		err := c.Consume(ctx, h)
		cancel()
		if !errors.Is(err, kombu.ErrInvalidArgument) || !strings.Contains(err.Error(), "nil handler") {
			e.t.Errorf("Consume with handler %#v: %v, want ErrInvalidArgument for a nil handler", h, err)
		}
	}
	// The message was never handed to the missing handler.
	m := e.recv(c)
	if string(m.Body) != "kept" || m.Redelivered {
		e.t.Errorf("received %q (redelivered %t), want \"kept\" delivered once", m.Body, m.Redelivered)
	}
	e.ack(m)
}

func testHandlerConcurrency(e *env) {
	const workers, total = 4, 12
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	for i := range total {
		e.sendTo(p, q.Name, fmt.Sprint(i))
	}
	c := e.consumer(nil, []kombu.Queue{q}, &kombu.ConsumerOptions{Concurrency: workers})
	var active, maxActive, handled atomic.Int32
	gate := make(chan struct{})
	seen := sync.Map{}
	stop := e.consume(c, func(ctx context.Context, m *kombu.Message) error {
		n := active.Add(1)
		for {
			old := maxActive.Load()
			if n <= old || maxActive.CompareAndSwap(old, n) {
				break
			}
		}
		if _, dup := seen.LoadOrStore(string(m.Body), true); dup {
			e.t.Errorf("message %q handled twice", m.Body)
		}
		select {
		case <-gate:
		case <-ctx.Done():
		}
		active.Add(-1)
		handled.Add(1)
		return nil
	})
	e.eventually(fmt.Sprintf("%d handlers running at once", workers), func() bool { return active.Load() == workers })
	time.Sleep(negativeWait) // no fifth handler may start
	if n := maxActive.Load(); n != workers {
		e.t.Errorf("%d handlers ran at once, want %d", n, workers)
	}
	close(gate)
	e.eventually("every message to be handled", func() bool { return handled.Load() == total })
	stop()
	if n := maxActive.Load(); n != workers {
		e.t.Errorf("%d handlers ran at once, want %d", n, workers)
	}
	e.eventuallyLen(q, 0)
}

func testCallbacks(e *env) {
	conn := e.dial(nil)
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	var order []string
	var bodies []any
	e.consumer(conn, []kombu.Queue{q}, &kombu.ConsumerOptions{Callbacks: []kombu.Callback{
		func(body any, m *kombu.Message) {
			order = append(order, "first")
			bodies = append(bodies, body)
		},
		func(body any, m *kombu.Message) {
			order = append(order, "second")
			if err := m.Ack(e.ctx); err != nil {
				e.t.Errorf("ack in callback: %v", err)
			}
		},
	}})
	ctx, cancel := e.wait()
	defer cancel()
	e.publish(p, map[string]any{"n": 1, "s": "x"}, &kombu.PublishOptions{RoutingKey: q.Name})
	if err := conn.DrainEvents(ctx); err != nil {
		e.t.Fatalf("drain events: %v", err)
	}
	if fmt.Sprint(order) != "[first second]" {
		e.t.Errorf("callbacks ran as %v, want [first second]", order)
	}
	if len(bodies) != 1 || !reflect.DeepEqual(normalize(bodies[0]), map[string]any{"n": int64(1), "s": "x"}) {
		e.t.Errorf("callback bodies %#v", bodies)
	}
	short, cancelShort := context.WithTimeout(ctx, negativeWait)
	defer cancelShort()
	if err := conn.DrainEvents(short); !errors.Is(err, context.DeadlineExceeded) {
		e.t.Errorf("drain events with nothing to deliver: %v, want context.DeadlineExceeded", err)
	}
	if len(order) != 2 {
		e.t.Errorf("callbacks ran %d times, want 2", len(order))
	}
	e.eventuallyLen(q, 0)
}

func testOnMessage(e *env) {
	conn := e.dial(nil)
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	var got []*kombu.Message
	e.consumer(conn, []kombu.Queue{q}, &kombu.ConsumerOptions{
		Accept:    []string{"json"},
		OnMessage: func(m *kombu.Message) { got = append(got, m) },
	})
	e.publish(p, []byte("raw \xff"), &kombu.PublishOptions{RoutingKey: q.Name})
	ctx, cancel := e.wait()
	defer cancel()
	if err := conn.DrainEvents(ctx); err != nil {
		e.t.Fatalf("drain events: %v", err)
	}
	if len(got) != 1 || string(got[0].Body) != "raw \xff" {
		e.t.Fatalf("OnMessage got %d messages", len(got))
	}
	e.ack(got[0])
}

// testConcurrentPublishConsume runs 4 publishers and 3 consumers on their
// own connections and checks that every message arrives exactly once,
// except for redeliveries, which must be marked.
func testConcurrentPublishConsume(e *env) {
	const publishers = 4
	n := 500
	if testing.Short() {
		n = 100
	}
	total := publishers * n
	q := e.simpleQueue("q")

	var mu sync.Mutex
	seen := make(map[string]int, total)
	done := make(chan struct{})
	record := func(m *kombu.Message) {
		seq, _ := m.Headers["seq"].(string)
		mu.Lock()
		defer mu.Unlock()
		if seq == "" || seq != string(m.Body) {
			e.t.Errorf("message with body %q has seq header %#v", short(m.Body), m.Headers["seq"])
			return
		}
		seen[seq]++
		if seen[seq] > 1 && !m.Redelivered {
			e.t.Errorf("message %s delivered %d times, not marked redelivered", seq, seen[seq])
		}
		if len(seen) == total && seen[seq] == 1 {
			close(done)
		}
	}
	h := func(ctx context.Context, m *kombu.Message) error {
		record(m)
		return nil
	}
	// Two consumers run handlers, one pulls.
	for i := range 2 {
		c := e.consumer(e.dial(nil), []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: 20, Concurrency: 2 + i})
		e.consume(c, h)
	}
	puller := e.consumer(e.dial(nil), []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: 10})
	pullCtx, stopPull := context.WithCancel(e.ctx)
	pulled := make(chan struct{})
	go func() {
		defer close(pulled)
		for {
			m, err := puller.Receive(pullCtx)
			if err != nil {
				if pullCtx.Err() == nil {
					e.t.Errorf("receive: %v", err)
				}
				return
			}
			record(m)
			if err := m.Ack(pullCtx); err != nil && pullCtx.Err() == nil {
				e.t.Errorf("ack: %v", err)
			}
		}
	}()

	var wg sync.WaitGroup
	for w := range publishers {
		conn := e.dial(nil)
		prod := e.producer(conn, nil)
		wg.Go(func() {
			for i := range n {
				seq := fmt.Sprintf("p%d-%d", w, i)
				ctx, cancel := e.wait()
				err := prod.Publish(ctx, seq, &kombu.PublishOptions{RoutingKey: q.Name, Headers: map[string]any{"seq": seq}})
				cancel()
				if err != nil {
					e.t.Errorf("publish %s: %v", seq, err)
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case <-done:
	case <-e.ctx.Done():
		mu.Lock()
		got := len(seen)
		mu.Unlock()
		e.t.Fatalf("received %d of %d messages before the test's deadline", got, total)
	}
	time.Sleep(negativeWait) // late duplicates would show up now
	stopPull()
	<-pulled
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != total {
		e.t.Errorf("received %d distinct messages, want %d", len(seen), total)
	}
	for w := range publishers {
		for i := range n {
			if seq := fmt.Sprintf("p%d-%d", w, i); seen[seq] == 0 {
				e.t.Errorf("message %s lost", seq)
			}
		}
	}
}

// testSharedProducer publishes from many goroutines through one Producer
// while a consumer on the same channel acks: Producer, Channel and
// Consumer are safe for concurrent use.
func testSharedProducer(e *env) {
	const workers, each = 8, 25
	q := e.simpleQueue("q")
	ch := e.channel(e.conn)
	ctx, cancel := e.wait()
	defer cancel()
	p, err := kombu.NewProducer(ctx, ch, nil)
	if err != nil {
		e.t.Fatalf("producer: %v", err)
	}
	c, err := kombu.NewConsumer(ctx, ch, []kombu.Queue{q}, &kombu.ConsumerOptions{Concurrency: 3})
	if err != nil {
		e.t.Fatalf("consumer: %v", err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	done := make(chan struct{})
	stop := e.consume(c, func(ctx context.Context, m *kombu.Message) error {
		mu.Lock()
		defer mu.Unlock()
		seen[string(m.Body)]++
		if len(seen) == workers*each && seen[string(m.Body)] == 1 {
			close(done)
		}
		return nil
	})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if err := p.Publish(e.ctx, fmt.Sprintf("%d-%d", w, i), &kombu.PublishOptions{RoutingKey: q.Name}); err != nil {
					e.t.Errorf("publish: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	e.waitFor(done, "every message")
	stop()
	mu.Lock()
	defer mu.Unlock()
	for body, n := range seen {
		if n != 1 {
			e.t.Errorf("message %s handled %d times", body, n)
		}
	}
	e.eventuallyLen(q, 0)
}
