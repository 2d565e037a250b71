package redis

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

// Tunables that are not options.
const (
	// ackFlushDelay is how long an ack may wait for the next fetch to
	// carry it before it is sent on its own.
	ackFlushDelay = 2 * time.Millisecond
	// minPollPause is the first pause after an empty poll; pauses double
	// up to Options.PollingInterval.
	minPollPause = 500 * time.Microsecond
	// fanoutBufferLimit bounds the broadcasts buffered per fanout queue
	// that nobody fetches; further ones are dropped (pub/sub fanout is
	// at-most-once in kombu anyway).
	fanoutBufferLimit = 10000
	// restoreChunk bounds the tags one restore round trip handles.
	restoreChunk = 1000
)

// Connector dials a Store. It holds parsed options only and is reused for
// every (re)dial.
type Connector struct {
	opts   *Options
	logger atomic.Pointer[slog.Logger]
}

// SetLogger implements driver.LoggerSetter: go-redis's log lines about
// the stores this connector dials go to l (nil: dropped); see clientLogs.
func (c *Connector) SetLogger(l *slog.Logger) { c.logger.Store(l) }

// NewConnector returns a Connector for o (from ParseURL).
func NewConnector(o *Options) *Connector { return &Connector{opts: o} }

// Options returns the connector's options. They must not be modified.
func (c *Connector) Options() *Options { return c.opts }

// Dial connects a Store and checks that redis answers PING. ctx bounds the
// dial only. Dial failures wrap driver.ErrConnectionLost.
func (c *Connector) Dial(ctx context.Context) (*Store, error) {
	rdb := newClient(c.opts)
	s := newStore(c.opts, rdb)
	// Registered before the first command: the dial itself may log.
	clientLogs.add(s, c.logger.Load())
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		clientLogs.remove(s)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		if isAuthError(err) {
			return nil, fmt.Errorf("%w: redis: %w", driver.ErrAccessRefused, err)
		}
		return nil, fmt.Errorf("%w: redis: %w", driver.ErrConnectionLost, err)
	}
	return s, nil
}

// newClient returns the go-redis client for o. Benchmarks build their raw
// baseline clients with it too, so that both use the same settings.
func newClient(o *Options) *redis.Client {
	if o.Sentinel {
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:            o.MasterName,
			SentinelAddrs:         o.Addrs,
			SentinelPassword:      o.SentinelPassword,
			Username:              o.Username,
			Password:              o.Password,
			DB:                    o.DB,
			DialTimeout:           o.ConnectTimeout,
			ReadTimeout:           o.SocketTimeout,
			WriteTimeout:          o.SocketTimeout,
			ContextTimeoutEnabled: true,
			PoolSize:              o.MaxConnections,
			TLSConfig:             o.TLS,
			DisableIdentity:       true,
			Protocol:              2,
			MaxRetries:            -1, // see errors.go
		})
	}
	return redis.NewClient(&redis.Options{
		Addr:                     o.Addrs[0],
		Username:                 o.Username,
		Password:                 o.Password,
		DB:                       o.DB,
		DialTimeout:              o.ConnectTimeout,
		ReadTimeout:              o.SocketTimeout,
		WriteTimeout:             o.SocketTimeout,
		ContextTimeoutEnabled:    true,
		MaxRetries:               -1, // see errors.go
		PoolSize:                 o.MaxConnections,
		TLSConfig:                o.TLS,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		// RESP2: with RESP3, go-redis peeks the socket for push
		// notifications before every command, a read system call each.
		Protocol: 2,
	})
}

// Store is a virtual.Store on one redis database, wire-compatible with
// Python kombu's redis transport. It is safe for concurrent use.
type Store struct {
	o   *Options
	k   *keys
	rdb *redis.Client
	hub *hub

	closed    atomic.Bool
	closeOnce sync.Once
	done      chan struct{} // closed by Close
	wg        sync.WaitGroup

	ackMu       sync.Mutex
	pendingAcks []*receipt
	ackTimer    *time.Timer

	fanMu sync.Mutex
	fan   *fanout // created by the first BindFanout

	emptyAt    sync.Map // queues joined by NUL -> hub.published before an empty take
	plans      sync.Map // queues joined by NUL -> *pollPlan
	seedPrefix string
	takes      atomic.Uint64
	ackArmed   bool      // ackTimer is pending; guarded by ackMu
	ackSince   time.Time // when the oldest pending ack was made; guarded by ackMu

	sweepOnce sync.Once
	sweepMu   sync.Mutex  // one sweep at a time per store
	restoreLk restoreLock // the unacked_mutex; guarded by sweepMu
	lastSweep atomic.Int64
	lastScore atomic.Int64 // microseconds of the last takeScore

	undoMu      sync.Mutex // one undoLostTakes at a time
	lostMu      sync.Mutex
	lost        []*lostTake // takes whose reply was lost; see loseTake
	lostPending atomic.Bool // len(lost) > 0
}

