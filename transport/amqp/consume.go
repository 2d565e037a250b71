package amqp

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kombu-go/kombu/kombu/driver"
)

// Consume starts a consumer whose deliveries Receive returns. An empty
// consumer tag gets a generated one (it is not reported back; pass a tag
// to be able to Cancel). A tag already in use on this channel returns
// driver.ErrPreconditionFailed without asking the broker (RabbitMQ would
// close the whole connection).
func (c *Channel) Consume(ctx context.Context, a driver.ConsumeArgs) error {
	return c.consume(ctx, a, "")
}

// consume starts a consumer known by a.ConsumerTag. A non-empty wireTag is
// the tag the broker is given instead: a consumer started again (see Qos)
// takes a fresh one, because RabbitMQ 3.10 quorum queues crash the channel
// when a cancelled tag is reused while its deliveries are in flight.
func (c *Channel) consume(ctx context.Context, a driver.ConsumeArgs, wireTag string) error {
	if err := validateNames("queue", a.Queue, "consumer tag", a.ConsumerTag); err != nil {
		return err
	}
	args, err := toTable(a.Args)
	if err != nil {
		return err
	}
	tag := a.ConsumerTag
	if tag == "" {
		tag = uniqueTag()
	}
	a.ConsumerTag = tag
	if wireTag == "" {
		wireTag = tag
	}
	cons := &consumer{tag: tag, wireTag: wireTag, queue: a.Queue, noAck: a.NoAck, args: a}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errClosed()
	}
	if _, dup := c.consumers[tag]; dup {
		c.mu.Unlock()
		return fmt.Errorf("%w: amqp: consumer tag %q already in use on this channel", driver.ErrPreconditionFailed, tag)
	}
	c.consumers[tag] = cons
	c.mu.Unlock()
	unreserve := func() {
		c.mu.Lock()
		if c.consumers[tag] == cons {
			delete(c.consumers, tag)
		}
		c.mu.Unlock()
	}

	g, err := c.current(ctx)
	if err != nil {
		unreserve()
		return err
	}
	c.mu.Lock()
	cons.g = g
	c.mu.Unlock()
	type result struct {
		d   <-chan amqp.Delivery
		err error
	}
	res := make(chan result, 1)
	abandoned := make(chan struct{})
	c.conn.goOrRun(func() {
		d, err := g.ch.Consume(a.Queue, wireTag, a.NoAck, a.Exclusive, false, false, args)
		select {
		case res <- result{d, err}:
		case <-abandoned:
			if err == nil {
				// The caller gave up: cancel, and give back what came.
				c.mu.Lock()
				cons.cancelled = true
				cons.d = d
				c.mu.Unlock()
				c.drainCancelled(cons)
				_ = g.ch.Cancel(wireTag, false)
			}
		}
	})
	var r result
	select {
	case r = <-res:
	case <-ctx.Done():
		close(abandoned)
		unreserve()
		return ctx.Err()
	}
	if r.err != nil {
		unreserve()
		return mapErr(r.err, c.conn.isClosed)
	}
	c.mu.Lock()
	cons.d = r.d
	if c.closed || cons.cancelled {
		c.mu.Unlock()
		c.drainCancelled(cons)
		return nil
	}
	c.reading = append(c.reading, cons)
	c.mu.Unlock()
	c.poke(c.queued) // a blocked Receive takes the new consumer in
	return nil
}

// drainCancelled reads what amqp091-go still hands to a consumer that was
// cancelled (it flushes its buffer, then closes the Go channel) and gives
// those deliveries back to their queue; no-ack ones, which the broker
// already forgot, are queued for Receive instead.
func (c *Channel) drainCancelled(cons *consumer) {
	c.mu.Lock()
	if c.closed {
		// The AMQP channel is closing: amqp091-go closes d by itself and
		// the broker requeues. Nothing to do.
		c.mu.Unlock()
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		for d := range cons.d {
			c.handle(cons, d)
		}
	}()
}

