package redis

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/kombu-go/kombu/virtual"
)

// A value in a queue's list that is not a kombu envelope (not JSON, not an
// object, no body, a body that is not base64, headers that are not an
// object, ...) is never dropped. The consumer gets it as an undecodable
// delivery (driver.Delivery.DecodeError, the raw bytes as body), and
// rejecting it, or taking it with no-ack, moves the raw bytes to the
// queue's poison list, "_kombu_go.poison.<queue>" (with global_keyprefix
// in front), newest first, where an operator finds them (LRANGE) and
// deletes them (DEL) or pushes them back. A queue with an
// x-dead-letter-exchange gets them dead-lettered there instead (package
// virtual). Requeueing puts them back at the front of the list they came
// from; acking deletes them.
//
// Values that are not JSON objects go to the poison list in the take
// script itself, since an unacked record holding them would break Python
// kombu's restore (receipt.poisoned); the others are recorded in unacked
// like any delivery and moved by Quarantine.

// Quarantine implements virtual.Quarantiner: the undecodable delivery's
// unacked entry is dropped and its raw bytes pushed to the poison list of
// its queue, in one atomic step. A delivery whose lease expired (it is
// back in its queue) is left alone.
func (s *Store) Quarantine(ctx context.Context, it virtual.Item) error {
	r, err := s.receiptOf(it)
	if err != nil {
		return err
	}
	if r.poisoned {
		return nil // the take put it there
	}
	keys := []string{s.k.unacked, s.k.unackedIndex, s.k.unackedQueue, s.k.poison(r.queue)}
	err = restoreScript.Run(ctx, s.rdb, keys, r.tag, "own", r.own(), anyLease, r.raw, "L").Err()
	return s.wrap(ctx, "quarantine", err)
}

// ackPoisoned deletes a poisoned delivery from the poison list.
func (s *Store) ackPoisoned(ctx context.Context, r *receipt) error {
	return s.wrap(ctx, "LREM poison", s.rdb.LRem(ctx, s.k.poison(r.queue), 1, r.raw).Err())
}

// requeuePoisoned moves a poisoned delivery from the poison list back to
// the front of the list it came from, if it is still in the poison list.
func (s *Store) requeuePoisoned(ctx context.Context, r *receipt) error {
	err := unpoisonScript.Run(ctx, s.rdb, []string{s.k.poison(r.queue), r.list}, r.raw).Err()
	if err != nil {
		return s.wrap(ctx, "requeue", err)
	}
	s.hub.notify()
	return nil
}

// unpoisonScript moves one copy of ARGV[1] from the poison list KEYS[1]
// to the front (RPUSH) of the queue list KEYS[2].
var unpoisonScript = redis.NewScript(`
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0
`)

var _ virtual.Quarantiner = (*Store)(nil)
