package couchdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kivik/kivik/v4"
	"github.com/go-kivik/kivik/v4/couchdb"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

// closeRestoreTimeout bounds the requeue of the messages a store still
// holds when it closes.
const closeRestoreTimeout = 10 * time.Second

// Store is the couchdb virtual.Store: one kivik client and the database of
// the URL. Messages are documents; a consumer claims one by writing a lease
// into it with the revision it read, so that CouchDB's MVCC refuses every
// other claimer.
type Store struct {
	opts   *Options
	client *kivik.Client
	http   *http.Transport
	db     *kivik.DB
	hub    *hub
	ids    *idClock
	owner  string
	closed atomic.Bool

	mu   sync.Mutex
	held map[string]*lease // claimed by this store and not settled yet

	acks ackQueue
}

// lease is the receipt of a claimed message: the document as stored, with
// its current revision.
type lease struct {
	mu    sync.Mutex
	id    string
	queue string
	doc   map[string]json.RawMessage // every field, also those this package does not know
	rev   string
}

// Dial connects to the server, creates the database when missing, and
// returns the store.
func (c *Connector) Dial(ctx context.Context) (*Store, error) {
	o := c.opts
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = o.TLS
	tr.MaxIdleConnsPerHost = 16
	opts := []kivik.Option{couchdb.OptionHTTPClient(&http.Client{Transport: tr}), couchdb.OptionNoRequestCompression()}
	if o.Username != "" || o.Password != "" {
		opts = append(opts, couchdb.BasicAuth(o.Username, o.Password))
	}
	client, err := kivik.New("couch", o.Server, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: couchdb: %v", driver.ErrInvalidURL, err)
	}
	s := &Store{opts: o, client: client, http: tr, db: client.DB(o.Database), ids: newIDClock(), held: map[string]*lease{}}
	s.owner = virtual.NewDeliveryTag()
	s.hub = newHub(s.db)
	if err := s.prepare(ctx); err != nil {
		_ = client.Close()
		tr.CloseIdleConnections()
		return nil, err
	}
	return s, nil
}

// prepare creates the database when missing.
func (s *Store) prepare(ctx context.Context) error {
	err := s.client.CreateDB(ctx, s.opts.Database)
	if err != nil && status(err) != http.StatusPreconditionFailed { // 412: it exists
		return wrap(ctx, "create database "+s.opts.Database, err)
	}
	return nil
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
	_ driver.Pinger         = (*Store)(nil)
)

func (s *Store) newMessage(queue string, env *virtual.Envelope) (map[string]any, error) {
	raw := env.Raw // the bytes it was read with, when unchanged since
	if raw == nil {
		var err error
		if raw, err = env.Marshal(); err != nil {
			return nil, err
		}
	}
	payload, err := json.Marshal(string(raw))
	if err != nil {
		return nil, err
	}
	doc := map[string]any{
		"_id":      s.ids.next(queue, int(min(env.Properties.Priority, 9))),
		"kombu":    kindMessage,
		"queue":    queue,
		"priority": min(int(env.Properties.Priority), 9),
		"payload":  json.RawMessage(payload),
		"lease":    0,
	}
	if !env.ExpiresAt.IsZero() {
		doc["expires"] = env.ExpiresAt.UnixMilli()
	}
	return doc, nil
}

// Put implements virtual.Store: one document per message.
func (s *Store) Put(ctx context.Context, queue string, env *virtual.Envelope) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	doc, err := s.newMessage(queue, env)
	if err != nil {
		return err
	}
	if _, err := s.db.Put(ctx, doc["_id"].(string), doc); err != nil {
		return wrap(ctx, "put message", err)
	}
	s.hub.notify(queue)
	return nil
}

