package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/faulttest"
	"github.com/kombu-go/kombu/kombu"
	_ "github.com/kombu-go/kombu/transport/amqp"
	_ "github.com/kombu-go/kombu/transport/redis"
)

func TestMain(m *testing.M) {
	code := m.Run()
	faulttest.PrintTable()
	os.Exit(code)
}

// A fault of a workload.
type fault struct {
	name string
	at   float64 // the fault starts once this fraction of the messages is published
	// inject does the fault and returns once the broker accepts
	// connections again, or the fault has ended: resumption is measured
	// from then.
	inject func(ctx context.Context) error
}

// workload moves total messages from publishers to consumers through url
// while faults happen, with today's API: a Producer publishing with a
// RetryPolicy (and publishing a message again when Publish still failed, as
// an at-least-once application does), and consumers that are kombu.Workers,
// which reconnect, declare and consume again by themselves.
type workload struct {
	test, transport, faultDesc string

	url      string        // what clients use (a failover list is fine)
	drainURL string        // for the final drain; "" means url
	queues   []kombu.Queue // message seq goes to queues[seq%len]
	// ownQueues gives consumer i queues[i%len] alone, so that each
	// consumer's resumption after every fault can be checked (stalls).
	ownQueues bool

	total, publishers, consumers, prefetch int
	faults                                 []fault
	limit                                  time.Duration // the whole run
	resumeBound                            time.Duration // fault end to the next delivery
	publishTimeout                         time.Duration // per Publish call; 0 means 20 s
	allowLoss                              bool          // report losses instead of failing (async replication)
	// explain, when set, describes the broker's state when the run times
	// out (where the missing messages are).
	explain func(ctx context.Context) string
}

type outcome struct {
	res        faulttest.Result
	resumes    []time.Duration // per fault: longest consumer resumption
	stalls     int             // consumer × fault pairs with no delivery within resumeBound
	reconnects int64
	elapsed    time.Duration
}

// maxResume is the longest resumption.
func (o outcome) maxResume() time.Duration {
	var m time.Duration
	for _, r := range o.resumes {
		m = max(m, r)
	}
	return m
}

// classify tells which failed publishes may still have stored the message:
// only ErrConnectionLost without ErrUnconfirmed proves it never left.
func classify(err error) (string, bool) {
	switch {
	case errors.Is(err, kombu.ErrUnconfirmed):
		return "unconfirmed", true
	case errors.Is(err, kombu.ErrNacked):
		return "nacked", true
	case errors.Is(err, kombu.ErrTimeout):
		return "timeout", true
	case errors.Is(err, kombu.ErrConnectionLost):
		return "connection-lost", false
	case errors.Is(err, kombu.ErrClosed):
		return "closed", true
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "context", true
	}
	return "other", true
}

func errClass(err error) string {
	c, _ := classify(err)
	return c
}

// The workers' reconnect backoff: 50 ms, then 150 ms, ... up to 500 ms, so
// that they resume soon after a broker is back.
const (
	workerIntervalStart = 50 * time.Millisecond
	workerIntervalStep  = 100 * time.Millisecond
	workerIntervalMax   = 500 * time.Millisecond
)

var retryPolicy = &kombu.RetryPolicy{MaxRetries: -1, IntervalStep: 100 * time.Millisecond, IntervalMax: 500 * time.Millisecond}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// reconnect reconnects conn (failing over to the next URL) until it works
// or ctx ends; each attempt keeps to 5 s.
func reconnect(ctx context.Context, conn *kombu.Connection) error {
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := conn.Reconnect(rctx, true)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		sleepCtx(ctx, 250*time.Millisecond)
	}
}

// declare declares the queues, retrying while the broker is unreachable.
func declare(ctx context.Context, url string, queues []kombu.Queue) error {
	var last error
	for ctx.Err() == nil {
		last = func() error {
			conn, err := kombu.Dial(ctx, url, nil)
			if err != nil {
				return err
			}
			defer conn.Close()
			ch, err := conn.Channel(ctx)
			if err != nil {
				return err
			}
			for _, q := range queues {
				if _, err := q.Declare(ctx, ch); err != nil {
					return err
				}
			}
			return nil
		}()
		if last == nil {
			return nil
		}
		sleepCtx(ctx, 500*time.Millisecond)
	}
	return fmt.Errorf("declare: %w (last error: %v)", ctx.Err(), last)
}

// deleteQueues removes the test's queues (best effort, bounded).
func deleteQueues(url string, queues []kombu.Queue) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := kombu.Dial(ctx, url, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel(ctx)
	if err != nil {
		return
	}
	for _, q := range queues {
		_, _ = q.Delete(ctx, ch, false, false)
	}
}

