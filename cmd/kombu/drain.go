package main

import (
	"context"
	"errors"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
)

// drainer consumes a queue batch by batch until a limit, or until the
// queue stayed quiet for idle (and, with untilEmpty, holds no ready
// message), or forever with follow.
type drainer struct {
	s          *session
	queue      string
	batch      int  // prefetch and largest batch; 0 means no prefetch limit
	noAck      bool // the broker forgets each message as it sends it
	idle       time.Duration
	untilEmpty bool
	follow     bool
	limit      int // most messages to take, 0 for no limit
	// handBack holds every message and requeues them all at the end, the
	// last first: transports that put a requeued message at the head of
	// its queue (redis) then keep the queue's order.
	handBack bool
	// blocked, when set, reports that the deliveries held unsettled fill
	// the prefetch window: a quiet queue that still has messages is then
	// not waited on.
	blocked func() bool
	tag     string
	held    []uint64
}

// run hands every batch to handle, which settles it. It returns how many
// messages it took.
func (d *drainer) run(ctx context.Context, handle func([]*driver.Delivery) error) (int, error) {
	if d.noAck {
		return d.getEach(ctx, handle)
	}
	prefetch := d.batch
	if d.limit > 0 && (prefetch == 0 || d.limit < prefetch) {
		prefetch = d.limit
	}
	if err := d.s.drv.Qos(ctx, prefetch); err != nil {
		return 0, err
	}
	d.tag = "kombu-cli-" + randomTag()
	if err := d.s.drv.Consume(ctx, driver.ConsumeArgs{Queue: d.queue, ConsumerTag: d.tag, NoAck: d.noAck}); err != nil {
		return 0, err
	}
	defer d.stop(ctx)
	max := prefetch
	if max == 0 {
		max = 500
	}
	got, last := 0, time.Now()
	for d.limit == 0 || got < d.limit {
		n := max
		if d.limit > 0 {
			n = min(n, d.limit-got)
		}
		ds, err := d.s.drv.Receive(ctx, n)
		if err != nil {
			return got, err
		}
		if len(ds) > 0 {
			got += len(ds)
			last = time.Now()
			if d.handBack {
				for _, m := range ds {
					d.held = append(d.held, m.Tag)
				}
			}
			if err := handle(ds); err != nil {
				return got, err
			}
			continue
		}
		if d.follow || time.Since(last) < d.idle {
			continue
		}
		if !d.untilEmpty {
			break
		}
		// Quiet for idle: done once no ready message is left (a
		// restore may still bring some back on virtual transports).
		info, err := d.s.queueInfo(ctx, d.queue)
		if errors.Is(err, driver.ErrNotFound) {
			break // a virtual queue with no message and no binding is gone
		}
		if err != nil {
			return got, err
		}
		if info.Messages == 0 || (d.blocked != nil && d.blocked()) {
			break
		}
		last = time.Now()
	}
	return got, nil
}

// stop cancels the consumer, so that nothing more arrives, and hands back
// what it held. A cancelled ctx must not keep either from going out.
func (d *drainer) stop(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	_ = d.s.drv.Cancel(ctx, d.tag)
	for i := len(d.held) - 1; i >= 0; i-- {
		if err := d.s.drv.Reject(ctx, d.held[i], true); err != nil {
			return // the channel's close hands back the rest
		}
	}
}

// getEach takes one message at a time with basic.get: without acks a
// consumer's prefetch window does not apply, and whatever the broker had
// pushed ahead would be lost when the command stops.
func (d *drainer) getEach(ctx context.Context, handle func([]*driver.Delivery) error) (int, error) {
	got, last := 0, time.Now()
	for d.limit == 0 || got < d.limit {
		m, err := d.s.drv.Get(ctx, d.queue, true)
		if err == nil {
			got++
			last = time.Now()
			if err := handle([]*driver.Delivery{m}); err != nil {
				return got, err
			}
			continue
		}
		if !errors.Is(err, driver.ErrEmpty) {
			return got, err
		}
		if !d.follow && time.Since(last) >= d.idle {
			break
		}
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-time.After(emptyPoll):
		}
	}
	return got, nil
}

// emptyPoll is the pause between gets of an empty queue.
const emptyPoll = 50 * time.Millisecond
