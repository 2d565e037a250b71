package kombu_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/workertest"
	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
	"github.com/kombu-go/kombu/transport/memory"
)

// link is a transport over one memory broker whose connections a test can
// cut, as a broker restart or a network failure does: the cut connection
// fails every call with ErrConnectionLost, its unacked messages go back to
// their queues and its exclusive queues are gone; dials to a host marked
// down fail.
type link struct {
	broker string
	mu     sync.Mutex
	down   map[string]bool // host -> dials fail
	conns  []*linkConn
	dials  atomic.Int32
}

func newLink(t *testing.T) (*link, *kombu.Options) {
	l := &link{broker: uniqueName(t), down: map[string]bool{}}
	reg := transport.NewRegistry()
	reg.Register("link", l)
	return l, &kombu.Options{Transports: reg, ConnectTimeout: time.Second}
}

func (l *link) Describe() driver.Description {
	d := memory.Description
	d.Name = "link"
	return d
}

func (l *link) OpenConnector(u *url.URL) (driver.Connector, error) {
	inner, err := memory.Transport.OpenConnector(&url.URL{Scheme: "memory", Host: l.broker})
	if err != nil {
		return nil, err
	}
	return connectorFunc(func(ctx context.Context) (driver.Conn, error) {
		l.dials.Add(1)
		l.mu.Lock()
		down := l.down[u.Host]
		l.mu.Unlock()
		if down {
			return nil, fmt.Errorf("%w: dial %s: connection refused", driver.ErrConnectionLost, u.Host)
		}
		c, err := inner.Connect(ctx)
		if err != nil {
			return nil, err
		}
		lc := &linkConn{Conn: c, host: u.Host}
		l.mu.Lock()
		l.conns = append(l.conns, lc)
		l.mu.Unlock()
		return lc, nil
	}), nil
}

// setDown makes dials to host fail (or work again).
func (l *link) setDown(host string, down bool) {
	l.mu.Lock()
	l.down[host] = down
	l.mu.Unlock()
}

// cut kills every live connection.
func (l *link) cut() {
	l.mu.Lock()
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()
	for _, c := range conns {
		c.dead.Store(true)
		_ = c.Conn.Close() // the broker requeues unacked messages
	}
}

type linkConn struct {
	driver.Conn
	host string
	dead atomic.Bool
}

var errCut = fmt.Errorf("%w: connection reset by peer", driver.ErrConnectionLost)

func (c *linkConn) lost(err error) error {
	if c.dead.Load() {
		return errCut
	}
	return err
}

func (c *linkConn) Ping(ctx context.Context) error {
	return c.lost(c.Conn.(driver.Pinger).Ping(ctx))
}

func (c *linkConn) Channel(ctx context.Context) (driver.Channel, error) {
	if c.dead.Load() {
		return nil, errCut
	}
	ch, err := c.Conn.Channel(ctx)
	if err != nil {
		return nil, c.lost(err)
	}
	return &linkChannel{Channel: ch, c: c}, nil
}

type linkChannel struct {
	driver.Channel
	c *linkConn
}

func (ch *linkChannel) Receive(ctx context.Context, max int) ([]*driver.Delivery, error) {
	ds, err := ch.Channel.Receive(ctx, max)
	if ch.c.dead.Load() {
		return nil, errCut
	}
	return ds, err
}

func (ch *linkChannel) Ack(ctx context.Context, tag uint64, multiple bool) error {
	return ch.c.lost(ch.Channel.Ack(ctx, tag, multiple))
}

func (ch *linkChannel) Publish(ctx context.Context, p *driver.Publishing) error {
	if ch.c.dead.Load() {
		return errCut
	}
	return ch.Channel.Publish(ctx, p)
}

