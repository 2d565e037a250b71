package kombu

import (
	"context"
	"errors"
	"fmt"

	"github.com/kombu-go/kombu/kombu/codec"
	"github.com/kombu-go/kombu/kombu/driver"
)

// Errors shared with the transports. Check them with errors.Is.
var (
	ErrClosed             = driver.ErrClosed
	ErrNotFound           = driver.ErrNotFound
	ErrPreconditionFailed = driver.ErrPreconditionFailed
	ErrAccessRefused      = driver.ErrAccessRefused
	ErrConnectionLost     = driver.ErrConnectionLost
	ErrEmpty              = driver.ErrEmpty
	ErrNotSupported       = driver.ErrNotSupported
	ErrUnroutable         = driver.ErrUnroutable
	ErrUnknownDeliveryTag = driver.ErrUnknownDeliveryTag
	ErrInvalidURL         = driver.ErrInvalidURL
	ErrInvalidArgument    = driver.ErrInvalidArgument
	ErrTimeout            = driver.ErrTimeout
	ErrNacked             = driver.ErrNacked
	ErrUnconfirmed        = driver.ErrUnconfirmed
)

// Limits checked before any I/O, the same on every transport (see the
// driver package): a program that works on memory:// is not refused by
// RabbitMQ for a value out of range.
const (
	// MaxPrefetchCount is the largest prefetch count; 0 means unlimited.
	MaxPrefetchCount = driver.MaxPrefetchCount
	// MaxExpiry is the longest Queue.MessageTTL, Queue.Expires and
	// PublishOptions.Expiration: 10 years, RabbitMQ's limit.
	MaxExpiry = driver.MaxExpiry
)

// ConsumerError reports a consumer that ended without Cancel (its queue
// was deleted, or its channel died); Consumer.Receive returns it.
type ConsumerError = driver.ConsumerError

// Errors of the serialization layer.
var (
	ErrDecode             = codec.ErrDecode
	ErrUnknownSerializer  = codec.ErrUnknownSerializer
	ErrUnknownCompression = codec.ErrUnknownCompression
	ErrUnsafeContent      = codec.ErrUnsafeContent
	ErrTooLarge           = codec.ErrTooLarge
)

// Errors of package kombu itself.
var (
	// ErrContentDisallowed: the message's content type is not in the
	// consumer's accept list, so it was not decoded (kombu's
	// ContentDisallowed).
	ErrContentDisallowed = errors.New("content type not allowed")
	// ErrAlreadyAcknowledged: the message was already acked, rejected or
	// requeued (kombu's MessageStateError).
	ErrAlreadyAcknowledged = errors.New("message already acknowledged")
	// ErrNotBound: an entity method was called with no channel and the
	// entity is not bound to one (kombu's NotBoundError).
	ErrNotBound = errors.New("entity is not bound to a channel")
	// ErrConsumerStopped: the consumer or worker was stopped on purpose
	// (its Shutdown or Close): Consume and Receive return it, where a
	// channel or connection that failed under them gives ErrClosed or
	// ErrConnectionLost. A loop stops on the first and reconnects on the
	// others.
	ErrConsumerStopped = errors.New("consumer stopped")
)

// PanicError is a handler panic that Consume recovered. The message is
// then settled as after a handler error, and the PanicError is reported to
// the connection's ErrorHandler and Logger (wrapped in an *Error naming the
// queue).
type PanicError struct {
	Value any    // what the handler panicked with
	Stack []byte // the handler goroutine's stack at the panic
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("handler panic: %v\n%s", e.Value, e.Stack)
}

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Error is what kombu's methods return: the operation, the transport, the
// entity name and the cause. Unwrap reaches the cause, so errors.Is and
// errors.As see the sentinels and the broker's own error types.
type Error struct {
	Op        string // "type.method", snake_case as in kombu: "queue.declare", "producer.publish", "consumer.receive"
	Transport string // e.g. "redis"
	Name      string // the entity, when there is one
	Err       error
}

func (e *Error) Error() string {
	if e.Name != "" {
		return fmt.Sprintf("kombu: %s %s %q: %v", e.Op, e.Transport, e.Name, e.Err)
	}
	return fmt.Sprintf("kombu: %s %s: %v", e.Op, e.Transport, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// wrapErr wraps err once; nil and context errors pass through unchanged.
func wrapErr(op, transport, name string, err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if ke := (*Error)(nil); errors.As(err, &ke) {
		return err
	}
	return &Error{Op: op, Transport: transport, Name: name, Err: err}
}