// PutBatch implements virtual.BatchPutter with one _bulk_docs request.
// CouchDB writes each document on its own: on a failure, the messages
// before the first failed one are reported as published.
func (s *Store) PutBatch(ctx context.Context, batch []virtual.QueuedEnvelope) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	if len(batch) == 0 {
		return nil
	}
	docs := make([]any, len(batch))
	for i, qe := range batch {
		doc, err := s.newMessage(qe.Queue, qe.Envelope)
		if err != nil {
			return &driver.BatchError{Published: 0, Err: err}
		}
		docs[i] = doc
	}
	results, err := s.bulkDocs(ctx, docs)
	if err != nil {
		return &driver.BatchError{Published: 0, Err: wrap(ctx, "put messages", err)}
	}
	woken := map[string]bool{}
	for _, qe := range batch {
		if !woken[qe.Queue] {
			woken[qe.Queue] = true
			s.hub.notify(qe.Queue)
		}
	}
	for i, r := range results {
		if r.err != nil {
			return &driver.BatchError{Published: i, Err: wrap(ctx, "put message", r.err)}
		}
	}
	return nil
}

// bulkOutcome is what _bulk_docs answered for one document.
type bulkOutcome struct {
	rev string
	err error
}

// bulkDocs writes docs (each with its "_id") in one _bulk_docs request and
// returns each one's outcome in the order of docs. pouchdb-server does not
// answer in the order of the request, so answers are matched by id; a
// document it did not answer for gets an error.
func (s *Store) bulkDocs(ctx context.Context, docs []any) ([]bulkOutcome, error) {
	results, err := s.db.BulkDocs(ctx, docs)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]kivik.BulkResult, len(results))
	for _, r := range results {
		byID[r.ID] = r
	}
	out := make([]bulkOutcome, len(docs))
	for i, d := range docs {
		id := docID(d)
		r, ok := byID[id]
		switch {
		case !ok:
			out[i].err = fmt.Errorf("couchdb: _bulk_docs gave no answer for %s", id)
		case r.Error != nil:
			out[i].err = r.Error
		default:
			out[i].rev = r.Rev
		}
	}
	return out, nil
}

// docID reads the "_id" of a document built by this package.
func docID(d any) string {
	switch d := d.(type) {
	case map[string]any:
		id, _ := d["_id"].(string)
		return id
	case map[string]json.RawMessage:
		var id string
		_ = json.Unmarshal(d["_id"], &id)
		return id
	}
	return ""
}

// Get implements virtual.Store.
func (s *Store) Get(ctx context.Context, queues []string, wait time.Duration) (virtual.Item, error) {
	items, err := s.GetBatch(ctx, queues, 1, wait)
	if err != nil {
		return virtual.Item{}, err
	}
	return items[0], nil
}

