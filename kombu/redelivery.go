package kombu

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kombu-go/kombu/kombu/driver"
)

// Headers the redelivery policy reads and writes.
const (
	// HeaderDeliveryCount counts the earlier deliveries of a message that
	// the Consumer republished after a handler failure (absent on the
	// first delivery). Message.DeliveryCount adds this delivery.
	HeaderDeliveryCount = "x-kombu-delivery-count"
	// HeaderLastError holds the last handler error (truncated to
	// MaxLastErrorLen bytes), on redeliveries and on dead-lettered copies.
	HeaderLastError = "x-kombu-last-error"
	// HeaderFailedDeliveries is how many times a dead-lettered message
	// was delivered, and failed, in HeaderFailedQueue.
	HeaderFailedDeliveries = "x-kombu-failed-deliveries"
	// HeaderFailedQueue is the queue a dead-lettered message failed in.
	HeaderFailedQueue = "x-kombu-failed-queue"
	// HeaderOriginalExchange and HeaderOriginalRoutingKey keep where a
	// message was first published, since a redelivery goes through the
	// default exchange; dead-lettering routes with them, as RabbitMQ does.
	HeaderOriginalExchange   = "x-kombu-original-exchange"
	HeaderOriginalRoutingKey = "x-kombu-original-routing-key"

	// brokerDeliveryCount is the counter RabbitMQ quorum queues keep.
	brokerDeliveryCount = "x-delivery-count"
)

// PoisonQueueSuffix names the durable queue "<queue>.poison" that takes
// the messages that failed too often in a queue with no dead-letter
// exchange.
const PoisonQueueSuffix = ".poison"

// MaxLastErrorLen bounds HeaderLastError, in bytes.
const MaxLastErrorLen = 1024

// RedeliveryPolicy says how a Consumer redelivers a message whose handler
// failed (returned an error or panicked): after a backoff, at most
// MaxDeliveries times in all, and then dead-lettered. Zero fields take
// DefaultRedeliveryPolicy's values.
type RedeliveryPolicy struct {
	// InitialBackoff is the wait after the first failure; negative means
	// no wait at all.
	InitialBackoff time.Duration
	// Multiplier grows the wait after each further failure; at least 1.
	Multiplier float64
	// MaxBackoff caps the wait.
	MaxBackoff time.Duration
	// MaxDeliveries is how many times a message is handed to the handler
	// before it is dead-lettered; negative means no limit.
	MaxDeliveries int
}

// DefaultRedeliveryPolicy applies when ConsumerOptions.Redelivery is nil:
// waits of 200 ms, 400 ms, ... up to 30 s, and 20 deliveries at most
// (RabbitMQ 4's default delivery limit), about 6 minutes in all.
var DefaultRedeliveryPolicy = RedeliveryPolicy{
	InitialBackoff: 200 * time.Millisecond,
	Multiplier:     2,
	MaxBackoff:     30 * time.Second,
	MaxDeliveries:  20,
}

func (p *RedeliveryPolicy) check() error {
	if p == nil {
		return nil
	}
	if math.IsNaN(p.Multiplier) || math.IsInf(p.Multiplier, 0) || (p.Multiplier != 0 && p.Multiplier < 1) {
		return fmt.Errorf("%w: RedeliveryPolicy.Multiplier %v is not 0 or at least 1", ErrInvalidArgument, p.Multiplier)
	}
	if p.MaxBackoff < 0 {
		return fmt.Errorf("%w: RedeliveryPolicy.MaxBackoff %v is negative", ErrInvalidArgument, p.MaxBackoff)
	}
	return nil
}

// withDefaults fills the zero fields.
func (p *RedeliveryPolicy) withDefaults() RedeliveryPolicy {
	d := DefaultRedeliveryPolicy
	if p == nil {
		return d
	}
	out := *p
	if out.InitialBackoff == 0 {
		out.InitialBackoff = d.InitialBackoff
	}
	if out.Multiplier == 0 {
		out.Multiplier = d.Multiplier
	}
	if out.MaxBackoff == 0 {
		out.MaxBackoff = d.MaxBackoff
	}
	if out.MaxDeliveries == 0 {
		out.MaxDeliveries = d.MaxDeliveries
	}
	return out
}

