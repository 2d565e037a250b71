// Package otelkombu traces and measures kombu-go with OpenTelemetry. It is
// a kombu.Observer: set it as the connection's Options.Observer, and
//
//   - every Publish gets a "publish <destination>" span (kind producer),
//     whose W3C trace context goes into the message headers "traceparent"
//     and "tracestate" (and "baggage"), the names OpenTelemetry's Python
//     Celery instrumentation uses;
//   - every message a Consumer or Worker hands to its Handler gets a
//     "process <queue>" span (kind consumer), child of the context the
//     producer put in the headers, so that one trace runs from the
//     publishing service through the broker into the handler, on every
//     transport and to and from Python;
//   - counters and histograms follow OpenTelemetry's messaging semantic
//     conventions (messaging.client.sent.messages,
//     messaging.client.consumed.messages,
//     messaging.client.operation.duration, messaging.process.duration)
//     and add kombu's settlements and connection events (see Metrics).
//
// The core package kombu does not import OpenTelemetry: only programs that
// import otelkombu pay for it.
package otelkombu

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/kombu-go/kombu/kombu"
)

// ScopeName is the instrumentation scope of otelkombu's tracer and meter.
const ScopeName = "github.com/kombu-go/kombu/kombu/otelkombu"

// Option configures New.
type Option func(*config)

type config struct {
	tp               trace.TracerProvider
	mp               metric.MeterProvider
	propagator       propagation.TextMapPropagator
	settlementEvents bool
}

// WithTracerProvider sets the tracer provider; the default is the global
// one (otel.GetTracerProvider).
func WithTracerProvider(tp trace.TracerProvider) Option { return func(c *config) { c.tp = tp } }

// WithMeterProvider sets the meter provider; the default is the global
// one (otel.GetMeterProvider).
func WithMeterProvider(mp metric.MeterProvider) Option { return func(c *config) { c.mp = mp } }

// WithPropagator sets how the trace context is written to and read from
// message headers. The default is W3C Trace Context and Baggage
// (traceparent, tracestate, baggage), whatever the global propagator is,
// so that kombu-go and Python producers understand each other out of the
// box.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.propagator = p }
}

// WithSettlementEvents adds a span event per settlement ("acked",
// "redelivered", ...) to the process span, beside the
// messaging.kombu.message.settlement attribute it always gets. Off by
// default: an event costs the SDK about five allocations per message.
func WithSettlementEvents() Option { return func(c *config) { c.settlementEvents = true } }

// Observer is the kombu.Observer that traces and measures.
type Observer struct {
	tracer           trace.Tracer
	meter            metric.Meter
	propagator       propagation.TextMapPropagator
	m                *instruments
	settlementEvents bool
	routes           routeCache
}

var _ kombu.Observer = (*Observer)(nil)

// New returns an Observer. It fails only when an instrument cannot be
// created.
func New(opts ...Option) (*Observer, error) {
	c := config{}
	for _, o := range opts {
		o(&c)
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	if c.propagator == nil {
		c.propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	}
	meter := c.mp.Meter(ScopeName)
	m, err := newInstruments(meter)
	if err != nil {
		return nil, err
	}
	return &Observer{tracer: c.tp.Tracer(ScopeName), meter: meter, propagator: c.propagator, m: m,
		settlementEvents: c.settlementEvents}, nil
}

// System maps a kombu transport name to the value of messaging.system:
// OpenTelemetry's well-known name where there is one ("rabbitmq",
// "aws_sqs"), else the transport's name ("redis", "memory").
func System(transport string) string {
	switch transport {
	case "amqp", "amqps", "pyamqp", "librabbitmq":
		return "rabbitmq"
	case "sqs":
		return "aws_sqs"
	}
	return transport
}

// destination is the name a publish goes to: the exchange, or the routing
// key (the queue) on the default exchange.
func destination(exchange, routingKey string) string {
	if exchange == "" {
		return routingKey
	}
	return exchange
}

// Span start options, built once: passed as a slice they cost nothing
// per span.
var (
	producerSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer)}
	consumerSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
)

