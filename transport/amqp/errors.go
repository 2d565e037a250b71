package amqp

import (
	"context"
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kombu-go/kombu/kombu/driver"
)

// ErrNacked is wrapped by the error of a publish that the broker refused
// with basic.nack (e.g. a queue with x-overflow reject-publish is full).
var ErrNacked = driver.ErrNacked

// ErrUnconfirmed is wrapped by the error of a publish whose confirm never
// came because the channel or the connection closed first: the broker may
// or may not have taken the message.
var ErrUnconfirmed = driver.ErrUnconfirmed

// ConsumerError is what Receive returns, once, when a consumer of the
// channel ended without Cancel: the broker cancelled it (the queue was
// deleted: the error wraps driver.ErrNotFound) or the AMQP channel under it
// was closed by a channel exception or a lost connection (the error wraps
// driver.ErrClosed and the cause). Deliveries that arrived before the end
// are returned first. Other consumers of the channel keep running.
type ConsumerError = driver.ConsumerError

// Reply codes of AMQP 0-9-1 that map to driver sentinels.
const (
	codeAccessRefused      = 403
	codeNotFound           = 404
	codeResourceLocked     = 405
	codePreconditionFailed = 406
)

// mapErr classifies an error returned by amqp091-go. Only errors that mean
// the request surely did not reach the broker (amqp091-go refused to send
// on a closed connection, or the socket write failed) become
// driver.ErrConnectionLost.
func mapErr(err error, connClosed func() bool) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var ae *amqp.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case codeNotFound:
			return fmt.Errorf("%w: %w", driver.ErrNotFound, err)
		case codePreconditionFailed:
			return fmt.Errorf("%w: %w", driver.ErrPreconditionFailed, err)
		case codeAccessRefused:
			return fmt.Errorf("%w: %w", driver.ErrAccessRefused, err)
		case codeResourceLocked:
			// Exclusive queue owned by another connection: the operation
			// is refused, like 403.
			return fmt.Errorf("%w: %w", driver.ErrAccessRefused, err)
		}
		if ae == amqp.ErrClosed || (!ae.Server && ae.Code == amqp.ChannelError) {
			// amqp091-go refused to send: the request never left.
			if connClosed != nil && connClosed() {
				return fmt.Errorf("%w: %w", driver.ErrConnectionLost, err)
			}
			return fmt.Errorf("%w: %w", driver.ErrClosed, err)
		}
		return err
	}
	if errors.Is(err, driver.ErrClosed) || errors.Is(err, driver.ErrConnectionLost) {
		return err // already classified
	}
	// amqp091-go returns the socket's own error when writing a request
	// fails: the request (a publish's last frame included) did not leave
	// whole, so the broker cannot have acted on it.
	return fmt.Errorf("%w: %w", driver.ErrConnectionLost, err)
}