func newStore(o *Options, rdb *redis.Client) *Store {
	return &Store{o: o, k: newKeys(o), rdb: rdb, hub: hubFor(o), done: make(chan struct{}), seedPrefix: randomSeed() + "-"}
}

// Client returns the go-redis client (for the As escape hatch and tests).
func (s *Store) Client() *redis.Client { return s.rdb }

var errStoreClosed = fmt.Errorf("%w: redis store", driver.ErrClosed)

// isAuthError reports whether redis refused the credentials (retrying the
// same ones cannot help).
func isAuthError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"WRONGPASS", "NOAUTH", "NOPERM", "ERR invalid password", "ERR AUTH", "ERR Client sent AUTH"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// ValidateName implements virtual.NameValidator.
func (s *Store) ValidateName(kind, name string) error { return s.k.validateName(kind, name) }

// Put implements virtual.Store: LPUSH to the queue's list for the
// envelope's priority step.
func (s *Store) Put(ctx context.Context, queue string, env *virtual.Envelope) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	data, err := encode(env)
	if err != nil {
		return err
	}
	err = s.rdb.LPush(ctx, s.k.list(queue, s.k.step(env.Properties.Priority)), data).Err()
	if err != nil {
		return s.wrapWrite(ctx, "LPUSH", err)
	}
	s.hub.notify()
	return nil
}

// encode returns the kombu JSON of env: the bytes it was received as when
// it is unchanged, else a fresh encoding (with a fresh delivery tag when
// env has none, so copies routed to several queues get distinct tags).
func encode(env *virtual.Envelope) ([]byte, error) {
	if env.Raw != nil {
		return env.Raw, nil
	}
	data, err := env.Marshal()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", driver.ErrInvalidArgument, err)
	}
	return data, nil
}

// PutBatch implements virtual.BatchPutter, in one round trip: every run of
// consecutive envelopes bound for the same list is one LPUSH of several
// values (LPUSH pushes them left in argument order, so a consumer taking
// from the right reads them in batch order), and the runs are pipelined.
// On a failure, the runs before the failing one are published: a prefix
// of the batch.
func (s *Store) PutBatch(ctx context.Context, batch []virtual.QueuedEnvelope) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	if len(batch) == 0 {
		return nil
	}
	type run struct {
		cmd *redis.IntCmd
		n   int
	}
	var runs []run
	pipe := s.rdb.Pipeline()
	vals := make([]any, 0, len(batch))
	list := ""
	for i, qe := range batch {
		data, err := encode(qe.Envelope)
		if err != nil {
			return &driver.BatchError{Published: 0, Err: err}
		}
		l := s.k.list(qe.Queue, s.k.step(qe.Envelope.Properties.Priority))
		if i > 0 && l != list {
			runs = append(runs, run{pipe.LPush(ctx, list, vals...), len(vals)})
			vals = vals[len(vals):]
		}
		list = l
		vals = append(vals, data)
	}
	runs = append(runs, run{pipe.LPush(ctx, list, vals...), len(vals)})
	_, err := pipe.Exec(ctx)
	if err != nil {
		n := 0
		for _, r := range runs {
			if r.cmd.Err() != nil {
				break
			}
			n += r.n
		}
		if n > 0 {
			s.hub.notify()
		}
		return &driver.BatchError{Published: n, Err: s.wrapWrite(ctx, "LPUSH", err)}
	}
	s.hub.notify()
	return nil
}

// Size implements virtual.Store: the sum of LLEN over the priority lists.
func (s *Store) Size(ctx context.Context, queue string) (int, error) {
	if s.closed.Load() {
		return 0, errStoreClosed
	}
	pipe := s.rdb.Pipeline()
	var cmds []*redis.IntCmd
	for _, l := range s.k.lists(queue) {
		cmds = append(cmds, pipe.LLen(ctx, l))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, s.wrap(ctx, "LLEN", err)
	}
	n := 0
	for _, c := range cmds {
		n += int(c.Val())
	}
	return n, nil
}

