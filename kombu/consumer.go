package kombu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
)

// Handler handles one message, in the style of net/http. When it returns
// and the message is still unsettled, the Consumer acks it (nil error) or
// redelivers it under ConsumerOptions.Redelivery (error): after a backoff,
// and at most MaxDeliveries times before it is dead-lettered (see
// RedeliveryPolicy and ConsumerOptions.RejectOnError). A message whose
// Decode failed is rejected without requeue and reported to OnDecodeError.
//
// A panic in HandleMessage is recovered: it becomes a *PanicError, which
// is reported to the connection's ErrorHandler and Logger, and the message
// is settled as after an error (redelivered, or rejected with
// RejectOnError). The consumer goes on with the next message.
type Handler interface {
	HandleMessage(ctx context.Context, m *Message) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, m *Message) error

// HandleMessage calls f.
func (f HandlerFunc) HandleMessage(ctx context.Context, m *Message) error { return f(ctx, m) }

// Callback is a kombu-style callback: the decoded body and the message.
// The callback settles the message itself.
type Callback func(body any, m *Message)

// ConsumerOptions configure a Consumer. A nil *ConsumerOptions means all
// defaults.
type ConsumerOptions struct {
	// Accept lists the serializer names or content types to decode; any
	// other message goes to OnDecodeError, undecoded. nil means the
	// connection's Options.Accept. Raw data (application/data) is always
	// accepted since it is never deserialized.
	Accept []string
	// NoAck makes the broker consider messages settled on delivery.
	NoAck bool
	// PrefetchCount limits unacked messages on the consumer's channel:
	// 0 means unlimited, and a count outside 0..MaxPrefetchCount is
	// refused with ErrInvalidArgument before any I/O.
	PrefetchCount int
	// TagPrefix starts every consumer tag; a random prefix when empty.
	TagPrefix string
	// Callbacks are called, in order, with each decoded message by
	// Connection.DrainEvents (kombu style).
	Callbacks []Callback
	// OnMessage, when set, replaces decoding and Callbacks: it gets every
	// message as received (kombu's on_message).
	OnMessage func(m *Message)
	// OnDecodeError is called for a message that could not be decoded or
	// whose content type is not accepted. It may ack, requeue or reject
	// the message; when it returns and the message is still unsettled,
	// the message is rejected without requeue (dead-lettered where the
	// queue says so), so that bad messages never fill the prefetch window
	// and stall the consumer. Settle within the callback: it cannot keep
	// the message for later. A panic in it is recovered and reported as a
	// *PanicError. nil rejects every such message and reports the error to
	// the connection's ErrorHandler/Logger.
	OnDecodeError func(m *Message, err error)
	// NoDeclare skips declaring the queues.
	NoDeclare bool
	// Concurrency is how many handlers Consume runs at once; 0 means 1.
	Concurrency int
	// RejectOnError makes a handler error reject the message at once
	// (dropped, or dead-lettered by the broker where the queue has a
	// dead-letter exchange), bypassing Redelivery.
	RejectOnError bool
	// Redelivery says how a message whose handler failed is redelivered
	// (backoff, delivery limit, then dead-letter or poison queue); nil
	// means DefaultRedeliveryPolicy. See RedeliveryPolicy.
	Redelivery *RedeliveryPolicy
	// Middleware wraps the Handler given to Consume (and a Worker's
	// handler), the first one outermost: see Chain and package
	// kombu/middleware.
	Middleware []Middleware
}

// Consumer receives messages from one or more queues on one channel.
type Consumer struct {
	ch          *Channel
	ownsChannel bool
	opts        ConsumerOptions
	accept      map[string]bool
	prefix      string

	mu         sync.Mutex
	queues     []Queue
	tags       map[string]string // queue name -> consumer tag
	seq        int
	closed     bool
	stopped    bool  // closed by its own Shutdown or Close, not under it
	closeCause error // why its channel closed under it (a lost connection), or nil
	inbox      []*Message
	endErr     *driver.ConsumerError // a consumer tag the broker ended
	notify     chan struct{}         // signalled when inbox grows or state changes
	stopFetch  context.CancelFunc
	running    int           // Consume workers running
	idle       chan struct{} // closed by the last Consume worker to return
	held       heldMessages  // failed messages waiting out their backoff
}

