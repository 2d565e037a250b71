package virtual

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual/routing"
)

// receiveBound is how long Receive blocks at most before returning nothing.
const receiveBound = time.Second

// restoreTimeout bounds the requeue of unacked messages on Close.
const restoreTimeout = 10 * time.Second

// Channel is a driver.Channel over a Store: it emulates AMQP exchanges,
// bindings, consumers, prefetch, delivery tags and unacked tracking.
type Channel struct {
	conn  *Conn
	store Store
	acker Acker // nil when the store keeps no unacked state

	closeCtx    context.Context // cancelled by Close to interrupt blocking fetches
	closeCancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	prefetch  int
	flow      bool
	consumers []*consumer
	rr        int      // round-robin offset into consumers
	oneQueue  []string // queueOrder's result when there is one consumer
	nextTag   uint64
	unacked   map[uint64]pending
	reserved  int           // prefetch room taken by fetches in flight
	waiters   int           // goroutines blocked in Receive waiting on wake
	wake      chan struct{} // closed and replaced to wake waiters
}

type consumer struct {
	tag   string
	queue string
	noAck bool
}

type pending struct {
	item Item
	tag  string // consumer tag, "" for basic.get
}

func newChannel(c *Conn) *Channel {
	ch := &Channel{conn: c, store: c.store, flow: true, unacked: map[uint64]pending{}, wake: make(chan struct{})}
	ch.acker, _ = c.store.(Acker)
	ch.closeCtx, ch.closeCancel = context.WithCancel(context.Background())
	return ch
}

// signal wakes goroutines blocked in Receive; call with mu held.
func (ch *Channel) signal() {
	if ch.waiters > 0 {
		close(ch.wake)
		ch.wake = make(chan struct{})
	}
}

func (ch *Channel) checkOpen() error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed {
		return driver.ErrClosed
	}
	return nil
}

// begin starts a public method: a done ctx returns its error, as on AMQP,
// and the method does nothing; then the channel must be open.
func (ch *Channel) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return ch.checkOpen()
}

// validate checks a name with driver.ValidateName, then with the store's
// own rules.
func (ch *Channel) validate(kind, name string) error {
	if err := driver.ValidateName(kind, name); err != nil {
		return err
	}
	if v, ok := ch.store.(NameValidator); ok && name != "" {
		return v.ValidateName(kind, name)
	}
	return nil
}

// validateBinding checks the names of a binding.
func (ch *Channel) validateBinding(b driver.Binding) error {
	if err := ch.validate("queue", b.Queue); err != nil {
		return err
	}
	if err := ch.validate("exchange", b.Exchange); err != nil {
		return err
	}
	return ch.validate("routing key", b.RoutingKey)
}

// ExchangeDeclare implements driver.Channel.
func (ch *Channel) ExchangeDeclare(ctx context.Context, e driver.Exchange) error {
	if err := ch.begin(ctx); err != nil {
		return err
	}
	if e.Name == "" {
		return fmt.Errorf("%w: the default exchange cannot be declared", driver.ErrAccessRefused)
	}
	if _, _, exists := ch.conn.state.exchange(e.Name); !e.Passive {
		// RabbitMQ refuses to create amq.* exchanges but accepts an
		// equivalent redeclaration of its predeclared ones.
		if err := routing.ValidateExchangeDeclare(e.Name); err != nil && !exists {
			return err
		}
		if !routing.ValidExchangeType(e.Type) {
			return fmt.Errorf("%w: unknown exchange type %q", driver.ErrInvalidArgument, e.Type)
		}
	}
	if err := ch.validate("exchange", e.Name); err != nil {
		return err
	}
	return ch.conn.state.declareExchange(e)
}

// ExchangeDelete implements driver.Channel.
func (ch *Channel) ExchangeDelete(ctx context.Context, name string, ifUnused bool) error {
	if err := ch.begin(ctx); err != nil {
		return err
	}
	if err := ch.validate("exchange", name); err != nil {
		return err
	}
	if name == "" || len(name) >= 4 && name[:4] == "amq." {
		return fmt.Errorf("%w: exchange %q cannot be deleted", driver.ErrAccessRefused, name)
	}
	return ch.conn.state.deleteExchange(name, ifUnused)
}

