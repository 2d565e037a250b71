package memory

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

var (
	brokersMu sync.Mutex
	brokers   = map[string]*broker{}
)

func brokerNamed(name string) *broker {
	brokersMu.Lock()
	defer brokersMu.Unlock()
	b, ok := brokers[name]
	if !ok {
		b = &broker{queues: map[string]*queue{}, state: virtual.NewState()}
		brokers[name] = b
	}
	return b
}

type broker struct {
	mu     sync.Mutex
	queues map[string]*queue
	state  *virtual.State
}

// queue holds one FIFO per priority level and the goroutines waiting on it.
type queue struct {
	levels  [10]fifo
	mask    uint16 // bit p set when levels[p] is not empty
	n       int
	waiters []chan struct{}
}

type fifo struct {
	buf  []*virtual.Envelope
	head int
}

func (f *fifo) push(e *virtual.Envelope) { f.buf = append(f.buf, e) }

func (f *fifo) pop() *virtual.Envelope {
	e := f.buf[f.head]
	f.buf[f.head] = nil
	f.head++
	switch {
	case f.head == len(f.buf):
		f.buf, f.head = f.buf[:0], 0
	case f.head > 1024 && f.head*2 > len(f.buf):
		n := copy(f.buf, f.buf[f.head:])
		clear(f.buf[n:])
		f.buf, f.head = f.buf[:n], 0
	}
	return e
}

func (q *queue) push(e *virtual.Envelope) {
	p := e.Properties.Priority
	if p > 9 {
		p = 9
	}
	q.levels[p].push(e)
	q.mask |= 1 << p
	q.n++
	for _, w := range q.waiters {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

func (q *queue) pop() *virtual.Envelope {
	for p := 9; p >= 0; p-- {
		if q.mask&(1<<p) == 0 {
			continue
		}
		l := &q.levels[p]
		e := l.pop()
		if len(l.buf) == 0 {
			q.mask &^= 1 << p
		}
		q.n--
		return e
	}
	return nil
}

// Store is the memory virtual.Store: one per connection, over a shared broker.
type Store struct {
	b      *broker
	closed atomic.Bool
}

var _ interface {
	virtual.Store
	virtual.BatchPutter
	virtual.BatchGetter
	virtual.SharedStateStore
} = (*Store)(nil)

// SharedState implements virtual.SharedStateStore.
func (s *Store) SharedState() *virtual.State { return s.b.state }

func (s *Store) queueLocked(name string) *queue {
	q, ok := s.b.queues[name]
	if !ok {
		q = &queue{}
		s.b.queues[name] = q
	}
	return q
}

// Put implements virtual.Store.
func (s *Store) Put(ctx context.Context, name string, env *virtual.Envelope) error {
	if s.closed.Load() {
		return driver.ErrClosed
	}
	s.b.mu.Lock()
	s.queueLocked(name).push(env)
	s.b.mu.Unlock()
	return nil
}

// PutBatch implements virtual.BatchPutter under one lock.
func (s *Store) PutBatch(ctx context.Context, batch []virtual.QueuedEnvelope) error {
	if s.closed.Load() {
		return driver.ErrClosed
	}
	s.b.mu.Lock()
	for _, qe := range batch {
		s.queueLocked(qe.Queue).push(qe.Envelope)
	}
	s.b.mu.Unlock()
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

// GetBatch implements virtual.BatchGetter, taking messages round-robin
// across queues.
func (s *Store) GetBatch(ctx context.Context, queues []string, max int, wait time.Duration) ([]virtual.Item, error) {
	var deadline time.Time
	var items []virtual.Item
	for {
		if s.closed.Load() {
			return nil, driver.ErrClosed
		}
		s.b.mu.Lock()
		for more := true; more && len(items) < max; {
			more = false
			for _, name := range queues {
				q := s.b.queues[name]
				if q == nil || q.n == 0 {
					continue
				}
				items = append(items, virtual.Item{Queue: name, Envelope: q.pop()})
				more = true
				if len(items) == max {
					break
				}
			}
		}
		if len(items) > 0 || wait <= 0 {
			s.b.mu.Unlock()
			if len(items) == 0 {
				return nil, driver.ErrEmpty
			}
			return items, nil
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(wait)
		}
		w := make(chan struct{}, 1)
		for _, name := range queues {
			q := s.queueLocked(name)
			q.waiters = append(q.waiters, w)
		}
		s.b.mu.Unlock()
		err := sleep(ctx, w, time.Until(deadline))
		s.b.mu.Lock()
		for _, name := range queues {
			if q := s.b.queues[name]; q != nil {
				q.waiters = removeWaiter(q.waiters, w)
			}
		}
		s.b.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if !time.Now().Before(deadline) {
			wait = 0 // one last look, then report empty
		}
	}
}

func sleep(ctx context.Context, w chan struct{}, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w:
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

func removeWaiter(ws []chan struct{}, w chan struct{}) []chan struct{} {
	for i, x := range ws {
		if x == w {
			ws[i] = ws[len(ws)-1]
			ws[len(ws)-1] = nil
			return ws[:len(ws)-1]
		}
	}
	return ws
}

// Purge implements virtual.Store.
func (s *Store) Purge(ctx context.Context, name string) (int, error) {
	if s.closed.Load() {
		return 0, driver.ErrClosed
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	q := s.b.queues[name]
	if q == nil {
		return 0, nil
	}
	n := q.n
	q.levels, q.mask, q.n = [10]fifo{}, 0, 0
	return n, nil
}

// Size implements virtual.Store.
func (s *Store) Size(ctx context.Context, name string) (int, error) {
	if s.closed.Load() {
		return 0, driver.ErrClosed
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if q := s.b.queues[name]; q != nil {
		return q.n, nil
	}
	return 0, nil
}

// Delete implements virtual.Store.
func (s *Store) Delete(ctx context.Context, name string) error {
	if s.closed.Load() {
		return driver.ErrClosed
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if q := s.b.queues[name]; q != nil && len(q.waiters) == 0 {
		delete(s.b.queues, name)
	} else if q != nil {
		q.levels, q.mask, q.n = [10]fifo{}, 0, 0
	}
	return nil
}

// Close implements virtual.Store; the broker and its queues live on.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}
