package middleware

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

func msg(id string) *kombu.Message {
	return &kombu.Message{Properties: kombu.Properties{MessageID: id}}
}

func failing(times int, err error) (kombu.Handler, *atomic.Int32) {
	var calls atomic.Int32
	return kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
		if int(calls.Add(1)) <= times {
			return err
		}
		return nil
	}), &calls
}

func TestRecoverReturnsPanicAsError(t *testing.T) {
	var told *kombu.PanicError
	h := Recover(func(ctx context.Context, m *kombu.Message, p *kombu.PanicError) { told = p })(
		kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error { panic("boom") }))
	err := h.HandleMessage(context.Background(), msg("1"))
	var pe *kombu.PanicError
	if !errors.As(err, &pe) || pe.Value != "boom" || len(pe.Stack) == 0 {
		t.Fatalf("err = %v, want a *PanicError with value boom and a stack", err)
	}
	if told != pe {
		t.Errorf("onPanic got %v, want the returned error", told)
	}
	// A handler that does not panic passes its result through.
	want := errors.New("plain")
	if err := Recover(nil)(kombu.HandlerFunc(func(context.Context, *kombu.Message) error { return want })).
		HandleMessage(context.Background(), msg("2")); err != want {
		t.Errorf("err = %v, want %v", err, want)
	}
}

func TestTimeout(t *testing.T) {
	slow := kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
		<-ctx.Done()
		return ctx.Err()
	})
	start := time.Now()
	err := Timeout(20*time.Millisecond)(slow).HandleMessage(context.Background(), msg("1"))
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrTimeout wrapping DeadlineExceeded", err)
	}
	if d := time.Since(start); d < 20*time.Millisecond || d > 2*time.Second {
		t.Errorf("took %v, want about 20ms", d)
	}
	// The caller's own cancellation is not a timeout.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Timeout(time.Hour)(slow).HandleMessage(ctx, msg("2")); errors.Is(err, ErrTimeout) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v, want context.Canceled only", err)
	}
	fast, _ := failing(0, nil)
	if err := Timeout(time.Hour)(fast).HandleMessage(context.Background(), msg("3")); err != nil {
		t.Errorf("fast handler: %v", err)
	}
	mustPanic(t, func() { Timeout(0) })
}

func mustPanic(t *testing.T, fn func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Error("no panic for an invalid argument")
		}
	}()
	fn()
}

func TestRetry(t *testing.T) {
	busy := errors.New("busy")
	fast := RetryOptions{Attempts: 4, InitialInterval: time.Millisecond}
	t.Run("SucceedsAfterFailures", func(t *testing.T) {
		h, calls := failing(2, busy)
		var retries []int
		o := fast
		o.OnRetry = func(_ context.Context, _ *kombu.Message, attempt int, err error, _ time.Duration) {
			retries = append(retries, attempt)
		}
		if err := Retry(o)(h).HandleMessage(context.Background(), msg("1")); err != nil {
			t.Fatal(err)
		}
		if calls.Load() != 3 || len(retries) != 2 || retries[1] != 2 {
			t.Errorf("calls = %d, retries = %v; want 3 calls, retries [1 2]", calls.Load(), retries)
		}
	})
	t.Run("GivesUpWithLastError", func(t *testing.T) {
		h, calls := failing(100, busy)
		if err := Retry(fast)(h).HandleMessage(context.Background(), msg("1")); err != busy || calls.Load() != 4 {
			t.Errorf("err = %v after %d calls, want busy after 4", err, calls.Load())
		}
	})
	t.Run("Permanent", func(t *testing.T) {
		h, calls := failing(100, Permanent(busy))
		if err := Retry(fast)(h).HandleMessage(context.Background(), msg("1")); !errors.Is(err, busy) || calls.Load() != 1 {
			t.Errorf("err = %v after %d calls, want busy after 1", err, calls.Load())
		}
		if Permanent(nil) != nil || IsPermanent(busy) {
			t.Error("Permanent(nil) or IsPermanent of a plain error")
		}
	})
	t.Run("Retryable", func(t *testing.T) {
		h, calls := failing(100, busy)
		o := fast
		o.Retryable = func(err error) bool { return false }
		if _ = Retry(o)(h).HandleMessage(context.Background(), msg("1")); calls.Load() != 1 {
			t.Errorf("%d calls, want 1", calls.Load())
		}
	})
	t.Run("StopsWhenCtxEnds", func(t *testing.T) {
		h, calls := failing(100, busy)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := Retry(RetryOptions{Attempts: 10, InitialInterval: time.Hour})(h).HandleMessage(ctx, msg("1"))
		if err != busy || calls.Load() != 1 || time.Since(start) > 5*time.Second {
			t.Errorf("err = %v after %d calls in %v", err, calls.Load(), time.Since(start))
		}
	})
	t.Run("Backoff", func(t *testing.T) {
		o := RetryOptions{InitialInterval: 100 * time.Millisecond, MaxInterval: 300 * time.Millisecond, Multiplier: 2}
		for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 300 * time.Millisecond, 10: 300 * time.Millisecond} {
			if got := o.backoff(attempt); got != want {
				t.Errorf("backoff(%d) = %v, want %v", attempt, got, want)
			}
		}
		o.Jitter = 0.5
		for range 100 {
			if got := o.backoff(1); got < 50*time.Millisecond || got > 100*time.Millisecond {
				t.Fatalf("jittered backoff %v outside 50..100ms", got)
			}
		}
	})
	mustPanic(t, func() { Retry(RetryOptions{Jitter: 2}) })
}