// QueueDeclare implements driver.Channel.
func (ch *Channel) QueueDeclare(ctx context.Context, q driver.Queue) (driver.QueueInfo, error) {
	if err := ch.begin(ctx); err != nil {
		return driver.QueueInfo{}, err
	}
	if q.Name == "" {
		if q.Passive {
			return driver.QueueInfo{}, fmt.Errorf("%w: passive declare needs a queue name", driver.ErrInvalidArgument)
		}
		q.Name = "amq.gen-" + NewDeliveryTag()
	} else if !q.Passive {
		if err := routing.ValidateQueueDeclare(q.Name); err != nil {
			return driver.QueueInfo{}, err
		}
	}
	if err := ch.validate("queue", q.Name); err != nil {
		return driver.QueueInfo{}, err
	}
	if q.Passive {
		known, err := ch.stillDeclared(ctx, q.Name)
		if err != nil {
			return driver.QueueInfo{}, err
		}
		if !known {
			return driver.QueueInfo{}, notFoundQueue(q.Name)
		}
	} else {
		args, err := driver.NormalizeQueueArgs(q.Args)
		if err != nil {
			return driver.QueueInfo{}, err
		}
		q.Args = args
		if qs, ok := ch.store.(QueueStore); ok {
			if err := qs.DeclareQueue(ctx, q); err != nil {
				return driver.QueueInfo{}, err
			}
		}
		if err := ch.conn.state.declareQueue(q, ch.conn); err != nil {
			return driver.QueueInfo{}, err
		}
	}
	n, err := ch.store.Size(ctx, q.Name)
	if err != nil {
		return driver.QueueInfo{}, err
	}
	_, consumers, _ := ch.conn.state.queue(q.Name)
	return driver.QueueInfo{Name: q.Name, Messages: n, Consumers: consumers}, nil
}

// stillDeclared is queueKnown for a passive declare, which must see a
// delete made by another process. On a store without shared state, a
// queue this connection declared and bound exists only while the store
// still has one of those binding rows, or messages (another process's
// delete removes both); it is then forgotten here too. One it declared
// without a binding leaves nothing to check and is taken on trust.
func (ch *Channel) stillDeclared(ctx context.Context, queue string) (bool, error) {
	qs, ok := ch.store.(QueueStore)
	_, isBS := ch.store.(BindingStore)
	if ch.conn.shared || !ok || !isBS || !ch.conn.state.hasQueue(queue) {
		return ch.conn.queueKnown(ctx, queue)
	}
	bindings := ch.conn.state.queueBindings(queue)
	if len(bindings) == 0 {
		return true, nil
	}
	rows := make([]StoredBinding, len(bindings))
	for i, b := range bindings {
		rows[i] = ch.storedBinding(b)
	}
	exists, err := qs.QueueExists(ctx, queue, rows)
	if err == nil && !exists {
		ch.conn.state.forgetQueue(queue)
	}
	return exists, err
}

func (ch *Channel) exchangeType(name string) string {
	if d, _, ok := ch.conn.state.exchange(name); ok {
		return d.Type
	}
	return "direct" // kombu: an exchange this process never declared routes as direct
}

func (ch *Channel) storedBinding(b driver.Binding) StoredBinding {
	sb := StoredBinding{Exchange: b.Exchange, RoutingKey: b.RoutingKey, Queue: b.Queue}
	if ch.exchangeType(b.Exchange) == "topic" {
		sb.Pattern = routing.KombuTopicPattern(b.RoutingKey)
	}
	return sb
}

// QueueBind implements driver.Channel.
func (ch *Channel) QueueBind(ctx context.Context, b driver.Binding) error {
	if err := ch.begin(ctx); err != nil {
		return err
	}
	if err := ch.validateBinding(b); err != nil {
		return err
	}
	if b.Exchange == "" {
		return fmt.Errorf("%w: cannot bind to the default exchange", driver.ErrAccessRefused)
	}
	if known, err := ch.conn.queueKnown(ctx, b.Queue); err != nil {
		return err
	} else if !known {
		return notFoundQueue(b.Queue)
	}
	if ch.exchangeType(b.Exchange) == "headers" {
		if err := routing.ValidateHeadersBinding(b.Args); err != nil {
			return err
		}
	}
	if _, err := ch.conn.state.addBinding(b); err != nil {
		return err
	}
	// Store writes are idempotent (sets), so they run even for a binding
	// this state already had: another process may have removed it.
	if bs, ok := ch.store.(BindingStore); ok {
		if err := bs.AddBinding(ctx, ch.storedBinding(b)); err != nil {
			return err
		}
	}
	if f, ok := ch.store.(Fanouter); ok && ch.exchangeType(b.Exchange) == "fanout" {
		return f.BindFanout(ctx, b.Exchange, b.RoutingKey, b.Queue)
	}
	return nil
}

// QueueUnbind implements driver.Channel.
func (ch *Channel) QueueUnbind(ctx context.Context, b driver.Binding) error {
	if err := ch.begin(ctx); err != nil {
		return err
	}
	if err := ch.validateBinding(b); err != nil {
		return err
	}
	ch.conn.state.removeBinding(b)
	return ch.forgetStoredBinding(ctx, b)
}

func (ch *Channel) forgetStoredBinding(ctx context.Context, b driver.Binding) error {
	if bs, ok := ch.store.(BindingStore); ok {
		if err := bs.RemoveBinding(ctx, ch.storedBinding(b)); err != nil {
			return err
		}
	}
	if f, ok := ch.store.(Fanouter); ok && ch.exchangeType(b.Exchange) == "fanout" {
		return f.UnbindFanout(ctx, b.Exchange, b.RoutingKey, b.Queue)
	}
	return nil
}

// QueuePurge implements driver.Channel.
func (ch *Channel) QueuePurge(ctx context.Context, queue string) (int, error) {
	if err := ch.begin(ctx); err != nil {
		return 0, err
	}
	if err := ch.validate("queue", queue); err != nil {
		return 0, err
	}
	if known, err := ch.conn.queueKnown(ctx, queue); err != nil {
		return 0, err
	} else if !known {
		return 0, notFoundQueue(queue)
	}
	return ch.store.Purge(ctx, queue)
}

