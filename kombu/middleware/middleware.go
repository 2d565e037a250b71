// Package middleware has the standard kombu.Middleware set: panic
// recovery, a per-message timeout, in-process retries with backoff,
// deduplication by message id, concurrency and rate limits, and
// correlation id propagation.
//
// Install them on a Consumer or a Worker with ConsumerOptions.Middleware
// (the first one is outermost), or wrap a handler with kombu.Chain:
//
//	opts := &kombu.ConsumerOptions{Middleware: []kombu.Middleware{
//		middleware.Recover(nil),
//		middleware.CorrelationID(),
//		middleware.Timeout(30 * time.Second),
//		middleware.Retry(middleware.RetryOptions{Attempts: 3}),
//	}}
//
// Order matters: Retry inside Timeout gives every attempt together one
// deadline, Timeout inside Retry gives each attempt its own. A message a
// handler settled itself is never retried or deduplicated.
//
// The constructors run while a program sets up its consumers: given an
// argument that cannot work (a non-positive timeout or limit), they panic
// with a message naming it, as time.NewTicker does, rather than build a
// middleware that would fail every message.
package middleware

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

// Recover turns a handler's panic into a *kombu.PanicError returned as the
// handler's error, so that middleware outside it (Retry, logging) sees a
// failure rather than a panic; onPanic, when set, is told first. The
// Consumer recovers panics too, but only at the outermost level.
func Recover(onPanic func(ctx context.Context, m *kombu.Message, p *kombu.PanicError)) kombu.Middleware {
	return func(next kombu.Handler) kombu.Handler {
		return kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) (err error) {
			defer func() {
				if r := recover(); r != nil {
					pe := &kombu.PanicError{Value: r, Stack: debug.Stack()}
					if onPanic != nil {
						onPanic(ctx, m, pe)
					}
					err = pe
				}
			}()
			return next.HandleMessage(ctx, m)
		})
	}
}

// ErrTimeout is wrapped by the error of a handler that failed after its
// Timeout passed.
var ErrTimeout = errors.New("kombu/middleware: handler timed out")

// Timeout gives each message d to be handled: the handler's context ends
// after d. A handler that fails once its deadline passed returns an error
// wrapping both ErrTimeout and its own error. The handler must watch its
// context: Go cannot stop a goroutine that ignores it.
func Timeout(d time.Duration) kombu.Middleware {
	if d <= 0 {
		panic(fmt.Sprintf("kombu/middleware: Timeout(%v): the timeout must be positive", d))
	}
	return func(next kombu.Handler) kombu.Handler {
		return kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
			tctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			err := next.HandleMessage(tctx, m)
			if err != nil && errors.Is(tctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
				return fmt.Errorf("%w after %v: %w", ErrTimeout, d, err)
			}
			return err
		})
	}
}

// RetryOptions configure Retry. The n-th retry waits InitialInterval *
// Multiplier^(n-1), capped at MaxInterval, less up to Jitter of it.
type RetryOptions struct {
	// Attempts is how many times the handler runs at most, the first
	// included; 0 means 3.
	Attempts        int
	InitialInterval time.Duration // 0 means 100 ms
	MaxInterval     time.Duration // 0 means 10 s
	Multiplier      float64       // 0 means 2
	// Jitter is the fraction (0..1) of each wait drawn at random, so
	// that failing consumers do not retry in step; 0 means none.
	Jitter float64
	// Retryable says whether an error is worth another try; nil retries
	// every error but those marked Permanent.
	Retryable func(error) bool
	// OnRetry, when set, is told about each failure before the wait.
	OnRetry func(ctx context.Context, m *kombu.Message, attempt int, err error, wait time.Duration)
}

// permanentError marks an error that Retry must not retry.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err so that Retry gives up on it at once (it still goes
// to the Consumer's redelivery policy). Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var pe *permanentError
	return errors.As(err, &pe)
}

