package couchdb

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-kivik/kivik/v4"
)

// changesRequestTimeout bounds one longpoll request of the _changes feed.
// pouchdb-server ignores the feed's own timeout parameter and holds the
// request until a change comes, so the client gives up and asks again.
const changesRequestTimeout = 50 * time.Second

// feedRetryDelay is the pause before the feed is asked again after an
// error (server restarting); waiting consumers poll meanwhile.
const feedRetryDelay = time.Second

// hub follows the database's _changes feed (longpoll in a loop: the
// continuous feed delivered nothing through kivik on pouchdb-server) and
// wakes the consumers waiting on the queues whose messages changed. It
// starts with the first consumer that waits, so producers never hold a
// feed request open.
type hub struct {
	db *kivik.DB

	mu      sync.Mutex
	started bool
	closed  bool
	waiters map[string]map[chan struct{}]struct{}
	nwait   int           // registered waiters
	wanted  chan struct{} // signalled when the first waiter registers
	cancel  context.CancelFunc
	done    chan struct{}
}

func newHub(db *kivik.DB) *hub {
	return &hub{db: db, waiters: map[string]map[chan struct{}]struct{}{}, wanted: make(chan struct{}, 1)}
}

// start launches the feed from the database's current sequence, unless it
// runs already. A change committed after start returns wakes the waiters
// registered for its queue.
func (h *hub) start(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started || h.closed {
		return nil
	}
	st, err := h.db.Stats(ctx)
	if err != nil {
		return err
	}
	fctx, cancel := context.WithCancel(context.Background())
	h.started, h.cancel, h.done = true, cancel, make(chan struct{})
	go h.follow(fctx, st.UpdateSeq)
	return nil
}

func (h *hub) follow(ctx context.Context, since string) {
	defer close(h.done)
	for ctx.Err() == nil {
		// Only ask while someone waits: every write to the database ends
		// a longpoll, and busy consumers do not need to hear of it. The
		// sequence stays put, so the next poll reports what came meanwhile.
		h.mu.Lock()
		idle := h.nwait == 0
		h.mu.Unlock()
		if idle {
			select {
			case <-ctx.Done():
				return
			case <-h.wanted:
			}
			continue
		}
		next, err := h.poll(ctx, since)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(feedRetryDelay):
			}
			continue
		}
		since = next
	}
}

// poll runs one longpoll request and wakes the queues it reports. It
// returns the sequence to go on from.
func (h *hub) poll(ctx context.Context, since string) (string, error) {
	rctx, cancel := context.WithTimeout(ctx, changesRequestTimeout)
	defer cancel()
	ch := h.db.Changes(rctx, kivik.Param("feed", "longpoll"), kivik.Param("since", since))
	defer ch.Close()
	for ch.Next() {
		if q, ok := queueOfMessageID(ch.ID()); ok {
			h.notify(q)
		}
	}
	if err := ch.Err(); err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return since, nil // the server held the request: ask again
		}
		return since, err
	}
	meta, err := ch.Metadata()
	if err != nil || meta.LastSeq == "" {
		return since, err
	}
	return meta.LastSeq, nil
}

// register returns a channel that receives once a message of one of
// queues changes; unregister must follow.
func (h *hub) register(queues []string) chan struct{} {
	w := make(chan struct{}, 1)
	h.mu.Lock()
	h.nwait++
	if h.nwait == 1 {
		select {
		case h.wanted <- struct{}{}:
		default:
		}
	}
	for _, q := range queues {
		set := h.waiters[q]
		if set == nil {
			set = map[chan struct{}]struct{}{}
			h.waiters[q] = set
		}
		set[w] = struct{}{}
	}
	h.mu.Unlock()
	return w
}

func (h *hub) unregister(w chan struct{}, queues []string) {
	h.mu.Lock()
	h.nwait--
	for _, q := range queues {
		if set := h.waiters[q]; set != nil {
			delete(set, w)
			if len(set) == 0 {
				delete(h.waiters, q)
			}
		}
	}
	h.mu.Unlock()
}

// notify wakes the waiters of queue: called for the feed's changes and,
// without waiting for the feed, for this store's own writes.
func (h *hub) notify(queue string) {
	h.mu.Lock()
	for w := range h.waiters[queue] {
		select {
		case w <- struct{}{}:
		default:
		}
	}
	h.mu.Unlock()
}

// close stops the feed and waits for its goroutine.
func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	cancel, done := h.cancel, h.done
	h.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
