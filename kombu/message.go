package kombu

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
)

// Properties are the AMQP basic properties of a message.
type Properties = driver.Properties

// MessageState is where a received message is in its life.
type MessageState int

const (
	Received MessageState = iota
	Acked
	Rejected
	Requeued
)

func (s MessageState) String() string {
	switch s {
	case Received:
		return "RECEIVED"
	case Acked:
		return "ACK"
	case Rejected:
		return "REJECTED"
	case Requeued:
		return "REQUEUED"
	}
	return fmt.Sprintf("MessageState(%d)", int(s))
}

// Message is a received message. Its fields are read-only: a message may
// share its body and headers with other deliveries of the same publish.
type Message struct {
	// Body is the payload, already decompressed, not yet deserialized.
	Body            []byte
	ContentType     string
	ContentEncoding string
	Headers         map[string]any
	Properties      Properties

	// Delivery info.
	DeliveryTag uint64
	ConsumerTag string
	Exchange    string
	RoutingKey  string
	Queue       string
	// Redelivered: the message was delivered before, as the broker says
	// or as a Consumer's redelivery recorded (see DeliveryCount).
	Redelivered bool

	ch       *Channel
	noAck    bool
	delivery *driver.Delivery

	mu        sync.Mutex
	state     MessageState
	decodeErr error
}

func (ch *Channel) newMessage(d *driver.Delivery, noAck bool) *Message {
	m := &Message{
		Body: d.Body, ContentType: d.ContentType, ContentEncoding: d.ContentEncoding, Headers: d.Headers,
		Properties: d.Properties, DeliveryTag: d.Tag, ConsumerTag: d.ConsumerTag, Exchange: d.Exchange,
		RoutingKey: d.RoutingKey, Queue: d.Queue,
		// A policy redelivery is a new publish: the count says it is one.
		Redelivered: d.Redelivered || headerCount(d.Headers[HeaderDeliveryCount]) > 0,
		ch:          ch, noAck: noAck, delivery: d,
	}
	if d.DecodeError != nil {
		// The transport could not read the message at all: it goes to the
		// decode error path with the raw bytes, never to a handler.
		m.decodeErr = fmt.Errorf("%w: the transport could not decode the message: %w", ErrDecode, d.DecodeError)
	}
	return m
}

// prepare decompresses the body when the compression header says so and
// checks the content type against accept. Errors wrap ErrDecode (also
// when the transport could not read the delivery) or ErrContentDisallowed;
// the message is then never decoded.
func (m *Message) prepare(accept map[string]bool) error {
	if m.delivery != nil && m.delivery.DecodeError != nil {
		return m.decodeErr
	}
	if v, ok := m.Headers["compression"]; ok {
		name, _ := v.(string)
		opts := &m.ch.conn.opts
		body, err := opts.Compressors.Decompress(name, m.Body, opts.MaxDecompressedSize)
		if err != nil {
			m.decodeErr = fmt.Errorf("%w: decompress %q: %w", ErrDecode, name, err)
			return m.decodeErr
		}
		m.Body = body
	}
	ct := mediaType(m.ContentType)
	if !accept[ct] && ct != "application/data" {
		m.decodeErr = fmt.Errorf("%w: %q", ErrContentDisallowed, m.ContentType)
		return m.decodeErr
	}
	return nil
}

