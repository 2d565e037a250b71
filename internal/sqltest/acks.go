package sqltest

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/sqlstore"
	kdriver "github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

// AckHarness opens the database of an engine for RunAckTests.
type AckHarness struct {
	Engine sqlstore.Engine
	// Connector returns a connector to a test database (a new file for
	// SQLite).
	Connector func(t *testing.T) driver.Connector
}

// RunAckTests proves the deferred acks of sqlstore on a real engine: an
// ack is sent with the next claim (one statement on PostgreSQL, one
// transaction on SQLite), on its own after the ack delay when no claim
// comes, and by Close; it deletes only the delivery it was given; a
// failure to send it loses nothing; a delivery whose ack is pending is
// acked for Requeue, ExtendLease and Quarantine.
func RunAckTests(t *testing.T, h AckHarness) {
	t.Run("CarriedByNextClaim", func(t *testing.T) { ackCarriedByNextClaim(t, h) })
	t.Run("FlushedAfterDelayWhenIdle", func(t *testing.T) { ackFlushedWhenIdle(t, h) })
	t.Run("CloseFlushesInOneStatement", func(t *testing.T) { ackCloseFlushes(t, h) })
	t.Run("LateAckSparesNewDelivery", func(t *testing.T) { lateAckSparesNewDelivery(t, h) })
	t.Run("FlushFailureRedelivers", func(t *testing.T) { ackFlushFailureRedelivers(t, h) })
	t.Run("FailedClaimKeepsAcks", func(t *testing.T) { failedClaimKeepsAcks(t, h) })
	t.Run("PendingAckIsAcked", func(t *testing.T) { pendingAckIsAcked(t, h) })
}

// ackEnv is one test's tables, a logged pool and an unlogged one.
type ackEnv struct {
	t      *testing.T
	h      AckHarness
	log    *StatementLog
	db     *sql.DB // logged
	raw    *sql.DB // for checks behind the stores' back
	tables sqlstore.Tables
	queue  string
	ctx    context.Context
}

func newAckEnv(t *testing.T, h AckHarness) *ackEnv {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	sfx := fmt.Sprintf("%08x", rand.Uint32())
	e := &ackEnv{t: t, h: h, log: &StatementLog{}, ctx: ctx, queue: "acks." + t.Name(),
		tables: sqlstore.TablesFor("kq_ack_"+sfx, "km_ack_"+sfx)}
	c := h.Connector(t)
	e.db = sql.OpenDB(e.log.Wrap(c))
	e.raw = sql.OpenDB(c)
	t.Cleanup(func() {
		for _, tb := range []string{e.tables.Message, e.tables.Queue, e.tables.Binding, e.tables.Quarantine} {
			_, _ = e.raw.Exec("DROP TABLE IF EXISTS " + tb)
		}
		_ = e.db.Close()
		_ = e.raw.Close()
	})
	if err := sqlstore.Migrate(ctx, e.raw, h.Engine, e.tables); err != nil {
		t.Fatal(err)
	}
	return e
}

// store returns a store on the logged pool; Close does not close the pool.
func (e *ackEnv) store(ackDelay, visibility time.Duration) *sqlstore.Store {
	s := sqlstore.New(sqlstore.Config{
		DB: e.db, Engine: e.h.Engine, Tables: e.tables, VisibilityTimeout: visibility,
		PollInterval: 50 * time.Millisecond, Waker: sqlstore.NewBroadcast(), AckDelay: ackDelay,
	})
	e.t.Cleanup(func() { _ = s.Close() })
	return s
}

func (e *ackEnv) put(s *sqlstore.Store, bodies ...string) {
	e.t.Helper()
	e.putTo(s, e.queue, bodies...)
}

func (e *ackEnv) putTo(s *sqlstore.Store, queue string, bodies ...string) {
	e.t.Helper()
	if err := s.DeclareQueue(e.ctx, kdriver.Queue{Name: queue}); err != nil {
		e.t.Fatal(err)
	}
	batch := make([]virtual.QueuedEnvelope, len(bodies))
	for i, b := range bodies {
		batch[i] = virtual.QueuedEnvelope{Queue: queue, Envelope: &virtual.Envelope{Message: kdriver.Message{Body: []byte(b)}}}
	}
	if err := s.PutBatch(e.ctx, batch); err != nil {
		e.t.Fatal(err)
	}
}

