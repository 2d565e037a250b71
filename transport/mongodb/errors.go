package mongodb

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/kombu-go/kombu/kombu/driver"
)

// Server error codes the store tells apart.
const (
	codeNamespaceExists = 48
	codeCursorNotFound  = 43
	codeNotImplemented  = 238
)

// isCode reports whether err is a server error with code.
func isCode(err error, code int) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(code)
}

// connectionFailed reports whether err is a failure to reach or talk to
// the server rather than its answer.
func connectionFailed(err error) bool {
	return mongo.IsNetworkError(err) || mongo.IsTimeout(err) || neverSent(err) ||
		errors.Is(err, mongo.ErrClientDisconnected)
}

// wrap turns a driver error into kombu's: a done context's error as it
// is, a connection failure as driver.ErrConnectionLost (the operation may
// be retried after a reconnect), anything else as a mongodb error.
func (s *Store) wrap(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if _, ok := ctx.Deadline(); ok && errors.Is(err, context.DeadlineExceeded) {
		// The driver refuses to send what cannot finish before ctx's
		// deadline: for the caller, that deadline has come.
		return context.DeadlineExceeded
	}
	if errors.Is(err, mongo.ErrClientDisconnected) && s.closed.Load() {
		return errStoreClosed
	}
	if connectionFailed(err) {
		return fmt.Errorf("%w: mongodb %s: %v", driver.ErrConnectionLost, op, err)
	}
	return fmt.Errorf("mongodb %s: %w", op, err)
}

// wrapWrite is wrap for a publish: when the connection failed after the
// insert may have reached the server, its outcome is unknown
// (driver.ErrUnconfirmed), and a retry could store a second copy.
func (s *Store) wrapWrite(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%w: mongodb %s interrupted: %w", driver.ErrUnconfirmed, op, ctxErr)
	}
	if connectionFailed(err) && !neverSent(err) {
		return fmt.Errorf("%w: mongodb %s: %v", driver.ErrUnconfirmed, op, err)
	}
	return s.wrap(ctx, op, err)
}

// neverSent reports whether err means that no server was selected, so the
// command never left the client.
func neverSent(err error) bool {
	var sse topology.ServerSelectionError
	return errors.As(err, &sse)
}