// QueueDelete implements driver.Channel.
func (ch *Channel) QueueDelete(ctx context.Context, queue string, ifUnused, ifEmpty bool) (int, error) {
	if err := ch.begin(ctx); err != nil {
		return 0, err
	}
	if err := ch.validate("queue", queue); err != nil {
		return 0, err
	}
	_, consumers, _ := ch.conn.state.queue(queue)
	if ifUnused && consumers > 0 {
		return 0, fmt.Errorf("%w: queue %q has %d consumers", driver.ErrPreconditionFailed, queue, consumers)
	}
	n, err := ch.store.Size(ctx, queue)
	if err != nil {
		return 0, err
	}
	if ifEmpty && n > 0 {
		return 0, fmt.Errorf("%w: queue %q has %d messages", driver.ErrPreconditionFailed, queue, n)
	}
	return n, ch.deleteQueue(ctx, queue)
}

func (ch *Channel) deleteQueue(ctx context.Context, queue string) error {
	var errs []error
	for _, b := range ch.conn.state.forgetQueue(queue) {
		errs = append(errs, ch.forgetStoredBinding(ctx, b))
	}
	errs = append(errs, ch.store.Delete(ctx, queue))
	return errors.Join(errs...)
}

// Publish implements driver.Channel.
func (ch *Channel) Publish(ctx context.Context, p *driver.Publishing) error {
	if err := ch.begin(ctx); err != nil {
		return err
	}
	if p.Exchange != "" {
		if err := ch.checkInternal(p.Exchange); err != nil {
			return err
		}
	}
	return ch.publish(ctx, p)
}

// checkInternal refuses a client's publish to an internal exchange, as
// RabbitMQ does (403); dead-lettering may still route to one.
func (ch *Channel) checkInternal(exchange string) error {
	if decl, _, ok := ch.conn.state.exchange(exchange); ok && decl.Internal {
		return fmt.Errorf("%w: cannot publish to internal exchange %q", driver.ErrAccessRefused, exchange)
	}
	return nil
}

func (ch *Channel) publish(ctx context.Context, p *driver.Publishing) error {
	if err := ch.checkOpen(); err != nil {
		return err
	}
	var one [1]QueuedEnvelope // the usual single target, kept off the heap
	puts, err := ch.prepare(ctx, p, one[:0])
	if err != nil {
		return err
	}
	if len(puts) == 1 {
		return ch.store.Put(ctx, puts[0].Queue, puts[0].Envelope)
	}
	return ch.put(ctx, slices.Clone(puts))
}

// PublishBatch implements driver.BatchPublisher: every message is routed
// first, then all are put in one store batch when the store allows it.
func (ch *Channel) PublishBatch(ctx context.Context, ps []*driver.Publishing) error {
	if err := ch.begin(ctx); err != nil {
		return err
	}
	var puts []QueuedEnvelope
	for i, p := range ps {
		err := ch.checkInternal(p.Exchange)
		if err == nil {
			puts, err = ch.prepare(ctx, p, puts)
		}
		if err != nil {
			if len(puts) > 0 {
				if perr := ch.put(ctx, puts); perr != nil {
					return perr
				}
			}
			return &driver.BatchError{Published: i, Err: err}
		}
	}
	return ch.put(ctx, puts)
}

func (ch *Channel) put(ctx context.Context, puts []QueuedEnvelope) error {
	switch {
	case len(puts) == 0:
		return nil
	case len(puts) == 1:
		return ch.store.Put(ctx, puts[0].Queue, puts[0].Envelope)
	}
	if bp, ok := ch.store.(BatchPutter); ok {
		return bp.PutBatch(ctx, puts)
	}
	for i, qe := range puts {
		if err := ch.store.Put(ctx, qe.Queue, qe.Envelope); err != nil {
			return &driver.BatchError{Published: i, Err: err}
		}
	}
	return nil
}

