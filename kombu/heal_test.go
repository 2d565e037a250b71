package kombu_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport/memory"
)

// healing is a memory connector whose connections can be killed (their
// Lost channel closes, as amqp's does when the broker goes away), whose
// dials can hang (a blackholed broker) and whose Close can hang.
type healing struct {
	inner     driver.Connector
	dials     atomic.Int32
	hangDial  atomic.Bool
	down      atomic.Bool // dials fail at once with ErrConnectionLost
	refused   atomic.Bool // dials fail with ErrAccessRefused
	closeWait chan struct{}
	dialGate  chan struct{} // when set, dials wait for it, ignoring ctx, then succeed

	mu    sync.Mutex
	conns []*healingConn
}

func newHealing(t *testing.T) *healing {
	return &healing{inner: memory.NewConnector(&memory.Options{Broker: uniqueName(t)})}
}

func (h *healing) Connect(ctx context.Context) (driver.Conn, error) {
	h.dials.Add(1)
	if h.dialGate != nil {
		<-h.dialGate
	}
	switch {
	case h.hangDial.Load():
		<-ctx.Done()
		return nil, fmt.Errorf("%w: dial: %w", driver.ErrConnectionLost, ctx.Err())
	case h.down.Load():
		return nil, fmt.Errorf("%w: dial: connection refused", driver.ErrConnectionLost)
	case h.refused.Load():
		return nil, fmt.Errorf("%w: login refused", driver.ErrAccessRefused)
	}
	c, err := h.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	hc := &healingConn{Conn: c, lost: make(chan struct{}), closeWait: h.closeWait}
	h.mu.Lock()
	h.conns = append(h.conns, hc)
	h.mu.Unlock()
	return hc, nil
}

// kill breaks the live connection (its channels fail with ErrClosed) and
// makes it report itself lost.
func (h *healing) kill() {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.conns[len(h.conns)-1]
	_ = c.Conn.Close()
	c.once.Do(func() { close(c.lost) })
}

type healingConn struct {
	driver.Conn
	lost      chan struct{}
	once      sync.Once
	closeWait chan struct{}
}

func (c *healingConn) Lost() <-chan struct{} { return c.lost }

func (c *healingConn) Close() error {
	if c.closeWait != nil {
		<-c.closeWait
	}
	c.once.Do(func() { close(c.lost) })
	return c.Conn.Close()
}

// TestLostConnectionIsDropped: a connection the transport reports lost is
// not Connected, and the next operation dials again by itself.
func TestLostConnectionIsDropped(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	h := newHealing(t)
	conn := kombu.NewConnectionFromConnector(h, nil)
	defer conn.Close()
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := kombu.NewQueue("healed", kombu.DefaultExchange, "")
	h.kill()
	if conn.Connected() {
		t.Fatal("Connected() is true after the transport reported the connection lost")
	}
	if err := p.Publish(ctx, "x", &kombu.PublishOptions{RoutingKey: q.Name, Declare: []kombu.Declarable{q}}); err != nil {
		t.Fatalf("publish after a loss, without Retry: %v", err)
	}
	if !conn.Connected() || h.dials.Load() != 2 {
		t.Fatalf("connected %v after %d dials, want a lazy redial (2)", conn.Connected(), h.dials.Load())
	}
}

// TestReconnectKeepsToCtx: closing the old connection hangs and the broker
// does not answer dials; Reconnect still returns when its ctx ends, and
// Close waits for the background close it left.
func TestReconnectKeepsToCtx(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h := newHealing(t)
	h.closeWait = make(chan struct{})
	conn := kombu.NewConnectionFromConnector(h, &kombu.Options{ConnectTimeout: time.Minute})
	if err := conn.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.hangDial.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := conn.Reconnect(ctx, false)
	if el := time.Since(start); el > time.Second {
		t.Fatalf("Reconnect with a 200 ms ctx took %v", el)
	}
	if err == nil {
		t.Fatal("Reconnect to a hung broker returned nil")
	}
	closed := make(chan error, 1)
	go func() { closed <- conn.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned before the old connection's close ended")
	case <-time.After(50 * time.Millisecond):
	}
	close(h.closeWait)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs")
	}
}