// NewConsumer declares queues (unless NoDeclare), applies the prefetch
// count and starts consuming from every queue.
func NewConsumer(ctx context.Context, ch *Channel, queues []Queue, opts *ConsumerOptions) (*Consumer, error) {
	if ch == nil {
		return nil, &Error{Op: "consumer.new", Err: ErrNotBound}
	}
	if err := opts.check(); err != nil {
		return nil, &Error{Op: "consumer.new", Transport: ch.conn.TransportName(), Err: err}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &Consumer{ch: ch, tags: map[string]string{}, notify: make(chan struct{}, 1)}
	if opts != nil {
		c.opts = *opts
	}
	c.accept = ch.conn.acceptSet(c.opts.Accept)
	c.prefix = c.opts.TagPrefix
	if c.prefix == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		c.prefix = "kombu-go-" + hex.EncodeToString(b[:]) + "-"
	}
	if c.opts.PrefetchCount > 0 {
		if err := ch.Qos(ctx, c.opts.PrefetchCount); err != nil {
			return nil, err
		}
	}
	for _, q := range queues {
		if err := c.AddQueue(ctx, q); err != nil {
			_ = c.Cancel(ctx)
			return nil, err
		}
	}
	return c, nil
}

// Consumer opens a channel for a new Consumer that owns it (closed with
// the consumer).
func (conn *Connection) Consumer(ctx context.Context, queues []Queue, opts *ConsumerOptions) (*Consumer, error) {
	if err := opts.check(); err != nil {
		return nil, &Error{Op: "consumer.new", Transport: conn.TransportName(), Err: err}
	}
	ch, err := conn.Channel(ctx)
	if err != nil {
		return nil, err
	}
	c, err := NewConsumer(ctx, ch, queues, opts)
	if err != nil {
		_ = ch.Close()
		return nil, err
	}
	c.ownsChannel = true
	return c, nil
}

// check refuses options no transport accepts, before any I/O.
func (o *ConsumerOptions) check() error {
	if o == nil {
		return nil
	}
	if err := driver.CheckPrefetchCount(o.PrefetchCount); err != nil {
		return err
	}
	return o.Redelivery.check()
}

// Channel returns the consumer's channel.
func (c *Consumer) Channel() *Channel { return c.ch }

// Queues returns the queues the consumer was given.
func (c *Consumer) Queues() []Queue {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Queue(nil), c.queues...)
}

// ConsumerTags returns the active consumer tags by queue name.
func (c *Consumer) ConsumerTags() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	tags := make(map[string]string, len(c.tags))
	for q, t := range c.tags {
		tags[q] = t
	}
	return tags
}

// AddQueue declares q (unless NoDeclare) and starts consuming from it.
func (c *Consumer) AddQueue(ctx context.Context, q Queue) error {
	if !c.opts.NoDeclare {
		info, err := q.Declare(ctx, c.ch)
		if err != nil {
			return err
		}
		q.Name = info.Name
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return &Error{Op: "consumer.consume", Transport: c.ch.conn.TransportName(), Name: q.Name, Err: ErrClosed}
	}
	c.queues = append(c.queues, q)
	c.mu.Unlock()
	return c.consume(ctx, q)
}

func (c *Consumer) consume(ctx context.Context, q Queue) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	if _, ok := c.tags[q.Name]; ok {
		c.mu.Unlock()
		return nil
	}
	c.seq++
	tag := c.prefix + strconv.Itoa(c.seq)
	c.tags[q.Name] = tag
	c.mu.Unlock()
	c.ch.register(tag, c)
	err := c.ch.drv.Consume(ctx, driverConsumeArgs(q, tag, c.opts.NoAck))
	if err != nil {
		c.mu.Lock()
		delete(c.tags, q.Name)
		c.mu.Unlock()
		c.ch.unregister(tag)
		return c.ch.wrap("basic.consume", q.Name, err)
	}
	return nil
}