// prepare validates and routes p, appending the envelopes to store to
// dst. Fanout exchanges of Fanouter stores are published at once.
func (ch *Channel) prepare(ctx context.Context, p *driver.Publishing, dst []QueuedEnvelope) ([]QueuedEnvelope, error) {
	if err := ch.validate("exchange", p.Exchange); err != nil {
		return dst, err
	}
	if err := ch.validate("routing key", p.RoutingKey); err != nil {
		return dst, err
	}
	// The publishing's body and headers are the channel's to keep (see
	// driver.Publishing), so the envelope shares them.
	env := &Envelope{Message: p.Message, Exchange: p.Exchange, RoutingKey: p.RoutingKey}
	if env.Properties.Priority > 9 {
		env.Properties.Priority = 9
	}
	if env.Properties.DeliveryMode == 0 {
		env.Properties.DeliveryMode = 2
	}
	if e := env.Properties.Expiration; e != "" {
		ms, err := strconv.ParseInt(e, 10, 64)
		if err != nil {
			return dst, fmt.Errorf("%w: expiration %q is not a number of milliseconds", driver.ErrInvalidArgument, e)
		}
		if err := driver.CheckExpiration(ms); err != nil {
			return dst, err
		}
		env.ExpiresAt = time.Now().Add(time.Duration(ms) * time.Millisecond)
	}
	var queues []string
	var fanout bool
	var err error
	if p.Exchange == "" {
		// The common case, without allocating a one-element route.
		q, ok, err := ch.defaultRoute(ctx, p.RoutingKey, p.Mandatory)
		if err != nil {
			return dst, err
		}
		if ok {
			return append(dst, QueuedEnvelope{Queue: q, Envelope: ch.withQueueTTL(q, env)}), nil
		}
	} else if queues, fanout, err = ch.route(ctx, p.Exchange, p.RoutingKey, p.Headers, p.Mandatory, 0); err != nil {
		return dst, err
	}
	if fanout {
		return dst, ch.store.(Fanouter).PutFanout(ctx, p.Exchange, p.RoutingKey, env)
	}
	if len(queues) == 0 {
		if p.Mandatory {
			return dst, &driver.ReturnError{Return: driver.Return{
				ReplyCode: 312, ReplyText: "NO_ROUTE", Exchange: p.Exchange, RoutingKey: p.RoutingKey, Message: p.Message,
			}}
		}
		return dst, nil // AMQP drops unroutable non-mandatory messages
	}
	for _, q := range queues {
		dst = append(dst, QueuedEnvelope{Queue: q, Envelope: ch.withQueueTTL(q, env)})
	}
	return dst, nil
}

// withQueueTTL applies a queue's x-message-ttl (when shorter) to env.
func (ch *Channel) withQueueTTL(queue string, env *Envelope) *Envelope {
	if !ch.conn.state.hasTTLQueues.Load() {
		return env // the usual case, without a lookup per message
	}
	decl, _, ok := ch.conn.state.queue(queue)
	if !ok {
		return env
	}
	ttl, ok := decl.Args["x-message-ttl"].(int64) // normalized by QueueDeclare
	if !ok {
		return env
	}
	exp := time.Now().Add(time.Duration(ttl) * time.Millisecond)
	if !env.ExpiresAt.IsZero() && env.ExpiresAt.Before(exp) {
		return env
	}
	c := env.Clone()
	c.ExpiresAt = exp
	return c
}

// defaultRoute routes on the default exchange: the routing key names the
// queue. On stores without shared state that is taken on trust unless the
// publish is mandatory, as Python kombu does: another process may have
// declared the queue without leaving a trace in the store (a plain kombu
// Queue on redis).
func (ch *Channel) defaultRoute(ctx context.Context, routingKey string, mandatory bool) (string, bool, error) {
	if !ch.conn.shared && !mandatory {
		return routingKey, true, nil
	}
	known, err := ch.conn.queueKnown(ctx, routingKey)
	return routingKey, known && err == nil, err
}

// route returns the queues exchange routes routingKey to, or fanout=true
// when the store broadcasts it natively.
func (ch *Channel) route(ctx context.Context, exchange, routingKey string, headers map[string]any, mandatory bool, depth int) (queues []string, fanout bool, err error) {
	if exchange == "" {
		q, ok, err := ch.defaultRoute(ctx, routingKey, mandatory)
		if err != nil || !ok {
			return nil, false, err
		}
		return []string{q}, false, nil
	}
	decl, bindings, ok := ch.conn.state.exchange(exchange)
	typ := decl.Type
	if !ok {
		if ch.conn.shared {
			return nil, false, fmt.Errorf("%w: no exchange %q", driver.ErrNotFound, exchange)
		}
		typ = "direct"
	}
	if bs, isBS := ch.store.(BindingStore); isBS && typ != "headers" {
		stored, err := bs.Bindings(ctx, exchange)
		if err != nil {
			return nil, false, err
		}
		bindings = make([]driver.Binding, len(stored))
		for i, sb := range stored {
			bindings[i] = driver.Binding{Queue: sb.Queue, Exchange: exchange, RoutingKey: sb.RoutingKey}
		}
	}
	if typ == "fanout" {
		if _, ok := ch.store.(Fanouter); ok {
			return nil, true, nil
		}
	}
	queues, err = ch.conn.router.Route(typ, bindings, routingKey, headers)
	if err != nil {
		return nil, false, err
	}
	if len(queues) == 0 && depth < 4 {
		if ae, ok := decl.Args["alternate-exchange"].(string); ok && ae != "" {
			return ch.route(ctx, ae, routingKey, headers, mandatory, depth+1)
		}
	}
	return queues, false, nil
}

