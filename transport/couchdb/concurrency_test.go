package couchdb

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/virtual"
)

// TestFourConsumersNoDuplicates: four consumers on their own connections
// race for the same queue, each claiming up to 10 at a time. Their leases
// never expire during the test, so every message must be delivered exactly
// once: a claim that another consumer won first is refused by CouchDB.
func TestFourConsumersNoDuplicates(t *testing.T) {
	const (
		total     = 600
		consumers = 4
	)
	raw := freshDatabaseURL(t, "")
	s := openStore(t, raw)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	q := kombu.NewQueue("race", kombu.DefaultExchange, "race")

	var mu sync.Mutex
	seen := make(map[string]int, total)
	per := make([]int, consumers)
	dups := 0
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range consumers {
		conn, err := kombu.Dial(ctx, raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		c, err := conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: 10})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Go(func() {
			for {
				m, err := c.Receive(ctx)
				if err != nil {
					return
				}
				body := string(m.Body)
				mu.Lock()
				seen[body]++
				per[i]++
				if seen[body] > 1 {
					dups++
					t.Errorf("message %s delivered %d times (redelivered=%v)", body, seen[body], m.Redelivered)
				}
				if len(seen) == total && seen[body] == 1 {
					close(done)
				}
				mu.Unlock()
				if err := m.Ack(ctx); err != nil {
					t.Errorf("ack %s: %v", body, err)
				}
			}
		})
	}
	// Published while the consumers already wait, in batches, so that all
	// four race for the head of the queue.
	for i := 0; i < total; i += 50 {
		var batch []virtual.QueuedEnvelope
		for j := i; j < i+50; j++ {
			env := newEnv(strconv.Itoa(j), 0)
			env.ContentType, env.ContentEncoding = "application/data", "binary"
			batch = append(batch, virtual.QueuedEnvelope{Queue: q.Name, Envelope: env})
		}
		if err := s.PutBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-ctx.Done():
		mu.Lock()
		t.Fatalf("received %d of %d messages", len(seen), total)
	}
	time.Sleep(500 * time.Millisecond) // late duplicates would show up now
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d messages to %d consumers: %v per consumer, %d duplicates", len(seen), consumers, per, dups)
	busy := 0
	for _, n := range per {
		if n > 0 {
			busy++
		}
	}
	if busy < 2 {
		t.Errorf("only %d consumers received messages: the race was not run", busy)
	}
}
