package mongodb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

// Document fields. messages documents are Python kombu's: {_id, queue,
// payload, priority, [expire_at]}; a leased copy in the unacked
// collection adds lease_until.
const (
	fID         = "_id"
	fQueue      = "queue"
	fPayload    = "payload"
	fPriority   = "priority"
	fExpireAt   = "expire_at"
	fLeaseUntil = "lease_until"
	fLeaseToken = "lease_token"
)

// sweepEvery is how often a consumer looks for expired leases.
const sweepEvery = time.Second

// A claim reads claimSpread times the wanted count of candidates, plus
// claimSlack, so that consumers racing for the head of a queue find
// others after the ones their rivals lease.
const (
	claimSpread = 3
	claimSlack  = 4
)

// claimBudget is how long one claim goes on taking messages once it has
// some: each takes two writes, which a busy FerretDB serializes, and
// messages held in a claim are not delivered yet.
const claimBudget = 100 * time.Millisecond

var errStoreClosed = fmt.Errorf("%w: mongodb store", driver.ErrClosed)

// Store is the MongoDB virtual.Store. It is safe for concurrent use.
//
// A message moves between two collections and keeps its _id: ready in
// messages (where Python kombu reads it), leased in the unacked collection
// while a consumer holds it. Each move inserts the document at its
// destination first and then deletes it at its source. The insert is the
// claim: _id is unique, so of several consumers racing for one message
// exactly one insert succeeds, on MongoDB and on FerretDB, whose
// findAndModify and conditional updates are not atomic. A crash between
// the two steps leaves the message in both collections, never in none.
type Store struct {
	opts   *Options
	client *mongo.Client
	db     *mongo.Database

	messages, routing, queues, unacked, quarantine, broadcast *mongo.Collection

	closed    atomic.Bool
	lastSweep atomic.Int64  // unix nanoseconds
	loc       *local        // shared with the process's other stores on the same collection
	done      chan struct{} // closed by Close

	candMu sync.Mutex
	cands  map[string]*candidates
	fan    *fanout
}

// receipt is an Item's virtual.Item.Receipt: the ready document as it
// was claimed, enough to put it back without reading it again.
type receipt struct {
	id        bson.RawValue
	queue     string
	doc       bson.Raw // the messages document as claimed
	token     string   // the lease's lease_token: a late ack must not delete a later consumer's lease
	broadcast bool     // a fanout copy, never stored in messages
}

// Dial connects to the server and prepares the collections and indexes.
// Errors reaching the server wrap driver.ErrConnectionLost.
func (c *Connector) Dial(ctx context.Context) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o := c.opts
	co := options.Client().ApplyURI(o.URI).SetAppName("kombu-go")
	if o.TLS != nil {
		co.SetTLSConfig(o.TLS)
	}
	if o.Monitor != nil {
		co.SetMonitor(o.Monitor)
	}
	if o.ConnectTimeout > 0 {
		co.SetConnectTimeout(o.ConnectTimeout).SetServerSelectionTimeout(o.ConnectTimeout)
	}
	client, err := mongo.Connect(co)
	if err != nil {
		return nil, fmt.Errorf("%w: mongodb: %v", driver.ErrInvalidURL, err)
	}
	s := &Store{opts: o, client: client, db: client.Database(o.Database)}
	s.messages = s.db.Collection(o.MessagesCollection)
	s.routing = s.db.Collection(o.RoutingCollection)
	s.queues = s.db.Collection(o.QueuesCollection)
	s.unacked = s.db.Collection(o.UnackedCollection)
	s.quarantine = s.db.Collection(o.QuarantineCollection)
	s.broadcast = s.db.Collection(o.BroadcastCollection)
	s.loc = localFor(o.URI + "\x00" + o.Database + "\x00" + o.MessagesCollection)
	s.done = make(chan struct{})
	s.cands = map[string]*candidates{}
	s.fan = newFanout(s)
	if err := s.prepare(ctx); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	return s, nil
}

