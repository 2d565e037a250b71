package drivertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

var cancelCases = []testCase{
	{"Cancel", testCancel},
	{"CancelByQueue", testCancelByQueue},
	{"AddQueue", testAddQueue},
	{"Flow", testFlow},
}

var closeCases = []testCase{
	{"ConnectionClose", testConnectionClose},
	{"UnackedReturnOnConsumerClose", func(e *env) { testUnackedReturn(e, "consumer") }},
	{"UnackedReturnOnChannelClose", func(e *env) { testUnackedReturn(e, "channel") }},
	{"UnackedReturnOnConnectionClose", func(e *env) { testUnackedReturn(e, "connection") }},
	{"UnackedReturnInOrder", func(e *env) { testRequeueOrder(e, "close") }},
	{"ConsumerCloseReturnsFetchedInOrder", testRequeueOrderConsumerClose},
	{"ConsumerClose", testConsumerClose},
	{"ConsumerCloseOnSharedChannel", testConsumerCloseShared},
	{"CloseUnblocks", testCloseUnblocks},
	{"ConcurrentClose", testConcurrentClose},
}

var contextCases = []testCase{
	{"ReceiveCancelled", testReceiveCancelled},
	{"ReceiveCancelledKeepsFetched", testReceiveCancelledKeepsFetched},
	{"DoneContext", testDoneContext},
	{"ReceiveDeadline", testReceiveDeadline},
	{"ConsumeCancelled", testConsumeCancelled},
	{"ConsumeCancelledSettlesInFlight", testConsumeCancelledInFlight},
	{"ShutdownWaits", testShutdownWaits},
}

// promptly is how soon a blocked call must return once its context ends.
const promptly = 1500 * time.Millisecond

func testCancel(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	c := e.consumer(nil, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: 1})
	e.sendTo(p, q.Name, "before")
	if got := e.recvAck(c); got != "before" {
		e.t.Errorf("received %q, want \"before\"", got)
	}
	ctx, cancel := e.wait()
	defer cancel()
	if err := c.Cancel(ctx); err != nil {
		e.t.Fatalf("cancel: %v", err)
	}
	if tags := c.ConsumerTags(); len(tags) != 0 {
		e.t.Errorf("consumer tags after cancel: %v", tags)
	}
	e.sendTo(p, q.Name, "after")
	e.expectNone(c)
	e.eventuallyLen(q, 1)
	// Start consumes again.
	if err := c.Start(ctx); err != nil {
		e.t.Fatalf("start: %v", err)
	}
	if got := e.recvAck(c); got != "after" {
		e.t.Errorf("received %q after restart, want \"after\"", got)
	}
}

func testCancelByQueue(e *env) {
	q1, q2 := e.simpleQueue("q1"), e.simpleQueue("q2")
	p := e.producer(nil, nil)
	c := e.consumer(nil, []kombu.Queue{q1, q2}, nil)
	ctx, cancel := e.wait()
	defer cancel()
	if err := c.CancelByQueue(ctx, q1.Name); err != nil {
		e.t.Fatalf("cancel by queue: %v", err)
	}
	tags := c.ConsumerTags()
	if _, ok := tags[q1.Name]; ok || len(tags) != 1 || tags[q2.Name] == "" {
		e.t.Errorf("consumer tags after cancelling %q: %v", q1.Name, tags)
	}
	e.sendTo(p, q1.Name, "to-q1")
	e.sendTo(p, q2.Name, "to-q2")
	if got := e.recvAck(c); got != "to-q2" {
		e.t.Errorf("received %q, want \"to-q2\"", got)
	}
	e.expectNone(c)
	e.eventuallyLen(q1, 1)
}

