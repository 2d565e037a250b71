package mongodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
	"github.com/kombu-go/kombu/virtual/routing"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newEnv(body string, priority uint8) *virtual.Envelope {
	return &virtual.Envelope{Message: driver.Message{Body: []byte(body), ContentType: "application/json",
		ContentEncoding: "utf-8", Properties: driver.Properties{DeliveryMode: 2, Priority: priority}}, RoutingKey: "rk"}
}

func findAll(t *testing.T, raw, coll string, filter bson.D) []bson.M {
	t.Helper()
	ctx := testCtx(t)
	if filter == nil {
		filter = bson.D{}
	}
	cur, err := collection(t, raw, coll).Find(ctx, filter)
	if err != nil {
		t.Fatal(err)
	}
	var out []bson.M
	if err := cur.All(ctx, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func getOne(t *testing.T, s *Store, queue string) virtual.Item {
	t.Helper()
	it, err := s.Get(testCtx(t), []string{queue}, 5*time.Second)
	if err != nil {
		t.Fatalf("get from %s: %v", queue, err)
	}
	return it
}

// The documents are Python kombu's: {_id, queue, payload: envelope JSON
// string, priority: 9 - priority}; a leased message is in the unacked
// collection only, with its lease; bindings are {exchange, queue,
// routing_key, pattern} rows.
func TestDocumentsArePythonKombus(t *testing.T) {
	raw := isolatedURL(t, "")
	s := openStore(t, raw)
	ctx := testCtx(t)
	if err := s.Put(ctx, "docs.q", newEnv(`{"n": 1}`, 7)); err != nil {
		t.Fatal(err)
	}
	docs := findAll(t, raw, "messages", bson.D{{Key: "queue", Value: "docs.q"}})
	if len(docs) != 1 {
		t.Fatalf("%d documents", len(docs))
	}
	d := docs[0]
	if _, ok := d["_id"].(bson.ObjectID); !ok || d["priority"] != int32(2) || len(d) != 4 {
		t.Fatalf("document %v", d)
	}
	var env map[string]any
	if err := json.Unmarshal([]byte(d["payload"].(string)), &env); err != nil {
		t.Fatalf("payload %q: %v", d["payload"], err)
	}
	props := env["properties"].(map[string]any)
	if props["body_encoding"] != "base64" || props["priority"] != float64(7) || env["content-type"] != "application/json" {
		t.Fatalf("envelope %v", env)
	}

	it := getOne(t, s, "docs.q")
	if n := len(findAll(t, raw, "messages", nil)); n != 0 {
		t.Errorf("%d ready documents while the message is leased", n)
	}
	leases := findAll(t, raw, "messages.unacked", nil)
	if len(leases) != 1 || leases[0]["_id"] != d["_id"] || leases[0]["payload"] != d["payload"] ||
		leases[0]["lease_token"] == nil || leases[0]["lease_until"] == nil {
		t.Fatalf("leases %v", leases)
	}
	if err := s.Ack(ctx, it); err != nil {
		t.Fatal(err)
	}
	if n := len(findAll(t, raw, "messages.unacked", nil)); n != 0 {
		t.Errorf("%d leases after the ack", n)
	}

	for _, b := range []virtual.StoredBinding{
		{Exchange: "docs.direct", RoutingKey: "k", Queue: "docs.q"},
		{Exchange: "docs.topic", RoutingKey: "a.*.#", Pattern: routing.KombuTopicPattern("a.*.#"), Queue: "docs.q"},
	} {
		if err := s.AddBinding(ctx, b); err != nil {
			t.Fatal(err)
		}
		if err := s.AddBinding(ctx, b); err != nil { // idempotent
			t.Fatal(err)
		}
		rows := findAll(t, raw, "messages.routing", bson.D{{Key: "exchange", Value: b.Exchange}})
		want := any(nil)
		if b.Pattern != "" {
			want = b.Pattern
		}
		if len(rows) != 1 || rows[0]["queue"] != "docs.q" || rows[0]["routing_key"] != b.RoutingKey || rows[0]["pattern"] != want {
			t.Errorf("routing rows of %s: %v", b.Exchange, rows)
		}
		got, err := s.Bindings(ctx, b.Exchange)
		if err != nil || len(got) != 1 || got[0] != b {
			t.Errorf("Bindings(%s) = %v, %v", b.Exchange, got, err)
		}
		if err := s.RemoveBinding(ctx, b); err != nil {
			t.Fatal(err)
		}
		if rows := findAll(t, raw, "messages.routing", bson.D{{Key: "exchange", Value: b.Exchange}}); len(rows) != 0 {
			t.Errorf("rows left after unbind: %v", rows)
		}
	}
}

// Requeue puts the message back at its old place, marked redelivered in
// its payload (where Python kombu reads it), as AMQP requeues.
func TestRequeueKeepsThePlace(t *testing.T) {
	raw := isolatedURL(t, "")
	s := openStore(t, raw)
	ctx := testCtx(t)
	for i := range 3 {
		if err := s.Put(ctx, "rq", newEnv(fmt.Sprint(i), 0)); err != nil {
			t.Fatal(err)
		}
	}
	first := getOne(t, s, "rq")
	if err := s.Requeue(ctx, first); err != nil {
		t.Fatal(err)
	}
	again := getOne(t, s, "rq")
	if string(again.Envelope.Body) != "0" || !again.Envelope.Redelivered {
		t.Fatalf("after requeue got %q redelivered=%v, want the first message again", again.Envelope.Body, again.Envelope.Redelivered)
	}
	if err := s.Ack(ctx, again); err != nil {
		t.Fatal(err)
	}
}

// A lease that outlives visibility_timeout goes back (any consumer's sweep
// restores it), and the slow consumer's late ack or requeue does not touch
// the new consumer's lease of the same message.
func TestExpiredLeaseComesBackAndLateAckIsHarmless(t *testing.T) {
	raw := isolatedURL(t, "visibility_timeout=1")
	slow, other := openStore(t, raw), openStore(t, raw)
	ctx := testCtx(t)
	if err := slow.Put(ctx, "vt", newEnv("m", 0)); err != nil {
		t.Fatal(err)
	}
	held := getOne(t, slow, "vt")
	if _, err := other.Get(ctx, []string{"vt"}, 200*time.Millisecond); !errors.Is(err, driver.ErrEmpty) {
		t.Fatalf("a leased message was handed out again before its lease ended: %v", err)
	}
	start := time.Now()
	again := getOne(t, other, "vt")
	if !again.Envelope.Redelivered || string(again.Envelope.Body) != "m" {
		t.Fatalf("got %q redelivered=%v", again.Envelope.Body, again.Envelope.Redelivered)
	}
	t.Logf("back after %v", time.Since(start).Round(10*time.Millisecond))
	if err := slow.Ack(ctx, held); err != nil {
		t.Fatal(err)
	}
	if n := len(findAll(t, raw, "messages.unacked", nil)); n != 1 {
		t.Fatalf("the late ack left %d leases, want the new consumer's", n)
	}
	if err := slow.ExtendLease(ctx, held, time.Minute); !errors.Is(err, driver.ErrPreconditionFailed) {
		t.Errorf("extending a lost lease: %v, want ErrPreconditionFailed", err)
	}
	if err := other.ExtendLease(ctx, again, time.Minute); err != nil {
		t.Errorf("extending a live lease: %v", err)
	}
	if err := slow.Requeue(ctx, held); err != nil {
		t.Fatal(err)
	}
	if n := len(findAll(t, raw, "messages", nil)); n != 0 {
		t.Errorf("the slow consumer's requeue of a lost lease made %d ready copies", n)
	}
	if err := other.Ack(ctx, again); err != nil {
		t.Fatal(err)
	}
	if n := len(findAll(t, raw, "messages.unacked", nil)); n != 0 {
		t.Errorf("%d leases left", n)
	}
}

// A candidate read before another consumer took and acked it is not
// delivered again: the second claim wins the (now free) lease but finds
// the ready copy gone, and drops its lease.
func TestStaleCandidateIsNotDeliveredTwice(t *testing.T) {
	raw := isolatedURL(t, "")
	a, b := openStore(t, raw), openStore(t, raw)
	ctx := testCtx(t)
	if err := a.Put(ctx, "stale", newEnv("once", 0)); err != nil {
		t.Fatal(err)
	}
	docs, err := b.findReady(ctx, "stale", 10) // b reads the candidate...
	if err != nil || len(docs) != 1 {
		t.Fatalf("%d candidates, %v", len(docs), err)
	}
	it := getOne(t, a, "stale") // ...a takes and acks it...
	if err := a.Ack(ctx, it); err != nil {
		t.Fatal(err)
	}
	ok, _, err := b.claimOne(ctx, docs[0], time.Now().Add(time.Minute), "late") // ...then b claims it
	if err != nil || ok {
		t.Fatalf("claim of a message already taken and acked: %v %v", ok, err)
	}
	if n := len(findAll(t, raw, "messages.unacked", nil)); n != 0 {
		t.Errorf("%d leases left by the failed claim", n)
	}
}

// An undecodable document is handed up as such, and Quarantine moves it
// out of its queue into the quarantine collection with the reason.
func TestQuarantineKeepsUndecodableDocuments(t *testing.T) {
	raw := isolatedURL(t, "")
	s := openStore(t, raw)
	ctx := testCtx(t)
	if _, err := collection(t, raw, "messages").InsertOne(ctx, bson.D{{Key: "queue", Value: "bad"}, {Key: "payload", Value: int32(42)}, {Key: "priority", Value: int32(9)}}); err != nil {
		t.Fatal(err)
	}
	it := getOne(t, s, "bad")
	if it.DecodeErr == nil {
		t.Fatalf("a payload of 42 decoded as %+v", it.Envelope)
	}
	if err := s.Quarantine(ctx, it); err != nil {
		t.Fatal(err)
	}
	q := findAll(t, raw, "messages.quarantine", nil)
	if len(q) != 1 || q[0]["payload"] != int32(42) || q[0]["queue"] != "bad" || q[0]["error"] == nil {
		t.Fatalf("quarantine %v", q)
	}
	if n := len(findAll(t, raw, "messages.unacked", nil)) + len(findAll(t, raw, "messages", nil)); n != 0 {
		t.Errorf("%d documents left in the queue", n)
	}
}

// Fanout: one broadcast document per publish, read by every bound queue
// from bind time on, in order, also after FerretDB closed the tailable
// cursor; an unbound queue reads nothing more.
func TestFanoutThroughTheCappedCollection(t *testing.T) {
	raw := isolatedURL(t, "")
	s := openStore(t, raw)
	ctx := testCtx(t)
	if err := s.PutFanout(ctx, "fx", "", newEnv("before", 0)); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"f1", "f2"} {
		if err := s.BindFanout(ctx, "fx", "", q); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 2 {
		for i := range 3 {
			if err := s.PutFanout(ctx, "fx", "", newEnv(fmt.Sprint(round, i), 0)); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := s.Size(ctx, "f1"); err != nil || n != 3 {
			t.Errorf("round %d: size %d, %v", round, n, err)
		}
		for _, q := range []string{"f1", "f2"} {
			for i := range 3 {
				it := getOne(t, s, q)
				if want := fmt.Sprint(round, i); string(it.Envelope.Body) != want {
					t.Fatalf("round %d, %s: got %q, want %q", round, q, it.Envelope.Body, want)
				}
				if err := s.Ack(ctx, it); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if got := findAll(t, raw, "messages.broadcast", nil); len(got) != 7 || got[0]["queue"] != "fx" {
		t.Errorf("broadcast collection: %d documents %v", len(got), got[0])
	}
	if err := s.UnbindFanout(ctx, "fx", "", "f2"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutFanout(ctx, "fx", "", newEnv("late", 0)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Purge(ctx, "f1"); err != nil || n != 1 {
		t.Errorf("purge of f1: %d, %v", n, err)
	}
	if _, err := s.Get(ctx, []string{"f1", "f2"}, 300*time.Millisecond); !errors.Is(err, driver.ErrEmpty) {
		t.Errorf("after purge and unbind: %v, want ErrEmpty", err)
	}
}

// ttl=true: expire_at on the messages of a queue with x-message-ttl and on
// the declaration of a queue with x-expires, as Python kombu writes them;
// FerretDB's missing TTL indexes do not stop the dial, and consumers drop
// expired messages themselves (virtual, on any server).
func TestTTLWritesPythonKombusExpireAt(t *testing.T) {
	raw := isolatedURL(t, "ttl=true")
	s := openStore(t, raw)
	ctx := testCtx(t)
	if err := s.DeclareQueue(ctx, driver.Queue{Name: "ttlq", Durable: true, Args: map[string]any{"x-expires": int64(60000)}}); err != nil {
		t.Fatal(err)
	}
	qdoc, err := collection(t, raw, "messages.queues").FindOne(ctx, bson.D{{Key: "_id", Value: "ttlq"}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := qdoc.Lookup("expire_at").TimeOK(); !ok || qdoc.Lookup("options", "arguments", "x-expires").AsInt64() != 60000 {
		t.Fatalf("queue document %v", qdoc)
	}
	env := newEnv("short", 0)
	env.ExpiresAt = time.Now().Add(time.Minute)
	if err := s.Put(ctx, "ttlq", env); err != nil {
		t.Fatal(err)
	}
	docs := findAll(t, raw, "messages", bson.D{{Key: "queue", Value: "ttlq"}})
	if len(docs) != 1 || docs[0]["expire_at"] == nil {
		t.Fatalf("messages %v", docs)
	}
	it := getOne(t, s, "ttlq")
	if d := time.Until(it.Envelope.ExpiresAt); d < 50*time.Second || d > time.Minute {
		t.Errorf("ExpiresAt read back %v from now", d)
	}
	if err := s.Ack(ctx, it); err != nil {
		t.Fatal(err)
	}
	if exists, err := s.QueueExists(ctx, "ttlq", nil); err != nil || !exists {
		t.Errorf("declared queue exists: %v %v", exists, err)
	}
	if err := s.Delete(ctx, "ttlq"); err != nil {
		t.Fatal(err)
	}
	if exists, err := s.QueueExists(ctx, "ttlq", nil); err != nil || exists {
		t.Errorf("deleted queue exists: %v %v", exists, err)
	}
}

// calc_queue_size=false reports 0 without counting, as Python kombu does;
// the messages are still there.
func TestCalcQueueSizeOff(t *testing.T) {
	raw := isolatedURL(t, "calc_queue_size=false")
	s := openStore(t, raw)
	ctx := testCtx(t)
	if err := s.Put(ctx, "nocount", newEnv("m", 0)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Size(ctx, "nocount"); err != nil || n != 0 {
		t.Errorf("size %d, %v; want 0 without counting", n, err)
	}
	it := getOne(t, s, "nocount")
	if err := s.Ack(ctx, it); err != nil {
		t.Fatal(err)
	}
}
