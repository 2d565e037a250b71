package virtual

import (
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/kombu-go/kombu/kombu/driver"
)

// State is the broker state that virtual emulates in process: declared
// exchanges, declared queues, binding tables and consumer counts. Stores
// that implement SharedStateStore share one State between connections;
// otherwise each connection has its own, as in Python kombu.
//
// Binding slices are copy-on-write: a slice returned by bindings is never
// modified, so routing can use it without holding the lock.
type State struct {
	// hasTTLQueues is set once any queue is declared with x-message-ttl,
	// so that publishes skip the per-queue lookup until then.
	hasTTLQueues atomic.Bool

	mu        sync.RWMutex
	exchanges map[string]*exchangeEntry
	queues    map[string]*queueEntry
}

type exchangeEntry struct {
	decl     driver.Exchange
	bindings []driver.Binding // copy-on-write
}

type queueEntry struct {
	decl      driver.Queue
	consumers int
	owner     any // the *Conn that declared an exclusive queue
}

// predeclared are the exchanges every AMQP broker has.
var predeclared = []driver.Exchange{
	{Name: "amq.direct", Type: "direct", Durable: true},
	{Name: "amq.topic", Type: "topic", Durable: true},
	{Name: "amq.fanout", Type: "fanout", Durable: true},
	{Name: "amq.headers", Type: "headers", Durable: true},
	{Name: "amq.match", Type: "headers", Durable: true},
}

// NewState returns a State holding only the predeclared amq.* exchanges.
func NewState() *State {
	s := &State{exchanges: map[string]*exchangeEntry{}, queues: map[string]*queueEntry{}}
	for _, e := range predeclared {
		s.exchanges[e.Name] = &exchangeEntry{decl: e}
	}
	return s
}

func (s *State) declareExchange(e driver.Exchange) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.exchanges[e.Name]
	if e.Passive {
		if !ok {
			return fmt.Errorf("%w: no exchange %q", driver.ErrNotFound, e.Name)
		}
		return nil
	}
	if ok {
		d := old.decl
		if d.Type != e.Type || d.Durable != e.Durable || d.AutoDelete != e.AutoDelete || d.Internal != e.Internal {
			return fmt.Errorf("%w: exchange %q redeclared with other attributes (type %s, durable %t, auto_delete %t; was %s, %t, %t)",
				driver.ErrPreconditionFailed, e.Name, e.Type, e.Durable, e.AutoDelete, d.Type, d.Durable, d.AutoDelete)
		}
		return nil
	}
	s.exchanges[e.Name] = &exchangeEntry{decl: e}
	return nil
}

// exchange returns the declaration and the current bindings of name.
func (s *State) exchange(name string) (driver.Exchange, []driver.Binding, bool) {
	s.mu.RLock()
	x, ok := s.exchanges[name]
	s.mu.RUnlock()
	if !ok {
		return driver.Exchange{}, nil, false
	}
	return x.decl, x.bindings, true
}

func (s *State) deleteExchange(name string, ifUnused bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.exchanges[name]
	if !ok {
		return nil
	}
	if ifUnused && len(x.bindings) > 0 {
		return fmt.Errorf("%w: exchange %q in use", driver.ErrPreconditionFailed, name)
	}
	delete(s.exchanges, name)
	return nil
}

func (s *State) declareQueue(q driver.Queue, owner any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.queues[q.Name]
	if q.Passive {
		if !ok {
			return fmt.Errorf("%w: no queue %q", driver.ErrNotFound, q.Name)
		}
		return nil
	}
	if ok {
		d := old.decl
		if d.Durable != q.Durable || d.Exclusive != q.Exclusive || d.AutoDelete != q.AutoDelete || !argsEqual(d.Args, q.Args) {
			return fmt.Errorf("%w: queue %q redeclared with other attributes", driver.ErrPreconditionFailed, q.Name)
		}
		if d.Exclusive && old.owner != owner {
			return fmt.Errorf("%w: queue %q is exclusive to another connection", driver.ErrAccessRefused, q.Name)
		}
		return nil
	}
	if _, ok := q.Args["x-message-ttl"]; ok {
		s.hasTTLQueues.Store(true)
	}
	e := &queueEntry{decl: q}
	if q.Exclusive {
		e.owner = owner
	}
	s.queues[q.Name] = e
	return nil
}

func argsEqual(a, b map[string]any) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

func (s *State) queue(name string) (driver.Queue, int, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	q, ok := s.queues[name]
	if !ok {
		return driver.Queue{}, 0, false
	}
	return q.decl, q.consumers, true
}

func (s *State) hasQueue(name string) bool {
	s.mu.RLock()
	_, ok := s.queues[name]
	s.mu.RUnlock()
	return ok
}

// queueBindings returns the bindings of queue.
func (s *State) queueBindings(name string) []driver.Binding {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []driver.Binding
	for _, x := range s.exchanges {
		for _, b := range x.bindings {
			if b.Queue == name {
				out = append(out, b)
			}
		}
	}
	return out
}

// forgetQueue removes a queue and every binding to it, returning the
// bindings removed so that stores can drop them too.
func (s *State) forgetQueue(name string) []driver.Binding {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.queues, name)
	var removed []driver.Binding
	for _, x := range s.exchanges {
		keep := x.bindings[:0:0]
		for _, b := range x.bindings {
			if b.Queue == name {
				removed = append(removed, b)
			} else {
				keep = append(keep, b)
			}
		}
		if len(keep) != len(x.bindings) {
			x.bindings = keep
		}
	}
	return removed
}

// addBinding records b; it reports false when an identical binding exists.
func (s *State) addBinding(b driver.Binding) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.exchanges[b.Exchange]
	if !ok {
		return false, fmt.Errorf("%w: no exchange %q", driver.ErrNotFound, b.Exchange)
	}
	for _, old := range x.bindings {
		if sameBinding(old, b) {
			return false, nil
		}
	}
	nb := make([]driver.Binding, len(x.bindings), len(x.bindings)+1)
	copy(nb, x.bindings)
	x.bindings = append(nb, b)
	return true, nil
}

func (s *State) removeBinding(b driver.Binding) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.exchanges[b.Exchange]
	if !ok {
		return false
	}
	for i, old := range x.bindings {
		if sameBinding(old, b) {
			nb := make([]driver.Binding, 0, len(x.bindings)-1)
			nb = append(nb, x.bindings[:i]...)
			x.bindings = append(nb, x.bindings[i+1:]...)
			return true
		}
	}
	return false
}

func sameBinding(a, b driver.Binding) bool {
	return a.Queue == b.Queue && a.Exchange == b.Exchange && a.RoutingKey == b.RoutingKey && argsEqual(a.Args, b.Args)
}

// addConsumer adjusts a queue's consumer count; it returns the new count.
func (s *State) addConsumer(queue string, delta int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, ok := s.queues[queue]
	if !ok {
		return 0
	}
	q.consumers += delta
	if q.consumers < 0 {
		q.consumers = 0
	}
	return q.consumers
}

// exclusiveQueuesOf lists the exclusive queues owned by owner.
func (s *State) exclusiveQueuesOf(owner any) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var names []string
	for name, q := range s.queues {
		if q.decl.Exclusive && q.owner == owner {
			names = append(names, name)
		}
	}
	return names
}
