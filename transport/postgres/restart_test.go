package postgres

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu"
)

// restartServer restarts the test cluster (same port, same data) with
// pg_ctl, as user postgres, the way scripts/services.d/postgres.sh runs it.
func restartServer(t *testing.T) time.Duration {
	t.Helper()
	dir := testenv.ServerURL(t, "KOMBU_TEST_POSTGRES_SERVICE")
	ctls, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(ctls) == 0 {
		t.Fatal("no pg_ctl under /usr/lib/postgresql")
	}
	sort.Strings(ctls)
	start := time.Now()
	// The server's log goes to its log file, and pg_ctl's output to a
	// file: the restarted server keeps whatever stdout it is given, and a
	// pipe would keep this call waiting for it to exit.
	out, err := os.CreateTemp(t.TempDir(), "pg_ctl")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command("runuser", "-u", "postgres", "--", ctls[len(ctls)-1], "-D", filepath.Join(dir, "data"),
		"-l", filepath.Join(dir, "postgres.log"), "-m", "fast", "-w", "-t", "60", "restart")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Dir = "/"
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(out.Name())
		t.Fatalf("pg_ctl restart: %v\n%s", err, b)
	}
	return time.Since(start)
}

// TestServerRestartMidStream: PostgreSQL is restarted while a producer
// publishes (with retries) and a consumer consumes; every publish that
// returned nil is consumed afterwards (duplicates from retried publishes
// whose commit was not reported are allowed).
func TestServerRestartMidStream(t *testing.T) {
	raw := withOptions(testURL(t), "visibility_timeout", "2")
	queue := fmt.Sprintf("restart.%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	prodConn := dialKombu(t, raw)
	sq, err := prodConn.SimpleQueue(ctx, queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	const total = 400
	var mu sync.Mutex
	confirmed := map[int]bool{}
	received := map[int]int{}
	var failed []error
	retry := &kombu.RetryPolicy{MaxRetries: -1, IntervalStep: 100 * time.Millisecond, IntervalMax: 500 * time.Millisecond}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the producer
		defer wg.Done()
		for i := range total {
			err := sq.Put(ctx, i, &kombu.PublishOptions{Retry: true, RetryPolicy: retry})
			mu.Lock()
			if err == nil {
				confirmed[i] = true
			} else {
				failed = append(failed, err)
			}
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	consume := func(ctx context.Context, conn *kombu.Connection) error {
		ch, err := conn.Channel(ctx)
		if err != nil {
			return err
		}
		q := kombu.NewQueue(queue, kombu.NewExchange(queue, kombu.Direct), queue)
		c, err := kombu.NewConsumer(ctx, ch, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: 10})
		if err != nil {
			return err
		}
		for {
			m, err := c.Receive(ctx)
			if err != nil {
				return err
			}
			var n int
			if err := m.Decode(&n); err != nil {
				return err
			}
			if err := m.Ack(ctx); err != nil {
				return err
			}
			mu.Lock()
			received[n]++
			mu.Unlock()
		}
	}
	consCtx, stopCons := context.WithCancel(ctx)
	consDone := make(chan error, 1)
	go func() { consDone <- consume(consCtx, dialKombu(t, raw)) }()
	time.Sleep(700 * time.Millisecond)
	took := restartServer(t)
	wg.Wait()
	stopCons()
	consErr := <-consDone
	// Whatever the first consumer did not ack (its connection died, or it
	// stopped) is taken by a fresh one, held rows after their lease.
	drainCtx, stopDrain := context.WithTimeout(ctx, 30*time.Second)
	defer stopDrain()
	go func() { _ = consume(drainCtx, dialKombu(t, raw)) }()
	for drainCtx.Err() == nil {
		mu.Lock()
		missing := 0
		for n := range confirmed {
			if received[n] == 0 {
				missing++
			}
		}
		mu.Unlock()
		if missing == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopDrain()
	mu.Lock()
	defer mu.Unlock()
	lost, dup := 0, 0
	for n := range confirmed {
		if received[n] == 0 {
			lost++
		}
	}
	for _, c := range received {
		if c > 1 {
			dup++
		}
	}
	t.Logf("restart took %v; %d of %d publishes confirmed (%d failed), lost %d, delivered twice %d; first consumer ended with %v",
		took.Round(time.Millisecond), len(confirmed), total, len(failed), lost, dup, consErr)
	if lost > 0 {
		t.Errorf("%d confirmed publishes lost across the restart", lost)
	}
	if len(confirmed) < total*9/10 {
		t.Errorf("only %d of %d publishes confirmed: the producer did not reconnect (errors: %v)", len(confirmed), total, failed)
	}
}

func dialKombu(t testing.TB, raw string) *kombu.Connection {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kombu.Dial(ctx, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}