// GetBatch implements virtual.BatchGetter: it claims up to max ready
// messages, from the first queue that has some on. A waiting call sleeps
// until the _changes feed reports a change to one of queues, the polling
// interval passes, or wait is over.
func (s *Store) GetBatch(ctx context.Context, queues []string, max int, wait time.Duration) ([]virtual.Item, error) {
	if max <= 0 {
		max = 1
	}
	deadline := time.Now().Add(wait)
	for {
		if s.closed.Load() {
			return nil, errStoreClosed
		}
		var woken chan struct{}
		if wait > 0 {
			// Registered before looking, so that a message put while we
			// look still wakes us.
			if err := s.hub.start(ctx); err != nil {
				return nil, wrap(ctx, "follow _changes", err)
			}
			woken = s.hub.register(queues)
		}
		items, err := s.look(ctx, queues, max)
		if len(items) > 0 {
			err = nil // claimed messages are delivered; a failure after them comes back next time
		}
		left := time.Until(deadline)
		if err != nil || len(items) > 0 || wait <= 0 || left <= 0 {
			if woken != nil {
				s.hub.unregister(woken, queues)
			}
			if err == nil && len(items) == 0 {
				err = driver.ErrEmpty
			}
			return items, err
		}
		t := time.NewTimer(min(left, s.opts.PollingInterval))
		select {
		case <-woken:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		s.hub.unregister(woken, queues)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// look claims from the queues in order.
func (s *Store) look(ctx context.Context, queues []string, max int) ([]virtual.Item, error) {
	var items []virtual.Item
	for _, q := range queues {
		got, err := s.claim(ctx, q, max-len(items))
		items = append(items, got...)
		if err != nil {
			return items, err
		}
		if len(items) == max {
			break
		}
	}
	return items, nil
}

// claimWriteTimeout bounds the claim request, which runs on even when the
// caller gives up.
const claimWriteTimeout = 30 * time.Second

// claimRounds bounds how often claim reads the queue again after losing
// every message it tried to claim to other consumers.
const claimRounds = 8

// claim takes up to n ready messages of queue: it reads the head of the
// queue and writes a lease into each document with the revision it read,
// in one _bulk_docs request. A document another consumer claimed first
// fails with a conflict and is skipped.
func (s *Store) claim(ctx context.Context, queue string, n int) ([]virtual.Item, error) {
	var items []virtual.Item
	for round := 0; round < claimRounds && len(items) < n; round++ {
		heads, err := s.readyDocs(ctx, queue, n-len(items))
		if err != nil || len(heads) == 0 {
			return items, err
		}
		won, lost, err := s.writeClaims(ctx, heads)
		items = append(items, won...)
		if err != nil || lost == 0 {
			return items, err // lost == 0: the queue had no more
		}
	}
	return items, nil
}

// writeClaims writes a lease into each document read by readyDocs, with
// the revision read, in one _bulk_docs request. It returns the items it
// won and how many other consumers claimed first (409).
func (s *Store) writeClaims(ctx context.Context, heads []*lease) (won []virtual.Item, lost int, err error) {
	until := time.Now().Add(s.opts.VisibilityTimeout).UnixMilli()
	owner, _ := json.Marshal(s.owner)
	// The deletions of acked messages ride in the same request.
	acks := s.takeAcks()
	docs := make([]any, len(acks), len(acks)+len(heads))
	copy(docs, acks)
	for _, l := range heads {
		l.doc["lease"] = json.RawMessage(fmt.Sprint(until))
		l.doc["owner"] = owner
		docs = append(docs, l.doc)
	}
	// Once sent, the claims may be written whatever the caller's context
	// says: finish reading the answer, so that no claimed message is left
	// to wait for its lease to expire.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), claimWriteTimeout)
	defer cancel()
	results, err := s.bulkDocs(wctx, docs)
	if err != nil {
		// The claims may have been written: their leases expire and the
		// messages come back, redelivered.
		s.giveBackAcks(acks)
		return nil, 0, wrap(wctx, "claim", err)
	}
	errs := []error{ackErrors(wctx, results[:len(acks)])}
	for i, r := range results[len(acks):] {
		if r.err != nil {
			if isConflict(r.err) {
				lost++
			} else {
				errs = append(errs, wrap(wctx, "claim", r.err))
			}
			continue
		}
		l := heads[i]
		l.setRev(r.rev)
		s.mu.Lock()
		s.held[l.id] = l
		s.mu.Unlock()
		won = append(won, s.item(l))
	}
	// Claims won are delivered even when others failed.
	if len(won) > 0 {
		return won, lost, nil
	}
	return nil, lost, errors.Join(errs...)
}

// maxPage bounds one _all_docs page.
const maxPage = 1000

// readyDocs reads the first n claimable documents of queue: those without
// a lease, and those whose lease has expired (their consumer is gone: they
// are taken back marked redelivered). Documents under a live lease are
// skipped; the page is sized for the ones this store holds.
func (s *Store) readyDocs(ctx context.Context, queue string, n int) ([]*lease, error) {
	s.mu.Lock()
	page := min(n+len(s.held)+16, maxPage)
	s.mu.Unlock()
	now := time.Now().UnixMilli()
	var out []*lease
	err := s.scanQueue(ctx, queue, page, func(id string, doc map[string]json.RawMessage) bool {
		l := leaseOf(doc)
		if !isMessage(doc) || l > now || s.ackPending(id) {
			return true
		}
		if l > 0 {
			doc["redelivered"] = json.RawMessage("true")
		}
		var rev string
		_ = json.Unmarshal(doc["_rev"], &rev)
		out = append(out, &lease{id: id, queue: queue, doc: doc, rev: rev})
		return len(out) < n
	})
	return out, err
}

// scanQueue reads the documents of queue in queue order, page by page,
// and calls visit for each until it returns false or the queue ends.
// Writes use the revision read: a document changed since fails with a
// conflict.
func (s *Store) scanQueue(ctx context.Context, queue string, page int, visit func(id string, doc map[string]json.RawMessage) bool) error {
	prefix := messageIDPrefix(queue)
	start, skip := prefix, 0
	for {
		rs := s.db.AllDocs(ctx, kivik.Params(map[string]any{
			"include_docs": true,
			"startkey":     start,
			"endkey":       prefix + "\ufff0",
			"limit":        page,
			"skip":         skip,
		}))
		rows, last := 0, ""
		for rs.Next() {
			rows++
			last, _ = rs.ID()
			var doc map[string]json.RawMessage
			if err := rs.ScanDoc(&doc); err != nil {
				if status(err) == http.StatusBadRequest { // no doc: deleted meanwhile
					continue
				}
				_ = rs.Close()
				return wrap(ctx, "read queue", err)
			}
			if !visit(last, doc) {
				return wrap(ctx, "read queue", rs.Close())
			}
		}
		err := rs.Err()
		_ = rs.Close()
		if err != nil {
			return wrap(ctx, "read queue", err)
		}
		if rows < page {
			return nil
		}
		start, skip = last, 1 // nothing is deleted during a scan
	}
}

func isMessage(doc map[string]json.RawMessage) bool {
	return string(doc["kombu"]) == `"`+kindMessage+`"`
}

// leaseOf returns the end of a document's lease in unix ms; 0 when it has
// none (also for a malformed one, so that no document is stuck).
func leaseOf(doc map[string]json.RawMessage) int64 {
	var f float64
	if json.Unmarshal(doc["lease"], &f) != nil || f <= 0 {
		return 0
	}
	return int64(f)
}

func (l *lease) setRev(rev string) {
	l.mu.Lock()
	l.rev = rev
	l.doc["_rev"], _ = json.Marshal(rev)
	l.mu.Unlock()
}

// item decodes a claimed document. A payload that is not a kombu envelope
// comes back as an undecodable item holding its raw bytes.
func (s *Store) item(l *lease) virtual.Item {
	raw, env, err := decodePayload(l.doc["payload"])
	if err != nil {
		if raw == nil {
			raw, _ = json.Marshal(l.doc)
		}
		return virtual.UndecodableItem(l.queue, raw, fmt.Errorf("couchdb: document %s of queue %q: %w", l.id, l.queue, err), l)
	}
	var redelivered bool
	_ = json.Unmarshal(l.doc["redelivered"], &redelivered)
	var expires int64
	_ = json.Unmarshal(l.doc["expires"], &expires)
	if redelivered && !env.Redelivered {
		env.Redelivered = true
	}
	if expires > 0 {
		env.ExpiresAt = time.UnixMilli(expires)
	}
	return virtual.Item{Queue: l.queue, Envelope: env, Receipt: l}
}

// decodePayload reads a message's payload: kombu's JSON envelope as a
// string (as written here and by Python kombu 3) or as an object. raw is
// the envelope's bytes, nil when the payload has none.
func decodePayload(p json.RawMessage) (raw []byte, env *virtual.Envelope, err error) {
	switch {
	case len(p) == 0:
		return nil, nil, errors.New("no payload")
	case p[0] == '"':
		var s string
		if err := json.Unmarshal(p, &s); err != nil {
			return p, nil, err
		}
		raw = []byte(s)
	case p[0] == '{':
		raw = p
	default:
		return p, nil, fmt.Errorf("payload %.40s is neither a string nor an object", p)
	}
	env, err = virtual.UnmarshalEnvelope(raw)
	return raw, env, err
}

func receipt(it virtual.Item) (*lease, error) {
	l, ok := it.Receipt.(*lease)
	if !ok || l == nil {
		return nil, fmt.Errorf("couchdb: item of queue %q has no lease (receipt %T)", it.Queue, it.Receipt)
	}
	return l, nil
}

// update writes the lease's document with change applied, with the
// revision the lease holds. A conflict or a missing document means the
// lease was lost (it expired and another consumer, or a restore, took the
// message): lostOK reports that as success.
func (s *Store) update(ctx context.Context, op string, l *lease, change func(doc map[string]json.RawMessage)) (lost bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	doc := make(map[string]json.RawMessage, len(l.doc)+2)
	for k, v := range l.doc {
		doc[k] = v
	}
	change(doc)
	rev, err := s.db.Put(ctx, l.id, doc)
	if isConflict(err) || isNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, wrap(ctx, op, err)
	}
	doc["_rev"], _ = json.Marshal(rev)
	l.doc, l.rev = doc, rev
	return false, nil
}

func (s *Store) forget(l *lease) {
	s.mu.Lock()
	delete(s.held, l.id)
	s.mu.Unlock()
}

// AckBatch implements virtual.BatchAcker with one _bulk_docs request.
func (s *Store) AckBatch(ctx context.Context, items []virtual.Item) error {
	docs := make([]any, 0, len(items))
	leases := make([]*lease, 0, len(items))
	for _, it := range items {
		l, err := receipt(it)
		if err != nil {
			return err
		}
		l.mu.Lock()
		docs = append(docs, map[string]any{"_id": l.id, "_rev": l.rev, "_deleted": true})
		l.mu.Unlock()
		leases = append(leases, l)
	}
	if len(docs) == 0 {
		return nil
	}
	results, err := s.bulkDocs(ctx, docs)
	if err != nil {
		return wrap(ctx, "ack", err)
	}
	var errs []error
	for i, r := range results {
		if r.err != nil && !isConflict(r.err) && !isNotFound(r.err) {
			errs = append(errs, wrap(ctx, "ack", r.err))
			continue
		}
		s.forget(leases[i])
	}
	return errors.Join(errs...)
}

// Requeue implements virtual.Acker: the document loses its lease and is
// marked redelivered; it keeps its place in the queue.
func (s *Store) Requeue(ctx context.Context, it virtual.Item) error {
	l, err := receipt(it)
	if err != nil {
		return err
	}
	if _, err := s.update(ctx, "requeue", l, func(doc map[string]json.RawMessage) {
		doc["lease"] = json.RawMessage("0")
		doc["redelivered"] = json.RawMessage("true")
		delete(doc, "owner")
	}); err != nil {
		return err
	}
	s.forget(l)
	s.hub.notify(l.queue)
	return nil
}

// ExtendLease implements virtual.LeaseExtender: the claim now ends d from
// now. A lease already lost is an error: the message may be with another
// consumer.
func (s *Store) ExtendLease(ctx context.Context, it virtual.Item, d time.Duration) error {
	l, err := receipt(it)
	if err != nil {
		return err
	}
	until := time.Now().Add(d).UnixMilli()
	lost, err := s.update(ctx, "extend lease", l, func(doc map[string]json.RawMessage) {
		doc["lease"] = json.RawMessage(fmt.Sprint(until))
	})
	if err != nil {
		return err
	}
	if lost {
		return fmt.Errorf("%w: couchdb: the lease of %s expired and was taken back", driver.ErrPreconditionFailed, l.id)
	}
	return nil
}

// Quarantine implements virtual.Quarantiner: the undecodable document
// stays in the database, marked "kombu": "quarantined" with the reason,
// out of every queue.
func (s *Store) Quarantine(ctx context.Context, it virtual.Item) error {
	l, err := receipt(it)
	if err != nil {
		return err
	}
	reason := "undecodable"
	if it.DecodeErr != nil {
		reason = it.DecodeErr.Error()
	}
	reasonJSON, _ := json.Marshal(reason)
	kind, _ := json.Marshal(kindQuarantined)
	lost, err := s.update(ctx, "quarantine", l, func(doc map[string]json.RawMessage) {
		doc["kombu"] = kind
		doc["reason"] = reasonJSON
		doc["quarantined_at"] = json.RawMessage(fmt.Sprint(time.Now().UnixMilli()))
		doc["lease"] = json.RawMessage("0")
	})
	if err != nil {
		return err
	}
	if lost {
		return fmt.Errorf("couchdb: quarantine of %s: the lease was lost; the document is back in its queue", l.id)
	}
	s.forget(l)
	return nil
}

// readyDeletions returns deletions of every claimable message of queue
// (what Size counts).
func (s *Store) readyDeletions(ctx context.Context, queue string) ([]any, error) {
	now := time.Now().UnixMilli()
	var dels []any
	err := s.scanQueue(ctx, queue, maxPage, func(id string, doc map[string]json.RawMessage) bool {
		if isMessage(doc) && leaseOf(doc) <= now && !s.ackPending(id) {
			dels = append(dels, map[string]any{"_id": id, "_rev": doc["_rev"], "_deleted": true})
		}
		return true
	})
	return dels, err
}

// purgeBatch is how many documents one purge request deletes.
const purgeBatch = 500

// Purge implements virtual.Store: it deletes the claimable messages of
// queue (held ones stay with their consumers) and returns how many it
// deleted.
func (s *Store) Purge(ctx context.Context, queue string) (int, error) {
	if s.closed.Load() {
		return 0, errStoreClosed
	}
	dels, err := s.readyDeletions(ctx, queue)
	if err != nil {
		return 0, err
	}
	n := 0
	for len(dels) > 0 {
		chunk := dels[:min(purgeBatch, len(dels))]
		dels = dels[len(chunk):]
		results, err := s.bulkDocs(ctx, chunk)
		if err != nil {
			return n, wrap(ctx, "purge", err)
		}
		for _, r := range results {
			if r.err == nil {
				n++
			} else if !isConflict(r.err) && !isNotFound(r.err) {
				return n, wrap(ctx, "purge", r.err)
			}
		}
	}
	return n, nil
}

// Size implements virtual.Store: the claimable messages of queue (an
// expired claim counts: any consumer may take it). It reads the queue's
// documents: its cost grows with the queue.
func (s *Store) Size(ctx context.Context, queue string) (int, error) {
	if s.closed.Load() {
		return 0, errStoreClosed
	}
	dels, err := s.readyDeletions(ctx, queue)
	return len(dels), err
}

// Delete implements virtual.Store: the queue's record and its ready
// messages go.
func (s *Store) Delete(ctx context.Context, queue string) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	if _, err := s.Purge(ctx, queue); err != nil {
		return err
	}
	return s.deleteDoc(ctx, "delete queue", queueDocID(queue))
}

// currentRev reads a document's revision with a GET. kivik's GetRev
// (HEAD) reads the ETag, which pouchdb-server makes a weak hash of the
// body instead of the revision.
func (s *Store) currentRev(ctx context.Context, id string) (string, error) {
	var d struct {
		Rev string `json:"_rev"`
	}
	err := s.db.Get(ctx, id).ScanDoc(&d)
	return d.Rev, err
}

// deleteDoc deletes a document whatever its revision; a missing one is
// fine.
func (s *Store) deleteDoc(ctx context.Context, op, id string) error {
	for attempt := 0; ; attempt++ {
		rev, err := s.currentRev(ctx, id)
		if isNotFound(err) {
			return nil
		}
		if err != nil {
			return wrap(ctx, op, err)
		}
		_, err = s.db.Delete(ctx, id, rev)
		if err == nil || isNotFound(err) {
			return nil
		}
		if !isConflict(err) || attempt == 3 {
			return wrap(ctx, op, err)
		}
	}
}

// createDoc writes a document that has no variable content (a queue
// record, a binding): one that exists already is fine.
func (s *Store) createDoc(ctx context.Context, op, id string, doc any) error {
	_, err := s.db.Put(ctx, id, doc)
	if err != nil && !isConflict(err) {
		return wrap(ctx, op, err)
	}
	return nil
}

// DeclareQueue implements virtual.QueueStore: a queue record, so that every
// connection sees the queue exists.
func (s *Store) DeclareQueue(ctx context.Context, q driver.Queue) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	return s.createDoc(ctx, "declare queue", queueDocID(q.Name), queueDoc{ID: queueDocID(q.Name), Kind: kindQueue, Queue: q.Name})
}

