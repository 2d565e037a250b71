package couchdb

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/go-kivik/kivik/v4"

	"github.com/kombu-go/kombu/kombu/driver"
)

var errStoreClosed = fmt.Errorf("couchdb: store %w", driver.ErrClosed)

// status is the HTTP status of a kivik error (0 for nil).
func status(err error) int { return kivik.HTTPStatus(err) }

func isConflict(err error) bool { return status(err) == http.StatusConflict }
func isNotFound(err error) bool { return status(err) == http.StatusNotFound }

// wrap classifies the error of a request: context errors unwrapped (the
// caller's deadline, not the server's fault), a request that got no answer
// as driver.ErrConnectionLost so that kombu reconnects, an answer refusing
// the credentials as driver.ErrAccessRefused, other answers wrapped with
// the operation.
func wrap(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return ctx.Err()
	}
	var ue *url.Error
	switch {
	case errors.As(err, &ue):
		return fmt.Errorf("%w: couchdb %s: %v", driver.ErrConnectionLost, op, err)
	case status(err) == http.StatusUnauthorized || status(err) == http.StatusForbidden:
		return fmt.Errorf("%w: couchdb %s: %v", driver.ErrAccessRefused, op, err)
	case status(err) >= 500:
		// 502 is kivik's code for a broken response; 503 a server going away.
		return fmt.Errorf("%w: couchdb %s: %v", driver.ErrConnectionLost, op, err)
	}
	return fmt.Errorf("couchdb %s: %w", op, err)
}
