package kombu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// WorkerOptions configure a Worker. A nil *WorkerOptions means all
// defaults.
type WorkerOptions struct {
	// Consumer configures the consumer the worker creates on every
	// connection: Concurrency (handlers at once, default 1),
	// PrefetchCount (0 means Concurrency, so that no message waits
	// unacked behind busy handlers), Accept, NoAck, RejectOnError,
	// TagPrefix, NoDeclare. Callbacks, OnMessage and OnDecodeError must be
	// unset: the worker calls its Handler, and OnDecodeError below.
	Consumer ConsumerOptions
	// Producer configures the producer that Worker.Producer returns.
	Producer ProducerOptions
	// Declare lists more entities (exchanges, queues) to declare on every
	// connection before consuming, beside the consumed queues, which are
	// always declared (unless Consumer.NoDeclare).
	Declare []Declarable

	// After a failure the n-th consecutive retry waits IntervalStart +
	// (n-1)*IntervalStep, capped at IntervalMax (kombu's
	// ensure_connection policy). Zero means 100 ms, 500 ms and 5 s.
	IntervalStart time.Duration
	IntervalStep  time.Duration
	IntervalMax   time.Duration
	// MaxRetries is how many consecutive failed attempts Run makes before
	// it gives up and returns the last error; 0 means no limit (kombu's
	// connect_max_retries=None).
	MaxRetries int

	// OnConnectionError is called from Run for each failure (a lost
	// connection, a failed reconnect or declaration) with the wait before
	// the next attempt. Each failure is also a retry event for the
	// connection's Logger (a warning) and Observer.
	OnConnectionError func(err error, nextRetryIn time.Duration)
	// OnConnectionRevived is called from Run when consuming works again
	// after a failure.
	OnConnectionRevived func()
	// OnConsumeReady is called from Run with the consumer of each
	// connection once it is consuming, before the first message is
	// handled. Consumer.Queues gives the names of server-named queues.
	OnConsumeReady func(c *Consumer)
	// OnConsumeEnd is called from Run when that consumer ended, with the
	// reason (an error wrapping ErrConsumerStopped after Shutdown, ctx's
	// error, or the failure that makes the worker reconnect).
	OnConsumeEnd func(err error)
	// OnDecodeError gets each message that could not be decoded or whose
	// content type is not accepted, as ConsumerOptions.OnDecodeError does
	// (unsettled, it is rejected afterwards).
	OnDecodeError func(m *Message, err error)
}

// Worker consumes queues with a Handler until it is stopped, and survives
// the broker: after every lost connection it reconnects with backoff
// (through the connection's failover URLs), declares its queues,
// exchanges and bindings again, and goes on consuming. It is kombu's
// ConsumerMixin and ConsumerProducerMixin: Producer gives handlers a
// producer on the same connection.
//
// Run does the work; Shutdown stops it gracefully. A Worker runs once.
type Worker struct {
	conn    *Connection
	queues  []Queue
	handler Handler
	opts    WorkerOptions
	retry   RetryPolicy // Run's reconnect policy, from opts

	mu         sync.Mutex
	running    bool
	stopping   bool
	cancelWait context.CancelFunc // interrupts reconnect waits and attempts
	cur        *Consumer
	done       chan struct{} // closed when Run returns
	failures   int           // failed attempts reported, for retry events (Run's goroutine only)

	pmu          sync.Mutex // serializes the producer's creation (I/O)
	producer     *Producer
	producerDone bool // Run returned: no new producer
}

// workerDefaults are kombu-like reconnect intervals, shorter than
// kombu's 2 s/2 s/30 s so that a worker resumes soon after a restart.
const (
	defaultWorkerIntervalStart = 100 * time.Millisecond
	defaultWorkerIntervalStep  = 500 * time.Millisecond
	defaultWorkerIntervalMax   = 5 * time.Second
)

