package couchdb

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/go-kivik/kivik/v4"
	"go.uber.org/goleak"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newEnv(body string, priority uint8) *virtual.Envelope {
	return &virtual.Envelope{Message: driver.Message{Body: []byte(body), ContentType: "text/plain",
		ContentEncoding: "utf-8", Properties: driver.Properties{DeliveryMode: 2, Priority: priority}}, RoutingKey: "rk"}
}

func mustPut(t *testing.T, s *Store, queue string, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		if err := s.Put(testCtx(t), queue, newEnv(b, 0)); err != nil {
			t.Fatal(err)
		}
	}
}

func mustGet(t *testing.T, s *Store, queue string) virtual.Item {
	t.Helper()
	it, err := s.Get(testCtx(t), []string{queue}, 2*time.Second)
	if err != nil {
		t.Fatalf("get from %s: %v", queue, err)
	}
	return it
}

func expectEmpty(t *testing.T, s *Store, queue string) {
	t.Helper()
	if it, err := s.Get(testCtx(t), []string{queue}, 0); !errors.Is(err, driver.ErrEmpty) {
		t.Fatalf("get from %s: %v %v, want ErrEmpty", queue, it.Envelope, err)
	}
}

// Two consumers read the same head revision; CouchDB's MVCC lets only the
// first claim through, and the second gets nothing rather than a copy.
func TestSecondClaimerRefused(t *testing.T) {
	raw := freshDatabaseURL(t, "")
	a, b := openStore(t, raw), openStore(t, raw)
	ctx := testCtx(t)
	mustPut(t, a, "q", "only")
	headsA, err := a.readyDocs(ctx, "q", 1)
	if err != nil || len(headsA) != 1 {
		t.Fatalf("a read %d heads, %v", len(headsA), err)
	}
	headsB, err := b.readyDocs(ctx, "q", 1)
	if err != nil || len(headsB) != 1 || headsB[0].rev != headsA[0].rev {
		t.Fatalf("b read %d heads, %v", len(headsB), err)
	}
	wonA, lostA, err := a.writeClaims(ctx, headsA)
	if err != nil || len(wonA) != 1 || lostA != 0 {
		t.Fatalf("first claim: won %d lost %d, %v", len(wonA), lostA, err)
	}
	wonB, lostB, err := b.writeClaims(ctx, headsB)
	if err != nil || len(wonB) != 0 || lostB != 1 {
		t.Fatalf("second claim with the same revision: won %d lost %d, %v; want refused", len(wonB), lostB, err)
	}
	expectEmpty(t, b, "q")
	if err := a.Ack(ctx, wonA[0]); err != nil {
		t.Fatal(err)
	}
}