// prepare creates the broadcast capped collection and the indexes Python
// kombu creates, plus the lease index.
func (s *Store) prepare(ctx context.Context) error {
	if err := s.client.Ping(ctx, nil); err != nil {
		return s.wrap(ctx, "ping", err)
	}
	err := s.db.CreateCollection(ctx, s.opts.BroadcastCollection,
		options.CreateCollection().SetCapped(true).SetSizeInBytes(int64(s.opts.CappedQueueSize)))
	if err != nil && !isCode(err, codeNamespaceExists) {
		return s.wrap(ctx, "create "+s.opts.BroadcastCollection, err)
	}
	indexes := []struct {
		c    *mongo.Collection
		keys bson.D
	}{
		{s.messages, bson.D{{Key: fQueue, Value: 1}, {Key: fPriority, Value: 1}, {Key: fID, Value: 1}}},
		{s.broadcast, bson.D{{Key: fQueue, Value: 1}}},
		{s.routing, bson.D{{Key: fQueue, Value: 1}, {Key: "exchange", Value: 1}}},
		{s.unacked, bson.D{{Key: fLeaseUntil, Value: 1}}},
	}
	for _, ix := range indexes {
		if _, err := ix.c.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: ix.keys}); err != nil {
			return s.wrap(ctx, "create index on "+ix.c.Name(), err)
		}
	}
	if s.opts.TTL {
		s.createTTLIndexes(ctx)
	}
	return nil
}

// createTTLIndexes asks for Python kombu's TTL indexes. A server without
// them (FerretDB answers NotImplemented) is fine: consumers drop expired
// messages themselves, and only the server-side cleanup of messages
// nobody reads is lost.
func (s *Store) createTTLIndexes(ctx context.Context) {
	for _, c := range []*mongo.Collection{s.messages, s.routing, s.queues} {
		_, _ = c.Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys:    bson.D{{Key: fExpireAt, Value: 1}},
			Options: options.Index().SetExpireAfterSeconds(0),
		})
	}
}

// Close disconnects. It is idempotent.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.fan.close()
	s.forgetCandidates()
	close(s.done)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.client.Disconnect(ctx)
}

// As offers the MongoDB driver beneath the Store (the one behind every
// kombu.Connection and kombu.Channel on mongodb://): target may be a
// **mongo.Client or a **mongo.Database (the database holding kombu's
// collections). They belong to the Store: do not disconnect the client.
func (s *Store) As(target any) bool {
	switch p := target.(type) {
	case **mongo.Client:
		*p = s.client
	case **mongo.Database:
		*p = s.db
	default:
		return false
	}
	return true
}

// readyDoc is the messages document of env for queue, as Python kombu
// writes it.
func (s *Store) readyDoc(queue string, env *virtual.Envelope) (bson.D, error) {
	payload := env.Raw
	if payload == nil {
		var err error
		if payload, err = env.Marshal(); err != nil {
			return nil, fmt.Errorf("%w: %w", driver.ErrInvalidArgument, err)
		}
	}
	d := bson.D{
		{Key: fID, Value: bson.NewObjectID()},
		{Key: fQueue, Value: queue},
		{Key: fPayload, Value: string(payload)},
		{Key: fPriority, Value: 9 - int32(min(env.Properties.Priority, 9))},
	}
	if !env.ExpiresAt.IsZero() {
		d = append(d, bson.E{Key: fExpireAt, Value: env.ExpiresAt.UTC()})
	}
	return d, nil
}

// Put implements virtual.Store: one insert into messages.
func (s *Store) Put(ctx context.Context, queue string, env *virtual.Envelope) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	d, err := s.readyDoc(queue, env)
	if err != nil {
		return err
	}
	if _, err := s.messages.InsertOne(ctx, d); err != nil {
		return s.wrapWrite(ctx, "insert", err)
	}
	s.loc.put(queue, d)
	return nil
}