// Purge implements virtual.Store: LLEN and DEL of every priority list, in
// one MULTI so that nothing pushed meanwhile is deleted uncounted.
func (s *Store) Purge(ctx context.Context, queue string) (int, error) {
	if s.closed.Load() {
		return 0, errStoreClosed
	}
	var cmds []*redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, l := range s.k.lists(queue) {
			cmds = append(cmds, p.LLen(ctx, l))
			p.Del(ctx, l)
		}
		return nil
	})
	if err != nil {
		return 0, s.wrap(ctx, "purge", err)
	}
	n := 0
	for _, c := range cmds {
		n += int(c.Val())
	}
	return n, nil
}

// Delete implements virtual.Store: DEL of every priority list, as kombu's
// queue_delete. Binding rows are removed by virtual through RemoveBinding,
// as kombu's queue_delete SREMs each of them. The poison list stays: it is
// the operator's.
func (s *Store) Delete(ctx context.Context, queue string) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	if err := s.rdb.Del(ctx, s.k.lists(queue)...).Err(); err != nil {
		return s.wrap(ctx, "DEL", err)
	}
	s.dropFanoutQueue(queue)
	return nil
}

// DeclareQueue implements virtual.QueueStore. Like Python kombu, it writes
// nothing: a queue without messages leaves no trace in redis but its
// binding rows (see QueueExists).
func (s *Store) DeclareQueue(ctx context.Context, q driver.Queue) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	return nil
}

// QueueExists implements virtual.QueueStore with what Python kombu records,
// so that a delete made by either language is seen by both (Python's
// queue_delete DELs the lists and SREMs the binding rows it made). A queue
// exists when one of its lists exists (it holds messages: Python kombu's
// own test); or when the exchange of the same name has a binding row for
// it, which is what Celery declares for each of its queues; or when one of
// the rows in bound (those the asking connection wrote) is still there.
func (s *Store) QueueExists(ctx context.Context, name string, bound []virtual.StoredBinding) (bool, error) {
	if s.closed.Load() {
		return false, errStoreClosed
	}
	pipe := s.rdb.Pipeline()
	lists := pipe.Exists(ctx, s.k.lists(name)...)
	rows := pipe.SMembers(ctx, s.k.binding(name))
	still := make([]*redis.BoolCmd, len(bound))
	for i, b := range bound {
		still[i] = pipe.SIsMember(ctx, s.k.binding(b.Exchange), bindingMember(b.RoutingKey, b.Pattern, b.Queue))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return false, s.wrap(ctx, "EXISTS", err)
	}
	if lists.Val() > 0 {
		return true, nil
	}
	for _, m := range rows.Val() {
		if _, _, q, ok := splitBindingMember(m); ok && q == name {
			return true, nil
		}
	}
	for _, c := range still {
		if c.Val() {
			return true, nil
		}
	}
	return false, nil
}

// AddBinding implements virtual.BindingStore: SADD of kombu's member.
func (s *Store) AddBinding(ctx context.Context, b virtual.StoredBinding) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	for _, n := range []string{b.Exchange, b.RoutingKey, b.Pattern, b.Queue} {
		if err := s.k.validateName("binding", n); err != nil {
			return err
		}
	}
	defer s.hub.invalidate(b.Exchange)
	err := s.rdb.SAdd(ctx, s.k.binding(b.Exchange), bindingMember(b.RoutingKey, b.Pattern, b.Queue)).Err()
	return s.wrap(ctx, "SADD", err)
}

// RemoveBinding implements virtual.BindingStore: SREM of the exact member.
func (s *Store) RemoveBinding(ctx context.Context, b virtual.StoredBinding) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	defer s.hub.invalidate(b.Exchange)
	err := s.rdb.SRem(ctx, s.k.binding(b.Exchange), bindingMember(b.RoutingKey, b.Pattern, b.Queue)).Err()
	return s.wrap(ctx, "SREM", err)
}

