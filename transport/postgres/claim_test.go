package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

// TestClaimTakesNoMoreThanAsked: a claim takes at most the rows it asks
// for, whatever plan the server picks. When the message table's statistics
// say it is nearly empty (autovacuum ran while the queues were drained),
// PostgreSQL joins the table to the claim's pick with the pick inside a
// nested loop; a pick that runs again there skips the rows this statement
// already took and picks the next ones, so a claim of 2 took 3 (the third
// came back later marked redelivered, and a Get's extra rows stayed leased
// for the visibility timeout). The planner is pinned to that plan here, so
// that server cost settings do not decide whether the test can fail.
func TestClaimTakesNoMoreThanAsked(t *testing.T) {
	suffix := fmt.Sprintf("%08x", rand.Uint32())
	raw := withOptions(testURL(t), "queue_tablename", "claimq_"+suffix, "message_tablename", "claimm_"+suffix)
	o, err := ParseURL(mustURL(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	for _, knob := range []string{"enable_hashjoin", "enable_mergejoin", "enable_material", "enable_indexscan", "enable_bitmapscan"} {
		o.Config.RuntimeParams[knob] = "off"
	}
	s, err := NewConnector(o).Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	put := func(queue, body string) {
		t.Helper()
		env := &virtual.Envelope{Message: driver.Message{Body: []byte(body)}}
		if err := s.Put(ctx, queue, env); err != nil {
			t.Fatal(err)
		}
	}
	// Statistics of a table holding one row.
	put("other", "filler")
	if _, err := s.DB().ExecContext(ctx, "VACUUM ANALYZE "+o.MessageTable); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"m0", "m1", "m2"} {
		put("q", body)
	}

	items, err := s.GetBatch(ctx, []string{"q"}, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		got = append(got, string(it.Envelope.Body))
	}
	if len(got) != 2 || got[0] != "m0" || got[1] != "m1" {
		t.Fatalf("a claim of 2 took %q, want [m0 m1]", got)
	}
	if n, err := s.Size(ctx, "q"); err != nil || n != 1 {
		t.Fatalf("ready rows after the claim: %d (%v), want 1", n, err)
	}
	it, err := s.Get(ctx, []string{"q"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if string(it.Envelope.Body) != "m2" || it.Envelope.Redelivered {
		t.Errorf("next claim: %q redelivered %t, want m2 not redelivered", it.Envelope.Body, it.Envelope.Redelivered)
	}
}
