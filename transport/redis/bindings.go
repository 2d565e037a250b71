package redis

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/kombu-go/kombu/virtual"
)

var _ virtual.QueueBindingStore = (*Store)(nil)

// QueueBindings implements virtual.QueueBindingStore: a SCAN of every
// binding table (`_kombu.binding.*`, Python kombu's included), then one
// pipelined SMEMBERS of the tables found, keeping queue's members. It reads
// the server, never the routing cache, so a listing shows what other
// processes bound a moment ago.
func (s *Store) QueueBindings(ctx context.Context, queue string) ([]virtual.StoredBinding, error) {
	if s.closed.Load() {
		return nil, errStoreClosed
	}
	prefix := s.k.binding("")
	var tables []string
	iter := s.rdb.Scan(ctx, 0, globEscape(prefix)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		tables = append(tables, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, s.wrap(ctx, "SCAN", err)
	}
	if len(tables) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	members := make([]*redis.StringSliceCmd, len(tables))
	for i, t := range tables {
		members[i] = pipe.SMembers(ctx, t)
	}
	_, _ = pipe.Exec(ctx) // each command's error is looked at below
	var out []virtual.StoredBinding
	for i, t := range tables {
		if err := members[i].Err(); err != nil {
			if strings.HasPrefix(err.Error(), "WRONGTYPE") {
				continue // a key that is not a binding table: not kombu's
			}
			return nil, s.wrap(ctx, "SMEMBERS", err)
		}
		exchange := strings.TrimPrefix(t, prefix)
		for _, m := range members[i].Val() {
			if rk, pat, q, ok := splitBindingMember(m); ok && q == queue {
				out = append(out, virtual.StoredBinding{Exchange: exchange, RoutingKey: rk, Pattern: pat, Queue: q})
			}
		}
	}
	return out, nil
}