// TestDialDoesNotBlockOthers: while one caller dials a hung broker, another
// caller's ctx still bounds its wait and Connected answers at once.
func TestDialDoesNotBlockOthers(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h := newHealing(t)
	h.hangDial.Store(true)
	conn := kombu.NewConnectionFromConnector(h, &kombu.Options{ConnectTimeout: time.Minute})
	longCtx, cancelLong := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { first <- conn.Connect(longCtx) }()
	for h.dials.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if conn.Connected() || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("Connected() during a dial: took %v", time.Since(start))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := conn.Connect(ctx); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("second Connect: %v after %v, want its own deadline", err, time.Since(start))
	}
	// Close cancels the dial in progress and waits for it.
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	if h.dials.Load() != 1 {
		t.Fatalf("%d dials, want 1: the waiting caller must not dial too", h.dials.Load())
	}
	select {
	case err := <-first:
		if err == nil {
			t.Fatal("the cancelled dial returned nil")
		}
	case <-time.After(time.Second):
		t.Fatal("Close did not cancel the dial in progress")
	}
	cancelLong()
}

// TestEnsureRetriesOnlyWhatCannotHaveHappened: connection failures are
// retried after a reconnect; outcome-unknown and refused errors are not.
func TestEnsureRetriesOnlyWhatCannotHaveHappened(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	h := newHealing(t)
	conn := kombu.NewConnectionFromConnector(h, nil)
	defer conn.Close()
	var waits []time.Duration
	policy := &kombu.RetryPolicy{MaxRetries: 5, IntervalStart: time.Millisecond, IntervalStep: time.Millisecond,
		OnRetry: func(err error, wait time.Duration) {
			if !errors.Is(err, kombu.ErrConnectionLost) {
				t.Errorf("OnRetry got %v", err)
			}
			waits = append(waits, wait)
		}}
	calls := 0
	err := conn.Ensure(ctx, policy, func(ctx context.Context) error {
		calls++
		if calls <= 2 {
			return fmt.Errorf("%w: broken pipe", kombu.ErrConnectionLost)
		}
		return conn.Ping(ctx)
	})
	if err != nil || calls != 3 || fmt.Sprint(waits) != "[1ms 2ms]" {
		t.Fatalf("err %v after %d calls, waits %v; want nil after 3, [1ms 2ms]", err, calls, waits)
	}
	for _, notRetried := range []error{
		fmt.Errorf("%w: %w", kombu.ErrUnconfirmed, fmt.Errorf("%w: channel closed", kombu.ErrConnectionLost)),
		fmt.Errorf("%w: no confirm", kombu.ErrTimeout),
		kombu.ErrNacked,
		context.DeadlineExceeded,
		kombu.ErrPreconditionFailed,
	} {
		calls = 0
		err := conn.Ensure(ctx, policy, func(context.Context) error { calls++; return notRetried })
		if calls != 1 || !errors.Is(err, notRetried) {
			t.Errorf("%v: %d calls, err %v; want 1 call and the error itself", notRetried, calls, err)
		}
	}
	calls = 0
	err = conn.Ensure(ctx, &kombu.RetryPolicy{MaxRetries: 2, IntervalStep: time.Millisecond}, func(context.Context) error {
		calls++
		return kombu.ErrConnectionLost
	})
	if calls != 3 || !errors.Is(err, kombu.ErrConnectionLost) {
		t.Fatalf("retries exhausted: %d calls, err %v; want 3 and the last error", calls, err)
	}
}

// TestEnsureRevivesProducerAndConsumer: after a reconnect, a producer and
// a consumer bound to channels of the lost connection move to the new
// default channel and work.
func TestEnsureRevivesProducerAndConsumer(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := newHealing(t)
	conn := kombu.NewConnectionFromConnector(h, nil)
	defer conn.Close()
	ch, err := conn.Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	q := kombu.NewQueue("revived", kombu.DefaultExchange, "")
	p, err := kombu.NewProducer(ctx, ch, &kombu.ProducerOptions{RoutingKey: q.Name})
	if err != nil {
		t.Fatal(err)
	}
	c, err := kombu.NewConsumer(ctx, ch, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: 5})
	if err != nil {
		t.Fatal(err)
	}
	h.kill()
	tries := 0
	roundTrip := func(ctx context.Context) error {
		tries++
		if err := p.Publish(ctx, "after the loss", nil); err != nil {
			return err
		}
		m, err := c.Receive(ctx)
		if err != nil {
			return err
		}
		if body, err := m.Payload(); err != nil || body != "after the loss" {
			return fmt.Errorf("got %v, %v", body, err)
		}
		return m.Ack(ctx)
	}
	if err := conn.Ensure(ctx, &kombu.RetryPolicy{IntervalStep: time.Millisecond}, roundTrip, p, c); err != nil {
		t.Fatal(err)
	}
	if tries != 2 || p.Channel() == ch || c.Channel() == ch || c.Channel() != p.Channel() {
		t.Fatalf("%d tries; producer and consumer must share the new default channel", tries)
	}
}

