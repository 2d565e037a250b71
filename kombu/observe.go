package kombu

import (
	"context"
	"log/slog"
	"strconv"
	"time"
)

// Observer sees what happens to a Connection's messages and to the
// connection itself: the hook that tracing, metrics and logging backends
// implement (package otelkombu implements it with OpenTelemetry). Set it
// in Options.Observer; nil costs one pointer comparison per call site.
//
// Methods are called from the goroutines doing the work (publishers,
// handlers, the dialer): they must be safe for concurrent use, and quick.
type Observer interface {
	// StartPublish is called once per message given to Publish or
	// PublishBatch (retries included), after it was serialized and before
	// any I/O. It may add string headers to p.Headers, such as a trace
	// context. The function it returns is called once with the outcome:
	// nil when the broker took the message (confirmed, where the transport
	// confirms), or the error Publish returns.
	StartPublish(ctx context.Context, p *PublishInfo) (context.Context, func(err error))
	// StartHandle is called before a Consumer (or Worker) runs its Handler
	// on m; the context it returns is the handler's. The function it
	// returns is called with the handler's error (a *PanicError for a
	// panic) once the message is settled.
	StartHandle(ctx context.Context, m *Message) (context.Context, func(err error))
	// Observe is told about every other event (see EventKind).
	Observe(ctx context.Context, e Event)
}

// PublishInfo describes a message about to be published.
type PublishInfo struct {
	Transport  string
	Exchange   string
	RoutingKey string
	MessageID  string
	// CorrelationID is the message's correlation_id property; an observer
	// may set it (propagating the id of the message being handled).
	CorrelationID string
	BodySize      int // bytes, after serialization and compression
	// Headers are the message's application headers, a copy owned by the
	// publish: an observer may add string values. It may be nil; assign
	// a new map to add to it.
	Headers map[string]any
}

// EventKind says what an Event reports.
type EventKind uint8

const (
	// Connection events, also written to Options.Logger.
	EventConnected       EventKind = iota + 1 // first connection established (URL)
	EventReconnected                          // connected again after a loss or Reconnect (URL)
	EventConnectionLost                       // the live connection was found gone (Err)
	EventFailover                             // moving from URL to ToURL after Err
	EventRetry                                // Ensure or EnsureConnection retries after Err in Wait (Attempt)
	EventChannelError                         // a channel or consumer tag ended by the broker (Queue, Err)
	EventConsumerStarted                      // Consume or a Worker's consumer started (Queue: first queue)
	EventConsumerStopped                      // it stopped (Err: why)

	// Message events, on the hot path: never logged by the core.
	EventDelivered    // a message reached a consumer (Message)
	EventAcked        // settled: acked (Message)
	EventRejected     // settled: rejected without requeue (Message)
	EventRequeued     // settled: requeued (Message)
	EventRedelivered  // the redelivery policy republished it (Message, Attempt: its deliveries so far)
	EventDeadLettered // the redelivery policy dead-lettered it (Message, Attempt)
	EventDecodeError  // it could not be decoded or its content type is refused (Message, Err)
	EventReturned     // an unroutable mandatory publish came back (Exchange, RoutingKey)
)

var eventNames = [...]string{
	EventConnected: "connected", EventReconnected: "reconnected", EventConnectionLost: "connection_lost",
	EventFailover: "failover", EventRetry: "retry", EventChannelError: "channel_error",
	EventConsumerStarted: "consumer_started", EventConsumerStopped: "consumer_stopped",
	EventDelivered: "delivered", EventAcked: "acked", EventRejected: "rejected", EventRequeued: "requeued",
	EventRedelivered: "redelivered", EventDeadLettered: "dead_lettered", EventDecodeError: "decode_error",
	EventReturned: "returned",
}

// String is the event's name in snake case ("dead_lettered"), as used in
// metric attributes and log messages.
func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return "event(" + strconv.Itoa(int(k)) + ")"
}