// NewWorker returns a worker that consumes queues on conn and runs h for
// every message. Nothing happens until Run. Invalid arguments (no
// connection, no queue, a nil handler, consumer options the worker cannot
// use) are refused with an error wrapping ErrInvalidArgument.
func NewWorker(conn *Connection, queues []Queue, h Handler, opts *WorkerOptions) (*Worker, error) {
	invalid := func(format string, args ...any) error {
		return &Error{Op: "worker.new", Err: fmt.Errorf("%w: "+format, append([]any{ErrInvalidArgument}, args...)...)}
	}
	if conn == nil {
		return nil, invalid("nil connection")
	}
	if len(queues) == 0 {
		return nil, invalid("no queue to consume")
	}
	if isNilHandler(h) {
		return nil, invalid("nil handler")
	}
	w := &Worker{conn: conn, queues: append([]Queue(nil), queues...), handler: h, done: make(chan struct{})}
	if opts != nil {
		w.opts = *opts
	}
	co := &w.opts.Consumer
	if co.OnMessage != nil || len(co.Callbacks) > 0 || co.OnDecodeError != nil {
		return nil, invalid("Consumer.OnMessage, Callbacks and OnDecodeError are not used by a worker (use the Handler and WorkerOptions.OnDecodeError)")
	}
	if co.Concurrency < 0 || w.opts.MaxRetries < 0 || w.opts.IntervalStart < 0 || w.opts.IntervalStep < 0 || w.opts.IntervalMax < 0 {
		return nil, invalid("negative Concurrency, MaxRetries or interval")
	}
	co.Concurrency = max(co.Concurrency, 1)
	if co.PrefetchCount == 0 && !co.NoAck {
		co.PrefetchCount = co.Concurrency
	}
	if err := co.check(); err != nil {
		return nil, &Error{Op: "worker.new", Transport: conn.TransportName(), Err: err}
	}
	co.OnDecodeError = w.opts.OnDecodeError
	if w.opts.IntervalStart == 0 {
		w.opts.IntervalStart = defaultWorkerIntervalStart
	}
	if w.opts.IntervalStep == 0 {
		w.opts.IntervalStep = defaultWorkerIntervalStep
	}
	if w.opts.IntervalMax == 0 {
		w.opts.IntervalMax = defaultWorkerIntervalMax
	}
	w.retry = RetryPolicy{MaxRetries: w.opts.MaxRetries, IntervalStart: w.opts.IntervalStart,
		IntervalStep: w.opts.IntervalStep, IntervalMax: w.opts.IntervalMax, OnRetry: w.connectionError}
	return w, nil
}

type workerKey struct{}

// WorkerFromContext returns the Worker whose handler got ctx, so that a
// handler can reach Worker.Producer.
func WorkerFromContext(ctx context.Context) (*Worker, bool) {
	w, ok := ctx.Value(workerKey{}).(*Worker)
	return w, ok
}

// Connection returns the worker's connection.
func (w *Worker) Connection() *Connection { return w.conn }

// Run consumes until ctx ends or Shutdown is called, and then returns nil
// once every running handler has returned and its message is settled.
// Across lost connections it reconnects with backoff, reporting each
// failure to OnConnectionError. It returns an error only when it gives up:
// after MaxRetries consecutive failures, or at once on errors a retry
// cannot fix (ErrInvalidArgument, ErrPreconditionFailed, ErrNotSupported,
// ErrInvalidURL: a queue declared with other arguments, say), or when Run
// was already called.
//
// Handlers get a context derived from ctx (Shutdown does not cancel it,
// ctx's end does), from which WorkerFromContext returns the worker.
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.running {
		w.mu.Unlock()
		return &Error{Op: "worker.run", Transport: w.conn.TransportName(), Err: fmt.Errorf("%w: Run called twice", ErrInvalidArgument)}
	}
	w.running = true
	if w.stopping { // Shutdown came first: nothing to do
		w.mu.Unlock()
		close(w.done)
		return nil
	}
	waitCtx, cancel := context.WithCancel(ctx)
	w.cancelWait = cancel
	w.mu.Unlock()
	defer func() {
		cancel()
		w.closeProducer()
		close(w.done)
	}()

	hctx := context.WithValue(ctx, workerKey{}, w)
	failures := 0
	for {
		c, err := w.connect(waitCtx, failures > 0)
		if err == nil {
			if failures > 0 && w.opts.OnConnectionRevived != nil {
				w.opts.OnConnectionRevived()
			}
			failures, w.failures = 0, 0
			err = w.consume(hctx, c)
		}
		if w.stopped(ctx) || errors.Is(err, ErrConsumerStopped) {
			return nil
		}
		if fatalForWorker(err) {
			return &Error{Op: "worker.run", Transport: w.conn.TransportName(), Err: err}
		}
		failures++
		again, serr := w.retry.backoff(waitCtx, failures-1, err)
		if !again {
			return &Error{Op: "worker.run", Transport: w.conn.TransportName(),
				Err: fmt.Errorf("gave up after %d consecutive failures: %w", failures, err)}
		}
		if serr != nil {
			return nil // ctx ended or Shutdown
		}
	}
}

// consume runs the handler on c until c ends, and returns why.
func (w *Worker) consume(ctx context.Context, c *Consumer) error {
	w.mu.Lock()
	if w.stopping {
		w.mu.Unlock()
		_ = c.Close()
		return &Error{Op: "worker.run", Transport: w.conn.TransportName(), Err: ErrConsumerStopped}
	}
	w.cur = c
	w.mu.Unlock()
	if w.opts.OnConsumeReady != nil {
		w.opts.OnConsumeReady(c)
	}
	err := c.Consume(ctx, w.handler)
	if err == nil { // Consume always ends with a reason; be safe
		err = &Error{Op: "consumer.consume", Transport: w.conn.TransportName(), Err: ErrClosed}
	}
	w.mu.Lock()
	w.cur = nil
	w.mu.Unlock()
	// The channel is dead or stopping: its unacked messages go back.
	_ = c.Close()
	if w.opts.OnConsumeEnd != nil {
		w.opts.OnConsumeEnd(err)
	}
	return err
}