// TestAutoretryRunsOnTheNewDefaultChannel: an Autoretry function gets a
// live channel on every try.
func TestAutoretryRunsOnTheNewDefaultChannel(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	h := newHealing(t)
	conn := kombu.NewConnectionFromConnector(h, nil)
	defer conn.Close()
	q := kombu.NewQueue("auto", kombu.DefaultExchange, "")
	var seen []*kombu.Channel
	declare := conn.Autoretry(&kombu.RetryPolicy{IntervalStep: time.Millisecond}, func(ctx context.Context, ch *kombu.Channel) error {
		seen = append(seen, ch)
		if len(seen) == 1 {
			h.kill()
			return fmt.Errorf("%w: reset", kombu.ErrConnectionLost)
		}
		_, err := q.Declare(ctx, ch)
		return err
	})
	if err := declare(ctx); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[0] == seen[1] {
		t.Fatalf("channels %v: want two different ones", seen)
	}
}

// TestEnsureConnectionWaitsForTheBroker retries dials until the broker is
// back, and gives up at once on refused credentials.
func TestEnsureConnectionWaitsForTheBroker(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	h := newHealing(t)
	h.down.Store(true)
	conn := kombu.NewConnectionFromConnector(h, nil)
	defer conn.Close()
	retries := 0
	err := conn.EnsureConnection(ctx, &kombu.RetryPolicy{MaxRetries: 10, IntervalStep: time.Millisecond,
		OnRetry: func(err error, _ time.Duration) {
			if retries++; retries == 3 {
				h.down.Store(false)
			}
		}})
	if err != nil || retries != 3 || !conn.Connected() {
		t.Fatalf("err %v after %d retries, connected %v", err, retries, conn.Connected())
	}
	h.kill()
	h.refused.Store(true)
	retries = 0
	err = conn.EnsureConnection(ctx, &kombu.RetryPolicy{MaxRetries: 10, OnRetry: func(error, time.Duration) { retries++ }})
	if !errors.Is(err, kombu.ErrAccessRefused) || retries != 0 {
		t.Fatalf("refused login: %v after %d retries, want ErrAccessRefused at once", err, retries)
	}
}