// mediaType lowercases a content type and drops parameters; missing means
// application/data, as in kombu.
func mediaType(ct string) string {
	if ct == "" {
		return "application/data"
	}
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// Decode deserializes the body into v (a pointer) with the serializer of
// its content type. Pickle is never decoded. A failure wraps ErrDecode,
// and a Consumer then rejects the message without requeue.
func (m *Message) Decode(v any) error {
	if m.delivery != nil && m.delivery.DecodeError != nil {
		return m.failedDecode()
	}
	err := m.ch.conn.opts.Serializers.Decode(m.ContentType, m.ContentEncoding, m.Body, v)
	if err != nil {
		m.mu.Lock()
		m.decodeErr = err
		m.mu.Unlock()
	}
	return err
}

// Payload decodes the body into a generic value (kombu's message.payload):
// maps, slices, strings, int64, float64, bool, nil, or []byte for raw data.
func (m *Message) Payload() (any, error) {
	var v any
	err := m.Decode(&v)
	return v, err
}

// State reports whether the message was settled, and how.
func (m *Message) State() MessageState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

// Acknowledged reports whether the message was acked, rejected or requeued.
func (m *Message) Acknowledged() bool { return m.State() != Received }

func (m *Message) settle(ctx context.Context, to MessageState, op string, fn func() error) error {
	return m.settleAs(ctx, to, settleEvents[to], 0, op, fn)
}

// settleEvents is the event each plain settlement reports.
var settleEvents = [...]EventKind{Acked: EventAcked, Rejected: EventRejected, Requeued: EventRequeued}

// settleAs is settle reporting kind (with attempt) to the observer once
// the message is settled.
func (m *Message) settleAs(ctx context.Context, to MessageState, kind EventKind, attempt int, op string, fn func() error) error {
	err := m.settleLocked(ctx, to, op, fn)
	if err == nil {
		m.observe(ctx, kind, attempt, nil)
	}
	return err
}

func (m *Message) settleLocked(ctx context.Context, to MessageState, op string, fn func() error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != Received {
		return &Error{Op: op, Transport: m.ch.conn.TransportName(), Err: fmt.Errorf("%w: message is %s", ErrAlreadyAcknowledged, m.state)}
	}
	if m.noAck {
		m.state = to // the broker settled it on delivery
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.ch.isClosed() {
		// Its channel is gone (closed, or its connection dropped and
		// being closed in the background): the broker requeues it.
		return &Error{Op: op, Transport: m.ch.conn.TransportName(), Name: m.Queue, Err: ErrClosed}
	}
	if err := fn(); err != nil {
		return m.ch.wrap(op, m.Queue, err)
	}
	m.state = to
	return nil
}

// Ack acknowledges the message. Settling a message twice returns
// ErrAlreadyAcknowledged.
func (m *Message) Ack(ctx context.Context) error {
	return m.settle(ctx, Acked, "ack", func() error { return m.ch.drv.Ack(ctx, m.DeliveryTag, false) })
}

// AckMultiple acknowledges this message and every earlier unacked message
// of its channel (AMQP multiple ack). Only this message's state changes.
func (m *Message) AckMultiple(ctx context.Context) error {
	return m.settle(ctx, Acked, "ack", func() error { return m.ch.drv.Ack(ctx, m.DeliveryTag, true) })
}

// Reject drops the message (or dead-letters it, where the queue says so).
func (m *Message) Reject(ctx context.Context) error {
	return m.settle(ctx, Rejected, "reject", func() error { return m.ch.drv.Reject(ctx, m.DeliveryTag, false) })
}

// Requeue returns the message to its queue, to be delivered again with
// Redelivered set.
func (m *Message) Requeue(ctx context.Context) error {
	return m.settle(ctx, Requeued, "requeue", func() error { return m.ch.drv.Reject(ctx, m.DeliveryTag, true) })
}

// ExtendLease pushes back the moment an unacked message is considered
// lost and redelivered (redis's visibility timeout).
// Transports without leases return ErrNotSupported.
func (m *Message) ExtendLease(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	le, ok := m.ch.drv.(driver.LeaseExtender)
	if !ok {
		return m.ch.wrap("extend_lease", m.Queue, ErrNotSupported)
	}
	return m.ch.wrap("extend_lease", m.Queue, le.ExtendLease(ctx, m.DeliveryTag, d))
}

// Channel returns the channel the message was received on; nil for a
// Message not received from a broker.
func (m *Message) Channel() *Channel { return m.ch }

// As reaches the transport's own delivery value (e.g. *amqp091.Delivery).
func (m *Message) As(target any) bool {
	if m.delivery == nil || m.delivery.As == nil {
		return false
	}
	return m.delivery.As(target)
}

func (m *Message) failedDecode() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.decodeErr
}