// Bindings implements virtual.BindingStore: SMEMBERS of the exchange's
// table, cached for Options.BindingCacheTTL. The cache is shared by every
// store of the process on the same database and is dropped at once when
// any of them binds or unbinds on that exchange, so within a process
// routing always sees its own bindings. Bindings made by other processes
// are seen within BindingCacheTTL (at once when the cached table was
// empty: empty tables are never cached).
func (s *Store) Bindings(ctx context.Context, exchange string) ([]virtual.StoredBinding, error) {
	if s.closed.Load() {
		return nil, errStoreClosed
	}
	if rows, ok := s.hub.table(exchange, s.o.BindingCacheTTL); ok {
		return rows, nil
	}
	gen := s.hub.generation()
	at := time.Now()
	members, err := s.rdb.SMembers(ctx, s.k.binding(exchange)).Result()
	if err != nil {
		return nil, s.wrap(ctx, "SMEMBERS", err)
	}
	rows := make([]virtual.StoredBinding, 0, len(members))
	for _, m := range members {
		rk, pat, q, ok := splitBindingMember(m)
		if !ok {
			continue
		}
		rows = append(rows, virtual.StoredBinding{Exchange: exchange, RoutingKey: rk, Pattern: pat, Queue: q})
	}
	s.hub.setTable(exchange, rows, at, gen)
	return rows, nil
}

// receipt is Item.Receipt: the unacked entry of one delivery.
type receipt struct {
	tag      string // field in unacked (the delivery tag, or its alternative)
	queue    string
	side     bool   // the delivery has an unacked_queue entry
	raw      []byte // the envelope as received
	priority uint8
	// undecodable: raw is not a kombu envelope, and is kept byte for
	// byte; poisoned: the take already moved it to the queue's poison
	// list (it has no unacked entry); list: the list it came from.
	undecodable, poisoned bool
	list                  string

	mu     sync.Mutex
	scores string // the unacked_index scores this delivery was given, space-separated
}

// own returns the unacked_index scores the delivery's entry was given (at
// the take, then by lease extensions): an entry with another score is not
// this delivery's (see takeScript).
func (r *receipt) own() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.scores
}

// sideArg is the ack argument telling takeScript whether to HDEL unacked_queue.
func (r *receipt) sideArg() string {
	if r.side {
		return "1"
	}
	return ""
}

// Get implements virtual.Store.
func (s *Store) Get(ctx context.Context, queues []string, wait time.Duration) (virtual.Item, error) {
	items, err := s.GetBatch(ctx, queues, 1, wait)
	if err != nil {
		return virtual.Item{}, err
	}
	if len(items) == 0 {
		return virtual.Item{}, driver.ErrEmpty
	}
	return items[0], nil
}

// GetBatch implements virtual.BatchGetter. Each attempt is one EVALSHA of
// takeScript, which also carries the acks made since the last attempt.
//
// Redis has no command that blocks on several lists and moves the element
// somewhere atomically (BLMOVE takes one source list; BRPOP and BLMPOP
// pop without recording), so a consumer that finds its queues empty polls
// again after a pause that doubles from 0.5 ms up to polling_interval, and
// is woken at once by a publish or broadcast made in this process. Under
// load the lists are not empty and no pause happens; idle, each consumer
// costs redis about 1/polling_interval cheap scripts per second. A wait
// that follows an empty poll of the same queues, with nothing published
// by this process since, starts with the pause instead of polling again.
func (s *Store) GetBatch(ctx context.Context, queues []string, max int, wait time.Duration) ([]virtual.Item, error) {
	if s.closed.Load() {
		return nil, errStoreClosed
	}
	if max <= 0 {
		max = 1
	}
	s.startSweeper()
	key := strings.Join(queues, "\x00")
	if wait <= 0 {
		items, err := s.take(ctx, queues, max, key)
		if err == nil && len(items) == 0 {
			err = driver.ErrEmpty
		}
		return items, err
	}
	var deadline time.Time
	skip := false
	if wait > 0 {
		deadline = time.Now().Add(wait)
		if g, ok := s.emptyAt.Load(key); ok && g.(uint64) == s.hub.published.Load() && !s.fanoutPending(queues) {
			skip = true
		}
	}
	pause := minPollPause
	for {
		// Register as a waiter before looking, so that a publish between
		// the look and the pause is not missed.
		wake, done := s.hub.waitChan()
		fwake := s.fanoutWake()
		if skip {
			skip = false
			if g, _ := s.emptyAt.Load(key); g != s.hub.published.Load() || s.fanoutPending(queues) {
				done()
				continue // something was published meanwhile: look now
			}
		} else {
			items, err := s.take(ctx, queues, max, key)
			if err != nil || len(items) > 0 {
				done()
				return items, err
			}
		}
		if wait <= 0 {
			done()
			return nil, driver.ErrEmpty
		}
		left := time.Until(deadline)
		if left <= 0 {
			done()
			return nil, driver.ErrEmpty
		}
		t := time.NewTimer(min(pause, left))
		select {
		case <-t.C:
			pause = min(pause*2, s.o.PollingInterval)
		case <-wake:
			pause = minPollPause
		case <-fwake:
			pause = minPollPause
		case <-ctx.Done():
			t.Stop()
			done()
			return nil, ctx.Err()
		case <-s.done:
			t.Stop()
			done()
			return nil, errStoreClosed
		}
		t.Stop()
		done()
	}
}

