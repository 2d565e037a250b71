package kombu

import (
	"context"
	"errors"
	"sync"

	"github.com/kombu-go/kombu/kombu/driver"
)

// receiveBatch is how many deliveries one pump asks the transport for.
const receiveBatch = 128

// Channel is a channel of a Connection: the unit that owns consumers,
// prefetch and delivery tags. It is safe for concurrent use.
type Channel struct {
	conn  *Connection
	drv   driver.Channel
	dconn driver.Conn // the driver connection drv belongs to

	mu        sync.Mutex
	closed    bool
	consumers map[string]*Consumer // by consumer tag

	// pumpSem lets one goroutine at a time pull from the transport; the
	// others wait for their inbox to fill or for their turn.
	pumpSem chan struct{}
}

// Connection returns the connection the channel belongs to.
func (ch *Channel) Connection() *Connection { return ch.conn }

// Driver returns the transport's channel, for transport-specific features.
func (ch *Channel) Driver() driver.Channel { return ch.drv }

func (ch *Channel) wrap(op, name string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrConnectionLost) {
		ch.conn.connectionLost(ch.dconn, err)
	}
	return wrapErr(op, ch.conn.TransportName(), name, err)
}

func (ch *Channel) isClosed() bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.closed
}

// Qos limits the channel's unacked deliveries: 0 means unlimited, and a
// count outside 0..MaxPrefetchCount (AMQP's uint16) is refused with an
// error wrapping ErrInvalidArgument, on every transport, before any I/O.
func (ch *Channel) Qos(ctx context.Context, prefetchCount int) error {
	if err := driver.CheckPrefetchCount(prefetchCount); err != nil {
		return ch.wrap("basic.qos", "", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return ch.wrap("basic.qos", "", ch.drv.Qos(ctx, prefetchCount))
}

// Flow pauses (false) or resumes (true) deliveries on the channel.
func (ch *Channel) Flow(ctx context.Context, active bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return ch.wrap("channel.flow", "", ch.drv.Flow(ctx, active))
}

// Recover redelivers the channel's unacked messages.
func (ch *Channel) Recover(ctx context.Context, requeue bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return ch.wrap("basic.recover", "", ch.drv.Recover(ctx, requeue))
}

// Close closes the channel: its consumers stop, and its unacked messages
// return to their queues. It is idempotent.
func (ch *Channel) Close() error {
	if !ch.markClosed(nil) {
		return nil
	}
	ch.conn.forgetChannel(ch)
	return ch.wrap("channel.close", "", ch.drv.Close())
}

// markClosed marks the channel and its consumers closed, without I/O, and
// reports whether it was open. A dropped connection marks its channels at
// once and closes their transport side in the background.
func (ch *Channel) markClosed(cause error) bool {
	ch.mu.Lock()
	if ch.closed {
		ch.mu.Unlock()
		return false
	}
	ch.closed = true
	consumers := make([]*Consumer, 0, len(ch.consumers))
	for _, c := range ch.consumers {
		consumers = append(consumers, c)
	}
	ch.consumers = map[string]*Consumer{}
	ch.mu.Unlock()
	for _, c := range consumers {
		c.channelClosed(cause)
	}
	return true
}

func (ch *Channel) register(tag string, c *Consumer) {
	ch.mu.Lock()
	ch.consumers[tag] = c
	ch.mu.Unlock()
}

func (ch *Channel) unregister(tag string) {
	ch.mu.Lock()
	delete(ch.consumers, tag)
	ch.mu.Unlock()
}

func (ch *Channel) hasConsumers() bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return len(ch.consumers) > 0
}

// pump pulls one batch of deliveries from the transport and dispatches it
// to the consumers by tag. It returns how many it dispatched.
func (ch *Channel) pump(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err // a free semaphore must not win over a done ctx
	}
	select {
	case ch.pumpSem <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-ch.pumpSem }()
	return ch.pumpHeld(ctx)
}

// pumpHeld is pump for a caller that holds pumpSem.
func (ch *Channel) pumpHeld(ctx context.Context) (int, error) {
	ds, err := ch.drv.Receive(ctx, receiveBatch)
	for _, d := range ds {
		ch.mu.Lock()
		c := ch.consumers[d.ConsumerTag]
		ch.mu.Unlock()
		if c == nil {
			// Cancelled while the delivery was in flight: give it back.
			ch.conn.reportError(ch.wrap("basic.reject", d.Queue, ch.drv.Reject(context.Background(), d.Tag, true)))
			continue
		}
		c.dispatch(ctx, ch.newMessage(d, c.opts.NoAck))
	}
	var ce *driver.ConsumerError
	if errors.As(err, &ce) {
		// One consumer ended; it reports that from its own Receive, and
		// the channel's other consumers go on.
		ch.mu.Lock()
		c := ch.consumers[ce.ConsumerTag]
		delete(ch.consumers, ce.ConsumerTag)
		ch.mu.Unlock()
		if c != nil {
			c.ended(ce)
		}
		return len(ds), nil
	}
	if err != nil {
		return len(ds), ch.wrap("receive", "", err)
	}
	return len(ds), nil
}
