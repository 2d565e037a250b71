package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

// MaxQueueNameChars is the width of Python kombu's kombu_queue.name column.
const MaxQueueNameChars = 200

// Config configures a Store.
type Config struct {
	DB     *sql.DB
	Engine Engine
	Tables Tables
	// VisibilityTimeout is how long a claimed row stays invisible unless
	// acked or extended.
	VisibilityTimeout time.Duration
	// PollInterval bounds how long an empty Get waits before looking again
	// while Waker cannot promise a signal for every new message.
	PollInterval time.Duration
	// LeaseDB, when set, runs the statements whose loss in a server crash
	// can only cause a redelivery (claims, acks, requeues, lease
	// extensions, the expired-lease sweep), so the engine may commit them
	// without waiting for the disk (PostgreSQL: synchronous_commit off).
	// Publishes always go through DB. nil: DB.
	LeaseDB *sql.DB
	// Waker signals new messages; required.
	Waker Waker
	// Wrap classifies an engine error (connection lost, ...) and names the
	// operation; nil returns err as it is.
	Wrap func(op string, err error) error
	// OnClose runs after the store has closed its own parts (the engine
	// closes DB there and stops its listener).
	OnClose func() error
	// As answers kombu's As for the engine's client types.
	As func(target any) bool
	// AckDelay is how long an ack waits for the next claim to carry it
	// before it is sent on its own; 0: DefaultAckDelay.
	AckDelay time.Duration
}

// Store is the virtual.Store of the SQL transports. It is safe for
// concurrent use.
type Store struct {
	c      Config
	st     *statements
	closed atomic.Bool
	done   chan struct{}

	sweepMu   sync.Mutex
	nextSweep time.Time

	idleMu sync.Mutex
	idle   map[string]idleMark // queue -> when it was last found empty

	acks ackQueue
}

// idleMark remembers that a queue was empty when the waker's channel was
// signal: while no signal has come since, looking again is useless.
type idleMark struct {
	signal <-chan struct{}
	at     time.Time
}

// receipt identifies one claim of one row: version changes on every claim,
// requeue and lease expiry, so a stale receipt never touches a row claimed
// again since.
type receipt struct {
	id      int64
	version int64
}

// New returns a Store over an open DB whose schema Migrate has prepared.
func New(c Config) *Store {
	if c.LeaseDB == nil {
		c.LeaseDB = c.DB
	}
	if c.Wrap == nil {
		c.Wrap = func(_ string, err error) error { return err }
	}
	if c.AckDelay <= 0 {
		c.AckDelay = DefaultAckDelay
	}
	s := &Store{c: c, st: newStatements(c.Engine, c.Tables), done: make(chan struct{}), idle: map[string]idleMark{}}
	s.acks.held = map[receipt]struct{}{}
	return s
}

// DB returns the store's database handle.
func (s *Store) DB() *sql.DB { return s.c.DB }

var errStoreClosed = fmt.Errorf("%w: sql store closed", driver.ErrClosed)

func (s *Store) begin(ctx context.Context) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	return ctx.Err()
}

func (s *Store) wrap(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return ctx.Err()
	}
	if s.closed.Load() {
		return errStoreClosed
	}
	return s.c.Wrap(op, err)
}

func nowMs() int64 { return time.Now().UnixMilli() }

