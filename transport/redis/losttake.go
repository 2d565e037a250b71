package redis

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// A take whose reply is lost (the connection failed after the script was
// sent) may have moved messages from their queues to unacked, where they
// would wait for the visibility timeout (an hour by default) although no
// consumer has them. The take's score identifies exactly what it moved:
// takeScript refuses a score that another entry already has, and only
// takes use even scores (see takeScore). So the store remembers the score
// and puts every entry that still has it back at the front of its queue,
// as it was, at once if redis answers, else before its next take and on
// every sweep.
const (
	// lostTakeUndoTimeout bounds the undo attempted right after the failure.
	lostTakeUndoTimeout = 2 * time.Second
	// lostTakeGrace is how long a lost take whose undo found nothing is
	// looked at again: its script may still be on its way to redis.
	lostTakeGrace = 30 * time.Second
)

type lostTake struct {
	score   string
	fan     []fanMsg // broadcasts the take carried
	checked bool     // an undo ran and found nothing (yet)
	giveUp  time.Time
}

// loseTake remembers a take whose outcome is unknown.
func (s *Store) loseTake(score string, fan []fanMsg) {
	s.lostMu.Lock()
	s.lost = append(s.lost, &lostTake{score: score, fan: fan, giveUp: time.Now().Add(lostTakeGrace)})
	s.lostPending.Store(true)
	s.lostMu.Unlock()
}

// lostUnchecked reports whether a lost take was never looked at: its
// messages may be in unacked, so no take is sent again before that.
func (s *Store) lostUnchecked() bool {
	if !s.lostPending.Load() {
		return false
	}
	s.lostMu.Lock()
	defer s.lostMu.Unlock()
	for _, lt := range s.lost {
		if !lt.checked {
			return true
		}
	}
	return false
}

// undoLostTakes restores what the lost takes moved. With fresh set, it
// only looks at takes that were never looked at (the take path must not
// pay a round trip per fetch for a take whose script never arrived); the
// sweep looks at all of them. It returns the first error, the takes not
// undone staying remembered.
func (s *Store) undoLostTakes(ctx context.Context, fresh bool) error {
	s.undoMu.Lock()
	defer s.undoMu.Unlock()
	// checked and fan change under lostMu too (lostUnchecked reads them).
	s.lostMu.Lock()
	todo := make([]*lostTake, 0, len(s.lost))
	for _, lt := range s.lost {
		if !fresh || !lt.checked {
			todo = append(todo, lt)
		}
	}
	s.lostMu.Unlock()
	var firstErr error
	done := map[*lostTake]bool{}
	for _, lt := range todo {
		n, err := s.undoTake(ctx, lt.score)
		if err != nil {
			firstErr = err
			break
		}
		switch {
		case n > 0:
			// The script ran: its broadcasts went back to their queues'
			// lists with the rest.
			done[lt] = true
		case !lt.checked:
			// Nothing yet: the broadcasts go back to their buffers now.
			s.lostMu.Lock()
			lt.checked = true
			fan := lt.fan
			lt.fan = nil
			s.lostMu.Unlock()
			s.returnFanout(fan)
			fallthrough
		default:
			if time.Now().After(lt.giveUp) {
				done[lt] = true
			}
		}
	}
	s.lostMu.Lock()
	kept := s.lost[:0]
	for _, lt := range s.lost {
		if !done[lt] {
			kept = append(kept, lt)
		}
	}
	clear(s.lost[len(kept):])
	s.lost = kept
	s.lostPending.Store(len(kept) > 0)
	s.lostMu.Unlock()
	return firstErr
}

// undoTake restores the entries that still have the take's score and
// returns how many there were.
func (s *Store) undoTake(ctx context.Context, score string) (int, error) {
	tags, err := s.rdb.ZRangeByScore(ctx, s.k.unackedIndex, &redis.ZRangeBy{Min: score, Max: score}).Result()
	if err != nil {
		return 0, s.wrap(ctx, "undo take", err)
	}
	if len(tags) == 0 {
		return 0, nil
	}
	if _, err := s.restoreEntries(ctx, tags, restoreMode{take: score}); err != nil {
		return 0, err
	}
	return len(tags), nil
}
