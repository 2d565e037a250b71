package mongodb

import (
	"context"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kombu-go/kombu/virtual"
)

// Fanout follows Python kombu: a fanout publish is one document
// {payload, queue: EXCHANGE} in the broadcast capped collection, and every
// queue bound to the exchange reads it with a tailable cursor of its own,
// opened at bind time after the documents already there. Copies are held
// by this process only: a queue whose consumer is away misses them (no
// Features.DurableFanout), as in Python kombu.

// fanout holds the tailable cursors of one store, per queue and exchange.
type fanout struct {
	s *Store

	mu    sync.Mutex
	tails map[string]map[string]*tail // queue -> exchange -> cursor
}

// tail is one queue's read position on one exchange's broadcasts.
type tail struct {
	exchange string
	cur      *mongo.Cursor // nil: reopen after last
	last     bson.RawValue // _id of the last document read (zero: none yet)
}

func newFanout(s *Store) *fanout { return &fanout{s: s, tails: map[string]map[string]*tail{}} }

// PutFanout implements virtual.Fanouter: one insert into the broadcast
// collection, whatever the number of bound queues.
func (s *Store) PutFanout(ctx context.Context, exchange, _ string, env *virtual.Envelope) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	payload, err := env.Marshal()
	if err != nil {
		return err
	}
	d := bson.D{{Key: fID, Value: bson.NewObjectID()}, {Key: fPayload, Value: string(payload)}, {Key: fQueue, Value: exchange}}
	if _, err := s.broadcast.InsertOne(ctx, d); err != nil {
		return s.wrapWrite(ctx, "insert broadcast", err)
	}
	s.loc.put("", nil) // wakes waiting consumers
	return nil
}

// BindFanout implements virtual.Fanouter: queue starts reading exchange's
// broadcasts from now on.
func (s *Store) BindFanout(ctx context.Context, exchange, _ string, queue string) error {
	return s.fan.bind(ctx, exchange, queue)
}

// UnbindFanout implements virtual.Fanouter.
func (s *Store) UnbindFanout(_ context.Context, exchange, _ string, queue string) error {
	s.fan.unbind(exchange, queue)
	return nil
}

func (f *fanout) bind(ctx context.Context, exchange, queue string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.tails[queue][exchange]; ok {
		return nil
	}
	t := &tail{exchange: exchange}
	if err := f.open(ctx, t); err != nil {
		return err
	}
	// Skip what is already there, as Python kombu's cursor does.
	for t.cur.TryNext(ctx) {
		t.last = t.cur.Current.Lookup(fID)
	}
	if err := t.cur.Err(); err != nil {
		_ = t.cur.Close(context.WithoutCancel(ctx))
		return f.s.wrap(ctx, "tail broadcast", err)
	}
	if f.tails[queue] == nil {
		f.tails[queue] = map[string]*tail{}
	}
	f.tails[queue][exchange] = t
	return nil
}

// open opens t's tailable cursor after t.last. FerretDB serves tailable
// cursors on capped collections only with a batch size of 1.
func (f *fanout) open(ctx context.Context, t *tail) error {
	filter := bson.D{{Key: fQueue, Value: t.exchange}}
	if !t.last.IsZero() {
		filter = append(filter, bson.E{Key: fID, Value: bson.D{{Key: "$gt", Value: t.last}}})
	}
	cur, err := f.s.broadcast.Find(ctx, filter, options.Find().SetCursorType(options.Tailable).SetBatchSize(1))
	if err != nil {
		return f.s.wrap(ctx, "tail broadcast", err)
	}
	t.cur = cur
	return nil
}

func (f *fanout) unbind(exchange, queue string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t, ok := f.tails[queue][exchange]; ok {
		t.close()
		delete(f.tails[queue], exchange)
		if len(f.tails[queue]) == 0 {
			delete(f.tails, queue)
		}
	}
}

func (t *tail) close() {
	if t.cur != nil {
		_ = t.cur.Close(context.Background())
		t.cur = nil
	}
}

// take reads up to max broadcasts for queue.
func (f *fanout) take(ctx context.Context, queue string, max int) ([]virtual.Item, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var items []virtual.Item
	for _, t := range f.tails[queue] {
		for len(items) < max {
			d, err := f.next(ctx, t)
			if err != nil {
				return items, err
			}
			if d == nil {
				break
			}
			items = append(items, itemOf(queue, d, true))
		}
	}
	return items, nil
}

// next returns t's next document, or nil when there is none yet. A cursor
// the server closed (id 0, or not found) is opened again after the last
// document read.
func (f *fanout) next(ctx context.Context, t *tail) (bson.Raw, error) {
	for attempt := 0; attempt < 2; attempt++ {
		if t.cur == nil {
			if err := f.open(ctx, t); err != nil {
				return nil, err
			}
		}
		if t.cur.TryNext(ctx) {
			d := append(bson.Raw(nil), t.cur.Current...)
			t.last = d.Lookup(fID)
			return d, nil
		}
		err := t.cur.Err()
		if err == nil && t.cur.ID() != 0 {
			return nil, nil
		}
		t.close()
		if err != nil && !isCode(err, codeCursorNotFound) {
			return nil, f.s.wrap(ctx, "tail broadcast", err)
		}
	}
	return nil, nil
}

// purge skips every broadcast waiting for queue and returns how many.
func (f *fanout) purge(queue string) int {
	n := 0
	for {
		items, err := f.take(context.Background(), queue, 100)
		n += len(items)
		if err != nil || len(items) == 0 {
			return n
		}
	}
}

// size counts the broadcasts waiting for queue.
func (f *fanout) size(queue string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, t := range f.tails[queue] {
		filter := bson.D{{Key: fQueue, Value: t.exchange}}
		if !t.last.IsZero() {
			filter = append(filter, bson.E{Key: fID, Value: bson.D{{Key: "$gt", Value: t.last}}})
		}
		c, err := f.s.broadcast.CountDocuments(context.Background(), filter)
		if err == nil {
			n += int(c)
		}
	}
	return n
}

// forgetQueue closes the cursors of a deleted queue.
func (f *fanout) forgetQueue(queue string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.tails[queue] {
		t.close()
	}
	delete(f.tails, queue)
}

func (f *fanout) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for q, ts := range f.tails {
		for _, t := range ts {
			t.close()
		}
		delete(f.tails, q)
	}
}