// Event is one thing an Observer is told about. Only the fields its Kind
// names are set. URLs never contain a password.
type Event struct {
	Kind       EventKind
	Transport  string
	Queue      string
	Exchange   string
	RoutingKey string
	Message    *Message // message events
	URL        string   // connection events
	ToURL      string   // EventFailover
	Err        error
	Wait       time.Duration // EventRetry
	Attempt    int
}

// Observers combines observers: each is called in order, and the
// contexts StartPublish and StartHandle return are threaded through them,
// so that a tracer's span is visible to a logger after it. nil entries
// are skipped; with none left it returns nil.
func Observers(obs ...Observer) Observer {
	var list multiObserver
	for _, o := range obs {
		if o != nil {
			list = append(list, o)
		}
	}
	switch len(list) {
	case 0:
		return nil
	case 1:
		return list[0]
	}
	return list
}

type multiObserver []Observer

func (m multiObserver) StartPublish(ctx context.Context, p *PublishInfo) (context.Context, func(error)) {
	ends := make([]func(error), len(m))
	for i, o := range m {
		ctx, ends[i] = o.StartPublish(ctx, p)
	}
	return ctx, endAll(ends)
}

func (m multiObserver) StartHandle(ctx context.Context, msg *Message) (context.Context, func(error)) {
	ends := make([]func(error), len(m))
	for i, o := range m {
		ctx, ends[i] = o.StartHandle(ctx, msg)
	}
	return ctx, endAll(ends)
}

func (m multiObserver) Observe(ctx context.Context, e Event) {
	for _, o := range m {
		o.Observe(ctx, e)
	}
}

// endAll ends in reverse order, as nested spans end.
func endAll(ends []func(error)) func(error) {
	return func(err error) {
		for i := len(ends) - 1; i >= 0; i-- {
			if ends[i] != nil {
				ends[i](err)
			}
		}
	}
}

// observe tells the connection's observer about a message event.
func (c *Connection) observe(ctx context.Context, e Event) {
	if c.opts.Observer == nil {
		return
	}
	if e.Transport == "" {
		e.Transport = c.TransportName()
	}
	c.opts.Observer.Observe(ctx, e)
}

// observeMessage reports a message event on m.
func (m *Message) observe(ctx context.Context, kind EventKind, attempt int, err error) {
	conn := m.ch.conn
	if conn.opts.Observer == nil {
		return
	}
	conn.observe(ctx, Event{Kind: kind, Queue: m.Queue, Exchange: m.Exchange, RoutingKey: m.RoutingKey,
		Message: m, Attempt: attempt, Err: err})
}

// lifecycle reports a connection or consumer event to the observer and
// writes it to Options.Logger at level (nothing without a Logger).
func (c *Connection) lifecycle(ctx context.Context, level slog.Level, e Event) {
	if e.Transport == "" {
		e.Transport = c.TransportName()
	}
	if c.opts.Observer != nil {
		c.opts.Observer.Observe(ctx, e)
	}
	l := c.opts.Logger
	if l == nil || !l.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs, slog.String("event", e.Kind.String()), slog.String("transport", e.Transport))
	if e.URL != "" {
		attrs = append(attrs, slog.String("url", e.URL))
	}
	if e.ToURL != "" {
		attrs = append(attrs, slog.String("to_url", e.ToURL))
	}
	if e.Queue != "" {
		attrs = append(attrs, slog.String("queue", e.Queue))
	}
	if e.Kind == EventRetry {
		attrs = append(attrs, slog.Int("attempt", e.Attempt), slog.Duration("wait", e.Wait))
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("err", e.Err.Error()))
	}
	l.LogAttrs(ctx, level, "kombu: "+lifecycleMessages[e.Kind], attrs...)
}

var lifecycleMessages = map[EventKind]string{
	EventConnected:       "connected",
	EventReconnected:     "reconnected",
	EventConnectionLost:  "connection lost",
	EventFailover:        "failing over to the next URL",
	EventRetry:           "retrying after a connection error",
	EventChannelError:    "channel error",
	EventConsumerStarted: "consumer started",
	EventConsumerStopped: "consumer stopped",
}