func randomSeed() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// seed returns a string unique to one take of this store: nonces and
// synthetic tags are the seed plus a counter inside the script.
func (s *Store) seed() string {
	return s.seedPrefix + strconv.FormatUint(s.takes.Add(1), 36) + "-"
}

// pollPlan is the cached key order of one set of queues.
type pollPlan struct {
	keys  []string // unacked, unacked_index, unacked_queue, the lists, their poison lists
	owner []int
	names []any // the queue name of each list, as script arguments
}

func (s *Store) plan(queues []string, key string) *pollPlan {
	if p, ok := s.plans.Load(key); ok {
		return p.(*pollPlan)
	}
	lists, owner := s.k.pollOrder(queues)
	p := &pollPlan{owner: owner}
	p.keys = append([]string{s.k.unacked, s.k.unackedIndex, s.k.unackedQueue}, lists...)
	for _, i := range owner {
		p.names = append(p.names, queues[i])
		p.keys = append(p.keys, s.k.poison(queues[i]))
	}
	s.plans.Store(key, p)
	return p
}

// takeRetries is how many times a take is sent again after a connection
// failure, once what the failed one may have moved is back in its queue.
const takeRetries = 2

// errScoreTaken is takeOnce's error when another consumer's deliveries
// already have the take's score (see takeScript): take again with another.
var errScoreTaken = errors.New("redis take: score in use")

// take runs takeScript: pending acks, buffered broadcasts of queues, then
// up to max envelopes from the lists. After a connection failure it sends
// the take again (at most takeRetries times), but only once the failed
// take is undone (see loseTake), so that no retry can hide a message.
func (s *Store) take(ctx context.Context, queues []string, max int, key string) ([]virtual.Item, error) {
	if s.lostPending.Load() {
		if err := s.undoLostTakes(ctx, true); err != nil {
			return nil, err
		}
	}
	for attempt, collisions := 0, 0; ; {
		items, err := s.takeOnce(ctx, queues, max, key)
		switch {
		case err == nil:
			return items, nil
		case errors.Is(err, errScoreTaken) && collisions < 10:
			collisions++
			continue
		case attempt >= takeRetries || ctx.Err() != nil || s.lostUnchecked() || !errors.Is(err, driver.ErrConnectionLost):
			return nil, err
		}
		attempt++
		t := time.NewTimer(time.Duration(attempt) * 50 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-s.done:
			t.Stop()
			return nil, errStoreClosed
		}
	}
}