func testAddQueue(e *env) {
	q1 := e.simpleQueue("q1")
	q2 := kombu.NewQueue(e.name("q2"), kombu.DefaultExchange, "")
	e.remember(q2)
	p := e.producer(nil, nil)
	c := e.consumer(nil, []kombu.Queue{q1}, nil)
	ctx, cancel := e.wait()
	defer cancel()
	if err := c.AddQueue(ctx, q2); err != nil { // declares q2
		e.t.Fatalf("add queue: %v", err)
	}
	if qs := c.Queues(); len(qs) != 2 || qs[1].Name != q2.Name {
		e.t.Errorf("queues after AddQueue: %v", qs)
	}
	e.sendTo(p, q2.Name, "to-q2")
	e.sendTo(p, q1.Name, "to-q1")
	got := e.recvBodies(c, 2)
	slices.Sort(got)
	if !slices.Equal(got, []string{"to-q1", "to-q2"}) {
		e.t.Errorf("received %q, want to-q1 and to-q2", got)
	}
	e.expectNone(c)
}

func testFlow(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	c := e.consumer(nil, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: 1})
	ctx, cancel := e.wait()
	defer cancel()
	if err := c.Flow(ctx, false); err != nil {
		e.t.Fatalf("flow off: %v", err)
	}
	e.sendTo(p, q.Name, "paused")
	e.expectNone(c)
	if err := c.Flow(ctx, true); err != nil {
		e.t.Fatalf("flow on: %v", err)
	}
	if got := e.recvAck(c); got != "paused" {
		e.t.Errorf("received %q after resuming, want \"paused\"", got)
	}
}

func testConnectionClose(e *env) {
	q := e.simpleQueue("q")
	conn := e.dial(nil)
	p := e.producer(conn, nil)
	c := e.consumer(conn, []kombu.Queue{q}, &kombu.ConsumerOptions{Callbacks: []kombu.Callback{func(any, *kombu.Message) {}}})
	ch := e.channel(conn)
	if err := conn.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	if err := conn.Close(); err != nil {
		e.t.Errorf("second close: %v, want nil", err)
	}
	ctx, cancel := e.wait()
	defer cancel()
	checks := map[string]error{}
	_, checks["Channel"] = conn.Channel(ctx)
	_, checks["DefaultChannel"] = conn.DefaultChannel(ctx)
	checks["Connect"] = conn.Connect(ctx)
	checks["Ping"] = conn.Ping(ctx)
	checks["Publish"] = p.Publish(ctx, "x", &kombu.PublishOptions{RoutingKey: q.Name})
	_, checks["Receive"] = c.Receive(ctx)
	_, checks["Queue.Declare"] = q.Declare(ctx, ch)
	checks["Exchange.Declare"] = kombu.NewExchange(e.name("x"), kombu.Direct).Declare(ctx, ch)
	_, checks["Queue.Get"] = q.Get(ctx, ch, false, nil)
	_, checks["Queue.Len"] = q.Len(ctx, ch)
	checks["DrainEvents"] = conn.DrainEvents(ctx)
	_, checks["Producer"] = conn.Producer(ctx, nil)
	_, checks["Consumer"] = conn.Consumer(ctx, []kombu.Queue{q}, nil)
	_, checks["SimpleQueue"] = conn.SimpleQueue(ctx, q.Name, &kombu.SimpleQueueOptions{Queue: &q})
	checks["Reconnect"] = conn.Reconnect(ctx, false)
	for op, err := range checks {
		if !errors.Is(err, kombu.ErrClosed) {
			e.t.Errorf("%s after Connection.Close: %v, want ErrClosed", op, err)
		}
	}
	if conn.Connected() {
		e.t.Errorf("Connected() is true after Close")
	}
	// Other connections are not affected.
	p2 := e.producer(nil, nil)
	e.sendTo(p2, q.Name, "still works")
	c2 := e.consumer(nil, []kombu.Queue{q}, nil)
	if got := e.recvAck(c2); got != "still works" {
		e.t.Errorf("received %q, want \"still works\"", got)
	}
}