func (e *ackEnv) get(s *sqlstore.Store, n int) []virtual.Item {
	e.t.Helper()
	return e.getFrom(s, e.queue, n)
}

func (e *ackEnv) getFrom(s *sqlstore.Store, queue string, n int) []virtual.Item {
	e.t.Helper()
	items, err := s.GetBatch(e.ctx, []string{queue}, n, 5*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(items) != n {
		e.t.Fatalf("claimed %d items, want %d", len(items), n)
	}
	return items
}

// count runs a count(*) query with '?' placeholders on the raw pool.
func (e *ackEnv) count(q string, args ...any) int {
	e.t.Helper()
	if e.h.Engine == sqlstore.Postgres {
		for i := 1; strings.Contains(q, "?"); i++ {
			q = strings.Replace(q, "?", fmt.Sprintf("$%d", i), 1)
		}
	}
	var n int
	if err := e.raw.QueryRowContext(e.ctx, q, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// rows counts the queue's rows, leased or ready: an acked row is gone.
func (e *ackEnv) rows() int {
	e.t.Helper()
	return e.count("SELECT count(*) FROM "+e.tables.Message+" WHERE queue_id = (SELECT id FROM "+e.tables.Queue+" WHERE name = ?)", e.queue)
}

// closeLeaving closes s, which must succeed and leave want rows.
func (e *ackEnv) closeLeaving(s *sqlstore.Store, want int, why string) {
	e.t.Helper()
	if err := s.Close(); err != nil {
		e.t.Fatal(err)
	}
	if n := e.rows(); n != want {
		e.t.Fatalf("%d rows after Close, want %d: %s", n, want, why)
	}
}

func isAckDelete(s Statement) bool { return s.Contains("DELETE") }

func describe(stmts []Statement) string {
	var b strings.Builder
	for _, s := range stmts {
		fmt.Fprintf(&b, "\n  tx %d: %.160s", s.Tx, s.Query)
	}
	return b.String()
}

func ackCarriedByNextClaim(t *testing.T, h AckHarness) {
	e := newAckEnv(t, h)
	s := e.store(time.Hour, time.Hour) // no timer flush during the test
	e.put(s, "a", "b", "c")
	a := e.get(s, 1)[0]
	e.log.Take()
	if err := s.Ack(e.ctx, a); err != nil {
		t.Fatal(err)
	}
	if stmts := e.log.Take(); len(stmts) > 0 {
		t.Fatalf("Ack sent statements at once:%s", describe(stmts))
	}
	if n := e.rows(); n != 3 {
		t.Fatalf("%d rows after a pending ack, want 3", n)
	}
	e.get(s, 1) // carries a's ack
	carrying := e.log.Take()
	if n := e.rows(); n != 2 {
		t.Fatalf("%d rows after the claim that carries the ack, want 2 (a deleted)%s", n, describe(carrying))
	}
	e.get(s, 1) // no ack pending: the plain claim
	plain := e.log.Take()
	for _, st := range plain {
		if isAckDelete(st) {
			t.Errorf("a claim without pending acks deleted:%s", describe(plain))
		}
	}
	switch h.Engine {
	case sqlstore.Postgres:
		// One round trip, as the claim without acks.
		if len(carrying) != 1 || len(plain) != 1 || !carrying[0].Contains("DELETE", "UPDATE") {
			t.Fatalf("claim with a pending ack sent %d statements, want 1 deleting and claiming (a plain claim: %d):%s",
				len(carrying), len(plain), describe(carrying))
		}
	default:
		// One transaction: the delete and the claim commit together.
		var deletes, claims, commits []Statement
		for _, st := range carrying {
			switch {
			case st.Query == "COMMIT":
				commits = append(commits, st)
			case isAckDelete(st):
				deletes = append(deletes, st)
			case st.Contains("UPDATE"):
				claims = append(claims, st)
			}
		}
		if len(deletes) != 1 || len(claims) != 1 || len(commits) != 1 || deletes[0].Tx == 0 ||
			deletes[0].Tx != claims[0].Tx || commits[0].Tx != claims[0].Tx {
			t.Fatalf("want one delete and the claim in one transaction:%s", describe(carrying))
		}
	}
}

func ackFlushedWhenIdle(t *testing.T, h AckHarness) {
	const delay = 300 * time.Millisecond
	e := newAckEnv(t, h)
	s := e.store(delay, time.Hour)
	e.put(s, "a")
	a := e.get(s, 1)[0]
	e.log.Take()
	acked := time.Now()
	if err := s.Ack(e.ctx, a); err != nil {
		t.Fatal(err)
	}
	for e.rows() != 0 {
		if time.Since(acked) > 10*time.Second {
			t.Fatal("the pending ack of an idle store was never sent")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stmts := e.log.Take()
	if len(stmts) != 1 || !isAckDelete(stmts[0]) {
		t.Fatalf("want one delete:%s", describe(stmts))
	}
	if after := stmts[0].At.Sub(acked); after < delay {
		t.Fatalf("the ack was sent %v after Ack, before the delay of %v", after, delay)
	}
}

func ackCloseFlushes(t *testing.T, h AckHarness) {
	const n = 1000 // more than the 400 pairs one statement used to hold
	e := newAckEnv(t, h)
	s := e.store(time.Hour, time.Hour)
	bodies := make([]string, n)
	for i := range bodies {
		bodies[i] = fmt.Sprint(i)
	}
	e.put(s, bodies...)
	items := e.get(s, n)
	e.log.Take()
	if err := s.Ack(e.ctx, items[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.AckBatch(e.ctx, items[1:]); err != nil {
		t.Fatal(err)
	}
	if got := e.rows(); got != n {
		t.Fatalf("%d rows before Close, want %d (acks pending)", got, n)
	}
	e.closeLeaving(s, 0, "Close did not send the pending acks")
	if stmts := e.log.Take(); len(stmts) != 1 || !isAckDelete(stmts[0]) {
		t.Fatalf("want the %d acks in one delete:%s", n, describe(stmts))
	}
	if err := s.Ack(e.ctx, items[0]); !errors.Is(err, kdriver.ErrClosed) {
		t.Fatalf("Ack after Close: %v, want ErrClosed", err)
	}
}

// lateAckSparesNewDelivery: a's lease expires and the row is visible
// again, then claimed again (b); a's late ack, carried by a claim of
// another queue, by b's very claim or sent on its own, must not delete the
// row.
func lateAckSparesNewDelivery(t *testing.T, h AckHarness) {
	e := newAckEnv(t, h)
	s := e.store(time.Hour, time.Second)
	e.put(s, "m")
	other := e.queue + ".other"
	e.putTo(s, other, "o")
	a := e.get(s, 1)[0]
	time.Sleep(1100 * time.Millisecond)
	if n, err := s.RestoreExpired(e.ctx); err != nil || n != 1 {
		t.Fatalf("restore expired: %d, %v", n, err)
	}
	if err := s.Ack(e.ctx, a); err != nil { // late, pending
		t.Fatal(err)
	}
	e.getFrom(s, other, 1) // carries a's ack
	if n, err := s.Size(e.ctx, e.queue); err != nil || n != 1 {
		t.Fatalf("%d ready rows, %v after a late ack carried by a claim, want 1: it deleted the visible row", n, err)
	}
	if err := s.Ack(e.ctx, a); err != nil { // late, pending
		t.Fatal(err)
	}
	b := e.get(s, 1)[0] // its claim carries a's ack
	if string(b.Envelope.Body) != "m" || !b.Envelope.Redelivered {
		t.Fatalf("claimed again %q redelivered=%v", b.Envelope.Body, b.Envelope.Redelivered)
	}
	if n := e.rows(); n != 1 {
		t.Fatalf("%d rows after a late ack carried by the new claim, want 1: it deleted the new delivery", n)
	}
	if err := s.Ack(e.ctx, a); err != nil { // late again, sent on its own by Close
		t.Fatal(err)
	}
	e.closeLeaving(s, 1, "the late ack sent by Close deleted the new delivery")
	s2 := e.store(time.Hour, time.Hour)
	if err := s2.Ack(e.ctx, b); err != nil {
		t.Fatal(err)
	}
	e.closeLeaving(s2, 0, "the current delivery's ack deleted nothing")
}

func ackFlushFailureRedelivers(t *testing.T, h AckHarness) {
	e := newAckEnv(t, h)
	s := e.store(20*time.Millisecond, time.Second)
	e.put(s, "m")
	a := e.get(s, 1)[0]
	e.log.FailWhen(func(q string) bool { return strings.Contains(q, "DELETE") })
	if err := s.Ack(e.ctx, a); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the timer's flush and a retry fail
	if err := s.Close(); !errors.Is(err, ErrInjected) {
		t.Fatalf("Close with a failing flush: %v, want the failure", err)
	}
	tried := 0
	for _, st := range e.log.Take() {
		if isAckDelete(st) {
			tried++
		}
	}
	if tried < 3 {
		t.Fatalf("the ack was tried %d times, want the timer's, a retry's and Close's", tried)
	}
	e.log.FailWhen(nil)
	if n := e.rows(); n != 1 {
		t.Fatalf("%d rows after failed acks, want 1 (leased)", n)
	}
	again := e.store(time.Hour, time.Second)                                  // sweeps expired leases every 250 ms
	items, err := again.GetBatch(e.ctx, []string{e.queue}, 1, 10*time.Second) // after the lease expires
	if err != nil {
		t.Fatalf("the message whose ack failed was not delivered again: %v", err)
	}
	if m := items[0]; string(m.Envelope.Body) != "m" || !m.Envelope.Redelivered {
		t.Fatalf("delivered again %q redelivered=%v", m.Envelope.Body, m.Envelope.Redelivered)
	}
}

// failedClaimKeepsAcks: a claim that carried acks and failed gives them
// back; they are sent later.
func failedClaimKeepsAcks(t *testing.T, h AckHarness) {
	e := newAckEnv(t, h)
	s := e.store(time.Hour, time.Hour)
	e.put(s, "a", "b")
	a := e.get(s, 1)[0]
	if err := s.Ack(e.ctx, a); err != nil {
		t.Fatal(err)
	}
	e.log.FailWhen(func(q string) bool { return strings.Contains(q, "DELETE") })
	if _, err := s.GetBatch(e.ctx, []string{e.queue}, 1, 0); !errors.Is(err, ErrInjected) {
		t.Fatalf("claim carrying a failing ack: %v, want the failure", err)
	}
	e.log.FailWhen(nil)
	e.closeLeaving(s, 1, "want a deleted by Close, b ready")
	if n, err := e.store(time.Hour, time.Hour).Size(e.ctx, e.queue); err != nil || n != 1 {
		t.Fatalf("size %d, %v: want b ready", n, err)
	}
}

// pendingAckIsAcked: after Ack returns, the delivery is acked although its
// delete is not sent yet: Requeue and Quarantine do nothing, ExtendLease
// fails, as they would after the delete.
func pendingAckIsAcked(t *testing.T, h AckHarness) {
	e := newAckEnv(t, h)
	s := e.store(time.Hour, time.Hour)
	e.put(s, "m")
	a := e.get(s, 1)[0]
	if err := s.Ack(e.ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.Requeue(e.ctx, a); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Size(e.ctx, e.queue); err != nil || n != 0 {
		t.Fatalf("size %d, %v after Requeue of an acked delivery, want 0", n, err)
	}
	if err := s.ExtendLease(e.ctx, a, time.Minute); !errors.Is(err, kdriver.ErrPreconditionFailed) {
		t.Fatalf("ExtendLease of an acked delivery: %v, want ErrPreconditionFailed", err)
	}
	if err := s.Quarantine(e.ctx, a); err != nil {
		t.Fatal(err)
	}
	if n := e.count("SELECT count(*) FROM " + e.tables.Quarantine); n != 0 {
		t.Fatalf("%d quarantined rows after Quarantine of an acked delivery, want 0", n)
	}
	e.closeLeaving(s, 0, "Close did not send the pending ack")
}
