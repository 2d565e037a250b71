package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kombu-go/kombu/internal/faulttest"
	"github.com/kombu-go/kombu/kombu"
)

// TestRedisRestartConnectionHeals: redis is killed and started again
// twice while publishers with a retry policy run. Connected() turns false
// once a call finds the server gone, every publish that returned nil is in
// the queue afterwards (lost = 0, counted by message id), nothing
// unexpected is, and Close leaves no goroutine behind.
func TestRedisRestartConnectionHeals(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	// A redis-server of the test's own (the shared one is never
	// restarted), with appendonly and fsync on every write.
	srv := faulttest.StartRedis(t, faulttest.RedisOptions{AppendFsync: "always"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := kombu.Dial(ctx, srv.URL(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	q := kombu.NewQueue("heal-"+randHex(4), kombu.DefaultExchange, "")
	var retries atomic.Int64
	policy := &kombu.RetryPolicy{MaxRetries: 100, IntervalStep: 50 * time.Millisecond, IntervalMax: 200 * time.Millisecond,
		OnRetry: func(error, time.Duration) { retries.Add(1) }}

	const publishers, perPublisher = 2, 400
	var mu sync.Mutex
	confirmed, failed := map[string]bool{}, map[string]bool{}
	var nConfirmed atomic.Int64
	var wg sync.WaitGroup
	for g := range publishers {
		p, err := conn.Producer(ctx, &kombu.ProducerOptions{RoutingKey: q.Name})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for i := range perPublisher {
				id := fmt.Sprintf("%d-%d", g, i)
				err := p.Publish(ctx, id, &kombu.PublishOptions{Retry: true, RetryPolicy: policy, MessageID: id,
					Declare: []kombu.Declarable{q}})
				mu.Lock()
				if err == nil {
					confirmed[id] = true
					nConfirmed.Add(1)
				} else {
					failed[id] = true
				}
				mu.Unlock()
				if ctx.Err() != nil {
					return
				}
			}
		})
	}
	sawDisconnected := false
	for restart, at := range []int64{150, 450} {
		for nConfirmed.Load() < at && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		if err := srv.Kill(); err != nil {
			t.Fatal(err)
		}
		// Down long enough for go-redis's own retries to give up, so
		// that calls fail and kombu's retry policy takes over.
		for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			sawDisconnected = sawDisconnected || !conn.Connected()
		}
		if err := srv.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("restart %d done at %d confirmed", restart+1, nConfirmed.Load())
	}
	wg.Wait()
	if !sawDisconnected {
		t.Error("Connected() stayed true while redis was down and publishers failed")
	}

	check, err := kombu.Dial(ctx, srv.URL(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := check.Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A new connection knows an empty redis queue only once it declares it.
	if _, err := q.Declare(ctx, ch); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for {
		m, err := q.Get(ctx, ch, true, nil)
		if errors.Is(err, kombu.ErrEmpty) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[m.Properties.MessageID]++
	}
	lost, unexpected, duplicated := 0, 0, 0
	for id := range confirmed {
		if seen[id] == 0 {
			lost++
		}
	}
	for id, n := range seen {
		if !confirmed[id] && !failed[id] {
			unexpected++
		}
		duplicated += n - 1
	}
	t.Logf("published %d: confirmed %d, failed %d; in queue %d; retries %d; lost %d, unexpected %d, duplicated %d",
		publishers*perPublisher, len(confirmed), len(failed), len(seen), retries.Load(), lost, unexpected, duplicated)
	if lost != 0 || unexpected != 0 {
		t.Fatalf("lost %d, unexpected %d", lost, unexpected)
	}
	if len(confirmed) < publishers*perPublisher/2 {
		t.Fatalf("only %d of %d publishes succeeded: the retry policy did not carry them across the restarts",
			len(confirmed), publishers*perPublisher)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	if err := check.Close(); err != nil {
		t.Fatal(err)
	}
	// The server's own process waiter lives until the test's cleanup.
	goleak.VerifyNone(t, ignore, goleak.IgnoreAnyFunction("github.com/kombu-go/kombu/internal/faulttest.(*RedisServer).Restart.func1"))
}
