package redis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"

	"github.com/kombu-go/kombu/virtual"
)

// sweepInterval is how often a consuming store looks for deliveries whose
// visibility timeout has expired: a tenth of the timeout, between 0.2 s
// and 10 s. (Python kombu looks at most every 10 s, and under Celery about
// every 100 s.)
func (s *Store) sweepInterval() time.Duration {
	return min(max(s.o.VisibilityTimeout/10, 200*time.Millisecond), 10*time.Second)
}

// startSweeper starts, on the store's first fetch, the goroutine that
// restores expired deliveries, as every kombu consumer does.
func (s *Store) startSweeper() {
	s.sweepOnce.Do(func() {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			t := time.NewTicker(s.sweepInterval())
			defer t.Stop()
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				s.wg.Add(1) // legal: this goroutine holds a count
				go func() {
					defer s.wg.Done()
					select {
					case <-s.done:
						cancel()
					case <-ctx.Done():
					}
				}()
				_, _ = s.RestoreVisible(ctx)
				if s.lostPending.Load() {
					_ = s.undoLostTakes(ctx, false)
				}
				cancel()
				select {
				case <-t.C:
				case <-s.done:
					return
				}
			}
		}()
	})
}

// RestoreVisible is kombu's restore_visible: it takes the unacked_mutex
// (SET NX PX, with a short lease renewed while it restores, see
// acquireRestoreLock; skipped when another consumer holds it), reads the deliveries older than the visibility timeout with
// ZREVRANGEBYSCORE unacked_index <now-timeout> 0 [LIMIT unacked_restore_limit],
// and puts each back at the front of its queue (RPUSH), marked redelivered
// in headers and delivery_info as kombu marks it, then releases the mutex
// with a compare-and-delete. It returns how many it restored.
//
// Each delivery is restored by restoreScript, which checks that the entry
// is unchanged and still expired, so a delivery acked, restored by someone
// else, or whose lease was extended in the meantime is left alone. A
// delivery whose queue cannot be resolved (no unacked_queue entry, and no
// binding matches its exchange and routing key) is left in place and its
// score moved to now, instead of being dropped as kombu drops it.
func (s *Store) RestoreVisible(ctx context.Context) (int, error) {
	if s.closed.Load() {
		return 0, errStoreClosed
	}
	s.sweepMu.Lock()
	defer s.sweepMu.Unlock()
	s.lastSweep.Store(time.Now().UnixNano())

	held, err := s.acquireRestoreLock(ctx)
	if err != nil || !held {
		return 0, err
	}
	defer s.releaseRestoreLock(ctx)

	ceil := time.Now().Add(-s.o.VisibilityTimeout)
	limit := s.o.UnackedRestoreLimit
	restored := 0
	for {
		count := restoreChunk
		if limit > 0 {
			count = min(count, limit-restored)
		}
		tags, err := s.rdb.ZRevRangeByScore(ctx, s.k.unackedIndex, &redis.ZRangeBy{
			Max: nowScore(ceil), Min: "0", Count: int64(count),
		}).Result()
		if err != nil {
			return restored, s.wrap(ctx, "ZREVRANGEBYSCORE", err)
		}
		if len(tags) == 0 {
			return restored, nil
		}
		n, err := s.restoreTags(ctx, tags, ceil)
		restored += n
		if err != nil {
			return restored, err
		}
		if len(tags) < count || (limit > 0 && restored >= limit) || n == 0 {
			return restored, nil
		}
	}
}

// restoreTags restores expired deliveries in three round trips: read their
// entries, resolve their queues, run restoreScript for each.
func (s *Store) restoreTags(ctx context.Context, tags []string, ceil time.Time) (int, error) {
	return s.restoreEntries(ctx, tags, restoreMode{ceil: nowScore(ceil)})
}

// restoreMode says which unacked entries restoreEntries puts back.
type restoreMode struct {
	// ceil: the sweep restores an entry whose record is unchanged since it
	// was read and whose score is at most ceil (its lease expired), marked
	// redelivered, as kombu does.
	ceil string
	// take: the undo of a lost take (see loseTake) restores an entry whose
	// score is still the take's, as it was taken: it was never delivered.
	take string
}