func driverConsumeArgs(q Queue, tag string, noAck bool) driver.ConsumeArgs {
	return driver.ConsumeArgs{Queue: q.Name, ConsumerTag: tag, NoAck: noAck, Args: q.ConsumerArguments}
}

// Start (re)starts consuming from every queue after Cancel (kombu's
// consume()). NewConsumer already started.
func (c *Consumer) Start(ctx context.Context) error {
	for _, q := range c.Queues() {
		if err := c.consume(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// Cancel stops consuming from every queue. Messages already received stay
// unacked until settled or until the channel closes.
func (c *Consumer) Cancel(ctx context.Context) error {
	var errs []error
	for _, q := range c.Queues() {
		errs = append(errs, c.CancelByQueue(ctx, q.Name))
	}
	return errors.Join(errs...)
}

// CancelByQueue stops consuming from one queue.
func (c *Consumer) CancelByQueue(ctx context.Context, queue string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	tag, ok := c.tags[queue]
	delete(c.tags, queue)
	c.mu.Unlock()
	if !ok {
		return nil
	}
	err := c.ch.drv.Cancel(ctx, tag)
	c.ch.unregister(tag)
	return c.ch.wrap("basic.cancel", queue, err)
}

// Qos sets the prefetch count of the consumer's channel.
func (c *Consumer) Qos(ctx context.Context, prefetchCount int) error {
	return c.ch.Qos(ctx, prefetchCount)
}

// Recover redelivers the channel's unacked messages.
func (c *Consumer) Recover(ctx context.Context, requeue bool) error {
	return c.ch.Recover(ctx, requeue)
}

// Flow pauses or resumes deliveries.
func (c *Consumer) Flow(ctx context.Context, active bool) error { return c.ch.Flow(ctx, active) }

// Purge removes the ready messages of every queue and returns how many.
func (c *Consumer) Purge(ctx context.Context) (int, error) {
	total := 0
	for _, q := range c.Queues() {
		n, err := q.Purge(ctx, c.ch)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// dispatch hands a received message to callbacks or to the inbox.
func (c *Consumer) dispatch(ctx context.Context, m *Message) {
	m.observe(ctx, EventDelivered, 0, nil)
	if err := m.prepare(c.accept); err != nil {
		c.decodeFailed(ctx, m, err)
		return
	}
	switch {
	case c.opts.OnMessage != nil:
		c.opts.OnMessage(m)
	case len(c.opts.Callbacks) > 0:
		body, err := m.Payload()
		if err != nil {
			c.decodeFailed(ctx, m, err)
			return
		}
		for _, cb := range c.opts.Callbacks {
			cb(body, m)
		}
	default:
		c.mu.Lock()
		if c.closed {
			// Closed while this delivery was in flight: give it back now
			// rather than leave it unacked until the channel closes.
			c.mu.Unlock()
			if !m.noAck {
				c.ch.conn.reportError(m.Requeue(context.WithoutCancel(ctx)))
			}
			return
		}
		c.inbox = append(c.inbox, m)
		c.mu.Unlock()
		c.wake()
	}
}

func (c *Consumer) wake() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// decodeFailed hands an undecodable message to OnDecodeError, or reports
// it, and then rejects it without requeue unless the callback settled it:
// left unsettled, it would hold a prefetch slot until the channel closes.
func (c *Consumer) decodeFailed(ctx context.Context, m *Message, err error) {
	m.observe(ctx, EventDecodeError, 0, err)
	if cb := c.opts.OnDecodeError; cb != nil {
		perr := recovered(func() error { cb(m, err); return nil })
		if perr != nil {
			c.ch.conn.reportError(&Error{Op: "consumer.on_decode_error", Transport: c.ch.conn.TransportName(), Name: m.Queue, Err: perr})
		}
	} else {
		c.ch.conn.reportError(fmt.Errorf("kombu: message from %q rejected: %w (body %s)", m.Queue, err, truncatedBody(m.Body)))
	}
	if m.Acknowledged() {
		return
	}
	// Settled even when the receiving ctx ended meanwhile.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	if rerr := m.Reject(ctx); rerr != nil && !errors.Is(rerr, ErrAlreadyAcknowledged) {
		c.ch.conn.reportError(rerr)
	}
}

// recovered runs fn and turns a panic into a *PanicError.
func recovered(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return fn()
}

func truncatedBody(b []byte) string {
	const max = 1024
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}

// Receive returns the next message (pull style). It blocks until one
// arrives or ctx is done, and returns ErrConsumerStopped after Shutdown or
// Close, ErrClosed once its channel or connection closed. Messages whose
// content type is not accepted never reach it (see OnDecodeError). Once ctx
// is done it returns ctx's error, even when messages are already waiting
// in the consumer: they stay there for the next Receive (or go back to
// their queue on Close).
func (c *Consumer) Receive(ctx context.Context) (*Message, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c.mu.Lock()
		if len(c.inbox) > 0 {
			m := c.inbox[0]
			c.inbox[0] = nil
			c.inbox = c.inbox[1:]
			more := len(c.inbox) > 0
			c.mu.Unlock()
			if more {
				c.wake() // let another waiting goroutine take the next
			}
			return m, nil
		}
		closed, endErr := c.closed, c.endErr
		if endErr != nil && len(c.tags) > 0 {
			c.endErr = nil // reported once while other queues go on
		}
		c.mu.Unlock()
		if closed {
			return nil, c.closedErr("consumer.receive")
		}
		if endErr != nil {
			return nil, &Error{Op: "consumer.receive", Transport: c.ch.conn.TransportName(), Name: endErr.Queue, Err: endErr}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		select {
		case c.ch.pumpSem <- struct{}{}:
			c.mu.Lock()
			filled := len(c.inbox) > 0
			c.mu.Unlock()
			if filled {
				<-c.ch.pumpSem
				continue
			}
			err := c.pumpHeld(ctx)
			if err != nil {
				if errors.Is(err, ErrClosed) && c.isClosed() {
					return nil, c.closedErr("consumer.receive")
				}
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				return nil, err
			}
		case <-c.notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// pumpHeld runs the channel's pump for a caller that took pumpSem, and
// releases it even if a callback panics.
func (c *Consumer) pumpHeld(ctx context.Context) error {
	defer func() { <-c.ch.pumpSem }()
	_, err := c.ch.pumpHeld(ctx)
	return err
}

// unreceive puts back a message that Receive returned but nobody handled:
// at the head of the inbox, or, once the consumer is closed, back to its
// queue.
func (c *Consumer) unreceive(m *Message) {
	c.mu.Lock()
	if !c.closed {
		c.inbox = append([]*Message{m}, c.inbox...)
		c.mu.Unlock()
		c.wake()
		return
	}
	c.mu.Unlock()
	if err := m.Requeue(context.Background()); err != nil && !errors.Is(err, ErrClosed) {
		c.ch.conn.reportError(err)
	}
}

// closedErr is the error of a closed consumer: ErrConsumerStopped after
// its own Shutdown or Close, ErrClosed when its channel or connection
// closed under it, so that a loop can tell "stop" from "reconnect".
func (c *Consumer) closedErr(op string) error {
	c.mu.Lock()
	stopped, cause := c.stopped, c.closeCause
	c.mu.Unlock()
	err := ErrClosed
	switch {
	case stopped:
		err = ErrConsumerStopped
	case cause != nil:
		err = fmt.Errorf("%w: %w", ErrClosed, cause) // the connection was lost under it
	}
	return &Error{Op: op, Transport: c.ch.conn.TransportName(), Err: err}
}

func (c *Consumer) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Consume runs h for every message until ctx is done (returning ctx's
// error), the consumer is shut down or closed (returning an error wrapping
// ErrConsumerStopped, like http.Server.Serve's ErrServerClosed) or its
// channel or connection fails (an error wrapping ErrClosed, or the
// transport's error, such as ErrConnectionLost). It runs Concurrency
// handlers at once; each handler gets a context derived from ctx.
func (c *Consumer) Consume(ctx context.Context, h Handler) error {
	if isNilHandler(h) {
		return &Error{Op: "consumer.consume", Transport: c.ch.conn.TransportName(), Err: fmt.Errorf("%w: nil handler", ErrInvalidArgument)}
	}
	if h = Chain(h, c.opts.Middleware...); isNilHandler(h) {
		return &Error{Op: "consumer.consume", Transport: c.ch.conn.TransportName(), Err: fmt.Errorf("%w: a middleware returned a nil handler", ErrInvalidArgument)}
	}
	fetchCtx, stop := context.WithCancel(ctx)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		stop()
		return c.closedErr("consumer.consume")
	}
	prev := c.stopFetch
	c.stopFetch = func() {
		stop()
		if prev != nil {
			prev()
		}
	}
	n := max(c.opts.Concurrency, 1)
	if c.running == 0 {
		c.idle = make(chan struct{})
	}
	c.running += n
	c.mu.Unlock()
	defer stop()
	conn := c.ch.conn
	conn.lifecycle(ctx, slog.LevelInfo, Event{Kind: EventConsumerStarted, Queue: c.firstQueue()})

	errc := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			defer c.workerDone()
			for {
				m, err := c.Receive(fetchCtx)
				if err == nil && fetchCtx.Err() != nil {
					// Fetching stopped (Shutdown, or ctx ended) while m
					// waited in the inbox: it is not handled now.
					c.unreceive(m)
					err = fetchCtx.Err()
				}
				if err != nil {
					errc <- err
					stop()
					return
				}
				c.handle(ctx, h, m)
			}
		}()
	}
	var first error
	for i := 0; i < n; i++ {
		if err := <-errc; first == nil {
			first = err
		}
	}
	err := first
	switch {
	case ctx.Err() != nil:
		err = ctx.Err()
	case c.isClosed() || errors.Is(first, context.Canceled):
		err = c.closedErr("consumer.consume")
	}
	conn.lifecycle(context.WithoutCancel(ctx), slog.LevelInfo, Event{Kind: EventConsumerStopped, Queue: c.firstQueue(), Err: err})
	return err
}

// firstQueue names the consumer in lifecycle events.
func (c *Consumer) firstQueue() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queues) == 0 {
		return ""
	}
	return c.queues[0].Name
}

// isNilHandler reports whether h is nil or a nil function (such as
// HandlerFunc(nil)), which would panic on every message.
func isNilHandler(h Handler) bool {
	if h == nil {
		return true
	}
	v := reflect.ValueOf(h)
	return v.Kind() == reflect.Func && v.IsNil()
}

// settleTimeout bounds the ack or requeue that follows a handler.
const settleTimeout = 30 * time.Second

func (c *Consumer) handle(ctx context.Context, h Handler, m *Message) {
	if obs := c.ch.conn.opts.Observer; obs != nil {
		hctx, end := obs.StartHandle(ctx, m)
		end(c.runHandler(hctx, h, m))
		return
	}
	c.runHandler(ctx, h, m)
}

// runHandler runs h on m and settles m; it returns h's error.
func (c *Consumer) runHandler(ctx context.Context, h Handler, m *Message) error {
	err := recovered(func() error { return h.HandleMessage(ctx, m) })
	if pe, ok := err.(*PanicError); ok {
		c.ch.conn.reportError(&Error{Op: "consumer.handle", Transport: c.ch.conn.TransportName(), Name: m.Queue, Err: pe})
	}
	if m.Acknowledged() {
		return err
	}
	// The outcome is settled even when the handler cancelled ctx (a
	// handler that stops the loop after its last message still acks it).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	if derr := m.failedDecode(); derr != nil {
		c.decodeFailed(ctx, m, derr)
		return err
	}
	switch {
	case err == nil:
		c.ch.conn.reportError(m.Ack(ctx))
	default:
		c.failed(ctx, m, err)
	}
	return err
}

// Shutdown stops fetching (cancelling the consumer tags), then waits for
// running handlers to finish until ctx is done, then closes the consumer.
// Messages received but not yet handled go back to their queues.
func (c *Consumer) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	cerr := c.Cancel(ctx)
	c.mu.Lock()
	stop, idle := c.stopFetch, c.idle
	if c.running == 0 {
		idle = nil
	}
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
	var werr error
	if idle != nil {
		select {
		case <-idle:
		case <-ctx.Done():
			werr = ctx.Err()
		}
	}
	return errors.Join(cerr, werr, c.Close())
}

// workerDone ends one Consume worker; the last one wakes Shutdown.
func (c *Consumer) workerDone() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running--; c.running == 0 {
		close(c.idle)
	}
}