// StartPublish starts the publish span and writes its context into the
// message headers.
func (o *Observer) StartPublish(ctx context.Context, p *kombu.PublishInfo) (context.Context, func(error)) {
	r := o.routes.get(p.Transport, destination(p.Exchange, p.RoutingKey))
	ctx, span := o.tracer.Start(ctx, r.publishName, producerSpan...)
	recording := span.IsRecording()
	if recording { // attributes cost nothing when not sampled
		buf := getAttrs()
		*buf = appendPublishAttrs(append(*buf, r.publishAttrs...), p, r.system)
		span.SetAttributes(*buf...)
		putAttrs(buf)
	}
	o.propagator.Inject(ctx, (*publishCarrier)(p))

	timed := o.m.operationDuration.Enabled(ctx)
	counted := o.m.sent.Enabled(ctx) || o.m.sendErrors.Enabled(ctx)
	if !recording && !timed && !counted {
		return ctx, noEnd
	}
	var start time.Time
	if timed {
		start = time.Now()
	}
	// One allocation per publish: the closure holds the span, the start
	// time and the route.
	return ctx, func(err error) {
		if timed {
			o.m.operationDuration.Record(ctx, time.Since(start).Seconds(), r.timed(opPublish, err)...)
		}
		if counted {
			if err == nil {
				o.m.sent.Add(ctx, 1, r.publishCounted...)
			} else {
				o.m.sendErrors.Add(ctx, 1, r.publishCounted...)
			}
		}
		if recording {
			endSpan(span, err)
		}
	}
}

func noEnd(error) {}

// appendPublishAttrs appends the attributes that vary per message.
func appendPublishAttrs(attrs []attribute.KeyValue, p *kombu.PublishInfo, system string) []attribute.KeyValue {
	attrs = append(attrs, semconv.MessagingMessageBodySize(p.BodySize))
	if p.MessageID != "" {
		attrs = append(attrs, semconv.MessagingMessageID(p.MessageID))
	}
	if p.CorrelationID != "" {
		attrs = append(attrs, semconv.MessagingMessageConversationID(p.CorrelationID))
	}
	if p.RoutingKey != "" && system == "rabbitmq" {
		attrs = append(attrs, semconv.MessagingRabbitMQDestinationRoutingKey(p.RoutingKey))
	}
	return attrs
}

// StartHandle starts the process span, child of the trace context the
// message carries.
func (o *Observer) StartHandle(ctx context.Context, m *kombu.Message) (context.Context, func(error)) {
	r := o.routes.get(transportOf(m), m.Queue)
	// The process span continues the producer's trace (semantic
	// conventions: the creation context may be the parent of a single
	// message's processing).
	ctx, span := o.tracer.Start(o.Extract(ctx, m), r.processName, consumerSpan...)
	recording, timed := span.IsRecording(), o.m.processDuration.Enabled(ctx)
	if !recording && !timed {
		return ctx, noEnd
	}
	if !recording { // sampled out: the duration alone, one allocation
		start := time.Now()
		return ctx, func(err error) {
			o.m.processDuration.Record(ctx, time.Since(start).Seconds(), r.timed(opProcess, err)...)
		}
	}
	h := &handling{Context: ctx, o: o, span: span, r: r, m: m, timed: timed}
	if timed {
		h.start = time.Now()
	}
	return h, h.end
}

// handling is a process span under way, and the handler's context: the
// settlement the core reports under a context derived from it finds it
// with one Value lookup. The span's attributes are all set when it ends,
// settlement and error included, in a single SetAttributes: each further
// call would grow the SDK's attribute slice again.
type handling struct {
	context.Context // carries the process span
	o               *Observer
	span            trace.Span
	r               *route
	m               *kombu.Message
	start           time.Time
	timed           bool
	settlement      atomic.Uint32 // the kombu.EventKind that settled m, from any goroutine
}

type handlingKey struct{}

func (h *handling) Value(key any) any {
	if key == (handlingKey{}) {
		return h
	}
	return h.Context.Value(key)
}

func (h *handling) end(err error) {
	if h.timed {
		h.o.m.processDuration.Record(h.Context, time.Since(h.start).Seconds(), h.r.timed(opProcess, err)...)
	}
	buf := getAttrs()
	attrs := appendMessageAttrs(append(*buf, h.r.processAttrs...), h.m, h.r.system)
	if k := h.settlement.Load(); k != 0 {
		attrs = append(attrs, settlementAttrs[k]...)
	}
	if err != nil {
		attrs = append(attrs, errorTypeAttrs[errorType(err)])
		h.span.RecordError(err)
		h.span.SetStatus(codes.Error, err.Error())
	}
	h.span.SetAttributes(attrs...)
	*buf = attrs
	putAttrs(buf)
	h.span.End()
}

