package redis

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kombu-go/kombu/virtual"
)

// fanMsg is one broadcast waiting in process for a Get of its queue.
type fanMsg struct {
	queue string
	raw   []byte
	env   *virtual.Envelope
	err   error // why raw is not a kombu envelope (env is nil)
}

// fanout is the store's pub/sub subscriber: one PSUBSCRIBE connection for
// every fanout binding of the store, with the broadcasts buffered per queue
// until Get takes them. Like kombu's, it delivers only what is published
// while the subscription is live (at-most-once).
type fanout struct {
	ps      *redis.PubSub
	mu      sync.Mutex
	queues  map[string]map[string]int  // pattern -> queue -> binding count
	buf     map[string][]fanMsg        // queue -> broadcasts, oldest first
	waiting map[string][]chan struct{} // pattern -> BindFanout calls awaiting the PSUBSCRIBE reply
	wake    chan struct{}              // closed and replaced when broadcasts arrive
	dropped atomic.Int64
	stopped chan struct{}
	hub     *hub
}

func (s *Store) fanoutSub() *fanout {
	s.fanMu.Lock()
	defer s.fanMu.Unlock()
	if s.fan != nil {
		return s.fan
	}
	f := &fanout{
		ps:      s.rdb.PSubscribe(context.Background()),
		queues:  map[string]map[string]int{},
		buf:     map[string][]fanMsg{},
		waiting: map[string][]chan struct{}{},
		wake:    make(chan struct{}),
		stopped: make(chan struct{}),
		hub:     s.hub,
	}
	opts := []redis.ChannelOption{redis.WithChannelSize(1024), redis.WithChannelHealthCheckInterval(s.o.HealthCheckInterval)}
	ch := f.ps.ChannelWithSubscriptions(opts...)
	go f.run(ch)
	s.fan = f
	return f
}

func (f *fanout) run(ch <-chan any) {
	defer close(f.stopped)
	for m := range ch {
		switch m := m.(type) {
		case *redis.Subscription:
			if m.Kind != "psubscribe" {
				continue
			}
			f.mu.Lock()
			for _, c := range f.waiting[m.Channel] {
				close(c)
			}
			delete(f.waiting, m.Channel)
			f.mu.Unlock()
		case *redis.Message:
			f.deliver(m)
		}
	}
}

func (f *fanout) deliver(m *redis.Message) {
	raw := []byte(m.Payload)
	f.mu.Lock()
	defer f.mu.Unlock()
	qs := f.queues[m.Pattern]
	if len(qs) == 0 {
		return
	}
	for q := range qs {
		if len(f.buf[q]) >= fanoutBufferLimit {
			f.dropped.Add(1)
			continue
		}
		// Each queue gets its own envelope; one that is not a kombu
		// message is handed to the consumer as undecodable (see take).
		env, err := virtual.UnmarshalEnvelope(raw)
		f.buf[q] = append(f.buf[q], fanMsg{queue: q, raw: raw, env: env, err: err})
	}
	close(f.wake)
	f.wake = make(chan struct{})
	f.hub.published.Add(1)
}

func (f *fanout) close() {
	_ = f.ps.Close()
	<-f.stopped
}

// PutFanout implements virtual.Fanouter: PUBLISH to kombu's channel
// /{db}.<exchange>[/<routing_key>].
func (s *Store) PutFanout(ctx context.Context, exchange, routingKey string, env *virtual.Envelope) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	if err := validateFanout(exchange); err != nil {
		return err
	}
	data, err := encode(env)
	if err != nil {
		return err
	}
	return s.wrapWrite(ctx, "PUBLISH", s.rdb.Publish(ctx, s.k.fanoutChannel(exchange, routingKey), data).Err())
}

// BindFanout implements virtual.Fanouter: PSUBSCRIBE to the exchange's
// channels (keys.fanoutPatterns). It returns once redis has confirmed the
// subscription, so a broadcast published after BindFanout returns is
// received.
func (s *Store) BindFanout(ctx context.Context, exchange, routingKey, queue string) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	if err := validateFanout(exchange); err != nil {
		return err
	}
	if err := s.k.validateName(kindQueue, queue); err != nil {
		return err
	}
	patterns := s.k.fanoutPatterns(exchange)
	f := s.fanoutSub()
	var subscribe []string
	var waits []chan struct{}
	f.mu.Lock()
	for _, p := range patterns {
		qs := f.queues[p]
		if qs == nil {
			qs = map[string]int{}
			f.queues[p] = qs
		}
		subscribed := len(qs) > 0
		qs[queue]++
		if subscribed && len(f.waiting[p]) == 0 {
			continue
		}
		if !subscribed {
			subscribe = append(subscribe, p)
		}
		c := make(chan struct{})
		f.waiting[p] = append(f.waiting[p], c)
		waits = append(waits, c)
	}
	f.mu.Unlock()

	undo := func() {
		f.mu.Lock()
		for _, p := range patterns {
			f.unref(p, queue)
		}
		f.mu.Unlock()
	}
	if len(subscribe) > 0 {
		if err := f.ps.PSubscribe(ctx, subscribe...); err != nil {
			undo()
			return s.wrap(ctx, "PSUBSCRIBE", err)
		}
	}
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	for _, c := range waits {
		select {
		case <-c:
		case <-ctx.Done():
			undo()
			return ctx.Err()
		case <-t.C:
			undo()
			return fmt.Errorf("redis PSUBSCRIBE %q: no confirmation from the server", patterns)
		case <-s.done:
			return errStoreClosed
		}
	}
	return nil
}