// testUnackedReturn checks that messages a consumer received but did not
// ack go back to their queue when its consumer, channel or connection
// closes, and are redelivered marked as such to a consumer on another
// connection, while a message that was never delivered is not marked.
func testUnackedReturn(e *env, closing string) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "m0", "m1", "m2")
	e.eventuallyLen(q, 3)
	conn := e.dial(nil)
	opts := &kombu.ConsumerOptions{PrefetchCount: 2}
	var c *kombu.Consumer
	var ch *kombu.Channel
	if closing == "channel" {
		ch = e.channel(conn)
		ctx, cancel := e.wait()
		var err error
		c, err = kombu.NewConsumer(ctx, ch, []kombu.Queue{q}, opts)
		cancel()
		if err != nil {
			e.t.Fatalf("consumer: %v", err)
		}
	} else {
		c = e.consumer(conn, []kombu.Queue{q}, opts)
	}
	got := e.recvUnacked(c, 2)
	if !slices.Equal(got, []string{"m0", "m1"}) {
		e.t.Errorf("received %q, want m0 and m1 in order", got)
	}
	var err error
	switch closing {
	case "consumer":
		err = c.Close()
	case "channel":
		err = ch.Close()
	case "connection":
		err = conn.Close()
	}
	if err != nil {
		e.t.Fatalf("%s close: %v", closing, err)
	}
	wantErr := kombu.ErrClosed // closed under the consumer: reconnect
	if closing == "consumer" {
		wantErr = kombu.ErrConsumerStopped // stopped on purpose
	}
	if _, err := c.Receive(e.ctx); !errors.Is(err, wantErr) {
		e.t.Errorf("receive after the %s closed: %v, want %v", closing, err, wantErr)
	}
	c2 := e.consumer(nil, []kombu.Queue{q}, nil)
	redelivered := map[string]bool{}
	for range 3 {
		m := e.recv(c2)
		if _, dup := redelivered[string(m.Body)]; dup {
			e.t.Errorf("message %q delivered twice", m.Body)
		}
		redelivered[string(m.Body)] = m.Redelivered
		e.ack(m)
	}
	want := map[string]bool{"m0": true, "m1": true, "m2": false}
	for body, r := range want {
		if got, ok := redelivered[body]; !ok || got != r {
			e.t.Errorf("message %q: received %t, redelivered %t; want redelivered %t", body, ok, got, r)
		}
	}
	e.expectNone(c2)
}

// stoppedErr reports whether err says "stopped on purpose" and cannot be
// mistaken for a lost channel or connection, which a loop would retry.
func stoppedErr(err error) bool {
	return errors.Is(err, kombu.ErrConsumerStopped) && !errors.Is(err, kombu.ErrClosed) && !errors.Is(err, kombu.ErrConnectionLost)
}

// recvUnacked receives n messages without acking them.
func (e *env) recvUnacked(c *kombu.Consumer, n int) []string {
	e.t.Helper()
	var out []string
	for range n {
		out = append(out, string(e.recv(c).Body))
	}
	return out
}

func testConsumerClose(e *env) {
	q := e.simpleQueue("q")
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	if err := c.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	if err := c.Close(); err != nil {
		e.t.Errorf("second close: %v, want nil", err)
	}
	ctx, cancel := e.wait()
	defer cancel()
	if _, err := c.Receive(ctx); !stoppedErr(err) {
		e.t.Errorf("receive after close: %v, want ErrConsumerStopped and not ErrClosed", err)
	}
	h := kombu.HandlerFunc(func(context.Context, *kombu.Message) error { return nil })
	if err := c.Consume(ctx, h); !stoppedErr(err) {
		e.t.Errorf("consume after close: %v, want ErrConsumerStopped and not ErrClosed", err)
	}
	// The queue is still there and the connection still works.
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "x")
	if got := e.recvAck(e.consumer(nil, []kombu.Queue{q}, nil)); got != "x" {
		e.t.Errorf("received %q, want \"x\"", got)
	}
}

