package kombu

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"
)

// Reviver is something bound to a channel that Ensure moves to the new
// connection after a reconnect (kombu's revive): Producer and Consumer.
type Reviver interface {
	Revive(ctx context.Context, ch *Channel) error
}

// Recoverable reports whether err means the connection failed before the
// operation could have happened, so that reconnecting and trying again
// cannot duplicate it: ErrConnectionLost and ErrClosed of a channel or
// connection that went away. A publish whose outcome is unknown
// (ErrUnconfirmed, ErrTimeout), a refused one (ErrNacked) and a context
// error are not recoverable: retrying them blindly could send twice.
func Recoverable(err error) bool {
	if err == nil || isCtxErr(err) {
		return false
	}
	if errors.Is(err, ErrUnconfirmed) || errors.Is(err, ErrNacked) || errors.Is(err, ErrTimeout) {
		return false
	}
	return errors.Is(err, ErrConnectionLost) || errors.Is(err, ErrClosed)
}

// withDefaults fills in the zero fields of a policy; nil means
// DefaultRetryPolicy.
func (p *RetryPolicy) withDefaults() RetryPolicy {
	policy := DefaultRetryPolicy
	if p != nil {
		policy = *p
	}
	if policy.MaxRetries == 0 {
		policy.MaxRetries = 3
	}
	if policy.IntervalStep == 0 {
		policy.IntervalStep = 200 * time.Millisecond
	}
	if policy.IntervalMax == 0 {
		policy.IntervalMax = time.Second
	}
	return policy
}

// wait is how long to wait before retry number attempt (0-based).
func (p *RetryPolicy) wait(attempt int) time.Duration {
	return min(p.IntervalStart+time.Duration(attempt)*p.IntervalStep, p.IntervalMax)
}