// handle takes one delivery read from a consumer's Go channel: queued for
// Receive, or given back when its consumer was cancelled, or dropped when
// its AMQP channel died (the broker requeued it).
func (c *Channel) handle(cons *consumer, d amqp.Delivery) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if cons.cancelled && !cons.noAck {
		cons.g.markHanded(d.DeliveryTag)
		c.mu.Unlock()
		if !cons.g.isDead() {
			_ = cons.g.ch.Reject(d.DeliveryTag, true)
		}
		return
	}
	c.queue = append(c.queue, item{g: cons.g, d: d, cons: cons, noAck: cons.noAck})
	c.mu.Unlock()
}

// ended records that a consumer's Go channel was closed. An end nobody
// asked for (broker cancel, dead AMQP channel) is queued for Receive as a
// *ConsumerError.
func (c *Channel) ended(cons *consumer) {
	c.mu.Lock()
	if cons.ended {
		c.mu.Unlock()
		return
	}
	cons.ended = true
	c.dropReadingLocked(cons)
	if c.consumers[cons.tag] == cons {
		delete(c.consumers, cons.tag)
	}
	quiet := cons.cancelled || c.closed
	c.mu.Unlock()
	if quiet {
		return
	}
	g := cons.g
	var ce *ConsumerError
	if g.ch.IsClosed() {
		ce = &ConsumerError{ConsumerTag: cons.tag, Queue: cons.queue,
			Err: fmt.Errorf("%w: amqp channel closed: %w", driver.ErrClosed, mapErr(g.cause(), nil))}
	} else {
		ce = &ConsumerError{ConsumerTag: cons.tag, Queue: cons.queue, Cancelled: true,
			Err: fmt.Errorf("%w: queue %q deleted or unavailable", driver.ErrNotFound, cons.queue)}
	}
	c.mu.Lock()
	if !c.closed {
		c.queue = append(c.queue, item{g: g, cons: cons, err: ce})
	}
	c.mu.Unlock()
}

func (c *Channel) dropReadingLocked(cons *consumer) {
	for i, r := range c.reading {
		if r == cons {
			c.reading = append(c.reading[:i], c.reading[i+1:]...)
			return
		}
	}
}

// Cancel stops a consumer. Deliveries already handed out by Receive stay
// unacked until settled; those not handed out yet go back to their queue.
func (c *Channel) Cancel(ctx context.Context, consumerTag string) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errClosed()
	}
	cons, ok := c.consumers[consumerTag]
	var g *gen
	if ok {
		cons.cancelled = true
		delete(c.consumers, consumerTag)
		c.dropReadingLocked(cons)
		g = cons.g
	}
	c.mu.Unlock()
	if !ok || g == nil {
		return nil
	}
	c.requeueBuffered(cons)
	if cons.d != nil {
		c.drainCancelled(cons)
	}
	c.poke(c.queued) // a blocked Receive drops the consumer
	if g.isDead() {
		return nil // the consumer died with its channel
	}
	err := c.conn.callCtx(ctx, func() error { return g.ch.Cancel(cons.wireTag, false) })
	if err != nil && (ctx.Err() == nil || !errors.Is(err, ctx.Err())) {
		if g.isDead() {
			return nil
		}
		return mapErr(err, c.conn.isClosed)
	}
	return err
}

// requeueBuffered gives back the deliveries of cons that Receive has not
// handed out.
func (c *Channel) requeueBuffered(cons *consumer) {
	if cons.noAck {
		return
	}
	c.mu.Lock()
	var back []item
	kept := c.queue[:0]
	for _, it := range c.queue {
		if it.cons == cons && it.err == nil {
			it.g.markHanded(it.d.DeliveryTag)
			back = append(back, it)
			continue
		}
		kept = append(kept, it)
	}
	clear(c.queue[len(kept):])
	c.queue = kept
	c.mu.Unlock()
	for _, it := range back {
		if !it.g.isDead() {
			_ = it.g.ch.Reject(it.d.DeliveryTag, true)
		}
	}
}