// PutBatch implements virtual.BatchPutter: one ordered insertMany, so a
// failure leaves a prefix of the batch stored.
func (s *Store) PutBatch(ctx context.Context, batch []virtual.QueuedEnvelope) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	docs := make([]any, len(batch))
	for i, qe := range batch {
		d, err := s.readyDoc(qe.Queue, qe.Envelope)
		if err != nil {
			return &driver.BatchError{Published: 0, Err: err}
		}
		docs[i] = d
	}
	res, err := s.messages.InsertMany(ctx, docs, options.InsertMany().SetOrdered(true))
	if err != nil {
		n := 0
		if res != nil {
			n = len(res.InsertedIDs)
		}
		return &driver.BatchError{Published: n, Err: s.wrapWrite(ctx, "insertMany", err)}
	}
	for i, qe := range batch {
		s.loc.put(qe.Queue, docs[i].(bson.D))
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

// GetBatch implements virtual.BatchGetter: it claims up to max messages
// from the first of queues that has any, polling until wait has passed.
func (s *Store) GetBatch(ctx context.Context, queues []string, max int, wait time.Duration) ([]virtual.Item, error) {
	if max < 1 {
		max = 1
	}
	deadline := time.Now().Add(wait)
	pause := time.Millisecond
	for {
		if s.closed.Load() {
			return nil, errStoreClosed
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		woken := s.loc.wait()
		s.sweepIfDue(ctx)
		for _, q := range queues {
			items, err := s.take(ctx, q, max)
			if err != nil || len(items) > 0 {
				return items, err
			}
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, driver.ErrEmpty
		}
		t := time.NewTimer(min(pause, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-s.done:
		case <-woken:
			pause = time.Millisecond
		case <-t.C:
			pause = min(pause*2, s.opts.PollingInterval)
		}
		t.Stop()
	}
}

// take claims up to max messages of queue: fanout copies first, then
// messages.
func (s *Store) take(ctx context.Context, queue string, max int) ([]virtual.Item, error) {
	items, err := s.fan.take(ctx, queue, max)
	if err != nil || len(items) > 0 {
		return items, err
	}
	return s.claim(ctx, queue, max)
}

// claim moves up to max messages of queue from messages to the unacked
// collection: take candidates in priority order, insert a lease for each
// (a duplicate _id: another consumer has it), delete its ready copy.
//
// Only a lease whose ready copy this consumer deleted is a delivery: a
// candidate read before another consumer took and acked it gets a lease
// too (the other lease is gone), and its ready copy is already gone. Every
// step names one _id, the only filter FerretDB runs without a scan.
func (s *Store) claim(ctx context.Context, queue string, max int) ([]virtual.Item, error) {
	c := s.candidatesOf(queue)
	c.mu.Lock()
	defer c.mu.Unlock()
	// Taking changes the server's state: finish it even if ctx ends, so
	// no lease is left without its delivery.
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	until := time.Now().Add(s.opts.VisibilityTimeout).UTC()
	token := virtual.NewDeliveryTag()
	var won []bson.Raw
	read := false // whether this claim read the queue
	started := time.Now()
	for len(won) < max {
		if read && len(c.docs) == 0 {
			break // all the queue had when it was read
		}
		if len(won) > 0 && time.Since(started) > claimBudget {
			break // deliver these now; their handlers can run while the next claim goes on
		}
		d, fresh, err := c.pop(ctx, s, queue, max-len(won))
		if err != nil {
			return s.give(queue, won, token), err
		}
		read = read || fresh
		if d == nil {
			break
		}
		ok, held, err := s.claimOne(tctx, d, until, token)
		if err != nil {
			return s.give(queue, won, token), s.wrap(ctx, "claim", err)
		}
		if ok {
			won = append(won, d)
		} else if held {
			// Another consumer is working down this list: jump ahead
			// rather than trail it, one duplicate at a time.
			c.skipAhead()
		}
	}
	return s.give(queue, won, token), nil
}

// findReady reads up to n ready documents of queue in delivery order:
// priority, then _id.
func (s *Store) findReady(ctx context.Context, queue string, n int) ([]bson.Raw, error) {
	cur, err := s.messages.Find(ctx, bson.D{{Key: fQueue, Value: queue}}, options.Find().
		SetSort(bson.D{{Key: fPriority, Value: 1}, {Key: fID, Value: 1}}).
		SetLimit(int64(n)))
	if err != nil {
		return nil, s.wrap(ctx, "find", err)
	}
	var docs []bson.Raw
	for cur.Next(ctx) {
		docs = append(docs, append(bson.Raw(nil), cur.Current...))
	}
	err = cur.Err()
	_ = cur.Close(context.WithoutCancel(ctx))
	return docs, s.wrap(ctx, "find", err)
}

// claimOne leases the ready document d: ok reports whether d is now this
// consumer's, held whether another consumer's lease was in the way. One
// document at a time, lease then delete: consumers racing down a
// candidate list meet on one document at a time (a batch insert of leases
// would hold a whole run of them, and FerretDB retries a batch that meets
// a duplicate one document at a time).
func (s *Store) claimOne(ctx context.Context, d bson.Raw, until time.Time, token string) (ok, held bool, err error) {
	if _, err := s.unacked.InsertOne(ctx, leaseDoc(d, until, token)); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return false, true, nil
		}
		return false, false, err
	}
	id := bson.D{{Key: fID, Value: d.Lookup(fID)}}
	res, err := s.messages.DeleteOne(ctx, id)
	if err == nil && res.DeletedCount == 0 {
		// Taken meanwhile (and acked, or by a Python consumer, or purged).
		_, _ = s.unacked.DeleteOne(ctx, append(id, bson.E{Key: fLeaseToken, Value: token}))
		return false, false, nil
	}
	// Deleted, or an error: the lease is ours either way; a ready copy left
	// behind is found ready when the lease ends, by the sweep.
	return true, false, nil
}

// leaseDoc is the unacked copy of the messages document d.
func leaseDoc(d bson.Raw, until time.Time, token string) bson.D {
	out := withoutLease(d, 2)
	return append(out, bson.E{Key: fLeaseUntil, Value: until}, bson.E{Key: fLeaseToken, Value: token})
}

// withoutLease is the elements of d but its lease fields, with room for
// extra more.
func withoutLease(d bson.Raw, extra int) bson.D {
	elems, _ := d.Elements()
	out := make(bson.D, 0, len(elems)+extra)
	for _, e := range elems {
		if k := e.Key(); k != fLeaseUntil && k != fLeaseToken {
			out = append(out, bson.E{Key: k, Value: e.Value()})
		}
	}
	return out
}

// give turns claimed documents into items.
func (s *Store) give(queue string, docs []bson.Raw, token string) []virtual.Item {
	items := make([]virtual.Item, 0, len(docs))
	for _, d := range docs {
		it := itemOf(queue, d, false)
		it.Receipt.(*receipt).token = token
		items = append(items, it)
	}
	return items
}

// itemOf decodes the payload of d. A document that is not a kombu message
// comes back as an undecodable item (its payload string, or the whole
// document as extended JSON), never dropped.
func itemOf(queue string, d bson.Raw, broadcast bool) virtual.Item {
	r := &receipt{id: d.Lookup(fID), queue: queue, doc: d, broadcast: broadcast}
	raw, err := payloadOf(d)
	if err != nil {
		return virtual.UndecodableItem(queue, raw, err, r)
	}
	env, err := virtual.UnmarshalEnvelope(raw)
	if err != nil {
		return virtual.UndecodableItem(queue, raw, err, r)
	}
	if exp, ok := d.Lookup(fExpireAt).TimeOK(); ok && env.ExpiresAt.IsZero() {
		env.ExpiresAt = exp
	}
	return virtual.Item{Queue: queue, Envelope: env, Receipt: r}
}

// payloadOf returns the payload bytes of d (a string, or binary).
func payloadOf(d bson.Raw) ([]byte, error) {
	v, err := d.LookupErr(fPayload)
	if err != nil {
		return []byte(d.String()), errors.New("mongodb: document has no payload field")
	}
	if str, ok := v.StringValueOK(); ok {
		return []byte(str), nil
	}
	if _, data, ok := v.BinaryOK(); ok {
		return data, nil
	}
	return []byte(d.String()), fmt.Errorf("mongodb: payload is a BSON %s, not a string", v.Type)
}

func (s *Store) receiptOf(it virtual.Item) (*receipt, error) {
	r, ok := it.Receipt.(*receipt)
	if !ok || r == nil {
		return nil, fmt.Errorf("%w: item not taken from this store", driver.ErrInvalidArgument)
	}
	return r, nil
}

// Ack implements virtual.Acker: delete the lease. A lease that is gone
// had expired and its message was put back: it will be delivered again.
func (s *Store) Ack(ctx context.Context, it virtual.Item) error {
	r, err := s.receiptOf(it)
	if err != nil || r.broadcast {
		return err
	}
	if _, err := s.unacked.DeleteOne(ctx, r.leaseFilter()); err != nil {
		return s.wrap(ctx, "ack", err)
	}
	return nil
}

// leaseFilter matches r's lease, and not a later one of the same message.
func (r *receipt) leaseFilter() bson.D {
	return bson.D{{Key: fID, Value: r.id}, {Key: fLeaseToken, Value: r.token}}
}

// AckBatch implements virtual.BatchAcker: one deleteMany.
func (s *Store) AckBatch(ctx context.Context, items []virtual.Item) error {
	leases := make(bson.A, 0, len(items))
	for _, it := range items {
		r, err := s.receiptOf(it)
		if err != nil {
			return err
		}
		if !r.broadcast {
			leases = append(leases, r.leaseFilter())
		}
	}
	if len(leases) == 0 {
		return nil
	}
	if _, err := s.unacked.DeleteMany(ctx, bson.D{{Key: "$or", Value: leases}}); err != nil {
		return s.wrap(ctx, "ack", err)
	}
	return nil
}

// Requeue implements virtual.Acker: while this consumer still holds the
// lease, the message goes back to messages with its _id, so it takes its
// old place in its queue (as AMQP requeues), marked redelivered; then the
// lease is deleted.
func (s *Store) Requeue(ctx context.Context, it virtual.Item) error {
	r, err := s.receiptOf(it)
	if err != nil {
		return err
	}
	if r.broadcast {
		// A fanout copy has no place in messages yet: it becomes an
		// ordinary message of its queue.
		env := it.Envelope
		if it.DecodeErr == nil {
			env = env.AsRedelivered()
		}
		d, err := s.readyDoc(r.queue, env)
		if err != nil {
			return err
		}
		if _, err := s.messages.InsertOne(ctx, d); err != nil {
			return s.wrapWrite(ctx, "requeue", err)
		}
		s.loc.put(r.queue, d)
		return nil
	}
	// A lease that is gone (it expired and another consumer has the
	// message now, or the queue was deleted) is not this consumer's to put
	// back: a second ready copy would be delivered twice.
	err = s.unacked.FindOne(ctx, r.leaseFilter(), options.FindOne().SetProjection(bson.D{{Key: fID, Value: 1}})).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil
	}
	if err != nil {
		return s.wrap(ctx, "requeue", err)
	}
	return s.restore(ctx, r.doc, bson.D{{Key: fLeaseToken, Value: r.token}})
}

