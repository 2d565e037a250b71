package kombu

import (
	"fmt"
	"math/rand/v2"
)

// FailoverStrategy says in which order a Connection tries the URLs of a
// ';'-separated failover list (kombu's failover_strategy).
type FailoverStrategy string

const (
	// FailoverRoundRobin tries the URLs in list order, starting with the
	// one in use, and moves to the next one in the list when it fails.
	// It is the default.
	FailoverRoundRobin FailoverStrategy = "round-robin"
	// FailoverShuffle tries the URL in use first, then the others in a
	// new random order each time, and moves to a random other URL when
	// the one in use fails: clients spread over a cluster instead of all
	// piling onto the next node of the list.
	FailoverShuffle FailoverStrategy = "shuffle"
)

func (s FailoverStrategy) check() error {
	switch s {
	case "", FailoverRoundRobin, FailoverShuffle:
		return nil
	}
	return fmt.Errorf("%w: failover strategy %q (want %q or %q)", ErrInvalidArgument, string(s),
		FailoverRoundRobin, FailoverShuffle)
}

// order returns the indexes of n URLs in the order to try them, starting
// with start.
func (s FailoverStrategy) order(n, start int) []int {
	out := make([]int, 0, n)
	out = append(out, start)
	for i := 1; i < n; i++ {
		out = append(out, (start+i)%n)
	}
	if s == FailoverShuffle && n > 2 {
		rest := out[1:]
		rand.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	}
	return out
}

// next returns the URL to move to when the one at current failed.
func (s FailoverStrategy) next(n, current int) int {
	if n < 2 {
		return current
	}
	if s == FailoverShuffle {
		return (current + 1 + rand.IntN(n-1)) % n
	}
	return (current + 1) % n
}