// Get implements driver.Channel.
func (ch *Channel) Get(ctx context.Context, queue string, noAck bool) (*driver.Delivery, error) {
	if err := ch.begin(ctx); err != nil {
		return nil, err
	}
	if err := ch.validate("queue", queue); err != nil {
		return nil, err
	}
	if known, err := ch.conn.queueKnown(ctx, queue); err != nil {
		return nil, err
	} else if !known {
		return nil, notFoundQueue(queue)
	}
	for {
		it, err := ch.store.Get(ctx, []string{queue}, 0)
		if err != nil {
			return nil, err
		}
		// Taken: dead-letter it even if ctx ends meanwhile.
		if ch.expired(context.WithoutCancel(ctx), it) {
			continue
		}
		ds := ch.track([]Item{it}, false, noAck)
		if len(ds) == 0 {
			return nil, driver.ErrClosed
		}
		return ds[0], nil
	}
}

// expired drops (and dead-letters) an item whose TTL has passed.
func (ch *Channel) expired(ctx context.Context, it Item) bool {
	exp := it.Envelope.ExpiresAt
	if exp.IsZero() || time.Now().Before(exp) {
		return false
	}
	ch.drop(ctx, it, "expired")
	return true
}

// drop discards an item for good, dead-lettering it when its queue says
// so. An undecodable item is never deleted: without a dead-letter
// exchange (or when dead-lettering fails) it is quarantined.
func (ch *Channel) drop(ctx context.Context, it Item, reason string) error {
	decl, _, _ := ch.conn.state.queue(it.Queue)
	dlx, hasDLX := decl.Args["x-dead-letter-exchange"].(string)
	var err error
	if hasDLX {
		err = ch.deadLetter(ctx, it, decl, dlx, reason)
	}
	if it.DecodeErr != nil && (!hasDLX || err != nil) {
		return errors.Join(err, ch.quarantine(ctx, it))
	}
	if ch.acker != nil {
		err = errors.Join(err, ch.acker.Ack(ctx, it))
	}
	return err
}

// deadLetter publishes a copy of it to dlx as RabbitMQ dead-letters.
func (ch *Channel) deadLetter(ctx context.Context, it Item, decl driver.Queue, dlx, reason string) error {
	env := it.Envelope.Clone()
	// As RabbitMQ, drop the per-message TTL so that the message does not
	// expire again in the dead-letter queue.
	env.ExpiresAt = time.Time{}
	env.Properties.Expiration = ""
	rk := env.RoutingKey
	if it.DecodeErr != nil {
		rk = it.Queue // the routing key it came with is unknown
	}
	if k, ok := decl.Args["x-dead-letter-routing-key"].(string); ok {
		rk = k
	}
	h := make(map[string]any, len(env.Headers)+3)
	for k, v := range env.Headers {
		h[k] = v
	}
	h["x-first-death-reason"] = reason
	h["x-first-death-queue"] = it.Queue
	if it.DecodeErr != nil {
		h["x-kombu-decode-error"] = it.DecodeErr.Error()
	}
	env.Headers = h
	env.Exchange, env.RoutingKey, env.Redelivered = dlx, rk, false
	return ch.publish(ctx, &driver.Publishing{Exchange: dlx, RoutingKey: rk, Message: env.Message})
}

// quarantine hands an undecodable item to the store's Quarantiner.
func (ch *Channel) quarantine(ctx context.Context, it Item) error {
	q, ok := ch.store.(Quarantiner)
	if !ok {
		return fmt.Errorf("virtual: store %T returned an undecodable message from queue %q but cannot quarantine it: %w",
			ch.store, it.Queue, it.DecodeErr)
	}
	return q.Quarantine(ctx, it)
}

// quarantineJob is an undecodable item settled on delivery (no-ack) and
// the delivery that reports it.
type quarantineJob struct {
	item     Item
	delivery *driver.Delivery
}

// track assigns delivery tags and records unacked items. Items that can no
// longer be delivered (channel closed, consumer cancelled) are requeued.
func (ch *Channel) track(items []Item, forConsumers bool, noAck bool) []*driver.Delivery {
	ds := make([]*driver.Delivery, 0, len(items))
	var orphans, autoAcked []Item
	var quarantined []quarantineJob
	var block []driver.Delivery
	ch.mu.Lock()
	for _, it := range items {
		var c *consumer
		if forConsumers {
			c = ch.consumerFor(it.Queue)
			if c == nil {
				orphans = append(orphans, it)
				continue
			}
		}
		if ch.closed {
			orphans = append(orphans, it)
			continue
		}
		ch.nextTag++
		env := it.Envelope
		if len(block) == 0 {
			block = make([]driver.Delivery, len(items)) // one allocation per batch
		}
		d := &block[0]
		block = block[1:]
		*d = driver.Delivery{
			Message: env.Message, Tag: ch.nextTag, Exchange: env.Exchange, RoutingKey: env.RoutingKey,
			Queue: it.Queue, Redelivered: env.Redelivered,
		}
		if it.DecodeErr != nil {
			d.DecodeError = it.DecodeErr
			d.Body = d.Body[:min(len(d.Body), driver.RawBodyLimit):min(len(d.Body), driver.RawBodyLimit)]
		}
		skipAck := noAck
		if c != nil {
			d.ConsumerTag = c.tag
			skipAck = c.noAck
		}
		if skipAck && it.DecodeErr != nil {
			// Settled on delivery, but never deleted.
			quarantined = append(quarantined, quarantineJob{it, d})
		} else if skipAck {
			if ch.acker != nil {
				autoAcked = append(autoAcked, it)
			}
		} else {
			ch.unacked[d.Tag] = pending{item: it, tag: d.ConsumerTag}
		}
		ds = append(ds, d)
	}
	ch.mu.Unlock()
	ctx := context.Background()
	ch.ackItems(ctx, autoAcked)
	for _, q := range quarantined {
		if err := ch.quarantine(ctx, q.item); err != nil {
			// The consumer's decode-error path reports it with the message.
			q.delivery.DecodeError = fmt.Errorf("%w; moving it aside failed, so it is gone: %w", q.delivery.DecodeError, err)
		}
	}
	ch.requeueItems(ctx, orphans)
	return ds
}

