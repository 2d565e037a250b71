package couchdb

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/kombu-go/kombu/virtual"
)

// Acks are written late, as AMQP's basic.ack is sent without waiting for
// an answer: an acked message's deletion waits for the consumer's next
// claim and rides in the same _bulk_docs request, or goes on its own after
// ackFlushDelay, or at once when ackBatchMax are waiting, or at Close. A
// process that dies in between leaves the message under its lease, and it
// comes back redelivered when the lease ends: never lost, at most
// delivered again, as any unacked message.
const (
	ackFlushDelay = 20 * time.Millisecond
	ackBatchMax   = 100
)

// ackQueue holds the deletions of acked messages not written yet.
type ackQueue struct {
	// flushMu serializes flushes, so that Close waits for one the timer
	// started.
	flushMu sync.Mutex
	mu      sync.Mutex
	pending []any // {"_id", "_rev", "_deleted": true}
	ids     map[string]bool
	timer   *time.Timer
}

// Ack implements virtual.Acker: the message's document is deleted with
// the revision of the claim, soon (see ackFlushDelay). A lease lost
// meanwhile (expired, message delivered again) leaves the document to its
// new holder: the delete fails with a conflict and is dropped.
func (s *Store) Ack(ctx context.Context, it virtual.Item) error {
	l, err := receipt(it)
	if err != nil {
		return err
	}
	s.forget(l)
	l.mu.Lock()
	del := map[string]any{"_id": l.id, "_rev": l.rev, "_deleted": true}
	l.mu.Unlock()
	a := &s.acks
	a.mu.Lock()
	if a.ids == nil {
		a.ids = map[string]bool{}
	}
	a.pending = append(a.pending, del)
	a.ids[l.id] = true
	full := len(a.pending) >= ackBatchMax
	if !full && a.timer == nil {
		a.timer = time.AfterFunc(ackFlushDelay, func() {
			ctx, cancel := context.WithTimeout(context.Background(), claimWriteTimeout)
			defer cancel()
			_ = s.flushAcks(ctx)
		})
	}
	a.mu.Unlock()
	if full {
		return s.flushAcks(ctx)
	}
	return nil
}

// takeAcks removes and returns the pending deletions.
func (s *Store) takeAcks() []any {
	a := &s.acks
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	p := a.pending
	a.pending, a.ids = nil, nil
	return p
}

// ackPending reports whether the deletion of id waits to be written.
func (s *Store) ackPending(id string) bool {
	a := &s.acks
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ids[id]
}

// giveBackAcks puts deletions whose request failed back in the queue, to
// ride with the next request.
func (s *Store) giveBackAcks(dels []any) {
	if len(dels) == 0 || s.closed.Load() {
		return
	}
	a := &s.acks
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ids == nil {
		a.ids = map[string]bool{}
	}
	for _, d := range dels {
		a.ids[docID(d)] = true
	}
	a.pending = append(dels, a.pending...)
}

// flushAcks writes the pending deletions in one _bulk_docs request.
func (s *Store) flushAcks(ctx context.Context) error {
	s.acks.flushMu.Lock()
	defer s.acks.flushMu.Unlock()
	dels := s.takeAcks()
	if len(dels) == 0 {
		return nil
	}
	results, err := s.bulkDocs(ctx, dels)
	if err != nil {
		s.giveBackAcks(dels)
		return wrap(ctx, "ack", err)
	}
	return ackErrors(ctx, results)
}

// ackErrors reports the deletions that failed for another reason than a
// lost lease (409, 404).
func ackErrors(ctx context.Context, results []bulkOutcome) error {
	var errs []error
	for _, r := range results {
		if r.err != nil && !isConflict(r.err) && !isNotFound(r.err) {
			errs = append(errs, wrap(ctx, "ack", r.err))
		}
	}
	return errors.Join(errs...)
}