// Receive returns deliveries of the channel's consumers: it waits up to
// about a second for the first, then takes what is ready, up to max and
// up to the prefetch window. A consumer that ended without Cancel is
// reported once as a *ConsumerError, after the deliveries that came
// before its end.
//
// Receive reads the consumers' amqp091-go delivery channels itself (no
// goroutine in between); deliveries it read beyond max wait in the
// channel's queue for the next call.
func (c *Channel) Receive(ctx context.Context, max int) ([]*driver.Delivery, error) {
	if max <= 0 {
		max = 1
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	waitC := func() <-chan time.Time {
		if timer == nil {
			timer = time.NewTimer(receiveWait)
		}
		return timer.C
	}
	var snap []*consumer
	var acc []*driver.Delivery
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, errClosed()
		}
		room := max - len(acc)
		if c.prefetch > 0 {
			// unacked already counts the deliveries in acc.
			room = min(room, c.prefetch-len(c.unacked))
		}
		got, err := c.takeLocked(max-len(acc), room, len(acc))
		acc = append(acc, got...)
		if c.prefetch > 0 {
			room = min(max-len(acc), c.prefetch-len(c.unacked))
		} else {
			room = max - len(acc)
		}
		canRead := !c.paused && room > 0 && err == nil
		snap = snap[:0]
		if canRead {
			// Start with a different consumer each time, for fairness.
			n := len(c.reading)
			for i := range n {
				snap = append(snap, c.reading[(c.rr+i)%n])
			}
			c.rr++
		}
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if canRead && c.readReady(snap, room) {
			continue // hand out what was read, in order, under the lock
		}
		if len(acc) > 0 {
			return acc, nil
		}
		if !canRead {
			snap = snap[:0]
		}
		if err := c.waitEvent(ctx, snap, waitC); err != nil {
			if err == errReceiveTimeout {
				return nil, nil
			}
			return nil, err
		}
	}
}

var errReceiveTimeout = errors.New("receive wait over")

// takeLocked hands out up to max queued items (room limits acked ones).
// A consumer end is returned as the error only when nothing is handed out
// in this Receive (have counts what an earlier pass took).
func (c *Channel) takeLocked(max, room, have int) ([]*driver.Delivery, error) {
	if c.paused || len(c.queue) == 0 || max <= 0 {
		return nil, nil
	}
	var out []*driver.Delivery
	var err error
	n := 0
	for n < len(c.queue) && len(out) < max {
		it := c.queue[n]
		if it.err != nil {
			if have+len(out) == 0 {
				err = it.err
				n++
			}
			break
		}
		if room <= 0 && !it.noAck {
			break
		}
		n++
		if d := c.acceptLocked(it); d != nil {
			out = append(out, d)
			if !it.noAck {
				room--
			}
		}
	}
	clear(c.queue[:n])
	c.queue = c.queue[n:]
	if len(c.queue) == 0 {
		c.queue = nil
	}
	return out, err
}

// readReady reads, without blocking, up to n deliveries from the
// consumers' Go channels into the queue. It reports whether it read
// anything (or saw a consumer end).
func (c *Channel) readReady(snap []*consumer, n int) bool {
	got := 0
	for _, cons := range snap {
	inner:
		for got < n {
			select {
			case d, ok := <-cons.d:
				if !ok {
					c.ended(cons)
					got++ // an event to report
					break inner
				}
				c.handle(cons, d)
				got++
			default:
				break inner
			}
		}
	}
	return got > 0
}