func nullableMs(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// ValidateName implements virtual.NameValidator: kombu_queue.name holds 200
// characters.
func (s *Store) ValidateName(kind, name string) error {
	if kind == "queue" && utf8.RuneCountInString(name) > MaxQueueNameChars {
		return fmt.Errorf("%w: queue name of %d characters: the %s table holds at most %d",
			driver.ErrInvalidArgument, utf8.RuneCountInString(name), s.c.Tables.Queue, MaxQueueNameChars)
	}
	return nil
}

// ensureQueue creates the queue row, as Python kombu's _get_or_create.
func (s *Store) ensureQueue(ctx context.Context, ex execer, queue string) error {
	_, err := ex.ExecContext(ctx, s.st.ensureQueue, queue, queue)
	return s.wrap(ctx, "declare queue", err)
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// DeclareQueue implements virtual.QueueStore.
func (s *Store) DeclareQueue(ctx context.Context, q driver.Queue) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	return s.ensureQueue(ctx, s.c.DB, q.Name)
}

// QueueExists implements virtual.QueueStore: the queue's row exists.
func (s *Store) QueueExists(ctx context.Context, name string, _ []virtual.StoredBinding) (bool, error) {
	if err := s.begin(ctx); err != nil {
		return false, err
	}
	var n int
	err := s.c.DB.QueryRowContext(ctx, s.st.queueExists, name).Scan(&n)
	return n > 0, s.wrap(ctx, "queue exists", err)
}

func putArgs(env *virtual.Envelope) (payload string, err error) {
	b, err := env.Marshal()
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// putOne inserts env, creating the queue row when it is missing.
func (s *Store) putOne(ctx context.Context, ex execer, queue string, env *virtual.Envelope, payload string, deliveries int) error {
	for attempt := 0; ; attempt++ {
		res, err := ex.ExecContext(ctx, s.st.putOne, payload, int(env.Properties.Priority), nullableMs(env.ExpiresAt), deliveries, queue)
		if err != nil {
			return s.wrap(ctx, "put", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		if attempt == 1 {
			return fmt.Errorf("%w: queue %q vanished while publishing to it", driver.ErrNotFound, queue)
		}
		if err := s.ensureQueue(ctx, ex, queue); err != nil {
			return err
		}
	}
}

// Put implements virtual.Store.
func (s *Store) Put(ctx context.Context, queue string, env *virtual.Envelope) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	payload, err := putArgs(env)
	if err != nil {
		return err
	}
	if err := s.putOne(ctx, s.c.DB, queue, env, payload, 0); err != nil {
		return err
	}
	s.c.Waker.Signal()
	return nil
}

// PutBatch implements virtual.BatchPutter: one transaction, so one commit
// (one fsync) for the whole batch.
func (s *Store) PutBatch(ctx context.Context, batch []virtual.QueuedEnvelope) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	payloads := make([]string, len(batch))
	for i, qe := range batch {
		p, err := putArgs(qe.Envelope)
		if err != nil {
			return &driver.BatchError{Published: 0, Err: err}
		}
		payloads[i] = p
	}
	if s.st.putBatch != "" {
		if err := s.putArrays(ctx, batch, payloads); err != nil {
			return err
		}
		s.c.Waker.Signal()
		return nil
	}
	tx, err := s.c.DB.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(ctx, "put batch", err)
	}
	defer func() { _ = tx.Rollback() }()
	stmt, err := tx.PrepareContext(ctx, s.st.putOne)
	if err != nil {
		return s.wrap(ctx, "put batch", err)
	}
	defer stmt.Close()
	for i, qe := range batch {
		res, err := stmt.ExecContext(ctx, payloads[i], int(qe.Envelope.Properties.Priority), nullableMs(qe.Envelope.ExpiresAt), 0, qe.Queue)
		if err != nil {
			return s.wrap(ctx, "put batch", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			continue
		}
		if err := s.putOne(ctx, tx, qe.Queue, qe.Envelope, payloads[i], 0); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return s.wrap(ctx, "put batch commit", err)
	}
	s.c.Waker.Signal()
	return nil
}

// putArrays inserts a batch in one statement (PostgreSQL). Rows whose
// queue has no row yet are not inserted by it: those queues are created
// and their rows put one by one.
func (s *Store) putArrays(ctx context.Context, batch []virtual.QueuedEnvelope, payloads []string) error {
	queues := make([]string, len(batch))
	prios := make([]int16, len(batch))
	expires := make([]*int64, len(batch))
	for i, qe := range batch {
		queues[i], prios[i] = qe.Queue, int16(qe.Envelope.Properties.Priority)
		if !qe.Envelope.ExpiresAt.IsZero() {
			ms := qe.Envelope.ExpiresAt.UnixMilli()
			expires[i] = &ms
		}
	}
	res, err := s.c.DB.ExecContext(ctx, s.st.putBatch, queues, payloads, prios, expires)
	if err != nil {
		return s.wrap(ctx, "put batch", err)
	}
	if n, _ := res.RowsAffected(); int(n) == len(batch) {
		return nil
	}
	missing := map[string]bool{}
	for _, q := range queues {
		if _, seen := missing[q]; seen {
			continue
		}
		exists, err := s.QueueExists(ctx, q, nil)
		if err != nil {
			return err
		}
		missing[q] = !exists
	}
	for i, qe := range batch {
		if missing[qe.Queue] {
			if err := s.putOne(ctx, s.c.DB, qe.Queue, qe.Envelope, payloads[i], 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// Get implements virtual.Store.
func (s *Store) Get(ctx context.Context, queues []string, wait time.Duration) (virtual.Item, error) {
	items, err := s.GetBatch(ctx, queues, 1, wait)
	if err != nil {
		return virtual.Item{}, err
	}
	return items[0], nil
}

// GetBatch implements virtual.BatchGetter: it claims up to max rows from
// the queues in order, waiting up to wait for the first.
func (s *Store) GetBatch(ctx context.Context, queues []string, limit int, wait time.Duration) ([]virtual.Item, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	limit = max(limit, 1)
	deadline := time.Now().Add(wait)
	for {
		if err := s.maybeSweep(ctx); err != nil {
			return nil, err
		}
		signal, live := s.c.Waker.Wait()
		items, contended, err := s.claimQueues(ctx, queues, limit, signal, live)
		if err != nil || len(items) > 0 {
			return items, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, driver.ErrEmpty
		}
		pause := s.c.PollInterval
		if live {
			pause = safetyPoll
		}
		if contended {
			pause = min(pause, contendedRetry)
		}
		pause = min(pause, left, max(time.Until(s.sweepDue()), time.Millisecond))
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-s.done:
			t.Stop()
			return nil, errStoreClosed
		case <-signal:
			t.Stop()
		case <-t.C:
		}
	}
}

// contendedRetry is how soon a queue whose ready rows were all held by
// other transactions is looked at again.
const contendedRetry = 20 * time.Millisecond

// safetyPoll is how often a queue is looked at although notifications are
// live: a guard against a notification lost in a way we did not foresee.
const safetyPoll = 10 * time.Second

// claimQueues claims from queues in order; contended reports ready rows it
// could not take because other transactions held them.
func (s *Store) claimQueues(ctx context.Context, queues []string, limit int, signal <-chan struct{}, live bool) (items []virtual.Item, contended bool, err error) {
	for _, q := range queues {
		if len(items) >= limit {
			break
		}
		if live && s.stillIdle(q, signal) {
			continue
		}
		got, err := s.claim(ctx, q, limit-len(items))
		if err != nil {
			return items, false, err
		}
		if len(got) == 0 {
			// SKIP LOCKED passes over rows another transaction holds
			// for a moment; a queue is idle only when it has no ready
			// row at all, else no notification would come to wake us.
			ready := false
			if !s.st.claimPrecheck {
				if ready, err = s.hasReady(context.WithoutCancel(ctx), q); err != nil {
					return items, false, err
				}
			}
			if ready {
				contended = true
			} else {
				s.markIdle(q, signal)
			}
		}
		items = append(items, got...)
	}
	return items, contended, nil
}

func (s *Store) stillIdle(q string, signal <-chan struct{}) bool {
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	m, ok := s.idle[q]
	return ok && m.signal == signal && time.Since(m.at) < safetyPoll
}

func (s *Store) markIdle(q string, signal <-chan struct{}) {
	s.idleMu.Lock()
	if len(s.idle) > 10000 { // a bound for programs that poll ever new queue names
		clear(s.idle)
	}
	s.idle[q] = idleMark{signal: signal, at: time.Now()}
	s.idleMu.Unlock()
}

type claimedRow struct {
	id, version int64
	payload     string
	priority    int
	expiresAt   sql.NullInt64
	deliveries  int
}

func (s *Store) claim(ctx context.Context, queue string, n int) ([]virtual.Item, error) {
	// A claim whose caller gives up after the server committed it leaves
	// its rows leased: they come back after the visibility timeout (a
	// claim that ran on without its caller would hand virtual rows for a
	// receive already over, breaking prefetch and redelivered flags).
	if s.st.claimPrecheck {
		if ready, err := s.hasReady(ctx, queue); err != nil || !ready {
			return nil, err
		}
	}
	lease := time.Now().Add(s.c.VisibilityTimeout).UnixMilli()
	got, err := s.claimWithAcks(ctx, lease, queue, n)
	if err != nil {
		return nil, s.wrap(ctx, "claim", err)
	}
	// RETURNING gives no order.
	sort.Slice(got, func(i, j int) bool {
		if got[i].priority != got[j].priority {
			return got[i].priority > got[j].priority
		}
		return got[i].id < got[j].id
	})
	items := make([]virtual.Item, len(got))
	for i, r := range got {
		rc := receipt{id: r.id, version: r.version}
		env, err := virtual.UnmarshalEnvelope([]byte(r.payload))
		if err != nil {
			items[i] = virtual.UndecodableItem(queue, []byte(r.payload), err, rc)
			continue
		}
		if r.deliveries > 1 {
			env.Redelivered = true
		}
		if r.expiresAt.Valid {
			env.ExpiresAt = time.UnixMilli(r.expiresAt.Int64)
		}
		items[i] = virtual.Item{Queue: queue, Envelope: env, Receipt: rc}
	}
	return items, nil
}

// hasReady reports whether queue has a ready row, locked or not.
func (s *Store) hasReady(ctx context.Context, queue string) (bool, error) {
	var n int
	if err := s.c.DB.QueryRowContext(ctx, s.st.readyCount, queue).Scan(&n); err != nil {
		return false, s.wrap(ctx, "claim", err)
	}
	return n > 0, nil
}

// sweepEvery is how often a store makes expired leases visible again.
func (s *Store) sweepEvery() time.Duration {
	return min(max(s.c.VisibilityTimeout/4, 100*time.Millisecond), 30*time.Second)
}

func (s *Store) sweepDue() time.Time {
	s.sweepMu.Lock()
	defer s.sweepMu.Unlock()
	return s.nextSweep
}

// maybeSweep makes rows whose lease expired (their consumer died or
// stalled) visible again. Rows Python kombu received have no lease and are
// left alone: Python never acks them in the database.
func (s *Store) maybeSweep(ctx context.Context) error {
	s.sweepMu.Lock()
	if time.Now().Before(s.nextSweep) {
		s.sweepMu.Unlock()
		return nil
	}
	s.nextSweep = time.Now().Add(s.sweepEvery())
	s.sweepMu.Unlock()
	_, err := s.RestoreExpired(ctx)
	return err
}

// RestoreExpired makes every row whose lease has expired visible again and
// returns how many.
func (s *Store) RestoreExpired(ctx context.Context) (int, error) {
	res, err := s.c.LeaseDB.ExecContext(ctx, s.st.restoreExpired, nowMs())
	if err != nil {
		return 0, s.wrap(ctx, "restore expired leases", err)
	}
	n, _ := res.RowsAffected()
	if n > 0 {
		s.c.Waker.Signal()
	}
	return int(n), nil
}

func receiptOf(it virtual.Item) (receipt, error) {
	r, ok := it.Receipt.(receipt)
	if !ok {
		return receipt{}, fmt.Errorf("%w: sql: item without a receipt of this store", driver.ErrInvalidArgument)
	}
	return r, nil
}

// Requeue implements virtual.Acker: the row is replaced by a new one at the
// back of its queue, marked redelivered.
func (s *Store) Requeue(ctx context.Context, it virtual.Item) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	r, err := receiptOf(it)
	if err != nil {
		return err
	}
	if s.acks.acked(r) {
		return nil // as after the delete: nothing to requeue
	}
	var payload []byte
	if it.DecodeErr != nil {
		payload = it.Envelope.Body // the raw bytes, as they were
	} else if payload, err = it.Envelope.AsRedelivered().Marshal(); err != nil {
		return err
	}
	tx, err := s.c.LeaseDB.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(ctx, "requeue", err)
	}
	defer func() { _ = tx.Rollback() }()
	var queueID, priority, deliveries int64
	var expires sql.NullInt64
	err = tx.QueryRowContext(ctx, s.st.requeueDelete, r.id, r.version).Scan(&queueID, &priority, &expires, &deliveries)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // the lease expired and the row is someone else's, or the queue was deleted
	}
	if err != nil {
		return s.wrap(ctx, "requeue", err)
	}
	if _, err := tx.ExecContext(ctx, s.st.requeueInsert, string(payload), queueID, priority, expires, deliveries); err != nil {
		return s.wrap(ctx, "requeue", err)
	}
	if err := tx.Commit(); err != nil {
		return s.wrap(ctx, "requeue commit", err)
	}
	s.c.Waker.Signal()
	return nil
}

// ExtendLease implements virtual.LeaseExtender.
func (s *Store) ExtendLease(ctx context.Context, it virtual.Item, d time.Duration) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	r, err := receiptOf(it)
	if err != nil {
		return err
	}
	if s.acks.acked(r) {
		return errAcked(r)
	}
	res, err := s.c.LeaseDB.ExecContext(ctx, s.st.extend, time.Now().Add(d).UnixMilli(), r.id, r.version)
	if err != nil {
		return s.wrap(ctx, "extend lease", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: sql: the lease of message %d has expired and it was restored", driver.ErrPreconditionFailed, r.id)
	}
	return nil
}

// Quarantine implements virtual.Quarantiner: the row moves to the
// quarantine table with the reason, in one transaction.
func (s *Store) Quarantine(ctx context.Context, it virtual.Item) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	r, err := receiptOf(it)
	if err != nil {
		return err
	}
	if s.acks.acked(r) {
		return nil // as after the delete: nothing to keep
	}
	tx, err := s.c.DB.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(ctx, "quarantine", err)
	}
	defer func() { _ = tx.Rollback() }()
	var payload string
	err = tx.QueryRowContext(ctx, s.st.quarantineDel, r.id, r.version).Scan(&payload)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return s.wrap(ctx, "quarantine", err)
	}
	reason := "undecodable"
	if it.DecodeErr != nil {
		reason = it.DecodeErr.Error()
	}
	if _, err := tx.ExecContext(ctx, s.st.quarantineIns, it.Queue, payload, reason, nowMs()); err != nil {
		return s.wrap(ctx, "quarantine", err)
	}
	return s.wrap(ctx, "quarantine commit", tx.Commit())
}

