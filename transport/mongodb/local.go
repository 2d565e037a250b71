package mongodb

import (
	"bytes"
	"context"
	"math/rand/v2"
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
// in a way no sort key describes, such as a purge). A candidate list that
// ends before doc gets doc appended, so its consumer takes it without
// reading the queue again; one that ends after it is stale. Waiting
// consumers wake.
func (l *local) put(queue string, doc bson.D) {
	k := keyOfD(doc)
	var raw bson.Raw
	l.mu.Lock()
	for c := range l.lists[queue] {
		c.mu2.Lock()
		switch {
		case doc == nil || !k.ok || !c.complete || !k.after(c.tail):
			c.stale = true
		default:
			if raw == nil {
				raw, _ = bson.Marshal(doc)
			}
			if raw == nil {
				c.stale = true
				break
			}
			c.pending = append(c.pending, raw)
			c.tail = k
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
// whole collection, so one read serves many claims. A message another
// process puts before the list's end (a higher priority) is considered
// after at most this long; one put by this process at once. A consumer
// whose list is empty after reading its whole queue reads again after the
// polling interval instead.
const candidateTTL = time.Second

// candidateBatch is the least number of candidates one read asks for.
const candidateBatch = 64

// candidates is one queue's ready documents in delivery order, as last
// read, minus those tried since, plus those this process put after them.
// mu is held by the claiming consumer; mu2 guards the fields that puts of
// other goroutines touch.
type candidates struct {
	mu   sync.Mutex
	docs []bson.Raw
	at   time.Time

	mu2      sync.Mutex
	stale    bool
	complete bool       // the last read returned the whole queue
	tail     sortKey    // the last document read or appended
	pending  []bson.Raw // put by this process after the read, in order
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

// pop returns the next candidate of queue (nil when it has none), reading
// the queue again when the list is stale, older than candidateTTL, or
// empty (at most once per polling interval when the last read held the
// whole queue); want sizes that read. fresh reports whether it just read.
func (c *candidates) pop(ctx context.Context, s *Store, queue string, want int) (d bson.Raw, fresh bool, err error) {
	c.mu2.Lock()
	stale, complete := c.stale, c.complete
	c.stale = false
	c.docs = append(c.docs, c.pending...)
	c.pending = nil
	c.mu2.Unlock()
	age := time.Since(c.at)
	if stale || age > candidateTTL || len(c.docs) == 0 && (!complete || age > s.opts.PollingInterval) {
		limit := max(want*claimSpread+claimSlack, candidateBatch)
		docs, err := s.findReady(ctx, queue, limit)
		if err != nil {
			return nil, false, err
		}
		c.docs, c.at, fresh = docs, time.Now(), true
		c.mu2.Lock()
		c.complete = len(docs) < limit
		c.tail = sortKey{}
		if len(docs) > 0 {
			c.tail = keyOfRaw(docs[len(docs)-1])
		} else {
			c.tail = sortKey{ok: true, priority: -1} // an empty queue: anything put next comes after
		}
		c.mu2.Unlock()
	}
	if len(c.docs) == 0 {
		return nil, fresh, nil
	}
	d, c.docs = c.docs[0], c.docs[1:]
	return d, fresh, nil
}

// skipAhead drops a random part, up to half, of the list's remaining
// candidates (they stay in the queue for the next read), so that
// consumers sharing a queue spread over it instead of trailing each other.
// A consumer alone on its queue never meets another's lease, so it never
// skips, and takes its queue in order.
func (c *candidates) skipAhead() {
	if n := len(c.docs) / 2; n > 0 {
		c.docs = c.docs[rand.IntN(n+1):]
		c.mu2.Lock()
		c.complete = false // what was skipped must be read again
		c.mu2.Unlock()
	}
}
