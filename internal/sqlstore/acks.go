package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

// DefaultAckDelay is how long an ack waits for the next claim of its store
// to carry it before it is sent on its own.
const DefaultAckDelay = 2 * time.Millisecond

// ackRetryDelay is how soon acks whose flush failed are tried again.
const ackRetryDelay = 100 * time.Millisecond

// closeFlushTimeout bounds the flush of pending acks in Close.
const closeFlushTimeout = 5 * time.Second

// ackQueue holds the acks made and not yet committed: pending ones wait for
// the next claim or the timer; sent ones travel in a statement that has not
// returned. Both count as acked for Requeue, ExtendLease and Quarantine.
type ackQueue struct {
	mu      sync.Mutex
	pending []receipt
	held    map[receipt]struct{}    // pending and sent
	since   time.Time               // when the oldest pending ack was made
	flights map[*ackFlight]struct{} // statements carrying acks that have not returned
	armed   bool                    // timer is pending
	timer   *time.Timer
}

// ackFlight is one statement carrying acks; done is closed when it has
// returned.
type ackFlight struct {
	acks []receipt
	done chan struct{}
}

// acked reports whether r was acked and its delete has not committed yet.
func (q *ackQueue) acked(r receipt) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, ok := q.held[r]
	return ok
}

// Ack implements virtual.Acker: the row is deleted, by the next claim of
// this store (in the claim's statement on PostgreSQL, in its transaction on
// SQLite) or on its own after the ack delay when no claim comes, and always
// before Close returns. Like an AMQP basic.ack it is not confirmed: if the
// process dies before it is sent, or the delete fails, the row stays leased
// and is delivered again after the visibility timeout (never lost). A
// receipt whose lease expired (the row was claimed again since) deletes
// nothing: the other claim owns the row now.
func (s *Store) Ack(ctx context.Context, it virtual.Item) error {
	return s.AckBatch(ctx, []virtual.Item{it})
}

// AckBatch implements virtual.BatchAcker: the acks are pending as Ack's,
// and any number of them is deleted by one statement.
func (s *Store) AckBatch(ctx context.Context, items []virtual.Item) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	rs := make([]receipt, len(items))
	for i, it := range items {
		r, err := receiptOf(it)
		if err != nil {
			return err
		}
		rs[i] = r
	}
	return s.addAcks(rs)
}

func (s *Store) addAcks(rs []receipt) error {
	q := &s.acks
	q.mu.Lock()
	defer q.mu.Unlock()
	if s.closed.Load() {
		// Checked under mu: an ack made before Close took mu is sent by
		// Close; after, it is refused, never silently dropped.
		return errStoreClosed
	}
	if len(q.pending) == 0 {
		q.since = time.Now()
	}
	for _, r := range rs {
		if _, dup := q.held[r]; dup {
			continue
		}
		q.held[r] = struct{}{}
		q.pending = append(q.pending, r)
	}
	s.armAcksLocked(s.c.AckDelay)
	return nil
}

// armAcksLocked starts the flush timer unless it runs already.
func (s *Store) armAcksLocked(d time.Duration) {
	q := &s.acks
	if q.armed || s.closed.Load() {
		return
	}
	q.armed = true
	if q.timer == nil {
		q.timer = time.AfterFunc(d, s.flushAcksAsync)
	} else {
		q.timer.Reset(d)
	}
}

// takeAcks returns the pending acks to be sent (nil: none); the caller
// reports the outcome with ackSent.
func (s *Store) takeAcks() *ackFlight {
	q := &s.acks
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		return nil
	}
	f := &ackFlight{acks: q.pending, done: make(chan struct{})}
	q.pending = nil
	if q.flights == nil {
		q.flights = map[*ackFlight]struct{}{}
	}
	q.flights[f] = struct{}{}
	return f
}

func (q *ackQueue) flightsLocked() []*ackFlight {
	fs := make([]*ackFlight, 0, len(q.flights))
	for f := range q.flights {
		fs = append(fs, f)
	}
	return fs
}

// waitFlights waits until the flights have returned, or ctx is done.
func waitFlights(ctx context.Context, fs []*ackFlight) {
	for _, f := range fs {
		select {
		case <-f.done:
		case <-ctx.Done():
			return
		}
	}
}

// ackSent records the outcome of flight f: committed, its acks are
// forgotten; failed, they are pending again (a retried delete is harmless:
// it matches the same claim or nothing).
func (s *Store) ackSent(f *ackFlight, err error) {
	if f == nil {
		return
	}
	rs := f.acks
	q := &s.acks
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.flights, f)
	close(f.done)
	if err == nil {
		for _, r := range rs {
			delete(q.held, r)
		}
		return
	}
	if len(q.pending) == 0 {
		q.since = time.Now()
	}
	q.pending = append(rs, q.pending...)
	s.armAcksLocked(ackRetryDelay)
}