// waitEvent blocks until a delivery arrives on one of snap's channels (it
// is queued), the queue or the window changes, ctx ends, the channel
// closes, or the receive wait is over.
func (c *Channel) waitEvent(ctx context.Context, snap []*consumer, waitC func() <-chan time.Time) error {
	switch len(snap) {
	case 0:
		select {
		case <-c.queued:
		case <-c.settled:
		case <-c.resumed:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.stop:
			return errClosed()
		case <-waitC():
			return errReceiveTimeout
		}
		return nil
	case 1:
		cons := snap[0]
		select {
		case d, ok := <-cons.d:
			if !ok {
				c.ended(cons)
			} else {
				c.handle(cons, d)
			}
		case <-c.queued:
		case <-c.settled:
		case <-c.resumed:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.stop:
			return errClosed()
		case <-waitC():
			return errReceiveTimeout
		}
		return nil
	}
	cases := make([]reflect.SelectCase, 0, len(snap)+6)
	for _, cons := range snap {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(cons.d)})
	}
	fixed := []<-chan struct{}{c.queued, c.settled, c.resumed}
	for _, ch := range fixed {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
	}
	iCtx := len(cases)
	cases = append(cases,
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c.stop)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(waitC())})
	i, v, ok := reflect.Select(cases)
	switch {
	case i < len(snap):
		if !ok {
			c.ended(snap[i])
		} else {
			c.handle(snap[i], v.Interface().(amqp.Delivery))
		}
	case i == iCtx:
		return ctx.Err()
	case i == iCtx+1:
		return errClosed()
	case i == iCtx+2:
		return errReceiveTimeout
	}
	return nil
}

// acceptLocked (c.mu held) turns an item into a delivery handed to the user, or drops it when
// its generation died (the broker requeued it; it comes again).
func (c *Channel) acceptLocked(it item) *driver.Delivery {
	if !it.noAck && (it.g.isDead() || (c.g != it.g)) {
		return nil
	}
	it.g.markHanded(it.d.DeliveryTag)
	tag := it.g.base + it.d.DeliveryTag
	if !it.noAck {
		c.unacked[tag] = it.g
	}
	d := toDelivery(&it.d, tag, it.cons.queue, c.conn.refusedKey)
	d.ConsumerTag = it.cons.tag // not the wire tag of a restarted consumer
	return d
}

// toDelivery converts d. Headers that the socket wrapper replaced with
// the marker table under refusedKey (see framing.go) become DecodeError.
func toDelivery(d *amqp.Delivery, tag uint64, queue, refusedKey string) *driver.Delivery {
	var h map[string]any
	var decodeErr error
	if reason, refused := refusedHeaders(d.Headers, refusedKey); refused {
		decodeErr = fmt.Errorf("amqp: the message's headers cannot be read (%s); they were dropped", reason)
	} else if d.Headers != nil {
		h = fromTable(d.Headers)
	}
	raw := *d
	return &driver.Delivery{
		DecodeError: decodeErr,
		Message: driver.Message{
			Body:            d.Body,
			ContentType:     d.ContentType,
			ContentEncoding: d.ContentEncoding,
			Headers:         h,
			Properties: driver.Properties{
				DeliveryMode:  d.DeliveryMode,
				Priority:      d.Priority,
				CorrelationID: d.CorrelationId,
				ReplyTo:       d.ReplyTo,
				Expiration:    d.Expiration,
				MessageID:     d.MessageId,
				Timestamp:     d.Timestamp,
				Type:          d.Type,
				UserID:        d.UserId,
				AppID:         d.AppId,
			},
		},
		Tag:         tag,
		ConsumerTag: d.ConsumerTag,
		Exchange:    d.Exchange,
		RoutingKey:  d.RoutingKey,
		Queue:       queue,
		Redelivered: d.Redelivered,
		As: func(target any) bool {
			if p, ok := target.(*amqp.Delivery); ok {
				*p = raw
				return true
			}
			if p, ok := target.(**amqp.Delivery); ok {
				*p = &raw
				return true
			}
			return false
		},
	}
}

