// Package workertest holds what the tests of kombu.Worker share: a ledger
// that counts handled messages by id (lost, duplicated, unexpected, as
// Jepsen's queue checker does), a runner that shuts a worker down and
// checks both results, and a goroutine-leak check. The fault tests that
// kill real brokers under a worker live here too, apart from package
// kombu's tests, which must not link the redis and amqp transports.
package workertest

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kombu-go/kombu/kombu"
)

// Ledger counts handled messages by id, as Jepsen's queue checker does.
type Ledger struct {
	mu      sync.Mutex
	handled map[string]int
	changed chan struct{}
}

func NewLedger() *Ledger {
	return &Ledger{handled: map[string]int{}, changed: make(chan struct{}, 1)}
}

// Handle records one handling of id.
func (l *Ledger) Handle(id string) {
	l.mu.Lock()
	l.handled[id]++
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// Check returns how many of ids were never handled, handled more than
// once, and how many handled ids are not in ids.
func (l *Ledger) Check(ids []string) (lost, duplicated, unexpected int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
		switch n := l.handled[id]; {
		case n == 0:
			lost++
		case n > 1:
			duplicated++
		}
	}
	for id := range l.handled {
		if !want[id] {
			unexpected++
		}
	}
	return lost, duplicated, unexpected
}

// Missing returns the ids never handled, in the order given.
func (l *Ledger) Missing(ids []string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var missing []string
	for _, id := range ids {
		if l.handled[id] == 0 {
			missing = append(missing, id)
		}
	}
	return missing
}

// WaitAll waits until every id was handled or d passed.
func (l *Ledger) WaitAll(ids []string, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if lost, _, _ := l.Check(ids); lost == 0 {
			return true
		}
		select {
		case <-l.changed:
		case <-deadline.C:
			return false
		}
	}
}

// Handler records each message's body as its id and acks it.
func (l *Ledger) Handler() kombu.Handler {
	return kombu.HandlerFunc(func(_ context.Context, m *kombu.Message) error {
		l.Handle(string(m.Body))
		return nil
	})
}

// Run starts w.Run and returns a function that shuts the worker
// down and checks that Shutdown and Run both returned nil in time.
func Run(t *testing.T, w *kombu.Worker) (stop func()) {
	t.Helper()
	// Only a bound against a stray worker: the tests end it with stop.
	// (A minute was too short: on a loaded machine a RabbitMQ restart
	// takes 15-20 s, and a worker whose ctx ended looks stalled.)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() { shutdown(t, w, runErr, cancel) })
	}
	t.Cleanup(stop) // also after a t.Fatal
	return stop
}

func shutdown(t *testing.T, w *kombu.Worker, runErr <-chan error, cancel context.CancelFunc) {
	t.Helper()
	{
		defer cancel()
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := w.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v, want nil", err)
		}
		select {
		case err := <-runErr:
			if err != nil {
				t.Errorf("Run after Shutdown: %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after Shutdown")
		}
	}
}

// NoLeaks checks, after every other cleanup of the test, that no
// goroutine started during the test is left.
func NoLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// New is kombu.NewWorker, failing the test on error.
func New(t *testing.T, conn *kombu.Connection, queues []kombu.Queue, h kombu.Handler, opts *kombu.WorkerOptions) *kombu.Worker {
	t.Helper()
	w, err := kombu.NewWorker(conn, queues, h, opts)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// Handled returns how many distinct ids were handled.
func (l *Ledger) Handled() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.handled)
}
