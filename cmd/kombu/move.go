package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kombu-go/kombu/kombu/driver"
)

type moveFlags struct {
	src, dst      connFlags
	exchange      string
	exchangeType  string
	routingKey    string
	dstQueue      string
	noDeclare     bool
	batch         int
	count         int
	idle          time.Duration
	follow        bool
	progressEvery time.Duration
	quiet         bool
}

func (a *app) moveCommand() *cobra.Command {
	var f moveFlags
	c := &cobra.Command{
		Use:   "move SRC-URL QUEUE DST-URL",
		Short: "Move a queue's messages to another broker, at least once",
		Long: `Move the messages of QUEUE on SRC-URL to DST-URL: by default into the queue of
the same name (declared durable there unless --no-declare), or through
--exchange with --routing-key. Body, properties and headers are copied as they
are. A source message is acknowledged only after the destination confirmed
it, so a move that is interrupted (even killed) and started again loses
nothing; messages in flight at the interruption may arrive twice.

The move ends when the queue stayed empty for --idle, or with --follow keeps
shovelling until Ctrl-C. A progress bar (count, rate, ETA) is drawn on a
terminal; otherwise a progress line is printed every --progress-interval.
Messages the source transport could not read are left in the source queue.
On redis, the messages a killed move held come back after the source URL's
visibility_timeout (an hour by default; add ?visibility_timeout=60 to resume
sooner).`,
		Example: `  kombu move redis://localhost:6379/0 tasks amqp://guest:guest@localhost//
  kombu move amqp://old// orders amqp://new// --dst-queue orders.v2
  kombu move redis://localhost:6379/0 events amqp://localhost// --exchange events --routing-key replay`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 3 || !isURL(args[0]) || !isURL(args[2]) {
				return usagef("want arguments SRC-URL QUEUE DST-URL")
			}
			return a.move(cmd.Context(), args[0], args[1], args[2], &f)
		},
	}
	fl := c.Flags()
	fl.DurationVar(&f.src.connectTimeout, "connect-timeout", 10*time.Second, "how long to try to reach each broker")
	fl.StringVarP(&f.exchange, "exchange", "e", "", "publish to this exchange on the destination (default: the queue)")
	fl.StringVar(&f.exchangeType, "exchange-type", "", exchangeTypeHelp)
	fl.StringVarP(&f.routingKey, "routing-key", "r", "", "routing key with --exchange (default: each message's own)")
	fl.StringVar(&f.dstQueue, "dst-queue", "", "destination queue (default: QUEUE)")
	fl.BoolVar(&f.noDeclare, "no-declare", false, "do not declare the destination queue")
	fl.IntVar(&f.batch, "batch", 100, "messages moved per round trip (and source prefetch)")
	fl.IntVarP(&f.count, "count", "n", 0, "move at most this many messages (0: all)")
	fl.DurationVar(&f.idle, "idle", 2*time.Second, "end once the queue stayed empty this long")
	fl.BoolVarP(&f.follow, "follow", "F", false, "keep moving new messages until Ctrl-C")
	fl.DurationVar(&f.progressEvery, "progress-interval", 5*time.Second, "how often to print a progress line when not on a terminal")
	fl.BoolVar(&f.quiet, "quiet", false, "no progress, only the summary")
	return c
}

