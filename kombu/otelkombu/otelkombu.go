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
	tp         trace.TracerProvider
	mp         metric.MeterProvider
	propagator propagation.TextMapPropagator
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

// Observer is the kombu.Observer that traces and measures.
type Observer struct {
	tracer     trace.Tracer
	meter      metric.Meter
	propagator propagation.TextMapPropagator
	m          *instruments
	attrs      sync.Map // attrKey -> metric.MeasurementOption
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
	return &Observer{tracer: c.tp.Tracer(ScopeName), meter: meter, propagator: c.propagator, m: m}, nil
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

// StartPublish starts the publish span and writes its context into the
// message headers.
func (o *Observer) StartPublish(ctx context.Context, p *kombu.PublishInfo) (context.Context, func(error)) {
	dest := destination(p.Exchange, p.RoutingKey)
	ctx, span := o.tracer.Start(ctx, "publish "+dest, trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() { // attributes cost nothing when not sampled
		span.SetAttributes(publishAttrs(p, dest)...)
	}
	o.propagator.Inject(ctx, (*publishCarrier)(p))
	pe := &pending{o: o, ctx: ctx, span: span, start: time.Now(), set: o.attrSet(p.Transport, dest, "publish")}
	return ctx, pe.endPublish
}

// pending is a started operation: one allocation for its span, start
// time and attributes.
type pending struct {
	o     *Observer
	ctx   context.Context
	span  trace.Span
	start time.Time
	set   metric.MeasurementOption
}

func (pe *pending) endPublish(err error) {
	o := pe.o
	o.record(pe.ctx, o.m.operationDuration, pe.start, pe.set, err)
	if err == nil {
		o.m.sent.Add(pe.ctx, 1, pe.set)
	} else {
		o.m.sendErrors.Add(pe.ctx, 1, pe.set)
	}
	endSpan(pe.span, err)
}

func (pe *pending) endProcess(err error) {
	pe.o.record(pe.ctx, pe.o.m.processDuration, pe.start, pe.set, err)
	endSpan(pe.span, err)
}

func publishAttrs(p *kombu.PublishInfo, dest string) []attribute.KeyValue {
	system := System(p.Transport)
	attrs := make([]attribute.KeyValue, 0, 9)
	attrs = append(attrs,
		semconv.MessagingSystemKey.String(system),
		semconv.MessagingOperationTypeSend,
		semconv.MessagingOperationName("publish"),
		semconv.MessagingDestinationName(dest),
		semconv.MessagingMessageBodySize(p.BodySize),
	)
	if dest == "" {
		attrs = append(attrs, semconv.MessagingDestinationAnonymous(true))
	}
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
	ctx, span := o.startConsumerSpan(ctx, m, "process", semconv.MessagingOperationTypeProcess)
	pe := &pending{o: o, ctx: ctx, span: span, start: time.Now(), set: o.attrSet(transportOf(m), m.Queue, "process")}
	return ctx, pe.endProcess
}

// Extract returns ctx with the trace context that m's headers carry, for
// code that handles messages outside a Consumer's Handler.
func (o *Observer) Extract(ctx context.Context, m *kombu.Message) context.Context {
	return o.propagator.Extract(ctx, headerCarrier(m.Headers))
}

func (o *Observer) startConsumerSpan(ctx context.Context, m *kombu.Message, op string, opType attribute.KeyValue) (context.Context, trace.Span) {
	// The process span continues the producer's trace (semantic
	// conventions: the creation context may be the parent of a single
	// message's processing).
	parent := o.propagator.Extract(ctx, headerCarrier(m.Headers))
	ctx, span := o.tracer.Start(parent, op+" "+m.Queue, trace.WithSpanKind(trace.SpanKindConsumer))
	if span.IsRecording() {
		span.SetAttributes(messageAttrs(m, opType, op)...)
	}
	return ctx, span
}

// messageAttrs are the semantic-convention attributes of a received message.
func messageAttrs(m *kombu.Message, opType attribute.KeyValue, op string) []attribute.KeyValue {
	system := System(transportOf(m))
	attrs := make([]attribute.KeyValue, 0, 11)
	attrs = append(attrs,
		semconv.MessagingSystemKey.String(system),
		opType,
		semconv.MessagingOperationName(op),
		semconv.MessagingDestinationName(m.Queue),
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
	name := ""
	if qs := c.Queues(); len(qs) > 0 {
		name = qs[0].Name
	}
	_, span := o.tracer.Start(ctx, "receive "+name, trace.WithSpanKind(trace.SpanKindConsumer))
	m, err := c.Receive(ctx)
	if err == nil {
		span.SetName("receive " + m.Queue)
		span.SetAttributes(messageAttrs(m, semconv.MessagingOperationTypeReceive, "receive")...)
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
	// AttrTransport is kombu's transport name ("amqp", "redis", "memory").
	AttrTransport = "messaging.kombu.transport"
	// AttrEvent names a settlement or connection event in a span event.
	AttrEvent = "messaging.kombu.event"
)

// Observe counts events and adds settlements to the process span.
func (o *Observer) Observe(ctx context.Context, e kombu.Event) {
	dest := e.Queue
	if e.Kind == kombu.EventReturned {
		dest = destination(e.Exchange, e.RoutingKey)
	}
	if int(e.Kind) >= len(o.m.events) {
		return // a kind newer than this package
	}
	if c := o.m.events[e.Kind]; c != nil {
		c.Add(ctx, 1, o.attrSet(e.Transport, dest, ""))
	}
	switch e.Kind {
	case kombu.EventAcked, kombu.EventRejected, kombu.EventRequeued, kombu.EventRedelivered,
		kombu.EventDeadLettered, kombu.EventDecodeError:
		span := trace.SpanFromContext(ctx)
		if !span.IsRecording() {
			return
		}
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
		span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
	}
	span.End()
}

// errorType is the error.type attribute: kombu's sentinel the error
// wraps, else "_OTHER".
func errorType(err error) string {
	for _, s := range []struct {
		err  error
		name string
	}{
		{kombu.ErrUnroutable, "unroutable"}, {kombu.ErrConnectionLost, "connection_lost"},
		{kombu.ErrTimeout, "timeout"}, {kombu.ErrNotFound, "not_found"}, {kombu.ErrDecode, "decode"},
		{context.DeadlineExceeded, "deadline_exceeded"}, {context.Canceled, "canceled"},
	} {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	var pe *kombu.PanicError
	if errors.As(err, &pe) {
		return "panic"
	}
	return "_OTHER"
}

type attrKey struct{ transport, dest, op string }

// attrSet returns the metric attributes of one transport, destination
// and operation, built once: measurements on the hot path allocate
// nothing for them.
func (o *Observer) attrSet(transport, dest, op string) metric.MeasurementOption {
	k := attrKey{transport, dest, op}
	if v, ok := o.attrs.Load(k); ok {
		return v.(metric.MeasurementOption)
	}
	kv := []attribute.KeyValue{
		semconv.MessagingSystemKey.String(System(transport)),
		attribute.String(AttrTransport, transport),
		semconv.MessagingDestinationName(dest),
	}
	if op != "" {
		kv = append(kv, semconv.MessagingOperationName(op))
	}
	v, _ := o.attrs.LoadOrStore(k, metric.WithAttributeSet(attribute.NewSet(kv...)))
	return v.(metric.MeasurementOption)
}

// record records the duration since start, with error.type on failure
// (a second attribute option costs a merge: only then).
func (o *Observer) record(ctx context.Context, h metric.Float64Histogram, start time.Time, set metric.MeasurementOption, err error) {
	d := time.Since(start).Seconds()
	if err == nil {
		h.Record(ctx, d, set)
		return
	}
	h.Record(ctx, d, set, metric.WithAttributes(semconv.ErrorTypeKey.String(errorType(err))))
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
