package amqp

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kombu-go/kombu/kombu/driver"
)

// toPublishing converts a driver message. Delivery mode 0 becomes 2
// (persistent), kombu's default.
func toPublishing(p *driver.Publishing) (amqp.Publishing, error) {
	if err := validateNames("exchange", p.Exchange, "routing key", p.RoutingKey); err != nil {
		return amqp.Publishing{}, err
	}
	for _, s := range []struct{ k, v string }{
		{"content type", p.ContentType}, {"content encoding", p.ContentEncoding},
		{"correlation id", p.Properties.CorrelationID}, {"reply to", p.Properties.ReplyTo},
		{"expiration", p.Properties.Expiration}, {"message id", p.Properties.MessageID},
		{"type", p.Properties.Type}, {"user id", p.Properties.UserID}, {"app id", p.Properties.AppID},
	} {
		if err := checkShortstr(s.k, s.v); err != nil {
			return amqp.Publishing{}, err
		}
	}
	h, err := toTable(p.Headers)
	if err != nil {
		return amqp.Publishing{}, err
	}
	mode := p.Properties.DeliveryMode
	if mode == 0 {
		mode = amqp.Persistent
	}
	return amqp.Publishing{
		Headers:         h,
		ContentType:     p.ContentType,
		ContentEncoding: p.ContentEncoding,
		DeliveryMode:    mode,
		Priority:        p.Properties.Priority,
		CorrelationId:   p.Properties.CorrelationID,
		ReplyTo:         p.Properties.ReplyTo,
		Expiration:      p.Properties.Expiration,
		MessageId:       p.Properties.MessageID,
		Timestamp:       p.Properties.Timestamp,
		Type:            p.Properties.Type,
		UserId:          p.Properties.UserID,
		AppId:           p.Properties.AppID,
		Body:            p.Body,
	}, nil
}

// pending is one publish waiting for its confirm.
type pending struct {
	g  *gen
	dc *amqp.DeferredConfirmation
}

// send publishes one message on the live generation. When amqp091-go
// refuses to send because the AMQP channel just died, the message surely
// did not leave, so it is sent again on a reopened channel (once).
func (c *Channel) send(ctx context.Context, p *driver.Publishing, msg *amqp.Publishing) (pending, error) {
	if err := c.conn.waitUnblocked(ctx); err != nil {
		return pending{}, err
	}
	for attempt := 0; ; attempt++ {
		g, err := c.current(ctx)
		if err != nil {
			return pending{}, err
		}
		g.inflight.Add(1) // before sending: replaceNacked must not close it under us
		dc, err := g.ch.PublishWithDeferredConfirmWithContext(ctx, p.Exchange, p.RoutingKey, p.Mandatory, false, *msg)
		if err == nil && dc != nil {
			return pending{g: g, dc: dc}, nil
		}
		g.inflight.Add(-1)
		if err == nil {
			return pending{g: g}, nil
		}
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return pending{}, err
		}
		if attempt == 0 && notSent(err) && !c.conn.isClosed() {
			continue
		}
		return pending{}, mapErr(err, c.conn.isClosed)
	}
}

// wait waits for the confirm of pd, at most until the confirm timeout.
func (c *Channel) wait(ctx context.Context, pd pending, timer **time.Timer) error {
	if pd.dc == nil {
		return nil
	}
	defer pd.g.inflight.Add(-1)
	select {
	case <-pd.dc.Done():
	default:
		to := c.conn.opts.ConfirmTimeout
		var tc <-chan time.Time
		if to > 0 {
			if *timer == nil {
				*timer = time.NewTimer(to)
			}
			tc = (*timer).C
		}
		select {
		case <-pd.dc.Done():
		case <-ctx.Done():
			return ctx.Err()
		case <-tc:
			return fmt.Errorf("%w: amqp: no publisher confirm within %v (outcome unknown)", driver.ErrTimeout, to)
		}
	}
	if pd.dc.Acked() {
		return nil
	}
	if pd.g.isDead() {
		cause := pd.g.cause()
		// 406 (e.g. a message above max_message_size) and friends keep
		// their sentinel; the outcome of the publish itself is unknown.
		// Never driver.ErrConnectionLost here: the broker may have the
		// message, so a retry could duplicate it.
		return fmt.Errorf("%w: %w", ErrUnconfirmed, mapErr(cause, nil))
	}
	pd.g.nacked.Store(true) // replaced once idle: see replaceNacked
	return ErrNacked
}

func (c *Channel) acquire(ctx context.Context) error {
	select {
	case c.window <- struct{}{}:
		return nil
	default:
	}
	select {
	case c.window <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.stop:
		return errClosed()
	}
}

func (c *Channel) release() { <-c.window }

