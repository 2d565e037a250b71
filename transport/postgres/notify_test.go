package postgres

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

// insertRow inserts a ready row as Python kombu's SQLAlchemy session does.
const insertRow = "INSERT INTO kombu_message (id, visible, payload, version, queue_id) SELECT nextval('message_id_sequence'), true, $1, 1, id FROM kombu_queue WHERE name = $2"

// queryCounter counts the statements a store sends (a pgx tracer).
type queryCounter struct{ n atomic.Int64 }

func (c *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestIdleConsumerSendsNothingAndWakesOnNotify: a consumer waiting on an
// empty queue (polling fallback set to a minute) sends no statement while
// idle, and a row inserted by another client (as Python kombu does, with
// plain SQL) reaches it within milliseconds through LISTEN/NOTIFY.
func TestIdleConsumerSendsNothingAndWakesOnNotify(t *testing.T) {
	raw := withOptions(testURL(t), "polling_interval", "60")
	o, err := ParseURL(mustURL(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	counter := &queryCounter{}
	o.Config.Tracer = counter
	s, err := NewConnector(o).Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	queue := "notify." + t.Name()
	if err := s.DeclareQueue(ctx, driver.Queue{Name: queue}); err != nil {
		t.Fatal(err)
	}
	// Consume as virtual does: GetBatch with a one-second wait, again and
	// again.
	type result struct {
		items []virtual.Item
		at    time.Time
	}
	got := make(chan result, 1)
	go func() {
		for ctx.Err() == nil {
			items, err := s.GetBatch(ctx, []string{queue}, 10, time.Second)
			if err == nil {
				got <- result{items, time.Now()}
				return
			}
		}
	}()
	time.Sleep(500 * time.Millisecond) // its first look found the queue empty
	before := counter.n.Load()
	time.Sleep(3 * time.Second)
	if idle := counter.n.Load() - before; idle != 0 {
		t.Errorf("an idle consumer sent %d statements in 3 s, want 0", idle)
	}
	db := rawDB(t, raw)
	sent := time.Now()
	if _, err := db.ExecContext(ctx, insertRow,
		`{"body": "aGk=", "content-encoding": "utf-8", "content-type": "text/plain", "headers": {}, "properties": {"body_encoding": "base64", "delivery_tag": "x", "delivery_info": {"exchange": "", "routing_key": "q"}}}`, queue); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		lat := r.at.Sub(sent)
		t.Logf("a row inserted by another client was delivered %v later (polling fallback: 60 s)", lat)
		if len(r.items) != 1 || string(r.items[0].Envelope.Body) != "hi" {
			t.Errorf("got %+v", r.items)
		}
		if lat > 2*time.Second {
			t.Errorf("wake-up took %v: NOTIFY did not wake the consumer", lat)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the consumer was not woken within 10 s")
	}
}

// TestListenerLossMissesNothing: when the server kills the LISTEN
// connection, a row another client inserts meanwhile (no notification
// reaches this store) is still delivered: consumers poll while the listener
// is down and look again when it is back.
func TestListenerLossMissesNothing(t *testing.T) {
	raw := withOptions(testURL(t), "polling_interval", "0.2", "application_name", "kombu-listener-test")
	s := openStore(t, raw)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	queue := "fallback." + t.Name()
	db := rawDB(t, testURL(t))
	// The store's connections carry application_name; the one that is
	// idle in LISTEN is the listener.
	if _, err := db.ExecContext(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'kombu-listener-test' AND query LIKE 'LISTEN%'"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeclareQueue(ctx, driver.Queue{Name: queue}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, insertRow, `{"body": "YWZ0ZXIgdGhlIGtpbGw=", "headers": {}, "properties": {"body_encoding": "base64"}}`, queue); err != nil {
		t.Fatal(err)
	}
	it, err := s.Get(ctx, []string{queue}, 5*time.Second)
	if err != nil {
		t.Fatalf("get after the listener was killed: %v", err)
	}
	if string(it.Envelope.Body) != "after the kill" {
		t.Errorf("got %q", it.Envelope.Body)
	}
	if err := s.Ack(ctx, it); err != nil {
		t.Fatal(err)
	}
}