// testConsumerCloseShared closes a consumer that does not own its
// channel: the messages it fetched but did not hand out go back, the one
// it handed out stays with the caller, and the channel stays open.
func testConsumerCloseShared(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "0", "1", "2")
	e.eventuallyLen(q, 3)
	ch := e.channel(e.conn)
	ctx, cancel := e.wait()
	defer cancel()
	c, err := kombu.NewConsumer(ctx, ch, []kombu.Queue{q}, nil)
	if err != nil {
		e.t.Fatalf("consumer: %v", err)
	}
	m := e.recv(c)
	if err := c.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	if _, err := c.Receive(ctx); !stoppedErr(err) {
		e.t.Errorf("receive after close: %v, want ErrConsumerStopped and not ErrClosed", err)
	}
	// The delivery handed out before Close is still the caller's to ack.
	e.ack(m)
	if _, err := q.Declare(ctx, ch); err != nil {
		e.t.Errorf("the shared channel is unusable after the consumer closed: %v", err)
	}
	c2 := e.consumer(nil, []kombu.Queue{q}, nil)
	got := e.recvBodies(c2, 2)
	got = append(got, string(m.Body))
	slices.Sort(got)
	if !slices.Equal(got, []string{"0", "1", "2"}) {
		e.t.Errorf("received %q in all, want each of 0, 1, 2 once", got)
	}
	e.expectNone(c2)
}

// receiveErr runs c.Receive(ctx) in the background and reports its error.
func (e *env) receiveErr(ctx context.Context, c *kombu.Consumer) <-chan error {
	errc := make(chan error, 1)
	go func() {
		m, err := c.Receive(ctx)
		if err == nil {
			e.t.Errorf("unexpected message %q", m.Body)
		}
		errc <- err
	}()
	return errc
}

// awaitErr waits for errc and checks that the call returned want within
// promptly of since (when its context ended).
func (e *env) awaitErr(errc <-chan error, since time.Time, want error, what string) {
	e.t.Helper()
	select {
	case err := <-errc:
		if took := time.Since(since); took > promptly {
			e.t.Errorf("%s returned %v after the context ended, want within %v", what, took, promptly)
		}
		if !errors.Is(err, want) {
			e.t.Errorf("%s: %v, want %v", what, err, want)
		}
	case <-time.After(promptly + e.s.h.Timeout):
		e.t.Fatalf("%s did not return after its context ended", what)
	}
}

func testReceiveCancelled(e *env) {
	q := e.simpleQueue("q")
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	start := time.Now()
	e.awaitErr(e.receiveErr(ctx, c), start, context.Canceled, "Receive with a cancelled context")

	// Cancelled while blocked.
	ctx, cancel = context.WithCancel(e.ctx)
	errc := e.receiveErr(ctx, c)
	time.Sleep(50 * time.Millisecond) // let Receive block
	cancel()
	e.awaitErr(errc, time.Now(), context.Canceled, "Receive cancelled while waiting")

	// The consumer still works afterwards.
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "after")
	if got := e.recvAck(c); got != "after" {
		e.t.Errorf("received %q, want \"after\"", got)
	}
	ctx, cancel = context.WithCancel(e.ctx)
	cancel()
	if err := e.conn.DrainEvents(ctx); !errors.Is(err, context.Canceled) {
		e.t.Errorf("DrainEvents with a cancelled context: %v, want context.Canceled", err)
	}
}

// testReceiveCancelledKeepsFetched checks that Receive with a done
// context returns the context's error even when messages were already
// fetched for the consumer, and that those messages are not lost: the
// next Receive returns them, in order.
func testReceiveCancelledKeepsFetched(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "1", "2", "3")
	e.eventuallyLen(q, 3)
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	if got := e.recvAck(c); got != "1" {
		e.t.Errorf("received %q, want \"1\"", got)
	}
	// The fetch that returned "1" may have brought the others along.
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	for range 3 {
		if m, err := c.Receive(ctx); !errors.Is(err, context.Canceled) {
			e.t.Errorf("Receive with a done context returned %v, %v; want context.Canceled", m, err)
			if m != nil {
				e.ack(m)
			}
		}
	}
	if got := e.recvBodies(c, 2); fmt.Sprint(got) != "[2 3]" {
		e.t.Errorf("received %q after the cancelled receives, want [2 3]", got)
	}
	e.expectNone(c)
	e.eventuallyLen(q, 0)
}