// QueueExists implements virtual.QueueStore: the queue record is there.
func (s *Store) QueueExists(ctx context.Context, name string, _ []virtual.StoredBinding) (bool, error) {
	if s.closed.Load() {
		return false, errStoreClosed
	}
	_, err := s.currentRev(ctx, queueDocID(name))
	if isNotFound(err) {
		return false, nil
	}
	return err == nil, wrap(ctx, "queue exists", err)
}

// AddBinding implements virtual.BindingStore: one document per binding.
func (s *Store) AddBinding(ctx context.Context, b virtual.StoredBinding) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	id := bindingDocID(b.Exchange, b.RoutingKey, b.Pattern, b.Queue)
	return s.createDoc(ctx, "bind", id, bindingDoc{ID: id, Kind: kindBinding, Exchange: b.Exchange,
		RoutingKey: b.RoutingKey, Pattern: b.Pattern, Queue: b.Queue})
}

// RemoveBinding implements virtual.BindingStore.
func (s *Store) RemoveBinding(ctx context.Context, b virtual.StoredBinding) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	return s.deleteDoc(ctx, "unbind", bindingDocID(b.Exchange, b.RoutingKey, b.Pattern, b.Queue))
}

// Bindings implements virtual.BindingStore: the exchange's binding
// documents, one _all_docs range (their ids start with the exchange).
func (s *Store) Bindings(ctx context.Context, exchange string) ([]virtual.StoredBinding, error) {
	return s.readBindings(ctx, bindingIDPrefix(exchange), func(d *bindingDoc) bool { return d.Exchange == exchange })
}

