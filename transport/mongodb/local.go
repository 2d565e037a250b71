package mongodb

import (
	"bytes"
	"context"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// local is what the stores of one process share about one messages
// collection (same server, database and collection): a wake-up for
// blocked consumers when a message is put, and the candidate lists to
// mark stale when a put sorts before their end.
type local struct {
	mu    sync.Mutex
	wake  chan struct{}
	lists map[string]map[*candidates]struct{} // queue -> its candidate lists in this process
}

var locals sync.Map // key -> *local

func localFor(key string) *local {
	l, _ := locals.LoadOrStore(key, &local{wake: make(chan struct{}), lists: map[string]map[*candidates]struct{}{}})
	return l.(*local)
}

// wait returns a channel closed at the next put.
func (l *local) wait() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wake
}

// put records that doc was put into queue (nil: something changed queue
// in a way no sort key describes, such as a purge): candidate lists that
// end after it are stale. Waiting consumers wake.
func (l *local) put(queue string, doc bson.D) {
	k := keyOfD(doc)
	l.mu.Lock()
	for c := range l.lists[queue] {
		c.mu2.Lock()
		if doc == nil || !k.after(c.tail) {
			c.stale = true
		}
		c.mu2.Unlock()
	}
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
}

func (l *local) register(queue string, c *candidates) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lists[queue] == nil {
		l.lists[queue] = map[*candidates]struct{}{}
	}
	l.lists[queue][c] = struct{}{}
}

func (l *local) unregister(queue string, c *candidates) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.lists[queue], c)
	if len(l.lists[queue]) == 0 {
		delete(l.lists, queue)
	}
}

// sortKey is a ready document's place in its queue: priority, then _id.
// ok is false for an _id that is not an ObjectID (compared as unknown).
type sortKey struct {
	priority int32
	id       bson.ObjectID
	ok       bool
}

func keyOfD(d bson.D) sortKey {
	var k sortKey
	var hasPrio bool
	for _, e := range d {
		switch e.Key {
		case fPriority:
			k.priority, hasPrio = e.Value.(int32)
		case fID:
			k.id, k.ok = e.Value.(bson.ObjectID)
		}
	}
	k.ok = k.ok && hasPrio
	return k
}

func keyOfRaw(d bson.Raw) sortKey {
	var k sortKey
	p, okP := d.Lookup(fPriority).Int32OK()
	id, okID := d.Lookup(fID).ObjectIDOK()
	k.priority, k.id, k.ok = p, id, okP && okID
	return k
}

// after reports whether k surely sorts after end.
func (k sortKey) after(end sortKey) bool {
	if !k.ok || !end.ok {
		return false
	}
	if k.priority != end.priority {
		return k.priority > end.priority
	}
	return bytes.Compare(k.id[:], end.id[:]) > 0
}

// candidateTTL bounds how long a consumer works through one sorted read of
// a queue before reading it again: on FerretDB a sorted find reads the
// whole collection, so one read serves several claims. A message that
// another process puts meanwhile before the list's end is considered after
// at most this long; one put by this process at once.
const candidateTTL = 100 * time.Millisecond

// candidateBatch is the least number of candidates one read asks for.
const candidateBatch = 64

// candidates is one queue's ready documents in delivery order, as last
// read, minus those tried since. mu is held by the claiming consumer;
// mu2 guards stale and tail, which puts of other goroutines touch.
type candidates struct {
	mu   sync.Mutex
	docs []bson.Raw
	at   time.Time

	mu2   sync.Mutex
	stale bool
	tail  sortKey // the last document read
}

func (s *Store) candidatesOf(queue string) *candidates {
	s.candMu.Lock()
	defer s.candMu.Unlock()
	c := s.cands[queue]
	if c == nil {
		c = &candidates{}
		s.cands[queue] = c
		s.loc.register(queue, c)
	}
	return c
}

// forgetCandidates drops the store's candidate lists (on Close).
func (s *Store) forgetCandidates() {
	s.candMu.Lock()
	defer s.candMu.Unlock()
	for q, c := range s.cands {
		s.loc.unregister(q, c)
		delete(s.cands, q)
	}
}

// next returns up to n candidates of queue, reading the queue again when
// the list is used up, old or stale. fresh reports whether they were just
// read.
func (c *candidates) next(ctx context.Context, s *Store, queue string, n int) (docs []bson.Raw, fresh bool, err error) {
	c.mu2.Lock()
	stale := c.stale
	c.stale = false
	c.mu2.Unlock()
	if len(c.docs) == 0 || stale || time.Since(c.at) > candidateTTL {
		c.docs, err = s.findReady(ctx, queue, max(n*claimSpread+claimSlack, candidateBatch))
		if err != nil {
			return nil, false, err
		}
		c.at, fresh = time.Now(), true
		c.mu2.Lock()
		c.tail = sortKey{}
		if len(c.docs) > 0 {
			c.tail = keyOfRaw(c.docs[len(c.docs)-1])
		}
		c.mu2.Unlock()
	}
	k := min(n, len(c.docs))
	docs, c.docs = c.docs[:k:k], c.docs[k:]
	return docs, fresh, nil
}