func testReceiveDeadline(e *env) {
	q := e.simpleQueue("q")
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	ctx, cancel := context.WithTimeout(e.ctx, 100*time.Millisecond)
	defer cancel()
	deadline, _ := ctx.Deadline()
	errc := e.receiveErr(ctx, c)
	select {
	case err := <-errc:
		if time.Now().Before(deadline) {
			e.t.Errorf("Receive returned %v before its deadline", err)
		}
		if took := time.Since(deadline); took > promptly {
			e.t.Errorf("Receive returned %v after its deadline", took)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			e.t.Errorf("Receive past its deadline: %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(promptly + e.s.h.Timeout):
		e.t.Fatalf("Receive did not return after its deadline")
	}
}

func testConsumeCancelled(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	handled := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- c.Consume(ctx, kombu.HandlerFunc(func(context.Context, *kombu.Message) error {
			handled <- struct{}{}
			return nil
		}))
	}()
	e.sendTo(p, q.Name, "one")
	e.waitFor(handled, "the handler to run")
	cancel()
	e.awaitErr(errc, time.Now(), context.Canceled, "Consume after its context was cancelled")
}

func testShutdownWaits(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	// The consumer may fetch all four at once; only the first is handled
	// before Shutdown, and the others must go back to the queue.
	e.sendTo(p, q.Name, "slow", "rest-0", "rest-1", "rest-2")
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	started := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	var calls atomic.Int32
	var msg atomic.Pointer[kombu.Message]
	errc := make(chan error, 1)
	go func() {
		errc <- c.Consume(e.ctx, kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
			if calls.Add(1) > 1 {
				e.t.Errorf("handler called for %q after Shutdown began", m.Body)
				return nil
			}
			msg.Store(m)
			close(started)
			select {
			case <-release:
			case <-e.ctx.Done():
			}
			finished.Store(true)
			return nil
		}))
	}()
	e.waitFor(started, "the handler to start")
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := e.wait()
		defer cancel()
		shut <- c.Shutdown(ctx)
	}()
	select {
	case err := <-shut:
		e.t.Fatalf("Shutdown returned %v while a handler was running", err)
	case <-time.After(negativeWait):
	}
	close(release)
	select {
	case err := <-shut:
		if err != nil {
			e.t.Errorf("shutdown: %v", err)
		}
	case <-time.After(e.s.h.Timeout):
		e.t.Fatalf("Shutdown did not return after the handler finished")
	}
	if !finished.Load() {
		e.t.Errorf("Shutdown returned before the handler finished")
	}
	if m := msg.Load(); string(m.Body) != "slow" || m.State() != kombu.Acked {
		e.t.Errorf("message %q handled during shutdown is %v, want \"slow\", ACK", m.Body, m.State())
	}
	select {
	case err := <-errc:
		if !stoppedErr(err) {
			e.t.Errorf("Consume after Shutdown: %v, want ErrConsumerStopped and not ErrClosed", err)
		}
	case <-time.After(e.s.h.Timeout):
		e.t.Fatalf("Consume did not return after Shutdown")
	}
	if n := calls.Load(); n != 1 {
		e.t.Errorf("handler called %d times, want 1", n)
	}
	e.eventuallyLen(q, 3)
	rest := e.consumer(nil, []kombu.Queue{q}, nil)
	got := e.recvBodies(rest, 3)
	slices.Sort(got)
	if !slices.Equal(got, []string{"rest-0", "rest-1", "rest-2"}) {
		e.t.Errorf("after shutdown the queue held %q, want the three unhandled messages", got)
	}
	e.expectNone(rest)
}

