package driver

import (
	"errors"
	"fmt"
)

// Sentinel errors. Transports wrap them with %w and keep the broker's own
// error reachable too: fmt.Errorf("%w: %w", driver.ErrNotFound, amqpErr).
// Package kombu re-exports each of them.
var (
	// ErrClosed: the connection, channel or consumer was closed.
	ErrClosed = errors.New("closed")
	// ErrNotFound: the exchange or queue does not exist (AMQP 404).
	ErrNotFound = errors.New("not found")
	// ErrPreconditionFailed: a declaration conflicts with the existing
	// entity, or the operation is not allowed in this state (AMQP 406).
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrAccessRefused: the broker refused the operation (AMQP 403).
	ErrAccessRefused = errors.New("access refused")
	// ErrConnectionLost: the broker could not be reached, and the
	// operation surely did not happen, so a retry cannot duplicate it.
	ErrConnectionLost = errors.New("connection lost")
	// ErrEmpty: Get found no message.
	ErrEmpty = errors.New("queue is empty")
	// ErrNotSupported: the transport cannot do this.
	ErrNotSupported = errors.New("not supported by this transport")
	// ErrUnroutable: a mandatory message matched no queue.
	ErrUnroutable = errors.New("unroutable message")
	// ErrUnknownDeliveryTag: ack or reject of a tag the channel did not
	// hand out, or already settled (AMQP 406 PRECONDITION_FAILED).
	ErrUnknownDeliveryTag = errors.New("unknown delivery tag")
	// ErrInvalidURL: the URL or one of its options is invalid.
	ErrInvalidURL = errors.New("invalid URL")
	// ErrInvalidArgument: a name, routing key or argument is invalid.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrTimeout: the broker did not answer in time (e.g. a publisher
	// confirm). Whether the operation happened is unknown.
	ErrTimeout = errors.New("timed out")
	// ErrNacked: the broker refused a published message (basic.nack).
	ErrNacked = errors.New("publish refused by the broker")
	// ErrUnconfirmed: the channel closed before the broker confirmed a
	// publish; the broker may or may not have taken the message, so it is
	// not retried automatically.
	ErrUnconfirmed = errors.New("publish outcome unknown: no confirm before the channel closed")
)

// ConsumerError is returned by Receive, once, when one consumer of the
// channel ended without Cancel: the broker cancelled it (its queue was
// deleted; Err wraps ErrNotFound) or the channel under it died (Err wraps
// ErrClosed and the cause). The channel's other consumers keep running.
type ConsumerError struct {
	ConsumerTag string
	Queue       string
	Cancelled   bool // the broker sent basic.cancel
	Err         error
}

func (e *ConsumerError) Error() string {
	if e.Cancelled {
		return fmt.Sprintf("consumer %q of queue %q cancelled by the broker: %v", e.ConsumerTag, e.Queue, e.Err)
	}
	return fmt.Sprintf("consumer %q of queue %q lost: %v", e.ConsumerTag, e.Queue, e.Err)
}

func (e *ConsumerError) Unwrap() error { return e.Err }

// ReturnError reports an unroutable mandatory message synchronously.
type ReturnError struct {
	Return Return
}

func (e *ReturnError) Error() string {
	return fmt.Sprintf("unroutable message: exchange %q routing key %q: %d %s",
		e.Return.Exchange, e.Return.RoutingKey, e.Return.ReplyCode, e.Return.ReplyText)
}

// Unwrap makes errors.Is(err, ErrUnroutable) true.
func (e *ReturnError) Unwrap() error { return ErrUnroutable }

// BatchError reports a batch publish that failed part way.
type BatchError struct {
	Published int // how many leading messages were published
	Err       error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("batch publish failed after %d messages: %v", e.Published, e.Err)
}

func (e *BatchError) Unwrap() error { return e.Err }
