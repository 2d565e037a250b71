package beanstalk

import (
	"context"
	"slices"
	"strconv"
	"sync"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

// beanstalkd keeps jobs and nothing else: no binding tables, no empty
// queues. As kombu 3.0's BrokerState did, declared queues and binding
// tables live in the process, shared by every connection to the same
// server (one registry per address), so that a producer routes through the
// bindings that a consumer of another connection declared.
var (
	registriesMu sync.Mutex
	registries   = map[string]*registry{}
)

type registry struct {
	mu       sync.Mutex
	queues   map[string]bool
	bindings map[string][]virtual.StoredBinding // by exchange
}

func registryFor(addr string) *registry {
	registriesMu.Lock()
	defer registriesMu.Unlock()
	r, ok := registries[addr]
	if !ok {
		r = &registry{queues: map[string]bool{}, bindings: map[string][]virtual.StoredBinding{}}
		registries[addr] = r
	}
	return r
}

func (r *registry) declared(queue string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.queues[queue]
}

// forget drops a deleted queue and every binding to it.
func (r *registry) forget(queue string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.queues, queue)
	for x, bs := range r.bindings {
		r.bindings[x] = slices.DeleteFunc(slices.Clone(bs), func(b virtual.StoredBinding) bool { return b.Queue == queue })
		if len(r.bindings[x]) == 0 {
			delete(r.bindings, x)
		}
	}
}

// DeclareQueue implements virtual.QueueStore.
func (s *Store) DeclareQueue(ctx context.Context, q driver.Queue) error {
	if err := checkTube(q.Name); err != nil {
		return err
	}
	s.reg.mu.Lock()
	s.reg.queues[q.Name] = true
	s.reg.mu.Unlock()
	return nil
}

// QueueExists implements virtual.QueueStore: a queue exists when this
// process declared it, or when its tube holds jobs, or when a connection of
// another process watches it (a consumer waiting on it).
func (s *Store) QueueExists(ctx context.Context, name string, _ []virtual.StoredBinding) (bool, error) {
	if err := checkTube(name); err != nil {
		return false, err
	}
	if s.reg.declared(name) {
		return true, nil
	}
	st, err := s.tubeStats(ctx, name)
	if err != nil || st == nil {
		return false, err
	}
	jobs := 0
	for _, k := range []string{"current-jobs-ready", "current-jobs-delayed", "current-jobs-buried", "current-jobs-reserved"} {
		n, _ := strconv.Atoi(st[k])
		jobs += n
	}
	watching, _ := strconv.Atoi(st["current-watching"])
	return jobs > 0 || watching > s.ownWatchers(name), nil
}

// AddBinding implements virtual.BindingStore.
func (s *Store) AddBinding(ctx context.Context, b virtual.StoredBinding) error {
	s.reg.mu.Lock()
	defer s.reg.mu.Unlock()
	bs := s.reg.bindings[b.Exchange]
	if !slices.Contains(bs, b) {
		s.reg.bindings[b.Exchange] = append(slices.Clone(bs), b)
	}
	return nil
}

// RemoveBinding implements virtual.BindingStore.
func (s *Store) RemoveBinding(ctx context.Context, b virtual.StoredBinding) error {
	s.reg.mu.Lock()
	defer s.reg.mu.Unlock()
	bs := slices.DeleteFunc(slices.Clone(s.reg.bindings[b.Exchange]), func(o virtual.StoredBinding) bool { return o == b })
	if len(bs) == 0 {
		delete(s.reg.bindings, b.Exchange)
	} else {
		s.reg.bindings[b.Exchange] = bs
	}
	return nil
}

// Bindings implements virtual.BindingStore.
func (s *Store) Bindings(ctx context.Context, exchange string) ([]virtual.StoredBinding, error) {
	s.reg.mu.Lock()
	defer s.reg.mu.Unlock()
	return s.reg.bindings[exchange], nil // never modified in place
}

// QueueBindings implements virtual.QueueBindingStore: the process's
// binding tables, every exchange's, keeping queue's rows.
func (s *Store) QueueBindings(ctx context.Context, queue string) ([]virtual.StoredBinding, error) {
	s.reg.mu.Lock()
	defer s.reg.mu.Unlock()
	var out []virtual.StoredBinding
	for _, bs := range s.reg.bindings {
		for _, b := range bs {
			if b.Queue == queue {
				out = append(out, b)
			}
		}
	}
	return out, nil
}

var _ virtual.QueueBindingStore = (*Store)(nil)