// testCloseUnblocks checks that Receive, Consume and DrainEvents blocked on
// a connection return an error wrapping ErrClosed soon after it closes.
func testCloseUnblocks(e *env) {
	conn := e.dial(nil)
	q1, q2, q3 := e.simpleQueue("q1"), e.simpleQueue("q2"), e.simpleQueue("q3")
	puller := e.consumer(conn, []kombu.Queue{q1}, nil)
	handler := e.consumer(conn, []kombu.Queue{q2}, nil)
	e.consumer(conn, []kombu.Queue{q3}, &kombu.ConsumerOptions{Callbacks: []kombu.Callback{func(any, *kombu.Message) {}}})
	errs := map[string]chan error{"Receive": make(chan error, 1), "Consume": make(chan error, 1), "DrainEvents": make(chan error, 1)}
	go func() {
		_, err := puller.Receive(e.ctx)
		errs["Receive"] <- err
	}()
	go func() {
		errs["Consume"] <- handler.Consume(e.ctx, kombu.HandlerFunc(func(context.Context, *kombu.Message) error { return nil }))
	}()
	go func() { errs["DrainEvents"] <- conn.DrainEvents(e.ctx) }()
	time.Sleep(negativeWait) // let them block
	for op, ch := range errs {
		select {
		case err := <-ch:
			e.t.Fatalf("%s returned %v before the connection closed", op, err)
		default:
		}
	}
	closed := time.Now()
	if err := conn.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	for op, ch := range errs {
		e.awaitErr(ch, closed, kombu.ErrClosed, op+" blocked when the connection closed")
	}
}

// testConcurrentClose closes a busy connection from many goroutines at
// once: no panic, no deadlock, every Close returns nil, and the
// publisher and consumer see ErrClosed.
func testConcurrentClose(e *env) {
	conn := e.dial(nil)
	q := e.simpleQueue("q")
	p := e.producer(conn, nil)
	c := e.consumer(conn, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: 5})
	var wg sync.WaitGroup
	pubErr := make(chan error, 1)
	wg.Go(func() {
		for i := 0; ; i++ {
			if err := p.Publish(e.ctx, fmt.Sprint(i), &kombu.PublishOptions{RoutingKey: q.Name}); err != nil {
				pubErr <- err
				return
			}
		}
	})
	recvErr := make(chan error, 1)
	wg.Go(func() {
		for {
			m, err := c.Receive(e.ctx)
			if err != nil {
				recvErr <- err
				return
			}
			_ = m.Ack(e.ctx) // may fail once the connection is closing
		}
	})
	time.Sleep(50 * time.Millisecond) // let traffic flow
	var closers sync.WaitGroup
	start := make(chan struct{})
	for range 10 {
		closers.Go(func() {
			<-start
			if err := conn.Close(); err != nil {
				e.t.Errorf("concurrent close: %v", err)
			}
		})
	}
	close(start)
	done := make(chan struct{})
	go func() {
		closers.Wait()
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(e.s.h.Timeout):
		e.t.Fatalf("Close, Publish or Receive did not return after concurrent closes")
	}
	if err := <-pubErr; !errors.Is(err, kombu.ErrClosed) {
		e.t.Errorf("publish during close: %v, want ErrClosed", err)
	}
	if err := <-recvErr; !errors.Is(err, kombu.ErrClosed) {
		e.t.Errorf("receive during close: %v, want ErrClosed", err)
	}
}

// testConsumeCancelledInFlight cancels Consume's context while a handler
// runs: Consume waits for the handler, and its result still settles the
// message (acked here), so a graceful stop does not cause redeliveries.
func testConsumeCancelledInFlight(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "in flight")
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	started := make(chan *kombu.Message, 1)
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- c.Consume(ctx, kombu.HandlerFunc(func(_ context.Context, m *kombu.Message) error {
			started <- m
			select { // work that does not watch the context
			case <-release:
			case <-e.ctx.Done():
			}
			return nil
		}))
	}()
	m := e.take(started, "the handler to start")
	cancel()
	select {
	case err := <-errc:
		e.t.Fatalf("Consume returned %v before its running handler finished", err)
	case <-time.After(negativeWait):
	}
	close(release)
	e.awaitErr(errc, time.Now(), context.Canceled, "Consume after its handler finished")
	if m.State() != kombu.Acked {
		e.t.Errorf("message whose handler succeeded after the cancel is %v, want ACK", m.State())
	}
	if err := c.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	e.eventuallyLen(q, 0)
	e.expectNone(e.consumer(nil, []kombu.Queue{q}, nil))
}