func (ch *Channel) consumerFor(queue string) *consumer {
	for _, c := range ch.consumers {
		if c.queue == queue {
			return c
		}
	}
	return nil
}

// Consume implements driver.Channel.
func (ch *Channel) Consume(ctx context.Context, a driver.ConsumeArgs) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ch.validate("queue", a.Queue); err != nil {
		return err
	}
	if err := ch.validate("consumer tag", a.ConsumerTag); err != nil {
		return err
	}
	if known, err := ch.conn.queueKnown(ctx, a.Queue); err != nil {
		return err
	} else if !known {
		return notFoundQueue(a.Queue)
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed {
		return driver.ErrClosed
	}
	if a.ConsumerTag == "" {
		a.ConsumerTag = "amq.ctag-" + NewDeliveryTag()
	}
	for _, c := range ch.consumers {
		if c.tag == a.ConsumerTag {
			return fmt.Errorf("%w: consumer tag %q already in use on this channel", driver.ErrPreconditionFailed, a.ConsumerTag)
		}
	}
	ch.consumers = append(ch.consumers, &consumer{tag: a.ConsumerTag, queue: a.Queue, noAck: a.NoAck})
	ch.conn.state.addConsumer(a.Queue, 1)
	ch.signal()
	return nil
}

// Cancel implements driver.Channel.
func (ch *Channel) Cancel(ctx context.Context, consumerTag string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ch.mu.Lock()
	if ch.closed {
		ch.mu.Unlock()
		return driver.ErrClosed
	}
	c := ch.removeConsumer(consumerTag)
	ch.mu.Unlock()
	if c == nil {
		return nil
	}
	return ch.released(ctx, c.queue)
}

// removeConsumer unregisters tag; call with mu held.
func (ch *Channel) removeConsumer(tag string) *consumer {
	for i, c := range ch.consumers {
		if c.tag == tag {
			ch.consumers = append(ch.consumers[:i:i], ch.consumers[i+1:]...)
			ch.signal()
			return c
		}
	}
	return nil
}

// released drops a consumer count, deleting an auto-delete queue that has
// lost its last consumer.
func (ch *Channel) released(ctx context.Context, queue string) error {
	if ch.conn.state.addConsumer(queue, -1) > 0 {
		return nil
	}
	if decl, _, ok := ch.conn.state.queue(queue); ok && decl.AutoDelete {
		return ch.deleteQueue(ctx, queue)
	}
	return nil
}

// Receive implements driver.Channel.
func (ch *Channel) Receive(ctx context.Context, max int) ([]*driver.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if max <= 0 {
		max = 1
	}
	var deadline time.Time
	for {
		ch.mu.Lock()
		if ch.closed {
			ch.mu.Unlock()
			return nil, driver.ErrClosed
		}
		room := max
		if ch.prefetch > 0 {
			if free := ch.prefetch - len(ch.unacked) - ch.reserved; free < room {
				room = free
			}
		}
		if !ch.flow || len(ch.consumers) == 0 || room <= 0 {
			if deadline.IsZero() {
				deadline = time.Now().Add(receiveBound)
			}
			if err := ch.waitLocked(ctx, deadline); err != nil {
				return nil, err
			}
			if !time.Now().Before(deadline) {
				return nil, nil
			}
			continue
		}
		queues := ch.queueOrder()
		ch.reserved += room
		ch.mu.Unlock()

		items, err := ch.fetch(ctx, queues, room, 0)
		if len(items) == 0 && (err == nil || errors.Is(err, driver.ErrEmpty)) {
			if deadline.IsZero() {
				deadline = time.Now().Add(receiveBound)
			}
			items, err = ch.fetchBlocking(ctx, queues, room, time.Until(deadline))
		}
		ch.mu.Lock()
		ch.reserved -= room
		if len(items) > 0 {
			ch.rr++
		}
		ch.mu.Unlock()

		live := items[:0]
		for _, it := range items {
			if !ch.expired(context.WithoutCancel(ctx), it) {
				live = append(live, it)
			}
		}
		ds := ch.track(live, true, false)
		if len(ds) > 0 {
			return ds, nil
		}
		if err != nil && !errors.Is(err, driver.ErrEmpty) {
			if ch.isClosed() {
				return nil, driver.ErrClosed
			}
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return nil, nil
		}
	}
}

func (ch *Channel) isClosed() bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.closed
}