func TestWorkerHandlesEveryMessageAndStops(t *testing.T) {
	workertest.NoLeaks(t)
	ctx, conn := dialMemory(t, nil)
	q := kombu.NewQueue("work", kombu.DefaultExchange, "work")
	ids := publishIDs(t, ctx, conn, q, "m", 200)
	l := workertest.NewLedger()
	ready := make(chan *kombu.Consumer, 1)
	w := workertest.New(t, conn, []kombu.Queue{q}, l.Handler(), &kombu.WorkerOptions{
		Consumer:       kombu.ConsumerOptions{Concurrency: 4},
		OnConsumeReady: func(c *kombu.Consumer) { ready <- c },
	})
	stop := workertest.Run(t, w)
	<-ready
	if !l.WaitAll(ids, 10*time.Second) {
		t.Error("not every message was handled")
	}
	stop()
	if lost, dup, unexpected := l.Check(ids); lost+dup+unexpected != 0 {
		t.Errorf("lost %d, duplicated %d, unexpected %d", lost, dup, unexpected)
	}
	if n, err := q.Len(ctx, mustChannel(t, ctx, conn)); err != nil || n != 0 {
		t.Errorf("queue holds %d (%v) after the worker handled everything", n, err)
	}
	conn.Close()
}

func mustChannel(t *testing.T, ctx context.Context, conn *kombu.Connection) *kombu.Channel {
	t.Helper()
	ch, err := conn.Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	return ch
}

// Shutdown lets the running handlers finish and acks their messages; the
// messages fetched but not handled go back to the queue.
func TestWorkerShutdownFinishesInFlightHandlers(t *testing.T) {
	workertest.NoLeaks(t)
	ctx, conn := dialMemory(t, nil)
	q := kombu.NewQueue("inflight", kombu.DefaultExchange, "inflight")
	publishIDs(t, ctx, conn, q, "m", 10)
	started := make(chan *kombu.Message, 10)
	release := make(chan struct{})
	var finished atomic.Int32
	w := workertest.New(t, conn, []kombu.Queue{q}, kombu.HandlerFunc(func(_ context.Context, m *kombu.Message) error {
		started <- m
		<-release
		finished.Add(1)
		return nil
	}), &kombu.WorkerOptions{Consumer: kombu.ConsumerOptions{Concurrency: 2}})
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(ctx) }()
	inFlight := []*kombu.Message{<-started, <-started}
	shut := make(chan error, 1)
	go func() { shut <- w.Shutdown(ctx) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v while handlers were running", err)
	case err := <-runErr:
		t.Fatalf("Run returned %v while handlers were running", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v, want nil", err)
	}
	if err := <-runErr; err != nil {
		t.Errorf("Run after Shutdown: %v, want nil", err)
	}
	if n := finished.Load(); n != 2 {
		t.Errorf("%d handlers finished, want the 2 in flight", n)
	}
	for _, m := range inFlight {
		if m.State() != kombu.Acked {
			t.Errorf("message %s handled during Shutdown is %v, want ACK", m.Body, m.State())
		}
	}
	if n, err := q.Len(ctx, mustChannel(t, ctx, conn)); err != nil || n != 8 {
		t.Errorf("queue holds %d (%v) after Shutdown, want the 8 unhandled", n, err)
	}
	conn.Close()
}

func TestWorkerRunReturnsNilWhenCtxEnds(t *testing.T) {
	workertest.NoLeaks(t)
	ctx, conn := dialMemory(t, nil)
	runCtx, cancel := context.WithCancel(ctx)
	w := workertest.New(t, conn, []kombu.Queue{kombu.NewQueue("ctxend", kombu.DefaultExchange, "")},
		kombu.HandlerFunc(func(context.Context, *kombu.Message) error { return nil }),
		&kombu.WorkerOptions{OnConsumeReady: func(*kombu.Consumer) { cancel() }})
	if err := w.Run(runCtx); err != nil {
		t.Errorf("Run after its ctx ended: %v, want nil", err)
	}
	select {
	case <-w.Done():
	default:
		t.Error("Done is not closed after Run returned")
	}
	if err := w.Run(ctx); !errors.Is(err, kombu.ErrInvalidArgument) {
		t.Errorf("second Run: %v, want ErrInvalidArgument", err)
	}
	if _, err := w.Producer(ctx); !errors.Is(err, kombu.ErrConsumerStopped) {
		t.Errorf("Producer after Run: %v, want ErrConsumerStopped", err)
	}
	conn.Close()
}