func TestDedup(t *testing.T) {
	h, calls := failing(0, nil)
	var dups atomic.Int32
	d := Dedup(DedupOptions{OnDuplicate: func(context.Context, *kombu.Message) { dups.Add(1) }})(h)
	ctx := context.Background()
	for _, id := range []string{"a", "a", "b", "", ""} {
		if err := d.HandleMessage(ctx, msg(id)); err != nil {
			t.Fatal(err)
		}
	}
	// "a" once, "b" once, and both messages without a key.
	if calls.Load() != 4 || dups.Load() != 1 {
		t.Errorf("calls = %d, duplicates = %d; want 4 and 1", calls.Load(), dups.Load())
	}
	// A Celery task message is keyed by its "id" header.
	celery := &kombu.Message{Headers: map[string]any{"id": "task-1"}}
	_ = d.HandleMessage(ctx, celery)
	_ = d.HandleMessage(ctx, celery)
	if calls.Load() != 5 {
		t.Errorf("celery task handled %d times, want once", calls.Load()-4)
	}
}

func TestDedupRemembersOnlySuccess(t *testing.T) {
	h, calls := failing(1, errors.New("fail"))
	d := Dedup(DedupOptions{})(h)
	ctx := context.Background()
	if err := d.HandleMessage(ctx, msg("x")); err == nil {
		t.Fatal("first call should fail")
	}
	if err := d.HandleMessage(ctx, msg("x")); err != nil || calls.Load() != 2 {
		t.Fatalf("err = %v, calls = %d: a failed message must run again", err, calls.Load())
	}
	_ = d.HandleMessage(ctx, msg("x"))
	if calls.Load() != 2 {
		t.Errorf("calls = %d, want the success remembered", calls.Load())
	}
}

func TestSeenKeysWindowAndMax(t *testing.T) {
	now := time.Unix(1000, 0)
	s := &seenKeys{window: time.Minute, max: 2, at: map[string]time.Time{}, now: func() time.Time { return now }}
	s.add("a")
	now = now.Add(30 * time.Second)
	s.add("b")
	if !s.contains("a") || !s.contains("b") {
		t.Fatal("keys within the window forgotten")
	}
	now = now.Add(31 * time.Second) // a is 61s old
	if s.contains("a") || !s.contains("b") {
		t.Error("a should have expired, b not")
	}
	s.add("c")
	s.add("d") // beyond max: b, the oldest left, goes
	if s.contains("b") || !s.contains("c") || !s.contains("d") {
		t.Errorf("after max: b=%v c=%v d=%v", s.contains("b"), s.contains("c"), s.contains("d"))
	}
	if len(s.at) > 2 || len(s.order) > 2 {
		t.Errorf("memory not bounded: %d keys, %d entries", len(s.at), len(s.order))
	}
}