// restore moves a leased message back to messages: insert (a duplicate
// _id means it is already there) then delete the lease; leaseFilter
// narrows the delete to that lease, not a later one.
func (s *Store) restore(ctx context.Context, doc bson.Raw, leaseFilter bson.D) error {
	ready := readyCopy(doc)
	if _, err := s.messages.InsertOne(ctx, ready); err != nil && !mongo.IsDuplicateKeyError(err) {
		return s.wrap(ctx, "restore", err)
	}
	filter := bson.D{{Key: fID, Value: doc.Lookup(fID)}}
	filter = append(filter, leaseFilter...)
	if _, err := s.unacked.DeleteOne(ctx, filter); err != nil {
		return s.wrap(ctx, "restore", err)
	}
	if q, ok := doc.Lookup(fQueue).StringValueOK(); ok {
		s.loc.put(q, ready)
	}
	return nil
}

// readyCopy is doc without its lease, its payload marked redelivered when
// it is a kombu envelope (Python kombu marks restored messages the same
// way).
func readyCopy(doc bson.Raw) bson.D {
	out := withoutLease(doc, 0)
	for i, e := range out {
		if e.Key != fPayload {
			continue
		}
		if str, ok := e.Value.(bson.RawValue).StringValueOK(); ok {
			if env, err := virtual.UnmarshalEnvelope([]byte(str)); err == nil && !env.Redelivered {
				if b, err := env.AsRedelivered().Marshal(); err == nil {
					out[i].Value = string(b)
				}
			}
		}
	}
	return out
}