func TestWorkerShutdownBeforeRun(t *testing.T) {
	ctx, conn := dialMemory(t, nil)
	w := workertest.New(t, conn, []kombu.Queue{kombu.NewQueue("early", kombu.DefaultExchange, "")},
		kombu.HandlerFunc(func(context.Context, *kombu.Message) error { return nil }), nil)
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Run(ctx); err != nil {
		t.Errorf("Run after Shutdown: %v, want nil at once", err)
	}
}

func TestNewWorkerRefusesBadArguments(t *testing.T) {
	_, conn := dialMemory(t, nil)
	q := []kombu.Queue{kombu.NewQueue("bad", kombu.DefaultExchange, "")}
	h := kombu.HandlerFunc(func(context.Context, *kombu.Message) error { return nil })
	for name, f := range map[string]func() (*kombu.Worker, error){
		"nil connection": func() (*kombu.Worker, error) { return kombu.NewWorker(nil, q, h, nil) },
		"no queue":       func() (*kombu.Worker, error) { return kombu.NewWorker(conn, nil, h, nil) },
		"nil handler":    func() (*kombu.Worker, error) { return kombu.NewWorker(conn, q, kombu.HandlerFunc(nil), nil) },
		"callbacks": func() (*kombu.Worker, error) {
			return kombu.NewWorker(conn, q, h, &kombu.WorkerOptions{Consumer: kombu.ConsumerOptions{OnMessage: func(*kombu.Message) {}}})
		},
		"prefetch": func() (*kombu.Worker, error) {
			return kombu.NewWorker(conn, q, h, &kombu.WorkerOptions{Consumer: kombu.ConsumerOptions{PrefetchCount: 70000}})
		},
		"negative retries": func() (*kombu.Worker, error) {
			return kombu.NewWorker(conn, q, h, &kombu.WorkerOptions{MaxRetries: -1})
		},
	} {
		if w, err := f(); w != nil || !errors.Is(err, kombu.ErrInvalidArgument) {
			t.Errorf("%s: %v, %v; want ErrInvalidArgument", name, w, err)
		}
	}
}