// connect returns a consumer on a working connection: after a failure it
// first checks the connection with a ping, and reconnects (moving on to
// the next failover URL) when that fails. It declares the extra entities
// and, through the consumer, the queues with their exchanges and
// bindings, on every call: a broker that restarted, or a new node, has
// lost the exclusive and auto-delete ones.
func (w *Worker) connect(ctx context.Context, recovering bool) (*Consumer, error) {
	if recovering {
		if err := w.revive(ctx); err != nil {
			return nil, err
		}
	}
	ch, err := w.conn.Channel(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range w.opts.Declare {
		if err := d.declare(ctx, ch); err != nil {
			_ = ch.Close()
			return nil, err
		}
	}
	c, err := NewConsumer(ctx, ch, w.queues, &w.opts.Consumer)
	if err != nil {
		_ = ch.Close()
		return nil, err
	}
	c.ownsChannel = true
	return c, nil
}

// revive makes sure the connection works, reconnecting when it does not.
// A connection that still answers is kept: a consumer can end alone (its
// queue deleted, a channel error), and other users of the connection
// should not lose their channels for it.
func (w *Worker) revive(ctx context.Context) error {
	if w.conn.Connected() {
		pctx, cancel := context.WithTimeout(ctx, w.conn.opts.ConnectTimeout)
		err := w.conn.Ping(pctx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return w.conn.Reconnect(ctx, true)
}

// fatalForWorker reports errors that no reconnect can fix.
func fatalForWorker(err error) bool {
	for _, target := range []error{ErrInvalidArgument, ErrPreconditionFailed, ErrNotSupported, ErrInvalidURL} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// stopped reports whether Run should return: Shutdown was called or ctx
// ended.
func (w *Worker) stopped(ctx context.Context) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stopping || ctx.Err() != nil
}

// connectionError reports a failed attempt: a retry event (logged to the
// connection's Logger, counted by its Observer), then OnConnectionError.
func (w *Worker) connectionError(err error, wait time.Duration) {
	w.failures++
	w.conn.lifecycle(context.Background(), slog.LevelWarn, Event{Kind: EventRetry, Attempt: w.failures, Wait: wait, Err: err})
	if w.opts.OnConnectionError != nil {
		w.opts.OnConnectionError(err, wait)
	}
}

// Shutdown stops the worker gracefully: it stops fetching, lets the
// running handlers finish and settles their messages (messages fetched but
// not handled go back to their queues), and returns nil once Run has
// returned. When ctx ends first it returns ctx's error; Run still returns
// once the handlers do. Shutdown before Run makes Run return at once, and
// a second Shutdown waits as the first does.
func (w *Worker) Shutdown(ctx context.Context) error {
	w.mu.Lock()
	w.stopping = true
	running, c, cancel := w.running, w.cur, w.cancelWait
	w.mu.Unlock()
	if !running {
		return nil
	}
	if cancel != nil {
		cancel() // a reconnect wait or attempt stops now; handlers go on
	}
	if c != nil {
		if err := c.Shutdown(ctx); err != nil && ctx.Err() == nil {
			// Cancelling on a dead connection fails; the channel's close
			// gives the messages back all the same.
			w.conn.reportError(err)
		}
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when Run has returned.
func (w *Worker) Done() <-chan struct{} { return w.done }

// Producer returns the worker's producer, creating it on first use with
// WorkerOptions.Producer, for handlers that publish (kombu's
// ConsumerProducerMixin). It publishes on its own channel of the worker's
// connection and follows the worker's reconnects. After Run returned it
// fails with ErrConsumerStopped.
func (w *Worker) Producer(ctx context.Context) (*Producer, error) {
	w.pmu.Lock()
	defer w.pmu.Unlock()
	if w.producerDone {
		return nil, &Error{Op: "worker.producer", Transport: w.conn.TransportName(), Err: ErrConsumerStopped}
	}
	if w.producer != nil {
		return w.producer, nil
	}
	p, err := w.conn.Producer(ctx, &w.opts.Producer)
	if err != nil {
		return nil, err
	}
	w.producer = p
	return p, nil
}

func (w *Worker) closeProducer() {
	w.pmu.Lock()
	defer w.pmu.Unlock()
	w.producerDone = true
	if w.producer != nil {
		w.conn.reportError(w.producer.Close())
		w.producer = nil
	}
}