// Purge implements virtual.Store: ready rows only; claimed ones stay with
// their consumers, as AMQP's purge leaves unacked messages.
func (s *Store) Purge(ctx context.Context, queue string) (int, error) {
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	res, err := s.c.DB.ExecContext(ctx, s.st.purge, queue)
	if err != nil {
		return 0, s.wrap(ctx, "purge", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// Size implements virtual.Store: ready rows (Python kombu also counts the
// rows it received and never deleted).
func (s *Store) Size(ctx context.Context, queue string) (int, error) {
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	var n int
	err := s.c.DB.QueryRowContext(ctx, s.st.size, queue).Scan(&n)
	return n, s.wrap(ctx, "size", err)
}

// Delete implements virtual.Store: the queue row, its messages and its
// bindings go in one transaction.
func (s *Store) Delete(ctx context.Context, queue string) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	tx, err := s.c.DB.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(ctx, "delete queue", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, q := range []string{s.st.deleteMessages, s.st.deleteBindings, s.st.deleteQueue} {
		if _, err := tx.ExecContext(ctx, q, queue); err != nil {
			return s.wrap(ctx, "delete queue", err)
		}
	}
	s.idleMu.Lock()
	delete(s.idle, queue)
	s.idleMu.Unlock()
	return s.wrap(ctx, "delete queue commit", tx.Commit())
}

// AddBinding implements virtual.BindingStore.
func (s *Store) AddBinding(ctx context.Context, b virtual.StoredBinding) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	_, err := s.c.DB.ExecContext(ctx, s.st.addBinding, b.Exchange, b.RoutingKey, b.Pattern, b.Queue)
	return s.wrap(ctx, "bind", err)
}

// RemoveBinding implements virtual.BindingStore.
func (s *Store) RemoveBinding(ctx context.Context, b virtual.StoredBinding) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	_, err := s.c.DB.ExecContext(ctx, s.st.removeBinding, b.Exchange, b.RoutingKey, b.Pattern, b.Queue)
	return s.wrap(ctx, "unbind", err)
}

// Bindings implements virtual.BindingStore.
func (s *Store) Bindings(ctx context.Context, exchange string) ([]virtual.StoredBinding, error) {
	return s.queryBindings(ctx, s.st.bindings, exchange, func(rows *sql.Rows, b *virtual.StoredBinding) error {
		b.Exchange = exchange
		return rows.Scan(&b.RoutingKey, &b.Pattern, &b.Queue)
	})
}

// Ping implements driver.Pinger.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	return s.wrap(ctx, "ping", s.c.DB.PingContext(ctx))
}

// As implements driver.Aser with the engine's answer.
func (s *Store) As(target any) bool { return s.c.As != nil && s.c.As(target) }

// Close implements virtual.Store: it sends the pending acks. Unacked rows
// are returned by virtual (Requeue) before the Conn closes the store.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.done)
	errs := []error{s.closeAcks()}
	errs = append(errs, s.c.Waker.Close())
	if s.c.OnClose != nil {
		errs = append(errs, s.c.OnClose())
	}
	return errors.Join(errs...)
}

var (
	_ virtual.Store         = (*Store)(nil)
	_ virtual.Acker         = (*Store)(nil)
	_ virtual.BatchPutter   = (*Store)(nil)
	_ virtual.BatchGetter   = (*Store)(nil)
	_ virtual.BatchAcker    = (*Store)(nil)
	_ virtual.LeaseExtender = (*Store)(nil)
	_ virtual.Quarantiner   = (*Store)(nil)
	_ virtual.BindingStore  = (*Store)(nil)
	_ virtual.QueueStore    = (*Store)(nil)
	_ virtual.NameValidator = (*Store)(nil)
	_ driver.Pinger         = (*Store)(nil)
	_ driver.Aser           = (*Store)(nil)
)