// waitLocked waits for a signal, ctx or the deadline. It is called with mu
// held and returns with it released.
func (ch *Channel) waitLocked(ctx context.Context, deadline time.Time) error {
	wake := ch.wake
	ch.waiters++
	ch.mu.Unlock()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	var err error
	select {
	case <-wake:
	case <-t.C:
	case <-ctx.Done():
		err = ctx.Err()
	}
	ch.mu.Lock()
	ch.waiters--
	ch.mu.Unlock()
	return err
}

// queueOrder returns the consumed queues rotated for round-robin fairness;
// call with mu held.
func (ch *Channel) queueOrder() []string {
	n := len(ch.consumers)
	if n == 1 {
		if len(ch.oneQueue) != 1 || ch.oneQueue[0] != ch.consumers[0].queue {
			ch.oneQueue = []string{ch.consumers[0].queue}
		}
		return ch.oneQueue
	}
	qs := make([]string, 0, n)
	for i := 0; i < n; i++ {
		q := ch.consumers[(ch.rr+i)%n].queue
		dup := false
		for _, x := range qs {
			if x == q {
				dup = true
				break
			}
		}
		if !dup {
			qs = append(qs, q)
		}
	}
	return qs
}

func (ch *Channel) fetch(ctx context.Context, queues []string, n int, wait time.Duration) ([]Item, error) {
	if bg, ok := ch.store.(BatchGetter); ok && n > 1 {
		return bg.GetBatch(ctx, queues, n, wait)
	}
	it, err := ch.store.Get(ctx, queues, wait)
	if err != nil {
		return nil, err
	}
	items := []Item{it}
	for len(items) < n {
		it, err := ch.store.Get(ctx, queues, 0)
		if err != nil {
			break
		}
		items = append(items, it)
	}
	return items, nil
}

// fetchBlocking waits for messages, interrupted by ctx or by Close.
func (ch *Channel) fetchBlocking(ctx context.Context, queues []string, n int, wait time.Duration) ([]Item, error) {
	if wait <= 0 {
		return nil, nil
	}
	fctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(ch.closeCtx, cancel)
	defer func() {
		stop()
		cancel()
	}()
	items, err := ch.fetch(fctx, queues, n, wait)
	if err != nil && ctx.Err() == nil && fctx.Err() != nil {
		err = driver.ErrClosed
	}
	return items, err
}

// Ack implements driver.Channel. Tag 0 with multiple acks everything.
func (ch *Channel) Ack(ctx context.Context, tag uint64, multiple bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !multiple {
		it, err := ch.settleOne(tag)
		if err != nil || ch.acker == nil {
			return err
		}
		return ch.acker.Ack(ctx, it)
	}
	items, err := ch.settle(tag, multiple)
	if err != nil {
		return err
	}
	return ch.ackItems(ctx, items)
}

func (ch *Channel) ackItems(ctx context.Context, items []Item) error {
	if ch.acker == nil || len(items) == 0 {
		return nil
	}
	if ba, ok := ch.acker.(BatchAcker); ok && len(items) > 1 {
		return ba.AckBatch(ctx, items)
	}
	var errs []error
	for _, it := range items {
		errs = append(errs, ch.acker.Ack(ctx, it))
	}
	return errors.Join(errs...)
}

// settle removes tag (or every tag up to it) from the unacked map.
func (ch *Channel) settle(tag uint64, multiple bool) ([]Item, error) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed {
		return nil, driver.ErrClosed
	}
	if !multiple {
		it, err := ch.settleOneLocked(tag)
		if err != nil {
			return nil, err
		}
		return []Item{it}, nil
	}
	items := ch.takeUnacked(func(t uint64) bool { return tag == 0 || t <= tag })
	if len(items) == 0 && tag != 0 {
		return nil, fmt.Errorf("%w: %d", driver.ErrUnknownDeliveryTag, tag)
	}
	ch.signal()
	return items, nil
}

// settleOne removes one tag from the unacked map, allocating nothing.
func (ch *Channel) settleOne(tag uint64) (Item, error) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed {
		return Item{}, driver.ErrClosed
	}
	return ch.settleOneLocked(tag)
}

func (ch *Channel) settleOneLocked(tag uint64) (Item, error) {
	p, ok := ch.unacked[tag]
	if !ok {
		return Item{}, fmt.Errorf("%w: %d", driver.ErrUnknownDeliveryTag, tag)
	}
	delete(ch.unacked, tag)
	ch.signal()
	return p.item, nil
}

// takeUnacked removes the unacked entries whose tag passes keep, returning
// them in delivery order so that requeued messages keep their order. Call
// with mu held.
func (ch *Channel) takeUnacked(keep func(uint64) bool) []Item {
	tags := make([]uint64, 0, len(ch.unacked))
	for t := range ch.unacked {
		if keep(t) {
			tags = append(tags, t)
		}
	}
	slices.Sort(tags)
	items := make([]Item, len(tags))
	for i, t := range tags {
		items[i] = ch.unacked[t].item
		delete(ch.unacked, t)
	}
	return items
}