// Backoff returns the wait before redelivering a message whose
// deliveries-th delivery failed (1 for the first).
func (p RedeliveryPolicy) Backoff(deliveries int) time.Duration {
	if p.InitialBackoff <= 0 {
		return 0
	}
	d := float64(p.InitialBackoff) * math.Pow(p.Multiplier, float64(max(deliveries-1, 0)))
	if p.MaxBackoff > 0 && d > float64(p.MaxBackoff) {
		return p.MaxBackoff
	}
	return time.Duration(d)
}

// DeliveryCount is how many times the message has been delivered, this
// delivery included: 1 for a first delivery. It follows the broker's own
// counter where the broker keeps one (x-delivery-count on RabbitMQ quorum
// queues) and the HeaderDeliveryCount that a Consumer's redelivery writes
// otherwise, so it survives restarts and moves between consumers. A
// message that the broker requeued without the policy (a channel closed
// before the ack) is only counted on quorum queues.
func (m *Message) DeliveryCount() int {
	n := headerCount(m.Headers[HeaderDeliveryCount])
	if b := headerCount(m.Headers[brokerDeliveryCount]); b > n {
		n = b
	}
	return n + 1
}

// headerCount reads a non-negative count, whatever number type the
// transport decoded it as; anything else counts as 0.
func headerCount(v any) int {
	n, _ := driver.Int64(v)
	switch x := v.(type) {
	case float64:
		if x >= 0 && x <= math.MaxInt32 {
			n = int64(x)
		}
	case float32:
		return headerCount(float64(x))
	case string:
		n, _ = strconv.ParseInt(x, 10, 32)
	case interface{ Int64() (int64, error) }: // json.Number
		n, _ = x.Int64()
	}
	if n < 0 || n > math.MaxInt32 {
		return 0
	}
	return int(n)
}