// QueueBindings implements virtual.QueueBindingStore: the _all_docs range
// of every binding document, keeping queue's.
func (s *Store) QueueBindings(ctx context.Context, queue string) ([]virtual.StoredBinding, error) {
	return s.readBindings(ctx, bindingPrefix, func(d *bindingDoc) bool { return d.Queue == queue })
}

// readBindings reads the binding documents whose ids start with prefix
// and keeps those that keep accepts.
func (s *Store) readBindings(ctx context.Context, prefix string, keep func(*bindingDoc) bool) ([]virtual.StoredBinding, error) {
	if s.closed.Load() {
		return nil, errStoreClosed
	}
	rs := s.db.AllDocs(ctx, kivik.Params(map[string]any{
		"include_docs": true,
		"startkey":     prefix,
		"endkey":       prefix + "\ufff0",
	}))
	defer rs.Close()
	var out []virtual.StoredBinding
	for rs.Next() {
		var d bindingDoc
		if err := rs.ScanDoc(&d); err != nil {
			return nil, wrap(ctx, "read bindings", err)
		}
		if d.Kind == kindBinding && keep(&d) {
			out = append(out, virtual.StoredBinding{Exchange: d.Exchange, RoutingKey: d.RoutingKey, Pattern: d.Pattern, Queue: d.Queue})
		}
	}
	return out, wrap(ctx, "read bindings", rs.Err())
}

// Ping implements driver.Pinger.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	_, err := s.db.Stats(ctx)
	return wrap(ctx, "ping", err)
}

// Close implements virtual.Store: it stops the _changes feed and puts the
// messages it still holds back in their queues. It is idempotent.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.hub.close()
	ctx, cancel := context.WithTimeout(context.Background(), closeRestoreTimeout)
	defer cancel()
	errs := []error{s.flushAcks(ctx)}
	s.mu.Lock()
	held := make([]*lease, 0, len(s.held))
	for _, l := range s.held {
		held = append(held, l)
	}
	s.mu.Unlock()
	for _, l := range held {
		if err := s.Requeue(ctx, virtual.Item{Queue: l.queue, Receipt: l}); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, s.client.Close())
	s.http.CloseIdleConnections()
	return errors.Join(errs...)
}

var _ virtual.QueueBindingStore = (*Store)(nil)