// Reject implements driver.Channel.
func (ch *Channel) Reject(ctx context.Context, tag uint64, requeue bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	items, err := ch.settle(tag, false)
	if err != nil {
		return err
	}
	if requeue {
		return ch.requeueItem(ctx, items[0])
	}
	return ch.drop(ctx, items[0], "rejected")
}

func (ch *Channel) requeueItem(ctx context.Context, it Item) error {
	if ch.acker != nil {
		return ch.acker.Requeue(ctx, it)
	}
	if it.DecodeErr != nil {
		// Put takes envelopes: it would turn the raw bytes into a message.
		return ch.quarantine(ctx, it)
	}
	return ch.store.Put(ctx, it.Queue, it.Envelope.AsRedelivered())
}

// Recover implements driver.Channel: every unacked message is requeued
// (RabbitMQ, too, supports only requeue=true).
func (ch *Channel) Recover(ctx context.Context, requeue bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	items, err := ch.settle(0, true)
	if err != nil {
		return err
	}
	return ch.requeueItems(ctx, items)
}

// RequeueBatch implements driver.BatchRequeuer: the deliveries go back
// together, in the order of their tags (the order they were delivered),
// as on Close. An unknown tag is an error; the others are requeued.
func (ch *Channel) RequeueBatch(ctx context.Context, tags []uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ch.mu.Lock()
	if ch.closed {
		ch.mu.Unlock()
		return driver.ErrClosed
	}
	var errs []error
	items := make([]Item, 0, len(tags))
	for _, t := range slices.Sorted(slices.Values(tags)) {
		it, err := ch.settleOneLocked(t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		items = append(items, it)
	}
	ch.mu.Unlock()
	return errors.Join(append(errs, ch.requeueItems(ctx, items))...)
}

// requeueItems requeues items in delivery order, in one round trip where
// the store can (BatchRequeuer).
func (ch *Channel) requeueItems(ctx context.Context, items []Item) error {
	if br, ok := ch.acker.(BatchRequeuer); ok && len(items) > 1 {
		return br.RequeueBatch(ctx, items)
	}
	var errs []error
	for _, it := range items {
		errs = append(errs, ch.requeueItem(ctx, it))
	}
	return errors.Join(errs...)
}

// Qos implements driver.Channel.
func (ch *Channel) Qos(ctx context.Context, prefetchCount int) error {
	if err := driver.CheckPrefetchCount(prefetchCount); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed {
		return driver.ErrClosed
	}
	ch.prefetch = prefetchCount
	ch.signal()
	return nil
}

// Flow implements driver.Channel.
func (ch *Channel) Flow(ctx context.Context, active bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed {
		return driver.ErrClosed
	}
	ch.flow = active
	ch.signal()
	return nil
}

// ExtendLease implements driver.LeaseExtender when the store has leases.
func (ch *Channel) ExtendLease(ctx context.Context, tag uint64, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	le, ok := ch.store.(LeaseExtender)
	if !ok {
		return driver.ErrNotSupported
	}
	ch.mu.Lock()
	p, found := ch.unacked[tag]
	closed := ch.closed
	ch.mu.Unlock()
	if closed {
		return driver.ErrClosed
	}
	if !found {
		return fmt.Errorf("%w: %d", driver.ErrUnknownDeliveryTag, tag)
	}
	return le.ExtendLease(ctx, p.item, d)
}

// RequeueAfter implements driver.DelayedRequeuer when the store is a
// DelayedRequeuer; otherwise it returns driver.ErrNotSupported and the
// delivery stays unacked.
func (ch *Channel) RequeueAfter(ctx context.Context, tag uint64, delay time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dr, ok := ch.store.(DelayedRequeuer)
	if !ok {
		return fmt.Errorf("%w: the store cannot requeue with a delay", driver.ErrNotSupported)
	}
	items, err := ch.settle(tag, false)
	if err != nil {
		return err
	}
	return dr.RequeueAfter(ctx, items[0], delay)
}

// Close implements driver.Channel: unacked messages go back to their
// queues marked redelivered, and the channel's consumers are cancelled.
func (ch *Channel) Close() error {
	ch.mu.Lock()
	if ch.closed {
		ch.mu.Unlock()
		return nil
	}
	ch.closed = true
	items := ch.takeUnacked(func(uint64) bool { return true })
	consumers := ch.consumers
	ch.consumers = nil
	ch.signal()
	ch.mu.Unlock()
	ch.closeCancel()

	ctx, cancel := context.WithTimeout(context.Background(), restoreTimeout)
	defer cancel()
	errs := []error{ch.requeueItems(ctx, items)}
	for _, c := range consumers {
		errs = append(errs, ch.released(ctx, c.queue))
	}
	ch.conn.forget(ch)
	return errors.Join(errs...)
}

var (
	_ driver.Channel         = (*Channel)(nil)
	_ driver.BatchPublisher  = (*Channel)(nil)
	_ driver.LeaseExtender   = (*Channel)(nil)
	_ driver.DelayedRequeuer = (*Channel)(nil)
	_ driver.BatchRequeuer   = (*Channel)(nil)
	_ driver.Conn            = (*Conn)(nil)
	_ driver.Pinger          = (*Conn)(nil)
)
