package virtual_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport/memory"
	"github.com/kombu-go/kombu/virtual"
)

// tableStore is a memory store whose state is per connection and whose
// binding table is a shared map: a BindingStore that cannot list a queue's
// rows on any exchange (no QueueBindingStore).
type tableStore struct {
	virtual.Store // embedded as the interface: memory's SharedState is hidden
	mu            *sync.Mutex
	rows          map[virtual.StoredBinding]bool
}

func (s *tableStore) AddBinding(_ context.Context, b virtual.StoredBinding) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows[b] = true
	return nil
}

func (s *tableStore) RemoveBinding(_ context.Context, b virtual.StoredBinding) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rows, b)
	return nil
}

func (s *tableStore) Bindings(_ context.Context, exchange string) ([]virtual.StoredBinding, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []virtual.StoredBinding
	for b := range s.rows {
		if b.Exchange == exchange {
			out = append(out, b)
		}
	}
	return out, nil
}

// bindingLines formats a listing as "exchange|routing key|queue[|args]".
func bindingLines(bs []driver.Binding, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, b := range bs {
		line := b.Exchange + "|" + b.RoutingKey + "|" + b.Queue
		if b.Args != nil {
			line += fmt.Sprint("|", b.Args)
		}
		out = append(out, line)
	}
	return out, nil
}

// TestListBindingsOfABindingStore: on a BindingStore the listing is what
// routing reads: the stored rows (another process's included) with this
// connection's arguments, its own headers bindings, and not a binding of
// its own that the store lost. Without QueueBindingStore a queue's rows
// are found on the exchanges this connection knows only.
func TestListBindingsOfABindingStore(t *testing.T) {
	ctx := context.Background()
	mem, err := memory.NewConnector(&memory.Options{Broker: "virtual-" + t.Name()}).DialStore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[virtual.StoredBinding]bool{}
	conn := virtual.NewConn(&tableStore{Store: mem, mu: &sync.Mutex{}, rows: rows})
	t.Cleanup(func() { conn.Close() })
	dch, err := conn.Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ch := dch.(*virtual.Channel)
	for _, x := range []driver.Exchange{{Name: "x", Type: "direct"}, {Name: "h", Type: "headers"}} {
		if err := ch.ExchangeDeclare(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ch.QueueDeclare(ctx, driver.Queue{Name: "q"}); err != nil {
		t.Fatal(err)
	}
	for _, b := range []driver.Binding{
		{Queue: "q", Exchange: "x", RoutingKey: "mine"},
		{Queue: "q", Exchange: "x", RoutingKey: "lost"},
		{Queue: "q", Exchange: "h", Args: map[string]any{"x-match": "any", "a": "1"}},
	} {
		if err := ch.QueueBind(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	// Another process binds on x and on an exchange this one never saw,
	// and removes one of this connection's rows.
	rows[virtual.StoredBinding{Exchange: "x", RoutingKey: "theirs", Queue: "q"}] = true
	rows[virtual.StoredBinding{Exchange: "unknown", RoutingKey: "k", Queue: "q"}] = true
	delete(rows, virtual.StoredBinding{Exchange: "x", RoutingKey: "lost", Queue: "q"})
	delete(rows, virtual.StoredBinding{Exchange: "h", Queue: "q"})

	lines := func(got []string, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	want := []string{"h||q|map[a:1 x-match:any]", "x|mine|q", "x|theirs|q"}
	if got := lines(bindingLines(ch.QueueBindings(ctx, "q"))); !slices.Equal(got, want) {
		t.Errorf("QueueBindings = %q, want %q", got, want)
	}
	if got := lines(bindingLines(ch.ExchangeBindings(ctx, "unknown"))); !slices.Equal(got, []string{"unknown|k|q"}) {
		t.Errorf("ExchangeBindings(unknown) = %q", got)
	}
	if got := lines(bindingLines(ch.ExchangeBindings(ctx, ""))); len(got) != 0 {
		t.Errorf("the default exchange lists %q", got)
	}
}