// unref drops one binding of queue to pattern; the caller holds f.mu.
// It reports whether nobody listens to pattern any more.
func (f *fanout) unref(pattern, queue string) bool {
	qs := f.queues[pattern]
	if qs == nil {
		return false
	}
	if qs[queue] > 1 {
		qs[queue]--
		return false
	}
	delete(qs, queue)
	if !f.listens(queue) {
		delete(f.buf, queue)
	}
	if len(qs) > 0 {
		return false
	}
	delete(f.queues, pattern)
	return true
}

func (f *fanout) listens(queue string) bool {
	for _, qs := range f.queues {
		if qs[queue] > 0 {
			return true
		}
	}
	return false
}

// UnbindFanout implements virtual.Fanouter: PUNSUBSCRIBE once no queue of
// the store listens to the exchange any more.
func (s *Store) UnbindFanout(ctx context.Context, exchange, routingKey, queue string) error {
	if s.closed.Load() {
		return errStoreClosed
	}
	s.fanMu.Lock()
	f := s.fan
	s.fanMu.Unlock()
	if f == nil {
		return nil
	}
	var gone []string
	f.mu.Lock()
	for _, p := range s.k.fanoutPatterns(exchange) {
		if f.unref(p, queue) {
			gone = append(gone, p)
		}
	}
	f.mu.Unlock()
	if len(gone) > 0 {
		return s.wrap(ctx, "PUNSUBSCRIBE", f.ps.PUnsubscribe(ctx, gone...))
	}
	return nil
}

// dropFanoutQueue forgets the buffered broadcasts of a deleted queue.
func (s *Store) dropFanoutQueue(queue string) {
	s.fanMu.Lock()
	f := s.fan
	s.fanMu.Unlock()
	if f == nil {
		return
	}
	f.mu.Lock()
	delete(f.buf, queue)
	f.mu.Unlock()
}

// fanoutWake returns a channel closed when broadcasts arrive (nil, which
// never fires, when the store has no fanout binding).
func (s *Store) fanoutWake() <-chan struct{} {
	s.fanMu.Lock()
	f := s.fan
	s.fanMu.Unlock()
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.wake
}

// fanoutPending reports whether broadcasts wait for one of queues.
func (s *Store) fanoutPending(queues []string) bool {
	s.fanMu.Lock()
	f := s.fan
	s.fanMu.Unlock()
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, q := range queues {
		if len(f.buf[q]) > 0 {
			return true
		}
	}
	return false
}

// takeFanout removes up to max buffered broadcasts of queues, in the
// order of queues.
func (s *Store) takeFanout(queues []string, max int) []fanMsg {
	s.fanMu.Lock()
	f := s.fan
	s.fanMu.Unlock()
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fanMsg
	for _, q := range queues {
		b := f.buf[q]
		if len(b) == 0 {
			continue
		}
		n := min(len(b), max-len(out))
		out = append(out, b[:n]...)
		if n == len(b) {
			delete(f.buf, q)
		} else {
			f.buf[q] = b[n:]
		}
		if len(out) == max {
			break
		}
	}
	return out
}

// returnFanout puts broadcasts back at the head of their buffers after a
// failed take.
func (s *Store) returnFanout(msgs []fanMsg) {
	if len(msgs) == 0 {
		return
	}
	s.fanMu.Lock()
	f := s.fan
	s.fanMu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		if !f.listens(m.queue) {
			continue
		}
		f.buf[m.queue] = append([]fanMsg{m}, f.buf[m.queue]...)
	}
}

// FanoutDropped reports how many broadcasts were dropped because their
// queue's buffer was full.
func (s *Store) FanoutDropped() int64 {
	s.fanMu.Lock()
	f := s.fan
	s.fanMu.Unlock()
	if f == nil {
		return 0
	}
	return f.dropped.Load()
}

// poisonBroadcasts moves the broadcasts of msgs that are not kombu
// envelopes to their queues' poison lists, and returns the others and, as
// undecodable items, those.
func (s *Store) poisonBroadcasts(ctx context.Context, msgs []fanMsg) ([]fanMsg, []virtual.Item, error) {
	var good, junk []fanMsg
	for _, m := range msgs {
		if m.err != nil {
			junk = append(junk, m)
		} else {
			good = append(good, m)
		}
	}
	if len(junk) == 0 {
		return msgs, nil, nil
	}
	pipe := s.rdb.Pipeline()
	for _, m := range junk {
		pipe.LPush(ctx, s.k.poison(m.queue), m.raw)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		s.returnFanout(msgs)
		return nil, nil, s.wrap(ctx, "LPUSH poison", err)
	}
	items := make([]virtual.Item, len(junk))
	for i, m := range junk {
		r := &receipt{queue: m.queue, raw: m.raw, undecodable: true, poisoned: true, list: s.k.list(m.queue, 0)}
		items[i] = virtual.UndecodableItem(m.queue, m.raw, m.err, r)
	}
	return good, items, nil
}