// Extract returns ctx with the trace context that m's headers carry, for
// code that handles messages outside a Consumer's Handler.
func (o *Observer) Extract(ctx context.Context, m *kombu.Message) context.Context {
	return o.propagator.Extract(ctx, headerCarrier(m.Headers))
}

// appendMessageAttrs appends the attributes of a received message that
// vary per message.
func appendMessageAttrs(attrs []attribute.KeyValue, m *kombu.Message, system string) []attribute.KeyValue {
	attrs = append(attrs,
		semconv.MessagingMessageBodySize(len(m.Body)),
		attribute.Int(AttrDeliveryCount, m.DeliveryCount()),
		attribute.Bool(AttrRedelivered, m.Redelivered),
	)
	if m.Properties.MessageID != "" {
		attrs = append(attrs, semconv.MessagingMessageID(m.Properties.MessageID))
	}
	if m.Properties.CorrelationID != "" {
		attrs = append(attrs, semconv.MessagingMessageConversationID(m.Properties.CorrelationID))
	}
	if system == "rabbitmq" {
		attrs = append(attrs, semconv.MessagingRabbitMQDestinationRoutingKey(m.RoutingKey),
			semconv.MessagingRabbitMQMessageDeliveryTag(int(m.DeliveryTag)))
	}
	return attrs
}

// attrPool holds the buffers span attributes are gathered in: the SDK
// copies what SetAttributes gets (as Go's convention for variadic
// arguments wants), so one buffer serves span after span.
var attrPool = sync.Pool{New: func() any { b := make([]attribute.KeyValue, 0, 16); return &b }}

func getAttrs() *[]attribute.KeyValue { return attrPool.Get().(*[]attribute.KeyValue) }

func putAttrs(b *[]attribute.KeyValue) {
	clear(*b) // no string kept alive by the pool
	*b = (*b)[:0]
	attrPool.Put(b)
}

// Receive is c.Receive (pull style) in a "receive <queue>" span of kind
// consumer, linked to the span that published the message. Handle the
// message within StartHandle's span to trace the processing too:
//
//	m, err := obs.Receive(ctx, c)
//	if err != nil {
//		return nil, err
//	}
//	hctx, end := obs.StartHandle(ctx, m)
//	err = myHandle(hctx, m)
//	end(err)
func (o *Observer) Receive(ctx context.Context, c *kombu.Consumer) (*kombu.Message, error) {
	name := "receive"
	if qs := c.Queues(); len(qs) > 0 {
		name = spanName("receive", qs[0].Name)
	}
	_, span := o.tracer.Start(ctx, name, consumerSpan...)
	m, err := c.Receive(ctx)
	if err == nil && span.IsRecording() {
		system := System(transportOf(m))
		span.SetName(spanName("receive", m.Queue))
		span.SetAttributes(appendMessageAttrs([]attribute.KeyValue{
			semconv.MessagingSystemKey.String(system),
			semconv.MessagingOperationTypeReceive,
			semconv.MessagingOperationName("receive"),
			semconv.MessagingDestinationName(m.Queue),
		}, m, system)...)
		if sc := trace.SpanContextFromContext(o.Extract(context.Background(), m)); sc.IsValid() {
			span.AddLink(trace.Link{SpanContext: sc})
		}
	}
	endSpan(span, err)
	return m, err
}

// Attribute keys otelkombu adds beside the semantic conventions.
const (
	// AttrDeliveryCount is the delivery attempt of a consumed message: 1
	// the first time, raised by each redelivery the policy made.
	AttrDeliveryCount = "messaging.kombu.message.delivery_attempt"
	// AttrRedelivered says the broker or the policy delivered the message
	// before.
	AttrRedelivered = "messaging.kombu.message.redelivered"
	// AttrSettlement is how the process span's message was settled:
	// "acked", "rejected", "requeued", "redelivered", "dead_lettered" or
	// "decode_error" (kombu.EventKind names).
	AttrSettlement = "messaging.kombu.message.settlement"
	// AttrTransport is kombu's transport name ("amqp", "redis", "memory").
	AttrTransport = "messaging.kombu.transport"
	// AttrEvent names a settlement in a span event (WithSettlementEvents).
	AttrEvent = "messaging.kombu.event"
)

