package kombu

import (
	"context"
	"errors"
)

// Revive moves the consumer to ch (kombu's Consumer.revive): it lets go
// of its old channel (closing it if it owned it, cancelling its tags on it
// otherwise), then applies its prefetch count on ch, declares its queues
// (unless NoDeclare) and consumes from every one of them again. Messages
// received on the old channel and not yet settled are redelivered by the
// broker. Ensure calls it after a reconnect; call it yourself only while
// no Receive or Consume of this consumer runs.
func (c *Consumer) Revive(ctx context.Context, ch *Channel) error {
	if ch == nil {
		return &Error{Op: "consumer.revive", Err: ErrNotBound}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	old := c.ch
	if old != ch {
		if c.ownsChannel {
			_ = old.Close() // usually closed already by the reconnect
		} else if !old.isClosed() {
			_ = c.Cancel(ctx)
		}
	}
	c.mu.Lock()
	c.ch, c.ownsChannel = ch, false
	c.closed, c.inbox, c.endErr = false, nil, nil
	c.tags = map[string]string{}
	queues := append([]Queue(nil), c.queues...)
	c.mu.Unlock()
	if c.opts.PrefetchCount > 0 {
		if err := ch.Qos(ctx, c.opts.PrefetchCount); err != nil {
			return err
		}
	}
	var errs []error
	for _, q := range queues {
		if !c.opts.NoDeclare {
			if _, err := q.Declare(ctx, ch); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		errs = append(errs, c.consume(ctx, q))
	}
	return errors.Join(errs...)
}