// Retry runs the handler again in-process, with backoff, while it fails,
// before the failure goes to the Consumer's RedeliveryPolicy (which
// publishes the message again, a round trip through the broker). It stops
// early when the context ends, when the handler settled the message
// itself, or on an error Retryable refuses; the last error is returned.
func Retry(o RetryOptions) kombu.Middleware {
	if o.Attempts < 0 || o.InitialInterval < 0 || o.MaxInterval < 0 || o.Multiplier < 0 || o.Jitter < 0 || o.Jitter > 1 {
		panic(fmt.Sprintf("kombu/middleware: Retry(%+v): negative option, or Jitter outside 0..1", o))
	}
	if o.Attempts == 0 {
		o.Attempts = 3
	}
	if o.InitialInterval == 0 {
		o.InitialInterval = 100 * time.Millisecond
	}
	if o.MaxInterval == 0 {
		o.MaxInterval = 10 * time.Second
	}
	if o.Multiplier == 0 {
		o.Multiplier = 2
	}
	return func(next kombu.Handler) kombu.Handler {
		return kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
			for attempt := 1; ; attempt++ {
				err := next.HandleMessage(ctx, m)
				if err == nil || attempt >= o.Attempts || m.Acknowledged() || IsPermanent(err) ||
					(o.Retryable != nil && !o.Retryable(err)) {
					return err
				}
				wait := o.backoff(attempt)
				if o.OnRetry != nil {
					o.OnRetry(ctx, m, attempt, err, wait)
				}
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return err
				}
			}
		})
	}
}

// backoff is the wait after the attempt-th failure (1-based).
func (o *RetryOptions) backoff(attempt int) time.Duration {
	d := float64(o.InitialInterval)
	for i := 1; i < attempt && d < float64(o.MaxInterval); i++ {
		d *= o.Multiplier
	}
	d = min(d, float64(o.MaxInterval))
	if o.Jitter > 0 {
		d -= d * o.Jitter * rand.Float64()
	}
	return time.Duration(d)
}

// ConcurrencyLimit lets at most n handlers run at once through this
// middleware, across every consumer and worker it is installed on (a
// Consumer's Concurrency limits one consumer only). A message waits for a
// slot, or fails with its context's error when that ends first.
func ConcurrencyLimit(n int) kombu.Middleware {
	if n <= 0 {
		panic(fmt.Sprintf("kombu/middleware: ConcurrencyLimit(%d): the limit must be positive", n))
	}
	slots := make(chan struct{}, n)
	return func(next kombu.Handler) kombu.Handler {
		return kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			defer func() { <-slots }()
			return next.HandleMessage(ctx, m)
		})
	}
}

// RateLimit lets at most perSecond messages a second through this
// middleware, with bursts of up to burst (a token bucket, shared by every
// consumer it is installed on). A message waits for its turn, or fails
// with its context's error when that ends first.
func RateLimit(perSecond float64, burst int) kombu.Middleware {
	if perSecond <= 0 || burst <= 0 {
		panic(fmt.Sprintf("kombu/middleware: RateLimit(%v, %d): rate and burst must be positive", perSecond, burst))
	}
	b := &bucket{rate: perSecond, burst: float64(burst), tokens: float64(burst), last: time.Now()}
	return func(next kombu.Handler) kombu.Handler {
		return kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
			if err := b.wait(ctx); err != nil {
				return err
			}
			return next.HandleMessage(ctx, m)
		})
	}
}

type bucket struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64 // may go negative: callers queued for future tokens
	last   time.Time
}

// wait takes a token, sleeping until it is due; a caller whose ctx ends
// first gives its token back.
func (b *bucket) wait(ctx context.Context) error {
	b.mu.Lock()
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	b.tokens--
	var delay time.Duration
	if b.tokens < 0 {
		delay = time.Duration(-b.tokens / b.rate * float64(time.Second))
	}
	b.mu.Unlock()
	if delay == 0 {
		return nil
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		b.tokens = min(b.burst, b.tokens+1)
		b.mu.Unlock()
		return ctx.Err()
	}
}