// Close stops the consumer at once: it cancels its consumer tags, gives
// back the messages it received but did not hand out, and closes its
// channel if it owns it (returning every unacked message to its queue).
// It is idempotent.
func (c *Consumer) Close() error {
	c.mu.Lock()
	c.stopped = true
	if c.closed {
		c.mu.Unlock()
		c.held.flush() // closed by its channel: wait for settlements under way
		return nil
	}
	c.closed = true
	inbox := c.inbox
	c.inbox = nil
	stop := c.stopFetch
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
	c.wake()
	c.held.flush()
	if c.ownsChannel {
		return c.ch.Close()
	}
	ctx := context.Background()
	return errors.Join(c.Cancel(ctx), c.requeueInbox(ctx, inbox))
}

// requeueInbox hands back the messages the consumer fetched but never
// handed out, in one call where the channel can (driver.BatchRequeuer),
// so that they keep their order; nobody else holds them.
func (c *Consumer) requeueInbox(ctx context.Context, inbox []*Message) error {
	br, ok := c.ch.drv.(driver.BatchRequeuer)
	var batch []*Message
	var errs []error
	for _, m := range inbox {
		switch {
		case m.Acknowledged():
		case ok && !m.noAck && !c.ch.isClosed():
			batch = append(batch, m)
		default:
			errs = append(errs, m.Requeue(ctx))
		}
	}
	if len(batch) == 0 {
		return errors.Join(errs...)
	}
	tags := make([]uint64, len(batch))
	for i, m := range batch {
		tags[i] = m.DeliveryTag
	}
	if err := br.RequeueBatch(ctx, tags); err != nil {
		return errors.Join(append(errs, c.ch.wrap("requeue", batch[0].Queue, err))...)
	}
	for _, m := range batch {
		m.mu.Lock()
		m.state = Requeued
		m.mu.Unlock()
		m.observe(ctx, EventRequeued, 0, nil)
	}
	return errors.Join(errs...)
}

// ended records that the broker ended one of the consumer's tags.
func (c *Consumer) ended(ce *driver.ConsumerError) {
	c.ch.conn.lifecycle(context.Background(), slog.LevelWarn, Event{Kind: EventChannelError, Queue: ce.Queue, Err: ce})
	c.mu.Lock()
	for q, tag := range c.tags {
		if tag == ce.ConsumerTag {
			delete(c.tags, q)
		}
	}
	c.endErr = ce
	c.mu.Unlock()
	c.wake()
}

// channelClosed is called when the consumer's channel closes under it.
func (c *Consumer) channelClosed(cause error) {
	c.mu.Lock()
	c.closed = true
	c.closeCause = cause
	c.inbox = nil
	c.tags = map[string]string{}
	c.mu.Unlock()
	c.held.drop()
	c.wake()
}