// Publish sends p. With confirms on (the default) it returns nil only once
// the broker confirmed the message; it waits for that confirm alone, while
// publishes from other goroutines on the same channel proceed, up to
// confirm_window of them waiting at once. A nack returns an error wrapping
// ErrNacked; no confirm within confirm_timeout returns driver.ErrTimeout;
// a channel or connection that closes first returns ErrUnconfirmed. For
// throughput from one goroutine use PublishBatch.
//
// A mandatory publish that no queue takes returns a *driver.ReturnError
// (with confirms on; mandatory publishes then run one at a time per
// channel so the return can be matched), else goes to the NotifyReturn
// handler.
func (c *Channel) Publish(ctx context.Context, p *driver.Publishing) error {
	msg, err := toPublishing(p)
	if err != nil {
		return err
	}
	if !c.conn.opts.ConfirmPublish {
		_, err := c.send(ctx, p, &msg)
		return err
	}
	if p.Mandatory {
		return c.publishMandatory(ctx, p, &msg)
	}
	if err := c.acquire(ctx); err != nil {
		return err
	}
	defer c.release()
	pd, err := c.send(ctx, p, &msg)
	if err != nil {
		return err
	}
	var timer *time.Timer
	err = c.wait(ctx, pd, &timer)
	if timer != nil {
		timer.Stop()
	}
	return err
}

func (c *Channel) publishMandatory(ctx context.Context, p *driver.Publishing, msg *amqp.Publishing) error {
	c.mandMu.Lock()
	defer c.mandMu.Unlock()
	if err := c.acquire(ctx); err != nil {
		return err
	}
	defer c.release()
	g, err := c.current(ctx)
	if err != nil {
		return err
	}
	var ret driver.Return
	c.mu.Lock()
	c.mandWait, c.mandGen = &ret, g
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.mandWait, c.mandGen = nil, nil
		c.mu.Unlock()
	}()
	pd, err := c.send(ctx, p, msg)
	if err != nil {
		return err
	}
	if pd.g != g {
		c.mu.Lock()
		c.mandGen = pd.g
		c.mu.Unlock()
	}
	var timer *time.Timer
	err = c.wait(ctx, pd, &timer)
	if timer != nil {
		timer.Stop()
	}
	if err != nil {
		return err
	}
	// The broker sends basic.return before the basic.ack of the same
	// message, and amqp091-go hands the return to watch (an unbuffered
	// send) before it processes the ack: once watch answers the barrier,
	// it has stored the return.
	pd.g.sync()
	c.mu.Lock()
	got := ret
	c.mu.Unlock()
	if got.ReplyCode != 0 {
		return &driver.ReturnError{Return: got}
	}
	return nil
}

// PublishBatch publishes ps, pipelined: up to confirm_window messages are
// sent before waiting for their confirms, then the next chunk. It returns
// nil only when every message was confirmed; otherwise a
// *driver.BatchError whose Published counts the leading messages that
// were confirmed. Mandatory messages of a batch that come back unroutable
// go to the NotifyReturn handler (they are not matched to their index).
func (c *Channel) PublishBatch(ctx context.Context, ps []*driver.Publishing) error {
	msgs := make([]amqp.Publishing, len(ps))
	for i, p := range ps {
		m, err := toPublishing(p)
		if err != nil {
			return &driver.BatchError{Published: 0, Err: err}
		}
		msgs[i] = m
	}
	if !c.conn.opts.ConfirmPublish {
		for i, p := range ps {
			if _, err := c.send(ctx, p, &msgs[i]); err != nil {
				return &driver.BatchError{Published: i, Err: err}
			}
		}
		return nil
	}
	// A sliding window: before sending message i, wait for the oldest
	// outstanding confirm when confirm_window of them are waiting.
	window := cap(c.window)
	ring := make([]pending, 0, min(window, len(ps)))
	head := 0 // index in ps of ring[0]
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	waitOldest := func() error {
		if timer != nil {
			// Each confirm gets the whole confirm timeout from the moment
			// it becomes the oldest one waited for. (Go 1.23+ timers:
			// Reset never delivers a stale tick.)
			timer.Reset(c.conn.opts.ConfirmTimeout)
		}
		err := c.wait(ctx, ring[0], &timer)
		ring = ring[1:]
		c.release()
		if err != nil {
			return err
		}
		head++
		return nil
	}
	fail := func(err error) error {
		for _, pd := range ring {
			c.release()
			if pd.dc != nil {
				pd.g.inflight.Add(-1) // not waited for
			}
		}
		return &driver.BatchError{Published: head, Err: err}
	}
	for i := range ps {
		if len(ring) == window {
			if err := waitOldest(); err != nil {
				return fail(err)
			}
		}
		var pd pending
		err := c.acquire(ctx)
		if err == nil {
			if pd, err = c.send(ctx, ps[i], &msgs[i]); err != nil {
				c.release()
			}
		}
		if err != nil {
			// Find out how many leading messages made it, then report.
			for len(ring) > 0 {
				if werr := waitOldest(); werr != nil {
					return fail(werr)
				}
			}
			return &driver.BatchError{Published: head, Err: err}
		}
		if len(ring) == cap(ring) && head > 0 {
			ring = append(ring[:0:0], ring...) // compact
		}
		ring = append(ring, pd)
	}
	for len(ring) > 0 {
		if err := waitOldest(); err != nil {
			return fail(err)
		}
	}
	return nil
}