// takeOnce runs takeScript once.
func (s *Store) takeOnce(ctx context.Context, queues []string, max int, key string) ([]virtual.Item, error) {
	published := s.hub.published.Load()
	fan, junk, err := s.poisonBroadcasts(ctx, s.takeFanout(queues, max))
	if err != nil {
		return nil, err
	}
	acks := s.stealAcks()
	listMax := max - len(fan) - len(junk)

	var p *pollPlan
	keys := []string{s.k.unacked, s.k.unackedIndex, s.k.unackedQueue}
	var owner []int
	if listMax > 0 {
		p = s.plan(queues, key)
		keys, owner = p.keys, p.owner
	}
	args := make([]any, 0, 5+2*len(acks)+3*len(fan)+len(owner))
	score := s.takeScore()
	args = append(args, score, listMax, len(acks), len(fan), s.seed())
	for _, r := range acks {
		args = append(args, r.tag, r.own(), r.sideArg())
	}
	for _, f := range fan {
		args = append(args, f.queue, f.env.DeliveryTag, unackedRecord(f.raw, f.env.Exchange, f.env.RoutingKey))
	}
	if p != nil {
		args = append(args, p.names...)
	}
	reply, err := takeScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		s.returnAcks(acks)
		if isReply(err) || neverSent(err) {
			// The script did not run (or failed as a whole).
			s.returnFanout(fan)
			if len(junk) > 0 {
				return junk, nil
			}
			return nil, s.wrap(ctx, "take", err)
		}
		// The script may have run and moved messages to unacked: restore
		// them now rather than after the visibility timeout.
		s.loseTake(score, fan)
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lostTakeUndoTimeout)
		_ = s.undoLostTakes(uctx, true)
		cancel()
		if len(junk) > 0 {
			return junk, nil // already in the poison list: report them now
		}
		return nil, s.wrap(ctx, "take", err)
	}
	if len(reply) == 0 {
		s.returnAcks(acks)
		s.returnFanout(fan)
		if len(junk) > 0 {
			return junk, nil
		}
		return nil, errScoreTaken
	}
	if len(reply) != 2 {
		return nil, errors.New("redis take: malformed script reply")
	}
	fanTags, _ := reply[0].([]any)
	res, _ := reply[1].([]any)
	if len(fanTags) != 2*len(fan) {
		return nil, errors.New("redis take: malformed script reply")
	}

	items := append(make([]virtual.Item, 0, len(junk)+len(fan)+len(res)/4), junk...)
	// Broadcasts come first: they were recorded before the pops.
	for i, f := range fan {
		tag, _ := fanTags[2*i].(string)
		side, _ := fanTags[2*i+1].(string)
		items = append(items, virtual.Item{
			Queue:    f.queue,
			Envelope: f.env,
			Receipt:  &receipt{tag: tag, side: side == "1", scores: score, queue: f.queue, raw: f.raw, priority: f.env.Properties.Priority},
		})
	}
	for i := 0; i+3 < len(res); i += 4 {
		idx, _ := res[i].(int64)
		raw, _ := res[i+1].(string)
		tag, _ := res[i+2].(string)
		side, _ := res[i+3].(string)
		if idx < 1 || int(idx) > len(owner) {
			return items, errors.New("redis take: malformed script reply")
		}
		queue := queues[owner[idx-1]]
		data := []byte(raw)
		r := &receipt{tag: tag, side: side == "1", scores: score, queue: queue, raw: data}
		env, derr := virtual.UnmarshalEnvelope(data)
		if side == "P" || derr != nil {
			// Not a kombu message: the consumer's decode error path gets
			// it, and it goes back to the very list it came from if
			// requeued (see Quarantine).
			r.undecodable, r.poisoned, r.list = true, side == "P", keys[2+idx]
			items = append(items, virtual.UndecodableItem(queue, data, undecodable(data, derr), r))
			continue
		}
		r.priority = env.Properties.Priority
		items = append(items, virtual.Item{Queue: queue, Envelope: env, Receipt: r})
	}
	if len(items) == 0 && len(res) == 0 {
		s.emptyAt.Store(key, published)
	} else {
		s.emptyAt.Delete(key)
	}
	return items, nil
}

// undecodable says why raw is not a kombu envelope.
func undecodable(raw []byte, err error) error {
	switch {
	case len(raw) == 0:
		return fmt.Errorf("%w: empty", virtual.ErrBadEnvelope)
	case err == nil:
		return fmt.Errorf("%w: not a JSON object", virtual.ErrBadEnvelope)
	}
	return err
}

// takeScore is the unacked_index score of a take's deliveries: the time in
// microseconds, as nowScore, but strictly greater than the store's previous
// one, so that no two deliveries of the store get the same score (it is a
// delivery's identity; see takeScript). Take scores are even numbers of
// microseconds and leaseScore's odd, so that a lease extension never gives
// an entry the score of a take.
func (s *Store) takeScore() string {
	now := time.Now().UnixMicro()
	now += now & 1
	for {
		last := s.lastScore.Load()
		us := max(now, last+2)
		if s.lastScore.CompareAndSwap(last, us) {
			return microScore(us)
		}
	}
}

// nowScore is kombu's unacked_index score: Unix time in float seconds.
func nowScore(t time.Time) string { return microScore(t.UnixMicro()) }

// leaseScore is nowScore rounded to an odd number of microseconds, the
// score of entries whose lease moved (see takeScore).
func leaseScore(t time.Time) string { return microScore(leaseMicros(t)) }

// leaseMicros is t in microseconds, made odd (see takeScore).
func leaseMicros(t time.Time) int64 { return t.UnixMicro() | 1 }

// microScore is an unacked_index score of us microseconds, in seconds.
func microScore(us int64) string { return strconv.FormatFloat(float64(us)/1e6, 'f', 6, 64) }