// Highest priority first, FIFO within a priority.
func TestPriorityOrder(t *testing.T) {
	s := openStore(t, freshDatabaseURL(t, ""))
	ctx := testCtx(t)
	for _, m := range []struct {
		body string
		p    uint8
	}{{"low1", 0}, {"high", 9}, {"mid", 5}, {"low2", 0}, {"over", 200}} {
		if err := s.Put(ctx, "q", newEnv(m.body, m.p)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"high", "over", "mid", "low1", "low2"} {
		it := mustGet(t, s, "q")
		if string(it.Envelope.Body) != want {
			t.Fatalf("got %q, want %q", it.Envelope.Body, want)
		}
		if err := s.Ack(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
}

// A claim whose consumer vanished ends with its lease: another store takes
// the message again, marked redelivered.
func TestExpiredLeaseComesBack(t *testing.T) {
	raw := freshDatabaseURL(t, "visibility_timeout=1&polling_interval=0.1")
	a, b := openStore(t, raw), openStore(t, raw)
	ctx := testCtx(t)
	mustPut(t, a, "q", "m")
	first := mustGet(t, a, "q")
	expectEmpty(t, b, "q")
	start := time.Now()
	again, err := b.Get(ctx, []string{"q"}, 5*time.Second)
	if err != nil {
		t.Fatalf("after the lease: %v", err)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("taken again after %v, before the lease ended", d)
	}
	if string(again.Envelope.Body) != "m" || !again.Envelope.Redelivered {
		t.Fatalf("got %q redelivered=%v", again.Envelope.Body, again.Envelope.Redelivered)
	}
	// The first consumer's late ack finds its lease lost and leaves the
	// message to its new holder.
	if err := a.Ack(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := b.ExtendLease(ctx, again, time.Minute); err != nil {
		t.Fatalf("the new holder's lease: %v", err)
	}
	if err := a.ExtendLease(ctx, first, time.Minute); !errors.Is(err, driver.ErrPreconditionFailed) {
		t.Errorf("extending a lost lease: %v, want ErrPreconditionFailed", err)
	}
	if err := b.Ack(ctx, again); err != nil {
		t.Fatal(err)
	}
	expectEmpty(t, b, "q")
}

// ExtendLease keeps a message away from other consumers past the
// visibility timeout.
func TestExtendLease(t *testing.T) {
	raw := freshDatabaseURL(t, "visibility_timeout=1&polling_interval=0.1")
	a, b := openStore(t, raw), openStore(t, raw)
	ctx := testCtx(t)
	mustPut(t, a, "q", "m")
	it := mustGet(t, a, "q")
	if err := a.ExtendLease(ctx, it, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx, []string{"q"}, 1500*time.Millisecond); !errors.Is(err, driver.ErrEmpty) {
		t.Fatalf("an extended lease was taken: %v %v", got.Envelope, err)
	}
	if err := a.Ack(ctx, it); err != nil {
		t.Fatal(err)
	}
}

// Close puts what the store still holds back, marked redelivered.
func TestCloseRestoresHeld(t *testing.T) {
	raw := freshDatabaseURL(t, "")
	a, b := openStore(t, raw), openStore(t, raw)
	mustPut(t, a, "q", "1", "2")
	mustGet(t, a, "q")
	mustGet(t, a, "q")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1", "2"} {
		it := mustGet(t, b, "q")
		if string(it.Envelope.Body) != want || !it.Envelope.Redelivered {
			t.Fatalf("got %q redelivered=%v, want %q redelivered", it.Envelope.Body, it.Envelope.Redelivered, want)
		}
		if err := b.Ack(testCtx(t), it); err != nil {
			t.Fatal(err)
		}
	}
}

// A waiting consumer is woken by the _changes feed when another process
// writes, well before the polling interval.
func TestChangesFeedWakes(t *testing.T) {
	raw := freshDatabaseURL(t, "polling_interval=30")
	a, b := openStore(t, raw), openStore(t, raw)
	ctx := testCtx(t)
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = b.Put(context.Background(), "q", newEnv("late", 0))
	}()
	start := time.Now()
	it, err := a.Get(ctx, []string{"q"}, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("woken after %v: the feed did not wake the consumer", d)
	}
	if err := a.Ack(ctx, it); err != nil {
		t.Fatal(err)
	}
}

// An undecodable document is handed up with its raw bytes; quarantine sets
// it aside in the database, out of the queue, never deleting it.
func TestQuarantineKeepsTheDocument(t *testing.T) {
	raw := freshDatabaseURL(t, "")
	s := openStore(t, raw)
	ctx := testCtx(t)
	db := rawDB(t, raw)
	id := newIDClock().next("q", 0)
	if _, err := db.Put(ctx, id, map[string]any{"kombu": kindMessage, "queue": "q", "payload": "{garbage"}); err != nil {
		t.Fatal(err)
	}
	it := mustGet(t, s, "q")
	if it.DecodeErr == nil || string(it.Envelope.Body) != "{garbage" {
		t.Fatalf("item %q decode error %v, want the raw payload and an error", it.Envelope.Body, it.DecodeErr)
	}
	if err := s.Quarantine(ctx, it); err != nil {
		t.Fatal(err)
	}
	expectEmpty(t, s, "q")
	var doc map[string]json.RawMessage
	if err := db.Get(ctx, id).ScanDoc(&doc); err != nil {
		t.Fatal(err)
	}
	if string(doc["kombu"]) != `"quarantined"` || string(doc["payload"]) != `"{garbage"` || len(doc["reason"]) < 3 {
		t.Fatalf("quarantined document %s", doc)
	}
}

// Bindings live in the database: a store that never bound reads them.
func TestBindingsShared(t *testing.T) {
	raw := freshDatabaseURL(t, "")
	a, b := openStore(t, raw), openStore(t, raw)
	ctx := testCtx(t)
	rows := []virtual.StoredBinding{
		{Exchange: "x", RoutingKey: "k", Queue: "q1"},
		{Exchange: "x", RoutingKey: "a.*", Pattern: `^a\.[^.]+$`, Queue: "q:2"},
		{Exchange: "x:y", RoutingKey: "k", Queue: "q3"},
	}
	for _, r := range rows {
		if err := a.AddBinding(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := a.AddBinding(ctx, r); err != nil {
			t.Fatalf("binding twice: %v", err)
		}
	}
	got, err := b.Bindings(ctx, "x")
	if err != nil || len(got) != 2 {
		t.Fatalf("bindings of x: %v %v", got, err)
	}
	if err := b.RemoveBinding(ctx, rows[0]); err != nil {
		t.Fatal(err)
	}
	if err := a.AddBinding(ctx, rows[0]); err != nil {
		t.Fatalf("binding again after a removal: %v", err)
	}
	if got, _ := b.Bindings(ctx, "x"); len(got) != 2 {
		t.Fatalf("after rebinding: %v", got)
	}
}

// A server that does not answer is a lost connection, so that kombu tries
// the next URL of a failover list.
func TestDialUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	o, err := ParseURL(mustURL(t, "couchdb://"+addr+"/db"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewConnector(o).Dial(testCtx(t))
	if !errors.Is(err, driver.ErrConnectionLost) {
		t.Fatalf("dial of a closed port: %v, want ErrConnectionLost", err)
	}
}

// Connection.As and Channel.As reach the kivik client and database.
func TestAs(t *testing.T) {
	raw := freshDatabaseURL(t, "")
	ctx := testCtx(t)
	conn, err := kombu.Dial(ctx, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var db *kivik.DB
	var client *kivik.Client
	if !conn.As(&db) || !conn.As(&client) {
		t.Fatal("Connection.As found no kivik client")
	}
	if db.Name() != mustOptions(t, raw).Database {
		t.Errorf("As gave database %q", db.Name())
	}
	if _, err := db.Stats(ctx); err != nil {
		t.Fatal(err)
	}
	var other *int
	if conn.As(&other) {
		t.Error("As accepted an unrelated target")
	}
}

func mustOptions(t *testing.T, raw string) *Options {
	t.Helper()
	o, err := ParseURL(mustURL(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// An ack deletes the document: with the next claim, or on its own shortly
// after when no claim comes, or at Close.
func TestAckDeletesTheDocument(t *testing.T) {
	raw := freshDatabaseURL(t, "")
	s := openStore(t, raw)
	db := rawDB(t, raw)
	ctx := testCtx(t)
	gone := func(id string, within time.Duration) bool {
		for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if _, err := s.currentRev(ctx, id); isNotFound(err) {
				return true
			}
		}
		return false
	}
	mustPut(t, s, "q", "alone", "first", "second", "last")
	for _, step := range []string{"timer", "claim"} {
		it := mustGet(t, s, "q")
		id := it.Receipt.(*lease).id
		if err := s.Ack(ctx, it); err != nil {
			t.Fatal(err)
		}
		if step == "claim" {
			mustGet(t, s, "q") // the deletion rides with this claim
		}
		if !gone(id, time.Second) {
			t.Fatalf("%s: the acked document %s is still there", step, id)
		}
	}
	it := mustGet(t, s, "q")
	id := it.Receipt.(*lease).id
	if err := s.Ack(ctx, it); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := db.Get(ctx, id).ScanDoc(&doc); !isNotFound(err) {
		t.Fatalf("after Close, the acked document reads %v, %v", doc, err)
	}
}

// Close stops the _changes follower and the store's HTTP connections.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	raw := freshDatabaseURL(t, "")
	before := goleak.IgnoreCurrent()
	s := openStore(t, raw)
	if _, err := s.Get(testCtx(t), []string{"q"}, 300*time.Millisecond); !errors.Is(err, driver.ErrEmpty) {
		t.Fatalf("get: %v, want ErrEmpty", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, before)
}