func (s *Store) flushAcksAsync() {
	q := &s.acks
	q.mu.Lock()
	if len(q.pending) > 0 {
		// Claims took acks meanwhile and reset the clock: wait until
		// the oldest pending one is AckDelay old.
		if wait := s.c.AckDelay - time.Since(q.since); wait > 0 {
			q.timer.Reset(wait)
			q.mu.Unlock()
			return
		}
	}
	q.armed = false
	q.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.flushAcks(ctx) // on failure ackSent arms a retry
}

// flushAcks sends the pending acks now, in one statement.
func (s *Store) flushAcks(ctx context.Context) error {
	f := s.takeAcks()
	if f == nil {
		return nil
	}
	_, err := s.c.LeaseDB.ExecContext(ctx, s.st.ack, s.ackArgs(f.acks)...)
	s.ackSent(f, err)
	if err != nil {
		return s.c.Wrap("ack", err)
	}
	return nil
}

// ackArgs are the arguments of s.st.ack for rs: two arrays on PostgreSQL,
// one JSON array of [id, version] pairs on SQLite (which has no arrays).
func (s *Store) ackArgs(rs []receipt) []any {
	if s.c.Engine == Postgres {
		ids, versions := make([]int64, len(rs)), make([]int64, len(rs))
		for i, r := range rs {
			ids[i], versions[i] = r.id, r.version
		}
		return []any{ids, versions}
	}
	pairs := make([][2]int64, len(rs))
	for i, r := range rs {
		pairs[i] = [2]int64{r.id, r.version}
	}
	b, _ := json.Marshal(pairs) // integers only: cannot fail
	return []any{string(b)}
}

// claimWithAcks runs the claim and deletes the pending acks in the same
// round trip: PostgreSQL in one statement (a DELETE in a WITH), SQLite in
// one transaction (one commit, not two).
func (s *Store) claimWithAcks(ctx context.Context, lease int64, queue string, n int) ([]claimedRow, error) {
	f := s.takeAcks()
	var got []claimedRow
	var err error
	switch {
	case f == nil:
		got, err = scanClaim(s.c.LeaseDB.QueryContext(ctx, s.st.claim, lease, queue, n))
	case s.st.claimAcking != "":
		got, err = scanClaim(s.c.LeaseDB.QueryContext(ctx, s.st.claimAcking, append(s.ackArgs(f.acks), lease, queue, n)...))
	default:
		got, err = s.claimInTx(ctx, f.acks, lease, queue, n)
	}
	s.ackSent(f, err)
	return got, err
}

func (s *Store) claimInTx(ctx context.Context, acks []receipt, lease int64, queue string, n int) ([]claimedRow, error) {
	tx, err := s.c.LeaseDB.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, s.st.ack, s.ackArgs(acks)...); err != nil {
		return nil, err
	}
	got, err := scanClaim(tx.QueryContext(ctx, s.st.claim, lease, queue, n))
	if err != nil {
		return nil, err
	}
	return got, tx.Commit()
}

func scanClaim(rows *sql.Rows, err error) ([]claimedRow, error) {
	if err != nil {
		return nil, err
	}
	var got []claimedRow
	for rows.Next() {
		var r claimedRow
		if err := rows.Scan(&r.id, &r.version, &r.payload, &r.priority, &r.expiresAt, &r.deliveries); err != nil {
			rows.Close()
			return nil, err
		}
		got = append(got, r)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	return got, rows.Err()
}

// errAcked is ExtendLease's answer for a delivery acked already.
func errAcked(r receipt) error {
	return fmt.Errorf("%w: sql: message %d was acked", driver.ErrPreconditionFailed, r.id)
}

// closeAcks stops the timer and sends the pending acks, waiting for the
// statements already carrying some; called by Close once no new ack can be
// made.
func (s *Store) closeAcks() error {
	q := &s.acks
	q.mu.Lock()
	if q.timer != nil {
		q.timer.Stop()
	}
	q.armed = false
	q.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), closeFlushTimeout)
	defer cancel()
	err := s.flushAcks(ctx)
	// A claim or a timer flush under way may fail and give its acks back.
	q.mu.Lock()
	under := q.flightsLocked()
	q.mu.Unlock()
	waitFlights(ctx, under)
	if err == nil {
		err = s.flushAcks(ctx)
	}
	if err != nil {
		// The rows stay leased: delivered again after the visibility
		// timeout.
		return fmt.Errorf("acks not sent, their messages will be delivered again: %w", err)
	}
	return nil
}