// sweepIfDue puts back the messages whose lease expired (their consumer
// died or is too slow), at most once per sweepEvery per store.
func (s *Store) sweepIfDue(ctx context.Context) {
	now := time.Now()
	last := s.lastSweep.Load()
	if now.UnixNano()-last < int64(sweepEvery) || !s.lastSweep.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	_, _ = s.Sweep(ctx)
}

// Sweep puts back every message whose lease has expired and returns how
// many. Consumers call it by themselves about once a second.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	cur, err := s.unacked.Find(ctx, bson.D{{Key: fLeaseUntil, Value: bson.D{{Key: "$lt", Value: time.Now().UTC()}}}},
		options.Find().SetLimit(100))
	if err != nil {
		return 0, s.wrap(ctx, "sweep", err)
	}
	var docs []bson.Raw
	for cur.Next(ctx) {
		docs = append(docs, append(bson.Raw(nil), cur.Current...))
	}
	_ = cur.Close(context.WithoutCancel(ctx))
	n := 0
	for _, d := range docs {
		if err := s.restore(ctx, d, bson.D{{Key: fLeaseToken, Value: d.Lookup(fLeaseToken)}, {Key: fLeaseUntil, Value: d.Lookup(fLeaseUntil)}}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// ExtendLease implements virtual.LeaseExtender: the lease now ends d from
// now. A lease that already expired and was swept is an error.
func (s *Store) ExtendLease(ctx context.Context, it virtual.Item, d time.Duration) error {
	r, err := s.receiptOf(it)
	if err != nil {
		return err
	}
	if r.broadcast {
		return nil // a fanout copy is held in process only
	}
	res, err := s.unacked.UpdateOne(ctx, r.leaseFilter(),
		bson.D{{Key: "$set", Value: bson.D{{Key: fLeaseUntil, Value: time.Now().Add(d).UTC()}}}})
	if err != nil {
		return s.wrap(ctx, "extend lease", err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("%w: the lease of this delivery expired and its message went back to queue %q",
			driver.ErrPreconditionFailed, r.queue)
	}
	return nil
}

// Quarantine implements virtual.Quarantiner: the undecodable document
// moves to the quarantine collection with the reason, out of its queue.
func (s *Store) Quarantine(ctx context.Context, it virtual.Item) error {
	r, err := s.receiptOf(it)
	if err != nil {
		return err
	}
	why := "undecodable"
	if it.DecodeErr != nil {
		why = it.DecodeErr.Error()
	}
	d := append(withoutLease(r.doc, 2), bson.E{Key: "error", Value: why}, bson.E{Key: "quarantined_at", Value: time.Now().UTC()})
	if _, err := s.quarantine.InsertOne(ctx, d); err != nil && !mongo.IsDuplicateKeyError(err) {
		return s.wrap(ctx, "quarantine", err)
	}
	if r.broadcast {
		return nil
	}
	if _, err := s.unacked.DeleteOne(ctx, r.leaseFilter()); err != nil {
		return s.wrap(ctx, "quarantine", err)
	}
	return nil
}

// Purge implements virtual.Store: ready messages only, as AMQP purges.
func (s *Store) Purge(ctx context.Context, queue string) (int, error) {
	if s.closed.Load() {
		return 0, errStoreClosed
	}
	n := s.fan.purge(queue)
	res, err := s.messages.DeleteMany(ctx, bson.D{{Key: fQueue, Value: queue}})
	s.loc.put(queue, nil) // candidate lists of queue are stale
	if err != nil {
		return 0, s.wrap(ctx, "purge", err)
	}
	return n + int(res.DeletedCount), nil
}

// Size implements virtual.Store: a count of the queue's ready messages,
// or 0 with calc_queue_size=false.
func (s *Store) Size(ctx context.Context, queue string) (int, error) {
	if s.closed.Load() {
		return 0, errStoreClosed
	}
	if !s.opts.CalcQueueSize {
		return 0, nil
	}
	n, err := s.messages.CountDocuments(ctx, bson.D{{Key: fQueue, Value: queue}})
	if err != nil {
		return 0, s.wrap(ctx, "count", err)
	}
	return int(n) + s.fan.size(queue), nil
}

// Delete implements virtual.Store: the queue's messages, leases, routing
// rows and declaration go.
func (s *Store) Delete(ctx context.Context, queue string) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	s.fan.forgetQueue(queue)
	defer s.loc.put(queue, nil) // candidate lists of queue are stale
	byQueue := bson.D{{Key: fQueue, Value: queue}}
	for _, c := range []*mongo.Collection{s.routing, s.messages, s.unacked} {
		if _, err := c.DeleteMany(ctx, byQueue); err != nil {
			return s.wrap(ctx, "delete queue", err)
		}
	}
	if _, err := s.queues.DeleteOne(ctx, bson.D{{Key: fID, Value: queue}}); err != nil {
		return s.wrap(ctx, "delete queue", err)
	}
	return nil
}

// Ping implements driver.Pinger.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	return s.wrap(ctx, "ping", s.client.Ping(ctx, nil))
}
