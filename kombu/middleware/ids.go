package middleware

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

// MessageKey returns what identifies a message for Dedup: its message_id
// property, else the "id" header of a Celery task message (protocol 2);
// "" when it has neither.
func MessageKey(m *kombu.Message) string {
	if m.Properties.MessageID != "" {
		return m.Properties.MessageID
	}
	if id, ok := m.Headers["id"].(string); ok {
		return id
	}
	return ""
}

// DedupOptions configure Dedup.
type DedupOptions struct {
	// Window is how long a handled message's key is remembered; 0 means
	// 5 minutes.
	Window time.Duration
	// MaxKeys bounds the memory used: beyond it the oldest keys are
	// forgotten early; 0 means 100000.
	MaxKeys int
	// Key identifies a message; nil means MessageKey. Messages whose key
	// is "" are always handled.
	Key func(*kombu.Message) string
	// OnDuplicate, when set, is told about each duplicate skipped.
	OnDuplicate func(ctx context.Context, m *kombu.Message)
}

// Dedup skips a message whose key was handled successfully within the
// window: its handler is not called and the message is acked (brokers
// deliver at least once; a publisher retrying after a lost confirm sends
// twice). Only successes are remembered, so a failed message is handled
// again when it comes back. Two copies handled at the same moment both
// run. The memory is per process and per Dedup value: share one value
// between consumers to deduplicate across them.
func Dedup(o DedupOptions) kombu.Middleware {
	if o.Window < 0 || o.MaxKeys < 0 {
		panic(fmt.Sprintf("kombu/middleware: Dedup: negative Window %v or MaxKeys %d", o.Window, o.MaxKeys))
	}
	if o.Window == 0 {
		o.Window = 5 * time.Minute
	}
	if o.MaxKeys == 0 {
		o.MaxKeys = 100000
	}
	if o.Key == nil {
		o.Key = MessageKey
	}
	seen := &seenKeys{window: o.Window, max: o.MaxKeys, at: map[string]time.Time{}, now: time.Now}
	return func(next kombu.Handler) kombu.Handler {
		return kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
			key := o.Key(m)
			if key == "" {
				return next.HandleMessage(ctx, m)
			}
			if seen.contains(key) {
				if o.OnDuplicate != nil {
					o.OnDuplicate(ctx, m)
				}
				return nil
			}
			err := next.HandleMessage(ctx, m)
			if err == nil {
				seen.add(key)
			}
			return err
		})
	}
}

// seenKeys remembers keys for a window, oldest first.
type seenKeys struct {
	mu     sync.Mutex
	window time.Duration
	max    int
	at     map[string]time.Time // key -> when it was added
	order  []seenKey            // in the order added; may hold stale entries
	now    func() time.Time
}

type seenKey struct {
	key string
	at  time.Time
}

func (s *seenKeys) contains(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.at[key]
	return ok && s.now().Sub(t) < s.window
}

func (s *seenKeys) add(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.at[key] = now
	s.order = append(s.order, seenKey{key, now})
	// Forget what expired, and the oldest beyond max.
	drop := 0
	for drop < len(s.order) {
		e := s.order[drop]
		if now.Sub(e.at) < s.window && len(s.at) <= s.max {
			break
		}
		if s.at[e.key] == e.at { // not re-added since
			delete(s.at, e.key)
		}
		drop++
	}
	if drop > 0 {
		s.order = append(s.order[:0:0], s.order[drop:]...)
	}
}

type correlationKey struct{}

// WithCorrelationID returns ctx carrying id, as CorrelationID does.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey{}, id)
}

// CorrelationIDFrom returns the correlation id CorrelationID put in ctx.
func CorrelationIDFrom(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(correlationKey{}).(string)
	return id, ok && id != ""
}

// CorrelationID puts the message's correlation id in the handler's
// context (CorrelationIDFrom reads it): its correlation_id property, else
// its MessageKey, else a new random id. With PropagateCorrelationID
// installed as the connection's observer, messages the handler publishes
// with that context carry the same correlation id.
func CorrelationID() kombu.Middleware {
	return func(next kombu.Handler) kombu.Handler {
		return kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
			id := m.Properties.CorrelationID
			if id == "" {
				id = MessageKey(m)
			}
			if id == "" {
				id = newID()
			}
			return next.HandleMessage(WithCorrelationID(ctx, id), m)
		})
	}
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// PropagateCorrelationID is a kombu.Observer (for Options.Observer,
// combined with others by kombu.Observers) that sets the correlation_id of
// every message published with a context carrying a correlation id, unless
// the publish sets one itself.
type PropagateCorrelationID struct{}

func noEnd(error) {}

// StartPublish sets p.CorrelationID from ctx when it is empty.
func (PropagateCorrelationID) StartPublish(ctx context.Context, p *kombu.PublishInfo) (context.Context, func(error)) {
	if p.CorrelationID == "" {
		if id, ok := CorrelationIDFrom(ctx); ok {
			p.CorrelationID = id
		}
	}
	return ctx, noEnd
}

// StartHandle does nothing.
func (PropagateCorrelationID) StartHandle(ctx context.Context, _ *kombu.Message) (context.Context, func(error)) {
	return ctx, noEnd
}

// Observe does nothing.
func (PropagateCorrelationID) Observe(context.Context, kombu.Event) {}