// Get fetches one message with basic.get, or returns driver.ErrEmpty.
func (c *Channel) Get(ctx context.Context, queue string, noAck bool) (*driver.Delivery, error) {
	if err := driver.ValidateName("queue", queue); err != nil {
		return nil, err
	}
	type result struct {
		d   amqp.Delivery
		ok  bool
		err error
	}
	var r result
	var g *gen
	for attempt := 0; ; attempt++ {
		var err error
		if g, err = c.current(ctx); err != nil {
			return nil, err
		}
		res := make(chan result, 1)
		abandoned := make(chan struct{})
		c.conn.goOrRun(func() {
			d, ok, err := g.ch.Get(queue, noAck)
			select {
			case res <- result{d, ok, err}:
			case <-abandoned:
				if ok && !noAck {
					_ = g.ch.Reject(d.DeliveryTag, true) // nobody took it: requeue
				}
			}
		})
		select {
		case r = <-res:
		case <-ctx.Done():
			close(abandoned)
			return nil, ctx.Err()
		}
		if r.err != nil && attempt == 0 && notSent(r.err) && !c.conn.isClosed() {
			continue
		}
		break
	}
	if r.err != nil {
		return nil, mapErr(r.err, c.conn.isClosed)
	}
	if !r.ok {
		return nil, fmt.Errorf("amqp: queue %q: %w", queue, driver.ErrEmpty)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed()
	}
	g.markHanded(r.d.DeliveryTag)
	tag := g.base + r.d.DeliveryTag
	if !noAck {
		c.unacked[tag] = g
	}
	return toDelivery(&r.d, tag, queue, c.conn.refusedKey), nil
}

// settle validates tag (and, with multiple, every earlier unsettled tag)
// and removes them from the unacked set. It returns the generation and the
// AMQP frames to send: one multiple ack up to upTo when that covers only
// tags handed to the user, plus single tags above it.
func (c *Channel) settle(tag uint64, multiple bool) (g *gen, upTo uint64, singles []uint64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, 0, nil, errClosed()
	}
	tg, ok := c.unacked[tag]
	if !ok && !(multiple && tag == 0) {
		return nil, 0, nil, fmt.Errorf("amqp: delivery tag %d: %w", tag, driver.ErrUnknownDeliveryTag)
	}
	if !multiple {
		delete(c.unacked, tag)
		c.poke(c.settled)
		return tg, 0, []uint64{tag - tg.base}, nil
	}
	if tag == 0 { // multiple with tag 0: everything outstanding
		tg = c.g
		if tg == nil {
			return nil, 0, nil, nil
		}
		tag = ^uint64(0)
	}
	tags := sortedTags(c.unacked, tg, tag)
	for _, t := range tags {
		delete(c.unacked, t)
	}
	c.poke(c.settled)
	// Every AMQP tag below firstGap was handed out: a multiple ack up to
	// there cannot cover a delivery still waiting in a buffer.
	safe := tg.base + tg.firstGap - 1
	for _, t := range tags {
		if t <= safe {
			upTo = t - tg.base
		} else {
			singles = append(singles, t-tg.base)
		}
	}
	return tg, upTo, singles, nil
}

// Ack acknowledges tag, or with multiple every unsettled delivery up to
// tag. Tags the channel did not hand out, or already settled, or from
// before a channel reopen, return driver.ErrUnknownDeliveryTag without
// reaching the broker (where they would close the channel).
func (c *Channel) Ack(ctx context.Context, tag uint64, multiple bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	g, upTo, singles, err := c.settle(tag, multiple)
	if err != nil || g == nil {
		return err
	}
	if upTo > 0 {
		if err := g.ch.Ack(upTo, true); err != nil {
			return c.settleErr(g, err)
		}
	}
	for _, t := range singles {
		if err := g.ch.Ack(t, false); err != nil {
			return c.settleErr(g, err)
		}
	}
	return nil
}

// Reject rejects tag: requeued (redelivered) or dropped/dead-lettered.
func (c *Channel) Reject(ctx context.Context, tag uint64, requeue bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	g, _, singles, err := c.settle(tag, false)
	if err != nil {
		return err
	}
	if err := g.ch.Reject(singles[0], requeue); err != nil {
		return c.settleErr(g, err)
	}
	return nil
}

func (c *Channel) settleErr(g *gen, err error) error {
	if g.isDead() {
		// The delivery went back to its queue with the channel.
		return fmt.Errorf("amqp: channel closed before the settlement, message requeued by the broker: %w: %w",
			driver.ErrUnknownDeliveryTag, err)
	}
	return mapErr(err, c.conn.isClosed)
}