// A lost connection is noticed, reported with the backoff, and the worker
// reconnects, declares its exclusive queue and its binding again (the
// broker deleted them with the old connection) and goes on: nothing lost.
func TestWorkerResumesAfterConnectionLoss(t *testing.T) {
	workertest.NoLeaks(t)
	l, opts := newLink(t)
	conn, err := kombu.NewConnection("link://a", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ex := kombu.NewExchange("jobs", "direct")
	q := kombu.Queue{Name: "resume", Exchange: ex, RoutingKey: "job", Exclusive: true}
	led := workertest.NewLedger()
	var mu sync.Mutex
	var waits []time.Duration
	var revived atomic.Int32
	ready := make(chan struct{}, 10)
	w := workertest.New(t, conn, []kombu.Queue{q}, led.Handler(), &kombu.WorkerOptions{
		Consumer:      kombu.ConsumerOptions{Concurrency: 3},
		IntervalStart: 10 * time.Millisecond, IntervalStep: 20 * time.Millisecond, IntervalMax: 45 * time.Millisecond,
		OnConnectionError: func(err error, next time.Duration) {
			if !errors.Is(err, kombu.ErrConnectionLost) {
				t.Errorf("connection error %v does not wrap ErrConnectionLost", err)
			}
			mu.Lock()
			waits = append(waits, next)
			n := len(waits)
			mu.Unlock()
			if n == 4 { // four failed attempts, then the broker is back
				l.setDown("a", false)
			}
		},
		OnConnectionRevived: func() { revived.Add(1) },
		OnConsumeReady:      func(*kombu.Consumer) { ready <- struct{}{} },
	})
	stop := workertest.Run(t, w)
	<-ready
	pubConn, err := kombu.NewConnection("link://pub", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer pubConn.Close()
	first := publishIDs(t, ctx, pubConn, kombu.Queue{Name: q.Name, Exchange: ex, RoutingKey: "job", NoDeclare: true}, "a", 100)
	if !led.WaitAll(first, 10*time.Second) {
		t.Fatal("first batch not handled")
	}
	l.setDown("a", true)
	l.cut() // the publisher's connection too
	if err := pubConn.Reconnect(ctx, false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not consume again after the connection came back")
	}
	// The exclusive queue died with the old connection: only the worker's
	// re-declaration (queue and binding) lets these reach it.
	second := publishIDs(t, ctx, pubConn, kombu.Queue{Name: q.Name, Exchange: ex, RoutingKey: "job", NoDeclare: true}, "b", 100)
	all := append(first, second...)
	if !led.WaitAll(all, 10*time.Second) {
		t.Error("second batch not handled after the reconnect")
	}
	stop()
	if lost, dup, unexpected := led.Check(all); lost+unexpected != 0 {
		t.Errorf("lost %d, duplicated %d, unexpected %d", lost, dup, unexpected)
	}
	mu.Lock()
	defer mu.Unlock()
	// Attempt 1 reports the loss, 2-4 the refused dials; then it works.
	want := []time.Duration{10 * time.Millisecond, 30 * time.Millisecond, 45 * time.Millisecond, 45 * time.Millisecond}
	if fmt.Sprint(waits) != fmt.Sprint(want) {
		t.Errorf("waits %v, want %v", waits, want)
	}
	if n := revived.Load(); n != 1 {
		t.Errorf("OnConnectionRevived called %d times, want 1", n)
	}
}

// With a failover list, a worker whose broker is gone moves to the next
// URL.
func TestWorkerFailsOverToTheNextURL(t *testing.T) {
	workertest.NoLeaks(t)
	l, opts := newLink(t)
	conn, err := kombu.NewConnection("link://a;link://b", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := kombu.NewQueue("failover", kombu.DefaultExchange, "failover")
	led := workertest.NewLedger()
	ready := make(chan string, 10)
	w := workertest.New(t, conn, []kombu.Queue{q}, led.Handler(), &kombu.WorkerOptions{
		IntervalStart: time.Millisecond, IntervalStep: time.Millisecond, IntervalMax: 5 * time.Millisecond,
		OnConnectionError: func(error, time.Duration) {},
		OnConsumeReady:    func(*kombu.Consumer) { ready <- conn.Info().Hostname },
	})
	stop := workertest.Run(t, w)
	if host := <-ready; host != "a" {
		t.Fatalf("first consumed on %q, want a", host)
	}
	l.setDown("a", true)
	l.cut()
	select {
	case host := <-ready:
		if host != "b" {
			t.Errorf("after a went down the worker consumes on %q, want b", host)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not fail over")
	}
	ids := publishIDs(t, ctx, conn, q, "m", 20)
	if !led.WaitAll(ids, 10*time.Second) {
		t.Error("messages not handled after the failover")
	}
	stop()
}

// MaxRetries bounds the consecutive failures; then Run returns the last
// error, which is told apart from a stop by being non-nil and wrapping
// the cause.
func TestWorkerGivesUpAfterMaxRetries(t *testing.T) {
	l, opts := newLink(t)
	l.setDown("a", true)
	conn, err := kombu.NewConnection("link://a", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var calls atomic.Int32
	w := workertest.New(t, conn, []kombu.Queue{kombu.NewQueue("never", kombu.DefaultExchange, "")},
		kombu.HandlerFunc(func(context.Context, *kombu.Message) error { return nil }),
		&kombu.WorkerOptions{MaxRetries: 3, IntervalStart: time.Millisecond, IntervalStep: time.Millisecond,
			OnConnectionError: func(error, time.Duration) { calls.Add(1) }})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = w.Run(ctx)
	if !errors.Is(err, kombu.ErrConnectionLost) || errors.Is(err, kombu.ErrConsumerStopped) {
		t.Errorf("Run: %v, want an error wrapping ErrConnectionLost", err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("OnConnectionError called %d times, want 3", n)
	}
	if n := l.dials.Load(); n != 4 {
		t.Errorf("%d dials, want 4 (the first and 3 retries)", n)
	}
}

// An error no retry can fix ends Run at once.
func TestWorkerReturnsAtOnceOnInvalidTopology(t *testing.T) {
	ctx, conn := dialMemory(t, nil)
	var calls atomic.Int32
	w := workertest.New(t, conn, []kombu.Queue{{Name: "bad-ttl", MessageTTL: time.Microsecond}},
		kombu.HandlerFunc(func(context.Context, *kombu.Message) error { return nil }),
		&kombu.WorkerOptions{OnConnectionError: func(error, time.Duration) { calls.Add(1) }})
	if err := w.Run(ctx); !errors.Is(err, kombu.ErrInvalidArgument) {
		t.Errorf("Run: %v, want ErrInvalidArgument", err)
	}
	if calls.Load() != 0 {
		t.Error("an invalid queue was retried")
	}
}

// A consumer that ends alone (its queue deleted) is re-created on the
// same connection: the queue is declared again, nobody else's channel is
// closed.
func TestWorkerRedeclaresADeletedQueueWithoutReconnecting(t *testing.T) {
	workertest.NoLeaks(t)
	opts, f := flakyRegistry(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kombu.Dial(ctx, "flaky://up-"+uniqueName(t)+":1", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q := kombu.NewQueue("deleted", kombu.DefaultExchange, "deleted")
	led := workertest.NewLedger()
	ready := make(chan struct{}, 10)
	var reported atomic.Value
	w := workertest.New(t, conn, []kombu.Queue{q}, led.Handler(), &kombu.WorkerOptions{
		IntervalStart:     time.Millisecond,
		OnConnectionError: func(err error, _ time.Duration) { reported.Store(err) },
		OnConsumeReady:    func(*kombu.Consumer) { ready <- struct{}{} },
	})
	other := mustChannel(t, ctx, conn)
	stop := workertest.Run(t, w)
	<-ready
	if _, err := q.Delete(ctx, other, false, false); err != nil {
		t.Fatal(err)
	}
	f.endQueue.Store(q.Name) // as AMQP ends the consumers of a deleted queue
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not consume again after its queue was deleted")
	}
	var ce *kombu.ConsumerError
	if err, _ := reported.Load().(error); !errors.As(err, &ce) {
		t.Errorf("reported %v, want a *ConsumerError", err)
	}
	ids := publishIDs(t, ctx, conn, kombu.Queue{Name: q.Name, RoutingKey: q.Name, NoDeclare: true}, "m", 10)
	if !led.WaitAll(ids, 10*time.Second) {
		t.Error("messages not handled after the queue was declared again")
	}
	if _, err := q.Len(ctx, other); err != nil {
		t.Errorf("the other channel of the connection was closed: %v", err)
	}
	if n := f.dials.Load(); n != 1 {
		t.Errorf("%d dials, want 1: the connection worked, no reconnect was needed", n)
	}
	stop()
}

// Concurrency N runs N handlers at once, and the prefetch window (N by
// default) keeps the rest in the queue for other workers.
func TestWorkerConcurrencyKeepsToPrefetch(t *testing.T) {
	workertest.NoLeaks(t)
	ctx, conn := dialMemory(t, nil)
	q := kombu.NewQueue("prefetch", kombu.DefaultExchange, "prefetch")
	publishIDs(t, ctx, conn, q, "m", 20)
	var running, peak atomic.Int32
	started := make(chan struct{}, 20)
	release := make(chan struct{})
	w := workertest.New(t, conn, []kombu.Queue{q}, kombu.HandlerFunc(func(context.Context, *kombu.Message) error {
		n := running.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		started <- struct{}{}
		<-release
		running.Add(-1)
		return nil
	}), &kombu.WorkerOptions{Consumer: kombu.ConsumerOptions{Concurrency: 3}})
	stop := workertest.Run(t, w)
	for range 3 {
		<-started
	}
	time.Sleep(50 * time.Millisecond) // room for a fourth fetch, which must not come
	if n, err := q.Len(ctx, mustChannel(t, ctx, conn)); err != nil || n != 17 {
		t.Errorf("queue holds %d (%v) with 3 handlers busy, want 17: the worker took more than its prefetch", n, err)
	}
	close(release)
	for range 17 {
		<-started
	}
	stop()
	if p := peak.Load(); p != 3 {
		t.Errorf("peak concurrency %d, want 3", p)
	}
}

// A handler publishes through the worker's producer (kombu's
// ConsumerProducerMixin); a message that cannot be decoded goes to
// OnDecodeError and the worker goes on.
func TestWorkerProducerAndDecodeError(t *testing.T) {
	workertest.NoLeaks(t)
	ctx, conn := dialMemory(t, nil)
	in := kombu.NewQueue("requests", kombu.DefaultExchange, "requests")
	out := kombu.NewQueue("replies", kombu.DefaultExchange, "replies")
	var decodeErrs atomic.Int32
	w := workertest.New(t, conn, []kombu.Queue{in}, kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
		var n int
		if err := m.Decode(&n); err != nil {
			return err
		}
		w, _ := kombu.WorkerFromContext(ctx)
		p, err := w.Producer(ctx)
		if err != nil {
			return err
		}
		return p.Publish(ctx, n*2, &kombu.PublishOptions{RoutingKey: out.Name, Declare: []kombu.Declarable{out}})
	}), &kombu.WorkerOptions{
		Declare:       []kombu.Declarable{out},
		OnDecodeError: func(m *kombu.Message, err error) { decodeErrs.Add(1) },
	})
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, "<x/>", &kombu.PublishOptions{RoutingKey: in.Name, ContentType: "application/xml", Declare: []kombu.Declarable{in}}); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, 21, &kombu.PublishOptions{RoutingKey: in.Name}); err != nil {
		t.Fatal(err)
	}
	stop := workertest.Run(t, w)
	c, err := conn.Consumer(ctx, []kombu.Queue{out}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	defer rcancel()
	m, err := c.Receive(rctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Body) != "42" {
		t.Errorf("reply %s, want 42", m.Body)
	}
	_ = m.Ack(ctx)
	c.Close()
	stop()
	if n := decodeErrs.Load(); n != 1 {
		t.Errorf("OnDecodeError called %d times, want 1", n)
	}
}

// Shutdown while the broker is down ends the reconnect wait at once; the
// consumer that ended reported why to OnConsumeEnd.
func TestWorkerShutdownDuringReconnectWait(t *testing.T) {
	workertest.NoLeaks(t)
	l, opts := newLink(t)
	conn, err := kombu.NewConnection("link://a", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ready := make(chan struct{}, 1)
	waiting := make(chan struct{}, 1)
	ended := make(chan error, 1)
	w := workertest.New(t, conn, []kombu.Queue{kombu.NewQueue("down", kombu.DefaultExchange, "")},
		kombu.HandlerFunc(func(context.Context, *kombu.Message) error { return nil }),
		&kombu.WorkerOptions{
			IntervalStart: time.Hour, IntervalMax: time.Hour,
			OnConsumeReady: func(*kombu.Consumer) { ready <- struct{}{} },
			OnConsumeEnd:   func(err error) { ended <- err },
			OnConnectionError: func(error, time.Duration) {
				select {
				case waiting <- struct{}{}:
				default:
				}
			},
		})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(ctx) }()
	<-ready
	l.setDown("a", true)
	l.cut()
	<-waiting // Run now waits an hour before the next attempt
	if err := <-ended; !errors.Is(err, kombu.ErrConnectionLost) {
		t.Errorf("OnConsumeEnd got %v, want the lost connection", err)
	}
	start := time.Now()
	if err := w.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-runErr; err != nil {
		t.Errorf("Run: %v, want nil after Shutdown", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Shutdown took %v during a reconnect wait", d)
	}
}

// publishIDs publishes ids as raw bodies to queue q (declared first).
func publishIDs(t *testing.T, ctx context.Context, conn *kombu.Connection, q kombu.Queue, prefix string, n int) []string {
	t.Helper()
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = prefix + strconv.Itoa(i)
		if err := p.Publish(ctx, []byte(ids[i]), &kombu.PublishOptions{RoutingKey: q.RoutingKey, Exchange: &q.Exchange, Declare: []kombu.Declarable{q}}); err != nil {
			t.Fatalf("publish %s: %v", ids[i], err)
		}
	}
	return ids
}