// settlementAttrs is the settlement attribute of each settling event
// kind, built once (nil for the kinds that do not settle).
var settlementAttrs = func() (attrs [kombu.EventReturned + 1][]attribute.KeyValue) {
	for _, k := range []kombu.EventKind{kombu.EventAcked, kombu.EventRejected, kombu.EventRequeued,
		kombu.EventRedelivered, kombu.EventDeadLettered, kombu.EventDecodeError} {
		attrs[k] = []attribute.KeyValue{attribute.String(AttrSettlement, k.String())}
	}
	return attrs
}()

// Observe counts events and records settlements on the process span.
func (o *Observer) Observe(ctx context.Context, e kombu.Event) {
	if int(e.Kind) >= len(o.m.events) {
		return // a kind newer than this package
	}
	if c := o.m.events[e.Kind]; c != nil && c.Enabled(ctx) {
		dest := e.Queue
		if e.Kind == kombu.EventReturned {
			dest = destination(e.Exchange, e.RoutingKey)
		}
		c.Add(ctx, 1, o.routes.get(e.Transport, dest).counted...)
	}
	settled := settlementAttrs[e.Kind]
	if settled == nil {
		return
	}
	var span trace.Span
	switch h, ok := ctx.Value(handlingKey{}).(*handling); {
	case ok && h.m == e.Message:
		// The process span of this message: the attribute is set when it
		// ends.
		h.settlement.Store(uint32(e.Kind))
		span = h.span
	case ok:
		return // a handler settling another message: not this span's outcome
	default:
		// Settled outside a handler (a message from Get or Receive).
		span = trace.SpanFromContext(ctx)
		span.SetAttributes(settled...)
	}
	if o.settlementEvents && span.IsRecording() {
		attrs := []attribute.KeyValue{attribute.String(AttrEvent, e.Kind.String())}
		if e.Err != nil {
			attrs = append(attrs, attribute.String("exception.message", e.Err.Error()))
		}
		span.AddEvent(e.Kind.String(), trace.WithAttributes(attrs...))
	}
}

func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(errorTypeAttrs[errorType(err)])
	}
	span.End()
}

// errorTypeNames are the values of the error.type attribute: kombu's
// sentinel an error wraps (errorSentinels, same order), a handler panic,
// else "_OTHER".
var errorTypeNames = [...]string{"unroutable", "connection_lost", "timeout", "not_found", "decode",
	"deadline_exceeded", "canceled", "panic", "_OTHER"}

var errorSentinels = [errorTypePanic]error{kombu.ErrUnroutable, kombu.ErrConnectionLost, kombu.ErrTimeout,
	kombu.ErrNotFound, kombu.ErrDecode, context.DeadlineExceeded, context.Canceled}

const (
	errorTypePanic = 7
	errorTypeOther = 8
	numErrorTypes  = len(errorTypeNames)
)

// errorTypeAttrs are the error.type attributes, built once.
var errorTypeAttrs = func() (attrs [numErrorTypes]attribute.KeyValue) {
	for i, name := range errorTypeNames {
		attrs[i] = semconv.ErrorTypeKey.String(name)
	}
	return attrs
}()

// errorType is err's index in errorTypeNames.
func errorType(err error) int {
	for i, sentinel := range errorSentinels {
		if errors.Is(err, sentinel) {
			return i
		}
	}
	var pe *kombu.PanicError
	if errors.As(err, &pe) {
		return errorTypePanic
	}
	return errorTypeOther
}

// publishCarrier writes a propagator's headers into a publish, creating
// its header map only when there is something to write.
type publishCarrier kombu.PublishInfo

func (c *publishCarrier) Get(key string) string { return headerCarrier(c.Headers).Get(key) }

func (c *publishCarrier) Set(key, value string) {
	if c.Headers == nil {
		c.Headers = make(map[string]any, 3)
	}
	c.Headers[key] = value
}

func (c *publishCarrier) Keys() []string { return headerCarrier(c.Headers).Keys() }

// headerCarrier reads and writes string message headers for a propagator.
type headerCarrier map[string]any

func (h headerCarrier) Get(key string) string {
	switch v := h[key].(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}

func (h headerCarrier) Set(key, value string) { h[key] = value }

func (h headerCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// transportOf names the transport m came from ("" for a hand-made
// Message).
func transportOf(m *kombu.Message) string {
	if ch := m.Channel(); ch != nil {
		return ch.Connection().TransportName()
	}
	return ""
}