// backoff follows a failed attempt (0-based): false when the policy allows
// no further try, else it tells OnRetry and waits; a ctx end while waiting
// is returned.
func (p *RetryPolicy) backoff(ctx context.Context, attempt int, err error) (bool, error) {
	if p.MaxRetries > 0 && attempt >= p.MaxRetries {
		return false, nil
	}
	wait := p.wait(attempt)
	if p.OnRetry != nil {
		p.OnRetry(err, wait)
	}
	return true, sleep(ctx, wait)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// EnsureConnection connects, retrying under policy (nil:
// DefaultRetryPolicy) while the broker cannot be reached (kombu's
// ensure_connection). Each attempt tries every URL of the failover list
// once; policy.OnRetry is told each failure and the wait before the next
// attempt. Errors that another attempt cannot fix (refused credentials,
// a closed Connection) and ctx's end are returned at once.
func (c *Connection) EnsureConnection(ctx context.Context, policy *RetryPolicy) error {
	pol := policy.withDefaults()
	c.reportRetries(&pol)
	for attempt := 0; ; attempt++ {
		err := c.Connect(ctx)
		if err == nil || isCtxErr(err) || !errors.Is(err, ErrConnectionLost) || c.isClosed() {
			return err
		}
		if again, serr := pol.backoff(ctx, attempt, err); !again || serr != nil {
			return cmp.Or(serr, err)
		}
	}
}

// Ensure runs fn and, while it fails with a Recoverable error, reconnects
// (failing over as Options.FailoverStrategy says), moves every reviver to
// the connection's new default channel and runs fn again, as policy (nil:
// DefaultRetryPolicy) allows (kombu's ensure). policy.OnRetry is told each
// failure and the wait before the next try. Any other error, ctx's end and
// the last failure once retries run out are returned as they are.
//
// fn must be safe to run again after a Recoverable error; the errors a
// transport returns for an operation that may have happened
// (ErrUnconfirmed, ErrTimeout) are never retried.
func (c *Connection) Ensure(ctx context.Context, policy *RetryPolicy, fn func(ctx context.Context) error, revive ...Reviver) error {
	pol := policy.withDefaults()
	c.reportRetries(&pol)
	// A reviver still on a channel of a dropped connection moves first,
	// rather than failing once and costing the live connection a redial.
	needRevive := staleRevivers(revive)
	for attempt := 0; ; attempt++ {
		gen := c.generation()
		var err error
		if needRevive {
			err = c.revive(ctx, revive)
		}
		if err == nil {
			needRevive = false
			err = fn(ctx)
		}
		if err == nil || !Recoverable(err) || c.isClosed() {
			return err
		}
		if again, serr := pol.backoff(ctx, attempt, err); !again || serr != nil {
			return cmp.Or(serr, err)
		}
		// A failed reconnect is not final: the next try dials again and
		// reports what it finds.
		if rerr := c.reconnect(ctx, gen, true, true, err); rerr != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		needRevive = len(revive) > 0
	}
}

// reportRetries makes pol's retries lifecycle events (EventRetry), when
// someone listens.
func (c *Connection) reportRetries(pol *RetryPolicy) {
	if c.opts.Observer == nil && c.opts.Logger == nil {
		return
	}
	onRetry, attempt := pol.OnRetry, 0
	pol.OnRetry = func(err error, wait time.Duration) {
		attempt++
		c.lifecycle(context.Background(), slog.LevelWarn, Event{Kind: EventRetry, Attempt: attempt, Wait: wait, Err: err})
		if onRetry != nil {
			onRetry(err, wait)
		}
	}
}

// staleRevivers reports whether a reviver is bound to a closed channel.
func staleRevivers(revivers []Reviver) bool {
	for _, r := range revivers {
		if b, ok := r.(interface{ Channel() *Channel }); ok && b.Channel().isClosed() {
			return true
		}
	}
	return false
}

// revive moves revivers to the default channel of the live connection.
func (c *Connection) revive(ctx context.Context, revivers []Reviver) error {
	ch, err := c.DefaultChannel(ctx)
	if err != nil {
		return err
	}
	for _, r := range revivers {
		if err := r.Revive(ctx, ch); err != nil {
			return err
		}
	}
	return nil
}

// Autoretry returns fn wrapped so that each call runs it on the
// connection's default channel under Ensure (kombu's autoretry): after a
// connection failure it reconnects and runs fn again on the new default
// channel.
func (c *Connection) Autoretry(policy *RetryPolicy, fn func(ctx context.Context, ch *Channel) error) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		return c.Ensure(ctx, policy, func(ctx context.Context) error {
			ch, err := c.DefaultChannel(ctx)
			if err != nil {
				return err
			}
			return fn(ctx, ch)
		})
	}
}

func (c *Connection) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Revive moves the producer to ch, a channel of the producer's own
// connection (kombu's Producer.revive): a channel it owned is closed, it
// declares its exchange on the new connection (unless NoDeclare) and its
// OnReturn handler follows. Ensure calls it after a reconnect.
func (p *Producer) Revive(ctx context.Context, ch *Channel) error {
	if ch == nil {
		return &Error{Op: "producer.revive", Err: ErrNotBound}
	}
	if ch.conn != p.conn {
		return &Error{Op: "producer.revive", Transport: p.conn.TransportName(), Err: errors.Join(ErrInvalidArgument,
			errors.New("the channel belongs to another connection"))}
	}
	p.mu.Lock()
	old, owned := p.ch, p.ownsChannel
	p.ch, p.ownsChannel = ch, false
	p.mu.Unlock()
	if owned && old != ch {
		_ = old.Close() // usually closed already by the reconnect
	}
	p.notifyReturns(ch)
	if !p.opts.NoDeclare && p.opts.Exchange.Name != "" {
		return p.conn.MaybeDeclare(ctx, ch, p.opts.Exchange)
	}
	return nil
}

// Declare declares the producer's exchange now, on its channel (kombu's
// Producer.declare). The default exchange and exchanges with NoDeclare
// are never declared.
func (p *Producer) Declare(ctx context.Context) error {
	ch, err := p.channel(ctx)
	if err != nil {
		return err
	}
	return p.opts.Exchange.Declare(ctx, ch)
}