func TestConcurrencyLimit(t *testing.T) {
	var running, peak atomic.Int32
	h := ConcurrencyLimit(3)(kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
		n := running.Add(1)
		defer running.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(5 * time.Millisecond)
		return nil
	}))
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { _ = h.HandleMessage(context.Background(), msg("")) })
	}
	wg.Wait()
	if peak.Load() != 3 {
		t.Errorf("peak = %d, want 3", peak.Load())
	}
	// A waiter whose ctx ends gives up with its error.
	block := make(chan struct{})
	one := ConcurrencyLimit(1)(kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error { <-block; return nil }))
	go func() { _ = one.HandleMessage(context.Background(), msg("")) }()
	time.Sleep(10 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := one.HandleMessage(ctx, msg("")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
	close(block)
	mustPanic(t, func() { ConcurrencyLimit(0) })
}

func TestRateLimit(t *testing.T) {
	h, calls := failing(0, nil)
	limited := RateLimit(50, 2)(h) // 2 at once, then one every 20ms
	start := time.Now()
	for range 6 {
		if err := limited.HandleMessage(context.Background(), msg("")); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 70*time.Millisecond {
		t.Errorf("6 messages at 50/s with burst 2 took %v, want >= 80ms", d)
	}
	if calls.Load() != 6 {
		t.Errorf("calls = %d", calls.Load())
	}
	slow := RateLimit(0.1, 1)(h) // one token, then one per 10s
	_ = slow.HandleMessage(context.Background(), msg(""))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := slow.HandleMessage(ctx, msg("")); !errors.Is(err, context.DeadlineExceeded) || calls.Load() != 7 {
		t.Errorf("err = %v, calls = %d: want DeadlineExceeded without a call", err, calls.Load())
	}
	mustPanic(t, func() { RateLimit(1, 0) })
}

func TestCorrelationID(t *testing.T) {
	var got string
	h := CorrelationID()(kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
		got, _ = CorrelationIDFrom(ctx)
		return nil
	}))
	ctx := context.Background()
	for _, c := range []struct {
		m    *kombu.Message
		want string
	}{
		{&kombu.Message{Properties: kombu.Properties{CorrelationID: "corr", MessageID: "mid"}}, "corr"},
		{msg("mid"), "mid"},
	} {
		_ = h.HandleMessage(ctx, c.m)
		if got != c.want {
			t.Errorf("correlation id %q, want %q", got, c.want)
		}
	}
	_ = h.HandleMessage(ctx, &kombu.Message{})
	if len(got) != 32 {
		t.Errorf("generated id %q, want 32 hex digits", got)
	}

	var p PropagateCorrelationID
	info := &kombu.PublishInfo{}
	p.StartPublish(WithCorrelationID(ctx, "abc"), info)
	if info.CorrelationID != "abc" {
		t.Errorf("propagated %q", info.CorrelationID)
	}
	info = &kombu.PublishInfo{CorrelationID: "own"}
	p.StartPublish(WithCorrelationID(ctx, "abc"), info)
	if info.CorrelationID != "own" {
		t.Errorf("an explicit correlation id was overwritten: %q", info.CorrelationID)
	}
}

// A message the handler settled itself is neither retried nor remembered
// as handled by a failure path.
func TestRetryLeavesSettledMessage(t *testing.T) {
	ctx := context.Background()
	conn, err := kombu.Dial(ctx, "memory://middleware-settled", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q, err := conn.SimpleQueue(ctx, "settled", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Put(ctx, "x", nil); err != nil {
		t.Fatal(err)
	}
	gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := q.Get(gctx)
	if err != nil {
		t.Fatal(err)
	}
	var calls int
	h := Retry(RetryOptions{Attempts: 5, InitialInterval: time.Millisecond})(kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
		calls++
		_ = m.Reject(ctx)
		return errors.New("rejected")
	}))
	if err := h.HandleMessage(ctx, m); err == nil || calls != 1 {
		t.Errorf("err = %v after %d calls, want an error after 1", err, calls)
	}
}
