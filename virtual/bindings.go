package virtual

import (
	"cmp"
	"context"
	"slices"

	"github.com/kombu-go/kombu/kombu/driver"
)

var _ driver.BindingLister = (*Channel)(nil)

// QueueBindings implements driver.BindingLister. It lists what routing
// reads: on a BindingStore the stored rows (those other processes wrote
// included; with a QueueBindingStore whatever the exchange, otherwise on
// the exchanges this connection knows), with their arguments where this
// connection made the binding, plus the headers bindings this connection
// holds (headers exchanges route on its own table); elsewhere the
// connection's (or shared) state.
func (ch *Channel) QueueBindings(ctx context.Context, queue string) ([]driver.Binding, error) {
	if err := ch.begin(ctx); err != nil {
		return nil, err
	}
	if err := ch.validate("queue", queue); err != nil {
		return nil, err
	}
	known := ch.conn.state.queueBindings(queue)
	bs, ok := ch.store.(BindingStore)
	if !ok {
		return sortBindings(known), nil
	}
	var stored []StoredBinding
	if qs, ok := ch.store.(QueueBindingStore); ok {
		rows, err := qs.QueueBindings(ctx, queue)
		if err != nil {
			return nil, err
		}
		stored = rows
	} else {
		for _, x := range ch.conn.state.exchangeNames() {
			rows, err := bs.Bindings(ctx, x)
			if err != nil {
				return nil, err
			}
			for _, r := range rows {
				if r.Queue == queue {
					stored = append(stored, r)
				}
			}
		}
	}
	return ch.mergeBindings(known, stored), nil
}

// ExchangeBindings implements driver.BindingLister, as QueueBindings.
func (ch *Channel) ExchangeBindings(ctx context.Context, exchange string) ([]driver.Binding, error) {
	if err := ch.begin(ctx); err != nil {
		return nil, err
	}
	if err := ch.validate("exchange", exchange); err != nil {
		return nil, err
	}
	if exchange == "" {
		return nil, nil // the default exchange binds implicitly
	}
	_, known, _ := ch.conn.state.exchange(exchange)
	bs, ok := ch.store.(BindingStore)
	if !ok {
		return sortBindings(slices.Clone(known)), nil
	}
	stored, err := bs.Bindings(ctx, exchange)
	if err != nil {
		return nil, err
	}
	return ch.mergeBindings(known, stored), nil
}

// mergeBindings lists the stored rows, each with the arguments of the
// bindings this connection made for it, and the connection's headers
// bindings. A non-headers binding of the connection that the store no
// longer has (another process removed it) is not listed: it no longer
// routes.
func (ch *Channel) mergeBindings(known []driver.Binding, stored []StoredBinding) []driver.Binding {
	type key struct{ exchange, routingKey, queue string }
	byKey := map[key][]driver.Binding{}
	for _, b := range known {
		k := key{b.Exchange, b.RoutingKey, b.Queue}
		byKey[k] = append(byKey[k], b)
	}
	var out []driver.Binding
	seen := map[key]bool{}
	for _, r := range stored {
		k := key{r.Exchange, r.RoutingKey, r.Queue}
		if seen[k] {
			continue
		}
		seen[k] = true
		if own, ok := byKey[k]; ok {
			out = append(out, own...)
			continue
		}
		out = append(out, driver.Binding{Queue: r.Queue, Exchange: r.Exchange, RoutingKey: r.RoutingKey})
	}
	for _, b := range known {
		if !seen[key{b.Exchange, b.RoutingKey, b.Queue}] && ch.exchangeType(b.Exchange) == "headers" {
			out = append(out, b)
		}
	}
	return sortBindings(out)
}

// sortBindings orders bindings by exchange, routing key and queue, so that
// listings are stable.
func sortBindings(bs []driver.Binding) []driver.Binding {
	slices.SortStableFunc(bs, func(a, b driver.Binding) int {
		return cmp.Or(cmp.Compare(a.Exchange, b.Exchange), cmp.Compare(a.RoutingKey, b.RoutingKey), cmp.Compare(a.Queue, b.Queue))
	})
	return bs
}

// exchangeNames lists the exchanges the state knows.
func (s *State) exchangeNames() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.exchanges))
	for n := range s.exchanges {
		names = append(names, n)
	}
	return names
}