// lastErrorText is the HeaderLastError value: valid UTF-8 (AMQP refuses
// anything else), a panic without its stack, at most MaxLastErrorLen bytes.
func lastErrorText(err error) string {
	s := err.Error()
	var pe *PanicError
	if errors.As(err, &pe) {
		s = fmt.Sprintf("handler panic: %v", pe.Value)
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > MaxLastErrorLen {
		cut := MaxLastErrorLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// failed settles a message whose handler failed with err: after the
// policy's backoff it goes back to its queue with its count raised, and
// once it has had MaxDeliveries deliveries it is dead-lettered. Where the
// broker counts deliveries and can delay a requeue (driver.DelayedRequeuer)
// the message goes back at once with the backoff as the broker's delay.
// Otherwise the wait does not block the handler goroutine: the message
// stays unacked (holding one prefetch slot) on a timer while other
// messages are handled.
func (c *Consumer) failed(ctx context.Context, m *Message, err error) {
	if c.opts.RejectOnError || m.noAck {
		c.settleFailure(ctx, m, err)
		return
	}
	p := c.opts.Redelivery.withDefaults()
	if m.Queue == "" {
		// A transport that cannot say where the message came from
		// leaves nothing to republish to or name a poison queue after:
		// requeue, still after the backoff.
		c.held.hold(ctx, m, p.Backoff(1), func(ctx context.Context) error { return m.Requeue(ctx) })
		return
	}
	q := c.queueNamed(m.Queue)
	n := m.DeliveryCount()
	if p.MaxDeliveries > 0 && n >= p.MaxDeliveries {
		derr := c.deadLetter(ctx, m, q, n, err)
		if derr == nil {
			return
		}
		// Kept rather than lost: tried again on its next delivery, after
		// the longest wait so that a broken dead-letter path cannot spin.
		c.ch.conn.reportError(derr)
		c.held.hold(ctx, m, p.MaxBackoff, func(ctx context.Context) error { return m.Requeue(ctx) })
		return
	}
	brokerCounts := (c.ch.conn.Features().DeliveryCount ||
		c.ch.conn.TransportName() == "amqp" && q.QueueArguments()["x-queue-type"] == "quorum") &&
		// A redelivery without the counter: this broker does not count.
		(!m.Redelivered || m.Headers[brokerDeliveryCount] != nil)
	backoff := p.Backoff(n)
	if brokerCounts && backoff > 0 && c.requeuedAfter(ctx, m, n, backoff) {
		return
	}
	c.held.hold(ctx, m, backoff, func(ctx context.Context) error {
		if brokerCounts { // the broker raises x-delivery-count
			return m.settleAs(ctx, Requeued, EventRedelivered, n, "requeue", func() error {
				return m.ch.drv.Reject(ctx, m.DeliveryTag, true)
			})
		}
		return m.redeliver(ctx, n, err)
	})
}

// requeuedAfter hands the message back to a broker that holds it for the
// backoff itself (driver.DelayedRequeuer), so that nothing waits in this
// consumer: a crash or a shutdown mid-backoff leaves the message safe in
// the broker. It reports false, having settled nothing, when the channel
// cannot; the caller then holds the message here.
func (c *Consumer) requeuedAfter(ctx context.Context, m *Message, deliveries int, backoff time.Duration) bool {
	dr, ok := m.ch.drv.(driver.DelayedRequeuer)
	if !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	err := m.settleAs(ctx, Requeued, EventRedelivered, deliveries, "requeue", func() error {
		return dr.RequeueAfter(ctx, m.DeliveryTag, backoff)
	})
	if errors.Is(err, ErrNotSupported) {
		return false
	}
	if err != nil && !errors.Is(err, ErrAlreadyAcknowledged) {
		c.ch.conn.reportError(err)
	}
	return true
}

// settleFailure is the settlement without a policy: RejectOnError rejects
// (the broker drops or dead-letters the message), and a NoAck message was
// settled by the broker on delivery, so Requeue only records the outcome.
func (c *Consumer) settleFailure(ctx context.Context, m *Message, _ error) {
	if c.opts.RejectOnError {
		c.ch.conn.reportError(m.Reject(ctx))
		return
	}
	c.ch.conn.reportError(m.Requeue(ctx))
}

// queueNamed returns the consumer's declaration of the queue, or a bare
// Queue with that name.
func (c *Consumer) queueNamed(name string) Queue {
	for _, q := range c.Queues() {
		if q.Name == name {
			return q
		}
	}
	return Queue{Name: name}
}

// failureHeaders copies the message's headers for a new publish, without
// the broker's counter (a broker would take it for its own).
func failureHeaders(m *Message, err error, extra int) map[string]any {
	h := make(map[string]any, len(m.delivery.Headers)+extra+1)
	for k, v := range m.delivery.Headers {
		h[k] = v
	}
	delete(h, brokerDeliveryCount)
	h[HeaderLastError] = lastErrorText(err)
	if _, ok := h[HeaderOriginalRoutingKey]; !ok {
		h[HeaderOriginalExchange] = m.Exchange
		h[HeaderOriginalRoutingKey] = m.RoutingKey
	}
	return h
}

// republished is the message as received (still compressed), with other
// headers, sent to exchange with routingKey. Mandatory, so that a copy no
// queue takes is an error rather than a silent loss.
func (m *Message) republished(exchange, routingKey string, headers map[string]any) *driver.Publishing {
	d := m.delivery.Message
	d.Headers = headers
	return &driver.Publishing{Exchange: exchange, RoutingKey: routingKey, Mandatory: true, Message: d}
}

// redeliver puts the message back at the tail of its queue with its count
// raised to deliveries: a new publish through the default exchange, then
// the ack of this delivery, both on the message's channel. The publish is
// confirmed first where the transport confirms, so a failure in between
// leaves two copies (the original comes back when the channel closes),
// never none.
func (m *Message) redeliver(ctx context.Context, deliveries int, err error) error {
	h := failureHeaders(m, err, 1)
	h[HeaderDeliveryCount] = int64(deliveries)
	pub := m.republished("", m.Queue, h)
	return m.settleAs(ctx, Requeued, EventRedelivered, deliveries, "message.redeliver", func() error {
		if err := m.ch.drv.Publish(ctx, pub); err != nil {
			// Given back as it is rather than held unacked for good.
			return errors.Join(err, m.ch.drv.Reject(ctx, m.DeliveryTag, true))
		}
		return m.ch.drv.Ack(ctx, m.DeliveryTag, false)
	})
}

// deadLetter sends a copy of the message to the queue's dead-letter
// exchange (x-dead-letter-exchange, routed with x-dead-letter-routing-key
// or the original routing key) or, without one, or when that exchange is
// missing or routes it nowhere, to the durable queue
// q.Name+PoisonQueueSuffix; then it acks the message.
func (c *Consumer) deadLetter(ctx context.Context, m *Message, q Queue, deliveries int, err error) error {
	h := failureHeaders(m, err, 2)
	delete(h, HeaderDeliveryCount) // the count starts again in the new queue
	h[HeaderFailedDeliveries] = int64(deliveries)
	h[HeaderFailedQueue] = m.Queue
	args := q.QueueArguments()
	stored := false
	if dlx, ok := args["x-dead-letter-exchange"].(string); ok {
		rk, _ := h[HeaderOriginalRoutingKey].(string)
		if k, ok := args["x-dead-letter-routing-key"].(string); ok {
			rk = k
		}
		perr := c.onSideChannel(ctx, dlx, func(ch *Channel) error {
			return ch.drv.Publish(ctx, m.republished(dlx, rk, h))
		})
		if perr != nil && !errors.Is(perr, ErrUnroutable) && !errors.Is(perr, ErrNotFound) {
			return perr
		}
		stored = perr == nil
	}
	if !stored {
		poison := m.Queue + PoisonQueueSuffix
		publish := func(ch *Channel) error { return ch.drv.Publish(ctx, m.republished("", poison, h)) }
		perr := c.onSideChannel(ctx, poison, func(ch *Channel) error {
			if _, err := ch.drv.QueueDeclare(ctx, driver.Queue{Name: poison, Durable: true}); err != nil {
				return err
			}
			return publish(ch)
		})
		if errors.Is(perr, ErrPreconditionFailed) {
			// Declared already, with other attributes: it exists, use it.
			perr = c.onSideChannel(ctx, poison, publish)
		}
		if perr != nil {
			return perr
		}
	}
	return m.settleAs(ctx, Rejected, EventDeadLettered, deliveries, "message.dead_letter", func() error {
		return m.ch.drv.Ack(ctx, m.DeliveryTag, false)
	})
}

// onSideChannel runs fn on a channel of its own: RabbitMQ closes a
// channel that publishes to a missing exchange or redeclares a queue
// differently, and that must not be the consumer's.
func (c *Consumer) onSideChannel(ctx context.Context, name string, fn func(ch *Channel) error) error {
	ch, err := c.ch.conn.Channel(ctx)
	if err != nil {
		return err
	}
	err = ch.wrap("message.dead_letter", name, fn(ch))
	if cerr := ch.Close(); err == nil && cerr != nil && !errors.Is(cerr, ErrClosed) {
		err = cerr
	}
	return err
}

// heldMessages are failed messages waiting out their backoff, unacked.
type heldMessages struct {
	mu      sync.Mutex
	timers  map[*Message]*heldMessage
	pending sync.WaitGroup // timers not yet stopped or finished
	closing bool           // settle at once: the consumer is closing
}

type heldMessage struct {
	timer  *time.Timer
	settle func()
}

// hold runs settle after d, or at once when d is 0 or the consumer is
// closing. The settlement gets its own timeout, not the handler's ctx.
func (h *heldMessages) hold(ctx context.Context, m *Message, d time.Duration, settle func(context.Context) error) {
	base := context.WithoutCancel(ctx)
	conn := m.ch.conn
	run := func() {
		ctx, cancel := context.WithTimeout(base, settleTimeout)
		defer cancel()
		if err := settle(ctx); err != nil && !errors.Is(err, ErrAlreadyAcknowledged) {
			conn.reportError(err)
		}
	}
	h.mu.Lock()
	if d <= 0 || h.closing {
		h.mu.Unlock()
		run()
		return
	}
	if h.timers == nil {
		h.timers = map[*Message]*heldMessage{}
	}
	hm := &heldMessage{settle: run}
	h.pending.Add(1)
	hm.timer = time.AfterFunc(d, func() {
		defer h.pending.Done()
		h.mu.Lock()
		_, mine := h.timers[m]
		delete(h.timers, m)
		h.mu.Unlock()
		if mine {
			run()
		}
	})
	h.timers[m] = hm
	h.mu.Unlock()
}

// flush settles every held message now, without waiting out its backoff,
// so that its count is raised before the consumer's channel closes; it
// returns when every settlement is done.
func (h *heldMessages) flush() {
	for _, hm := range h.stop() {
		hm.settle()
		h.pending.Done()
	}
	h.pending.Wait()
}

// drop forgets the held messages: their channel is gone, and with it the
// deliveries, which the broker gives back.
func (h *heldMessages) drop() {
	for range h.stop() {
		h.pending.Done()
	}
}

// stop makes every later hold settle at once and returns the held
// messages whose timers it stopped before they fired (a timer that fired
// settles its message itself).
func (h *heldMessages) stop() []*heldMessage {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closing = true
	var stopped []*heldMessage
	for m, hm := range h.timers {
		if hm.timer.Stop() {
			stopped = append(stopped, hm)
			delete(h.timers, m)
		}
	}
	return stopped
}