// TestFailoverStrategiesAndHook: OnFailover reports each move; a lost
// connection retried under Ensure moves to the next URL; shuffle moves
// only to other URLs and reaches them all.
func TestFailoverStrategiesAndHook(t *testing.T) {
	ctx := context.Background()
	opts, _ := flakyRegistry(t)
	var moves []string
	opts.OnFailover = func(from, to string, err error) {
		moves = append(moves, fmt.Sprintf("%s->%s:%v", from, to, errors.Is(err, kombu.ErrConnectionLost)))
	}
	name := uniqueName(t)
	conn, err := kombu.NewConnection("flaky://down:1;flaky://"+name+"-a:2;flaky://"+name+"-b:3", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	calls := 0
	err = conn.Ensure(ctx, &kombu.RetryPolicy{IntervalStep: time.Millisecond}, func(ctx context.Context) error {
		if calls++; calls == 1 {
			return kombu.ErrConnectionLost
		}
		return conn.Ping(ctx)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"flaky://down:1->flaky://" + name + "-a:2:true", "flaky://" + name + "-a:2->flaky://" + name + "-b:3:true"}
	if !slices.Equal(moves, want) || conn.Info().Port != 3 {
		t.Fatalf("moves %q, now on port %d; want %q and port 3", moves, conn.Info().Port, want)
	}

	if _, err := kombu.NewConnection("memory://", &kombu.Options{FailoverStrategy: "random"}); !errors.Is(err, kombu.ErrInvalidArgument) {
		t.Fatalf("unknown strategy: %v, want ErrInvalidArgument", err)
	}

	opts.OnFailover = nil
	opts.FailoverStrategy = kombu.FailoverShuffle
	urls := ""
	for i := range 4 {
		urls += fmt.Sprintf(";flaky://%s-s%d:%d", name, i, 10+i)
	}
	shuffled, err := kombu.NewConnection(urls[1:], opts)
	if err != nil {
		t.Fatal(err)
	}
	defer shuffled.Close()
	visited := map[int]bool{}
	for range 60 {
		before := shuffled.Info().Port
		if err := shuffled.Reconnect(ctx, true); err != nil {
			t.Fatal(err)
		}
		after := shuffled.Info().Port
		if after == before {
			t.Fatalf("shuffle failed over from port %d to itself", before)
		}
		visited[after] = true
	}
	if len(visited) != 4 {
		t.Fatalf("shuffle reached ports %v, want all 4", visited)
	}
}

// TestDrainEventsReportsALostConnection: DrainEvents returns
// ErrConnectionLost once the connection its consumers were on is gone,
// so a drain loop knows to reconnect instead of waiting for nothing.
func TestDrainEventsReportsALostConnection(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h := newHealing(t)
	conn := kombu.NewConnectionFromConnector(h, nil)
	defer conn.Close()
	q := kombu.NewQueue("drained", kombu.DefaultExchange, "")
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{Callbacks: []kombu.Callback{func(any, *kombu.Message) {}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h.kill()
	if err := conn.DrainEvents(ctx); !errors.Is(err, kombu.ErrConnectionLost) {
		t.Fatalf("DrainEvents after the loss: %v, want ErrConnectionLost", err)
	}
}

// TestProducerDeclareAndConsumerRevive: Producer.Declare declares the
// exchange now; Consumer.Revive moves a consumer whose connection was
// replaced to a channel of the new one, where it receives again.
func TestProducerDeclareAndConsumerRevive(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn := kombu.NewConnectionFromConnector(newHealing(t), nil)
	defer conn.Close()
	ex := kombu.NewExchange("declared", kombu.Direct)
	p, err := conn.Producer(ctx, &kombu.ProducerOptions{Exchange: ex, RoutingKey: "k", NoDeclare: true})
	if err != nil {
		t.Fatal(err)
	}
	passive := kombu.Exchange{Name: ex.Name, Type: ex.Type, Passive: true}
	if err := passive.Declare(ctx, p.Channel()); !errors.Is(err, kombu.ErrNotFound) {
		t.Fatalf("NoDeclare producer: exchange lookup %v, want ErrNotFound", err)
	}
	ch, _ := conn.Channel(ctx)
	if err := p.Declare(ctx); err != nil {
		t.Fatal(err)
	}
	if err := passive.Declare(ctx, ch); err != nil {
		t.Fatalf("after Producer.Declare: %v", err)
	}

	q := kombu.NewQueue("revived-consumer", ex, "k")
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := conn.Reconnect(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Receive(ctx); !errors.Is(err, kombu.ErrClosed) {
		t.Fatalf("receive on the dropped channel: %v, want ErrClosed", err)
	}
	newCh, err := conn.Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Revive(ctx, newCh); err != nil {
		t.Fatal(err)
	}
	if err := p.Revive(ctx, newCh); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, "again", nil); err != nil {
		t.Fatal(err)
	}
	m, err := c.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := m.Payload(); body != "again" {
		t.Fatalf("got %v", body)
	}
	if err := m.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	other := kombu.NewConnectionFromConnector(newHealing(t), nil)
	defer other.Close()
	otherCh, err := other.Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Revive(ctx, otherCh); !errors.Is(err, kombu.ErrInvalidArgument) {
		t.Fatalf("revive onto another connection's channel: %v, want ErrInvalidArgument", err)
	}
}

// TestCloseDuringASuccessfulDial: a dial that succeeds after Close began
// is closed by the dialer, which returns ErrClosed; nothing leaks.
func TestCloseDuringASuccessfulDial(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h := newHealing(t)
	h.dialGate = make(chan struct{})
	conn := kombu.NewConnectionFromConnector(h, nil)
	dialed := make(chan error, 1)
	go func() { dialed <- conn.Connect(context.Background()) }()
	for h.dials.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan error, 1)
	go func() { closed <- conn.Close() }()
	time.Sleep(20 * time.Millisecond)
	close(h.dialGate)
	for name, ch := range map[string]chan error{"Connect": dialed, "Close": closed} {
		select {
		case err := <-ch:
			if name == "Connect" && !errors.Is(err, kombu.ErrClosed) {
				t.Errorf("Connect: %v, want ErrClosed", err)
			}
			if name == "Close" && err != nil {
				t.Errorf("Close: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s hangs", name)
		}
	}
}