// unackedRecord is the unacked hash value kombu writes:
// [envelope, exchange, routing_key] with Python's ", " separator.
func unackedRecord(raw []byte, exchange, routingKey string) string {
	var b bytes.Buffer
	b.Grow(len(raw) + len(exchange) + len(routingKey) + 16)
	b.WriteByte('[')
	b.Write(raw)
	b.WriteString(", ")
	writeJSONString(&b, exchange)
	b.WriteString(", ")
	writeJSONString(&b, routingKey)
	b.WriteByte(']')
	return b.String()
}

// writeJSONString writes s as Python's json.dumps does by default
// (ensure_ascii), like the take script's jstr, so that records are the
// bytes Python kombu would write.
func writeJSONString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	u := func(r rune) {
		b.WriteString(`\u`)
		b.WriteByte(hex[r>>12&0xf])
		b.WriteByte(hex[r>>8&0xf])
		b.WriteByte(hex[r>>4&0xf])
		b.WriteByte(hex[r&0xf])
	}
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || r == 0x7f:
			u(r)
		case r < 0x80:
			b.WriteByte(byte(r))
		case r > 0xffff:
			r -= 0x10000
			u(0xd800 + r>>10)
			u(0xdc00 + r&0x3ff)
		default:
			u(r)
		}
	}
	b.WriteByte('"')
}

var errNoReceipt = fmt.Errorf("%w: redis: item has no redis receipt", driver.ErrInvalidArgument)

// receiptOf returns the item's receipt, or why the store cannot act on it.
func (s *Store) receiptOf(it virtual.Item) (*receipt, error) {
	r, ok := it.Receipt.(*receipt)
	if !ok {
		return nil, errNoReceipt
	}
	if s.closed.Load() {
		return nil, errStoreClosed
	}
	return r, nil
}

// Ack implements virtual.Acker. The ack is sent with the next fetch of
// this store (takeScript), or on its own after ackFlushDelay when no fetch
// comes, and always before Close returns. Like an AMQP basic.ack it is
// not confirmed: if the process dies before it is sent, the message is
// delivered again after the visibility timeout (never lost).
func (s *Store) Ack(ctx context.Context, it virtual.Item) error {
	r, err := s.receiptOf(it)
	if err != nil {
		return err
	}
	if r.poisoned {
		return s.ackPoisoned(ctx, r)
	}
	s.addAcks(r)
	return nil
}

// AckBatch implements virtual.BatchAcker.
func (s *Store) AckBatch(ctx context.Context, items []virtual.Item) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	rs := make([]*receipt, 0, len(items))
	var errs []error
	for _, it := range items {
		r, ok := it.Receipt.(*receipt)
		if !ok {
			return errNoReceipt
		}
		if r.poisoned {
			errs = append(errs, s.ackPoisoned(ctx, r))
			continue
		}
		rs = append(rs, r)
	}
	s.addAcks(rs...)
	return errors.Join(errs...)
}

func (s *Store) addAcks(rs ...*receipt) {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	if len(s.pendingAcks) == 0 {
		s.ackSince = time.Now()
	}
	s.pendingAcks = append(s.pendingAcks, rs...)
	if s.ackArmed {
		return
	}
	s.ackArmed = true
	if s.ackTimer == nil {
		s.ackTimer = time.AfterFunc(ackFlushDelay, s.flushAcksAsync)
	} else {
		s.ackTimer.Reset(ackFlushDelay)
	}
}

func (s *Store) stealAcks() []*receipt {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	acks := s.pendingAcks
	s.pendingAcks = nil
	return acks
}

// returnAcks puts acks whose sending failed back to be retried.
func (s *Store) returnAcks(acks []*receipt) {
	if len(acks) == 0 || s.closed.Load() {
		return
	}
	s.ackMu.Lock()
	s.pendingAcks = append(acks, s.pendingAcks...)
	s.ackMu.Unlock()
}

func (s *Store) flushAcksAsync() {
	s.ackMu.Lock()
	if len(s.pendingAcks) > 0 {
		// Acks taken by fetches meanwhile reset the clock: wait until the
		// oldest pending one is ackFlushDelay old.
		if wait := ackFlushDelay - time.Since(s.ackSince); wait > 0 {
			s.ackTimer.Reset(wait)
			s.ackMu.Unlock()
			return
		}
	}
	s.ackArmed = false
	s.ackMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.flushAcks(ctx); err != nil && !s.closed.Load() {
		// Retry later; the entries stay in unacked meanwhile.
		s.ackMu.Lock()
		if !s.ackArmed && s.ackTimer != nil {
			s.ackArmed = true
			s.ackTimer.Reset(100 * time.Millisecond)
		}
		s.ackMu.Unlock()
	}
}

