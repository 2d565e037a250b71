package sqs

import (
	"context"
	"sort"
	"sync"

	"github.com/kombu-go/kombu/virtual"
)

// SQS has no exchanges or bindings. As in Python kombu they live in the
// client process, but here one binding table is shared by every
// connection of the process to the same endpoint, region, access key and
// queue_name_prefix (a virtual.BindingStore), so that a producer routes
// with the bindings a consumer of the same process declared. Bindings
// declared by another process are not seen: declare them in the
// publishing process too, or publish to the default exchange with the
// queue's name as routing key (what Celery does).
type bindingTable struct {
	mu   sync.RWMutex
	rows map[string]map[virtual.StoredBinding]struct{} // exchange -> rows
}

var bindingTables sync.Map // namespace -> *bindingTable

// namespace identifies the queues a store sees: the same endpoint,
// region, account (access key) and name prefix.
func namespace(o *Options) string {
	return o.EndpointURL + "\x00" + o.Region + "\x00" + o.AccessKeyID + "\x00" + o.QueueNamePrefix
}

func tableFor(o *Options) *bindingTable {
	t, _ := bindingTables.LoadOrStore(namespace(o), &bindingTable{rows: map[string]map[virtual.StoredBinding]struct{}{}})
	return t.(*bindingTable)
}

// AddBinding implements virtual.BindingStore.
func (s *Store) AddBinding(_ context.Context, b virtual.StoredBinding) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	t := s.bindings
	t.mu.Lock()
	defer t.mu.Unlock()
	set, ok := t.rows[b.Exchange]
	if !ok {
		set = map[virtual.StoredBinding]struct{}{}
		t.rows[b.Exchange] = set
	}
	set[b] = struct{}{}
	return nil
}

// RemoveBinding implements virtual.BindingStore.
func (s *Store) RemoveBinding(_ context.Context, b virtual.StoredBinding) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	t := s.bindings
	t.mu.Lock()
	defer t.mu.Unlock()
	if set, ok := t.rows[b.Exchange]; ok {
		delete(set, b)
		if len(set) == 0 {
			delete(t.rows, b.Exchange)
		}
	}
	return nil
}

// Bindings implements virtual.BindingStore, in a stable order.
func (s *Store) Bindings(_ context.Context, exchange string) ([]virtual.StoredBinding, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	t := s.bindings
	t.mu.RLock()
	out := make([]virtual.StoredBinding, 0, len(t.rows[exchange]))
	for b := range t.rows[exchange] {
		out = append(out, b)
	}
	t.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Queue != out[j].Queue {
			return out[i].Queue < out[j].Queue
		}
		return out[i].RoutingKey < out[j].RoutingKey
	})
	return out, nil
}

// dropQueue forgets every binding of a deleted queue, so that no
// publisher of the process routes to it (Put would create it again).
func (t *bindingTable) dropQueue(queue string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for ex, set := range t.rows {
		for b := range set {
			if b.Queue == queue {
				delete(set, b)
			}
		}
		if len(set) == 0 {
			delete(t.rows, ex)
		}
	}
}

// QueueBindings implements virtual.QueueBindingStore: the process's table,
// every exchange's, keeping queue's rows.
func (s *Store) QueueBindings(_ context.Context, queue string) ([]virtual.StoredBinding, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	t := s.bindings
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []virtual.StoredBinding
	for _, set := range t.rows {
		for b := range set {
			if b.Queue == queue {
				out = append(out, b)
			}
		}
	}
	return out, nil
}

var _ virtual.QueueBindingStore = (*Store)(nil)
