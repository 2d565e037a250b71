package redis

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/kombu-go/kombu/virtual"
)

// RequeueBatch implements virtual.BatchRequeuer, which virtual uses when a
// channel closes and on Recover: the unacked items go back to the front of
// their queues in one round trip (requeueBatchScript) instead of one
// Requeue each, and in the order they were delivered. Requeue pushes each
// message to the front of its list, so requeueing items one at a time in
// delivery order would put the last one delivered first: a queue whose
// deliveries 1..10 come back would then deliver 10, 9, ..., 1. (Python
// kombu's restore_unacked does exactly that; RabbitMQ keeps the order.)
//
// Each item is what Requeue would do with it: an unacked entry goes back,
// marked redelivered as kombu marks it, only while its unacked_index
// score is still one this delivery gave it (see takeScript); an entry that
// is gone (its lease expired and the sweep restored it) is left alone.
// An undecodable value goes back byte for byte to the list it came from,
// and one the take already moved to the poison list is moved back from
// there if it is still there.
//
// Batches of more than restoreChunk items take one round trip per chunk,
// the last chunk first, so that the order holds across chunks (a consumer
// of the queue may take from a later chunk before an earlier one is back).
// A chunk that fails leaves its entries unacked, and the restore sweep
// brings them back after the visibility timeout; the other chunks are
// still sent.
func (s *Store) RequeueBatch(ctx context.Context, items []virtual.Item) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	rs := make([]*receipt, len(items))
	for i, it := range items {
		r, ok := it.Receipt.(*receipt)
		if !ok {
			return errNoReceipt
		}
		rs[i] = r
	}
	var errs []error
	requeued := false
	for end := len(rs); end > 0; end -= restoreChunk {
		n, err := s.requeueChunk(ctx, rs[max(0, end-restoreChunk):end])
		requeued = requeued || n > 0
		errs = append(errs, err)
	}
	if requeued {
		s.hub.notify()
	}
	return errors.Join(errs...)
}

// requeueChunk runs requeueBatchScript for rs, given in delivery order,
// and returns how many it put back.
func (s *Store) requeueChunk(ctx context.Context, rs []*receipt) (int, error) {
	keys := []string{s.k.unacked, s.k.unackedIndex, s.k.unackedQueue}
	index := map[string]int{}
	keyOf := func(k string) int {
		i, ok := index[k]
		if !ok {
			keys = append(keys, k)
			i = len(keys)
			index[k] = i
		}
		return i
	}
	args := make([]any, 0, 1+6*len(rs))
	args = append(args, len(rs))
	for _, r := range rs {
		list := r.list
		if list == "" {
			list = s.k.list(r.queue, s.k.step(r.priority))
		}
		if r.poisoned {
			args = append(args, "P", "", "", r.raw, keyOf(list), keyOf(s.k.poison(r.queue)))
			continue
		}
		payload := r.raw
		if !r.undecodable {
			if marked, err := markRedelivered(r.raw); err == nil {
				payload = marked
			}
		}
		args = append(args, "U", r.tag, r.own(), payload, keyOf(list), 0)
	}
	n, err := requeueBatchScript.Run(ctx, s.rdb, keys, args...).Int()
	if err != nil {
		return 0, s.wrap(ctx, "requeue", err)
	}
	return n, nil
}

// requeueBatchScript puts a batch of deliveries back at the front of their
// queues, atomically, so that the first one delivered is the next one
// taken: it goes through them from the last to the first, RPUSHing each.
// For each one it does what restoreScript does in mode "own" (with any
// lease) or, for a value the take moved to the poison list, what
// unpoisonScript does.
//
// KEYS: unacked, unacked_index, unacked_queue, then the target and poison
// lists the entries name.
// ARGV: n, then n sextuples in delivery order: kind ("U": an unacked
// entry, "P": a value in a poison list), tag, scores as in owns, payload,
// index in KEYS of the target list, index in KEYS of the poison list ("P").
// Reply: how many were put back.
var requeueBatchScript = redis.NewScript(ownsLua + `
local n = tonumber(ARGV[1])
local back = 0
for i = n, 1, -1 do
  local a = 2 + 6 * (i - 1)
  local kind, tag, own, payload = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local list = KEYS[tonumber(ARGV[a + 4])]
  if kind == 'P' then
    if redis.call('LREM', KEYS[tonumber(ARGV[a + 5])], 1, payload) == 1 then
      redis.call('RPUSH', list, payload)
      back = back + 1
    end
  elseif not redis.call('HGET', KEYS[1], tag) then
    -- Gone: the index entry goes too, as in restoreScript.
    redis.call('ZREM', KEYS[2], tag)
    redis.call('HDEL', KEYS[3], tag)
  elseif owns(redis.call('ZSCORE', KEYS[2], tag), own) then
    redis.call('ZREM', KEYS[2], tag)
    redis.call('HDEL', KEYS[1], tag)
    redis.call('HDEL', KEYS[3], tag)
    redis.call('RPUSH', list, payload)
    back = back + 1
  end
end
return back
`)

var _ virtual.BatchRequeuer = (*Store)(nil)