// flushAcks sends pending acks now, in one round trip.
func (s *Store) flushAcks(ctx context.Context) error {
	acks := s.stealAcks()
	if len(acks) == 0 {
		return nil
	}
	keys := []string{s.k.unacked, s.k.unackedIndex, s.k.unackedQueue}
	args := make([]any, 0, 5+2*len(acks))
	args = append(args, nowScore(time.Now()), 0, len(acks), 0, s.seed())
	for _, r := range acks {
		args = append(args, r.tag, r.own(), r.sideArg())
	}
	if err := takeScript.Run(ctx, s.rdb, keys, args...).Err(); err != nil {
		s.returnAcks(acks)
		return s.wrap(ctx, "ack", err)
	}
	return nil
}

// Requeue implements virtual.Acker: in one atomic step, it drops the
// unacked entry and RPUSHes the envelope, marked redelivered as kombu marks
// it, to the front of its queue (the list of its priority step), so that it
// is the next message delivered, as AMQP requeues and as kombu restores the
// unacked messages of a closing channel. (kombu's reject(requeue=True)
// LPUSHes to the back instead; virtual uses Requeue for both.) If the entry
// is gone (its visibility timeout expired and it was restored), the message
// is already back in its queue and nothing happens. Several deliveries
// handed back together go through RequeueBatch, which keeps their order.
func (s *Store) Requeue(ctx context.Context, it virtual.Item) error {
	r, err := s.receiptOf(it)
	if err != nil {
		return err
	}
	return s.restoreOwn(ctx, r, "R")
}

func (s *Store) restoreOwn(ctx context.Context, r *receipt, dir string) error {
	if r.poisoned {
		return s.requeuePoisoned(ctx, r)
	}
	payload := r.raw
	if !r.undecodable {
		if marked, err := markRedelivered(r.raw); err == nil {
			payload = marked
		}
	}
	list := r.list
	if list == "" {
		list = s.k.list(r.queue, s.k.step(r.priority))
	}
	keys := []string{s.k.unacked, s.k.unackedIndex, s.k.unackedQueue, list}
	err := restoreScript.Run(ctx, s.rdb, keys, r.tag, "own", r.own(), anyLease, payload, dir).Err()
	if err != nil {
		return s.wrap(ctx, "requeue", err)
	}
	s.hub.notify()
	return nil
}

// ExtendLease implements virtual.LeaseExtender: the delivery's
// unacked_index score moves so that its visibility timeout ends d from
// now. It fails with driver.ErrPreconditionFailed when the delivery was
// already restored (its lease had expired).
func (s *Store) ExtendLease(ctx context.Context, it virtual.Item, d time.Duration) error {
	r, err := s.receiptOf(it)
	if err != nil {
		return err
	}
	if r.poisoned {
		return nil // in the poison list, no lease to keep
	}
	score := leaseScore(time.Now().Add(d - s.o.VisibilityTimeout))
	// The new score joins the receipt's before it is set, so that acks
	// made after ExtendLease returns (or fails) match whichever is current.
	r.mu.Lock()
	own := r.scores
	r.scores = own + " " + score
	r.mu.Unlock()
	n, err := extendScript.Run(ctx, s.rdb, []string{s.k.unackedIndex}, r.tag, own, score).Int()
	if err != nil {
		return s.wrap(ctx, "extend lease", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: redis: the lease of delivery %q has expired and it was restored", driver.ErrPreconditionFailed, r.tag)
	}
	return nil
}

// Close implements virtual.Store: it sends pending acks, stops the
// broadcast subscriber and the restore sweeper, and closes the client.
// It is idempotent.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = s.flushAcks(ctx)
		if s.lostPending.Load() {
			err = errors.Join(err, s.undoLostTakes(ctx, false))
		}
		s.closed.Store(true)
		s.ackMu.Lock()
		if s.ackTimer != nil {
			s.ackTimer.Stop()
		}
		s.ackMu.Unlock()
		close(s.done)
		s.fanMu.Lock()
		fan := s.fan
		s.fanMu.Unlock()
		if fan != nil {
			fan.close()
		}
		s.wg.Wait()
		if cerr := s.rdb.Close(); err == nil {
			err = cerr
		}
		clientLogs.remove(s)
	})
	return err
}