// restoreEntries puts the unacked entries tags back at the front of their
// queues in three round trips: read them, resolve their queues, run
// restoreScript for each. It returns how many it restored.
func (s *Store) restoreEntries(ctx context.Context, tags []string, mode restoreMode) (int, error) {
	pipe := s.rdb.Pipeline()
	recs := make([]*redis.StringCmd, len(tags))
	qs := make([]*redis.StringCmd, len(tags))
	for i, t := range tags {
		recs[i] = pipe.HGet(ctx, s.k.unacked, t)
		qs[i] = pipe.HGet(ctx, s.k.unackedQueue, t)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, s.wrap(ctx, "restore read", err)
	}

	resolver := &queueResolver{s: s, tables: map[string][]virtual.StoredBinding{}}
	pipe = s.rdb.Pipeline()
	var runs []*redis.Cmd
	var park []string
	for i, tag := range tags {
		rec, err := recs[i].Result()
		if err != nil {
			// The entry is gone: restoreScript removes the index entry.
			runs = append(runs, restoreScript.Eval(ctx, pipe,
				[]string{s.k.unacked, s.k.unackedIndex, s.k.unackedQueue}, tag, "cas", "", "0", "", "R"))
			continue
		}
		env, exchange, routingKey, err := parseUnackedRecord([]byte(rec))
		if err != nil {
			park = append(park, tag)
			continue
		}
		var queues []string
		if v, err := qs[i].Result(); err == nil {
			q := v
			if i := strings.LastIndex(v, Sep); i >= 0 {
				q = v[:i]
			}
			queues = []string{q}
		} else {
			queues, err = resolver.resolve(ctx, exchange, routingKey)
			if err != nil {
				return 0, err
			}
		}
		if len(queues) == 0 {
			park = append(park, tag)
			continue
		}
		payload := []byte(env)
		if mode.take == "" {
			if marked, err := markRedelivered(env); err == nil {
				payload = marked
			}
		}
		step := s.k.step(envelopePriority(env))
		keys := []string{s.k.unacked, s.k.unackedIndex, s.k.unackedQueue}
		for _, q := range queues {
			keys = append(keys, s.k.list(q, step))
		}
		if mode.take != "" {
			runs = append(runs, restoreScript.Eval(ctx, pipe, keys, tag, "own", mode.take, anyLease, payload, "R"))
		} else {
			runs = append(runs, restoreScript.Eval(ctx, pipe, keys, tag, "cas", rec, mode.ceil, payload, "R"))
		}
	}
	if mode.take == "" {
		// Entries that cannot be restored wait another visibility timeout.
		now := float64(leaseMicros(time.Now())) / 1e6
		for _, tag := range park {
			pipe.ZAddXX(ctx, s.k.unackedIndex, redis.Z{Score: now, Member: tag})
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, s.wrap(ctx, "restore", err)
	}
	n := 0
	for _, r := range runs {
		if v, _ := r.Int(); v == 1 {
			n++
		}
	}
	if n > 0 {
		s.hub.notify()
	}
	return n, nil
}

// parseUnackedRecord splits kombu's [envelope, exchange, routing_key].
func parseUnackedRecord(rec []byte) (env []byte, exchange, routingKey string, err error) {
	var parts []json.RawMessage
	if err := json.Unmarshal(rec, &parts); err != nil {
		return nil, "", "", err
	}
	if len(parts) != 3 {
		return nil, "", "", errors.New("unacked record is not [envelope, exchange, routing_key]")
	}
	if err := json.Unmarshal(parts[1], &exchange); err != nil {
		return nil, "", "", err
	}
	if err := json.Unmarshal(parts[2], &routingKey); err != nil {
		return nil, "", "", err
	}
	return parts[0], exchange, routingKey, nil
}

// envelopePriority reads properties.priority of a raw envelope (0 when
// missing or invalid, like kombu).
func envelopePriority(env []byte) uint8 {
	var e struct {
		Properties struct {
			Priority json.Number `json:"priority"`
		} `json:"properties"`
	}
	if json.Unmarshal(env, &e) != nil {
		return 0
	}
	f, err := e.Properties.Priority.Float64()
	if err != nil || f <= 0 {
		return 0
	}
	return uint8(min(f, 9))
}

// markRedelivered sets headers.redelivered and
// properties.delivery_info.redelivered to true, as kombu's
// _do_restore_message does. Numbers keep their exact text; key order and
// spacing may change (readers do not depend on them).
func markRedelivered(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if h, ok := m["headers"].(map[string]any); ok {
		h["redelivered"] = true
	}
	if p, ok := m["properties"].(map[string]any); ok {
		if di, ok := p["delivery_info"].(map[string]any); ok {
			di["redelivered"] = true
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// queueResolver finds the queues an (exchange, routing key) routes to
// from the binding tables, for unacked entries without an unacked_queue
// entry: those written by Python kombu consumers, and kombu-go's of the
// default exchange (exchange "", which routes to the queue named by the
// routing key, exactly the queue the delivery came from). It cannot know the
// exchange's type, so it routes by the rows themselves: a row with a
// pattern is a topic binding, a row without is matched exactly (direct;
// fanout rows are bound with "" and match fanout messages, whose routing
// key is normally "").
type queueResolver struct {
	s      *Store
	tables map[string][]virtual.StoredBinding
}

func (r *queueResolver) resolve(ctx context.Context, exchange, routingKey string) ([]string, error) {
	if exchange == "" {
		return []string{routingKey}, nil
	}
	rows, ok := r.tables[exchange]
	if !ok {
		members, err := r.s.rdb.SMembers(ctx, r.s.k.binding(exchange)).Result()
		if err != nil {
			return nil, r.s.wrap(ctx, "SMEMBERS", err)
		}
		for _, m := range members {
			if rk, pat, q, ok := splitBindingMember(m); ok {
				rows = append(rows, virtual.StoredBinding{Exchange: exchange, RoutingKey: rk, Pattern: pat, Queue: q})
			}
		}
		r.tables[exchange] = rows
	}
	seen := map[string]bool{}
	var out []string
	for _, b := range rows {
		match := b.RoutingKey == routingKey
		if b.Pattern != "" {
			match = topicMatch(b.RoutingKey, routingKey)
		}
		if match && !seen[b.Queue] {
			seen[b.Queue] = true
			out = append(out, b.Queue)
		}
	}
	return out, nil
}

var (
	topicMu    sync.Mutex
	topicCache = map[string]*regexp.Regexp{}
)

// topicMatch reports whether routingKey matches the binding key as Python
// kombu's topic exchange matches it: the binding key's words, "*" read as
// `.*?[^\.]` and "#" as `.*?`, other words escaped except for "*" and "#",
// which keep their regex meaning.
func topicMatch(bindingKey, routingKey string) bool {
	topicMu.Lock()
	re, ok := topicCache[bindingKey]
	topicMu.Unlock()
	if !ok {
		var b strings.Builder
		b.WriteString(`^(?:`)
		for i, w := range strings.Split(bindingKey, ".") {
			if i > 0 {
				b.WriteString(`\.`)
			}
			switch w {
			case "*":
				b.WriteString(`.*?[^\.]`)
			case "#":
				b.WriteString(`.*?`)
			default:
				for _, c := range w {
					if c == '*' || c == '#' || unicode.IsLetter(c) || unicode.IsDigit(c) {
						b.WriteRune(c)
					} else {
						b.WriteString(regexp.QuoteMeta(string(c)))
					}
				}
			}
		}
		b.WriteString(`)$`)
		re, _ = regexp.Compile(b.String()) // nil when Python would fail too
		topicMu.Lock()
		if len(topicCache) > 10000 {
			clear(topicCache)
		}
		topicCache[bindingKey] = re
		topicMu.Unlock()
	}
	return re != nil && re.MatchString(routingKey)
}
