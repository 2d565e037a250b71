package sqlstore

import (
	"context"
	"database/sql"

	"github.com/kombu-go/kombu/virtual"
)

var _ virtual.QueueBindingStore = (*Store)(nil)

// QueueBindings implements virtual.QueueBindingStore: the binding rows of
// queue, whatever the exchange (the binding table has an index by queue).
func (s *Store) QueueBindings(ctx context.Context, queue string) ([]virtual.StoredBinding, error) {
	return s.queryBindings(ctx, s.st.queueBindings, queue, func(rows *sql.Rows, b *virtual.StoredBinding) error {
		b.Queue = queue
		return rows.Scan(&b.Exchange, &b.RoutingKey, &b.Pattern)
	})
}

// queryBindings runs a query of the binding table with one argument and
// scans each row with scan.
func (s *Store) queryBindings(ctx context.Context, query, arg string, scan func(*sql.Rows, *virtual.StoredBinding) error) ([]virtual.StoredBinding, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	rows, err := s.c.DB.QueryContext(ctx, query, arg)
	if err != nil {
		return nil, s.wrap(ctx, "bindings", err)
	}
	defer rows.Close()
	var out []virtual.StoredBinding
	for rows.Next() {
		var b virtual.StoredBinding
		if err := scan(rows, &b); err != nil {
			return nil, s.wrap(ctx, "bindings", err)
		}
		out = append(out, b)
	}
	return out, s.wrap(ctx, "bindings", rows.Err())
}