func (a *app) move(ctx context.Context, srcURL, queue, dstURL string, f *moveFlags) error {
	if f.batch < 1 || f.count < 0 || f.idle <= 0 || f.progressEvery <= 0 {
		return usagef("--batch must be at least 1, --count not negative, --idle and --progress-interval positive")
	}
	if f.exchange == "" && f.routingKey != "" {
		return usagef("--routing-key needs --exchange (without it messages go to --dst-queue)")
	}
	if srcURL == dstURL && f.exchange == "" && (f.dstQueue == "" || f.dstQueue == queue) {
		return usagef("source and destination are the same queue: give --dst-queue or another DST-URL")
	}
	f.dst = f.src
	src, err := a.dial(ctx, srcURL, f.src)
	if err != nil {
		return err
	}
	defer src.Close()
	info, err := src.queueInfo(ctx, queue)
	if err != nil {
		return err
	}
	dst, err := a.dial(ctx, dstURL, f.dst)
	if err != nil {
		return err
	}
	defer dst.Close()
	if err := dst.declareExchange(ctx, f.exchange, f.exchangeType); err != nil {
		return err
	}
	target := publishTarget{exchange: f.exchange, routingKey: f.routingKey}
	if f.exchange == "" {
		target.queue = f.dstQueue
		if target.queue == "" {
			target.queue = queue
		}
		if !f.noDeclare {
			if _, err := dst.declareQueue(ctx, target.queue); err != nil {
				return fmt.Errorf("destination queue %s: %w", target.queue, err)
			}
		}
	}
	total := info.Messages
	if f.count > 0 && f.count < total {
		total = f.count
	}
	if f.follow {
		total = 0
	}
	var bar *progress
	if !f.quiet {
		bar = newProgress(a.stderr, "moving "+queue, total, f.progressEvery)
	}
	moved, skipped := 0, 0
	d := &drainer{s: src, queue: queue, batch: f.batch, idle: f.idle, untilEmpty: true, follow: f.follow, limit: f.count,
		blocked: func() bool { return skipped >= f.batch }}
	start := time.Now()
	_, err = d.run(ctx, func(ds []*driver.Delivery) error {
		pubs := make([]*driver.Publishing, 0, len(ds))
		tags := make([]uint64, 0, len(ds))
		heldBefore := skipped
		for _, m := range ds {
			if m.DecodeError != nil {
				skipped++ // stays unacked: the channel's close hands it back
				continue
			}
			pubs = append(pubs, target.publishing(m))
			tags = append(tags, m.Tag)
		}
		if skipped > heldBefore {
			// Widen the window by what is held, so that the good messages
			// keep flowing (a transport whose consumers keep the prefetch
			// they started with stops once --batch are held: blocked).
			if err := src.drv.Qos(ctx, f.batch+skipped); err != nil {
				return err
			}
		}
		if err := publishAll(ctx, dst.drv, pubs, target.queue != "" && !f.noDeclare); err != nil {
			return fmt.Errorf("destination: %w", err)
		}
		// Confirmed by the destination: now the source may forget them.
		if err := ackAll(ctx, src.drv, tags, skipped == 0); err != nil {
			return fmt.Errorf("source ack (the next move may copy these %d messages again): %w", len(tags), err)
		}
		moved += len(pubs)
		if bar != nil {
			bar.add(len(pubs))
		}
		return nil
	})
	if bar != nil {
		bar.finish()
	}
	el := time.Since(start)
	fmt.Fprintf(a.stderr, "moved %d messages from %s to %s in %v (%.0f msg/s)\n", moved, queue, dst.conn.URI(),
		el.Round(time.Millisecond), float64(moved)/max(el.Seconds(), 1e-9))
	if err == nil && skipped > 0 {
		err = fmt.Errorf("left %d messages the source could not read in %s (look at them with kombu get --raw)", skipped, queue)
	}
	return err
}

// publishTarget says where moved or loaded messages go.
type publishTarget struct {
	queue      string // through the default exchange; "" to use exchange
	exchange   string
	routingKey string // "" keeps each message's own
}

func (t publishTarget) publishing(m *driver.Delivery) *driver.Publishing {
	// Mandatory: a message no queue takes is an error, not a silent loss.
	p := &driver.Publishing{Message: m.Message, Mandatory: true}
	switch {
	case t.queue != "":
		p.RoutingKey = t.queue
	default:
		p.Exchange, p.RoutingKey = t.exchange, t.routingKey
		if p.RoutingKey == "" {
			p.RoutingKey = m.RoutingKey
		}
	}
	return p
}

// publishAll publishes pubs and returns once the broker confirmed every
// one (where it confirms). routable says each goes to a queue declared by
// this command, so one batch (one round trip where the channel can) is
// safe; otherwise they go one by one, mandatory, because a batch reports
// an unroutable message only after the fact (AMQP's basic.return arrives
// on its own), when the source may already have forgotten it.
func publishAll(ctx context.Context, ch driver.Channel, pubs []*driver.Publishing, routable bool) error {
	if len(pubs) == 0 {
		return nil
	}
	if bp, ok := ch.(driver.BatchPublisher); ok && routable {
		return bp.PublishBatch(ctx, pubs)
	}
	for _, p := range pubs {
		if err := ch.Publish(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// ackAll acks tags: with one multiple ack of the last when every earlier
// unacked delivery of the channel is among them, else one by one.
func ackAll(ctx context.Context, ch driver.Channel, tags []uint64, allHeld bool) error {
	if len(tags) == 0 {
		return nil
	}
	if allHeld {
		return ch.Ack(ctx, tags[len(tags)-1], true)
	}
	for _, t := range tags {
		if err := ch.Ack(ctx, t, false); err != nil {
			return err
		}
	}
	return nil
}