func (w *workload) run(t *testing.T) outcome {
	t.Helper()
	if w.publishTimeout == 0 {
		w.publishTimeout = 20 * time.Second
	}
	if w.drainURL == "" {
		w.drainURL = w.url
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.limit)
	defer cancel()
	led := faulttest.NewLedger(w.total)
	start := time.Now()
	if err := declare(ctx, w.drainURL, w.queues); err != nil {
		t.Fatal(err)
	}

	// Publishers: take the next seq, publish it until a Publish returns nil.
	var next atomic.Int64
	var pubWG sync.WaitGroup
	for range w.publishers {
		pubWG.Go(func() {
			conn, err := kombu.NewConnection(w.url, nil)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			var prod *kombu.Producer
			for {
				seq := int(next.Add(1) - 1)
				if seq >= w.total {
					return
				}
				q := w.queues[seq%len(w.queues)]
				for ctx.Err() == nil {
					if prod == nil {
						if prod, err = conn.Producer(ctx, nil); err != nil {
							prod = nil
							led.Error("producer: "+errClass(err), err)
							_ = reconnect(ctx, conn)
							continue
						}
					}
					pctx, pcancel := context.WithTimeout(ctx, w.publishTimeout)
					err := prod.Publish(pctx, led.Body(seq), &kombu.PublishOptions{
						RoutingKey: q.Name, ContentType: "text/plain", ContentEncoding: "utf-8",
						Headers: led.Headers(seq), DeliveryMode: kombu.Persistent,
						Retry: true, RetryPolicy: retryPolicy,
					})
					pcancel()
					if ctx.Err() != nil {
						return
					}
					led.Publish(seq, err, classify)
					if err == nil {
						break
					}
					if errors.Is(err, kombu.ErrNacked) {
						// RabbitMQ 3.10 nacks every later publish of a channel
						// that published to a quorum queue while its leader
						// was unknown; a new channel works (docs/reliability.md).
						_ = prod.Close()
						prod = nil
					}
					sleepCtx(ctx, 100*time.Millisecond)
				}
			}
		})
	}

	lastDelivery := make([]atomic.Int64, w.consumers)
	var reconnects atomic.Int64
	stopConsumers := w.startWorkers(ctx, t, led, lastDelivery, &reconnects)

	// Faults, at fractions of the published messages; after each, wait for
	// every consumer (ownQueues) or any consumer to get a message again.
	out := outcome{}
	faultErr := make(chan error, 1)
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		for _, f := range w.faults {
			for led.Published() < int64(f.at*float64(w.total)) {
				if ctx.Err() != nil {
					faultErr <- fmt.Errorf("%s: waiting for %.0f%% published: %w", f.name, 100*f.at, ctx.Err())
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := f.inject(ctx); err != nil {
				faultErr <- fmt.Errorf("%s: %w", f.name, err)
				return
			}
			up := time.Now()
			watch := []int{}
			if w.ownQueues {
				for i := range w.consumers {
					watch = append(watch, i)
				}
			}
			var longest time.Duration
			resumed := func(i int) bool { return lastDelivery[i].Load() > up.UnixNano() }
			anyResumed := func() bool {
				for i := range w.consumers {
					if resumed(i) {
						return true
					}
				}
				return false
			}
			for {
				done := led.Published() == int64(w.total) && led.Missing() == 0
				if w.ownQueues {
					left := watch[:0]
					for _, i := range watch {
						if !resumed(i) {
							left = append(left, i)
						}
					}
					watch = left
					if len(watch) == 0 || done {
						break
					}
				} else if anyResumed() || done {
					break
				}
				if time.Since(up) > w.resumeBound {
					if w.ownQueues {
						out.stalls += len(watch)
					} else {
						out.stalls++
					}
					break
				}
				if ctx.Err() != nil {
					faultErr <- fmt.Errorf("%s: waiting for deliveries: %w", f.name, ctx.Err())
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			longest = time.Since(up)
			out.resumes = append(out.resumes, longest)
		}
	}()

	// Wait: every message published, faults done, every published message
	// delivered.
	waitErr := func() error {
		for {
			select {
			case err := <-faultErr:
				return err
			default:
			}
			if ctx.Err() != nil {
				return fmt.Errorf("timed out after %v: published %d, delivered %d of %d, %d published not yet delivered",
					w.limit, led.Published(), led.Delivered(), w.total, led.Missing())
			}
			select {
			case <-faultsDone:
				if led.Published() == int64(w.total) && led.Missing() == 0 {
					return nil
				}
				// A workload that may lose messages ends once nothing has
				// arrived for 5 s.
				if w.allowLoss && led.Published() == int64(w.total) && time.Since(led.LastDelivery()) > 5*time.Second {
					return nil
				}
			default:
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	if waitErr != nil {
		cancel()
	}
	pubWG.Wait()
	if waitErr == nil {
		time.Sleep(500 * time.Millisecond) // let redeliveries in flight arrive
	}
	stopConsumers()
	<-faultsDone
	if waitErr != nil {
		res := led.Check()
		if w.explain != nil {
			ectx, ecancel := context.WithTimeout(context.Background(), 10*time.Second)
			t.Logf("broker state: %s", w.explain(ectx))
			ecancel()
		}
		t.Fatalf("%v\n%s; errors: %s; lost seqs %v; first errors: %q", waitErr, res, res.ErrorTally(), res.LostSeqs, res.FirstErrors)
	}

	// Jepsen-style final read: whatever the queues still hold counts.
	dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer dcancel()
	if err := drain(dctx, w.drainURL, w.queues, led); err != nil {
		t.Errorf("final drain: %v", err)
	}
	out.res = led.Check()
	out.reconnects = reconnects.Load()
	out.elapsed = time.Since(start)
	return out
}

// drain reads and acks what the queues still hold, through a connection of
// its own.
func drain(ctx context.Context, url string, queues []kombu.Queue, led *faulttest.Ledger) error {
	conn, err := kombu.Dial(ctx, url, nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel(ctx)
	if err != nil {
		return err
	}
	for _, q := range queues {
		// Declared first: redis knows an empty queue only on a connection
		// that declared it.
		if _, err := q.Declare(ctx, ch); err != nil {
			return err
		}
		for {
			m, err := q.Get(ctx, ch, false, nil)
			if errors.Is(err, kombu.ErrEmpty) {
				break
			}
			if err != nil {
				return err
			}
			seq, ok := led.Delivery(m.Headers, m.Body, m.Redelivered)
			aerr := m.Ack(ctx)
			if ok {
				led.Ack(seq, aerr)
			}
		}
	}
	return nil
}

// check records the figures and fails the test on a loss (unless the
// workload allows losses), an unexpected message, or a stall.
func (w *workload) check(t *testing.T, o outcome, note string) {
	t.Helper()
	if note != "" {
		note += "; "
	}
	note += fmt.Sprintf("reconnects %d", o.reconnects)
	if w.ownQueues {
		note += fmt.Sprintf("; stalled %d of %d consumer×fault", o.stalls, w.consumers*len(w.faults))
	}
	faulttest.Record(t, faulttest.Row{Test: w.test, Transport: w.transport, Fault: w.faultDesc,
		Result: o.res, Resume: o.maxResume(), Elapsed: o.elapsed, Note: note})
	if o.res.Lost != 0 && !w.allowLoss {
		t.Errorf("lost %d published messages (first: %v)", o.res.Lost, o.res.LostSeqs)
	}
	if o.res.Unexpected != 0 {
		t.Errorf("%d unexpected deliveries (%q)", o.res.Unexpected, o.res.UnexpectedBodies)
	}
	if o.stalls != 0 {
		t.Errorf("%d stalls: no delivery within %v after a fault", o.stalls, w.resumeBound)
	}
	if len(o.resumes) != len(w.faults) {
		t.Errorf("%d of %d faults done", len(o.resumes), len(w.faults))
	}
}

// startWorkers starts one kombu.Worker per consumer, which reconnects,
// declares and consumes again by itself after every fault; it returns the
// function that shuts them down.
func (w *workload) startWorkers(ctx context.Context, t *testing.T, led *faulttest.Ledger, lastDelivery []atomic.Int64, reconnects *atomic.Int64) (stop func()) {
	t.Helper()
	// The handler acks itself so that the ledger sees the ack's outcome.
	var workers []*kombu.Worker
	runErrs := make(chan error, w.consumers)
	for i := range w.consumers {
		queues := w.queues
		if w.ownQueues {
			queues = []kombu.Queue{w.queues[i%len(w.queues)]}
		}
		conn, err := kombu.NewConnection(w.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		handler := kombu.HandlerFunc(func(hctx context.Context, m *kombu.Message) error {
			lastDelivery[i].Store(time.Now().UnixNano())
			seq, ok := led.Delivery(m.Headers, m.Body, m.Redelivered)
			aerr := m.Ack(hctx)
			if ok {
				led.Ack(seq, aerr)
			}
			return nil
		})
		wk, err := kombu.NewWorker(conn, queues, handler, &kombu.WorkerOptions{
			Consumer:      kombu.ConsumerOptions{PrefetchCount: w.prefetch},
			IntervalStart: workerIntervalStart, IntervalStep: workerIntervalStep, IntervalMax: workerIntervalMax,
			OnConnectionError: func(err error, _ time.Duration) {
				led.Error("consume: "+errClass(err), err)
			},
			OnConnectionRevived: func() { reconnects.Add(1) },
		})
		if err != nil {
			t.Fatal(err)
		}
		workers = append(workers, wk)
		go func() { runErrs <- wk.Run(ctx) }()
	}
	// Shut every worker down and check that a stop is told apart from a
	// failure: Shutdown and Run both return nil.
	return func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		for _, wk := range workers {
			if err := wk.Shutdown(sctx); err != nil {
				t.Errorf("worker Shutdown: %v, want nil", err)
			}
		}
		for range workers {
			select {
			case err := <-runErrs:
				if err != nil {
					t.Errorf("worker Run after Shutdown: %v, want nil", err)
				}
			case <-sctx.Done():
				t.Errorf("worker Run did not return within 30 s of Shutdown")
				return
			}
		}
	}
}
