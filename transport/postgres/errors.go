package postgres

import (
	"context"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kombu-go/kombu/kombu/driver"
)

// wrap names the operation and marks errors that mean the server is gone
// (network errors, a server shutting down or not yet accepting) as
// driver.ErrConnectionLost, so kombu reconnects and retries.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if connectionLost(err) {
		return fmt.Errorf("%w: postgres: %s: %w", driver.ErrConnectionLost, op, err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

func connectionLost(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// 08: connection exception; 57P01-03: admin shutdown, crash
		// shutdown, cannot connect now (starting up); 53300: too many
		// connections.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P") || pgErr.Code == "53300"
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) || errors.Is(err, sqldriver.ErrBadConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || pgconn.SafeToRetry(err) ||
		strings.Contains(err.Error(), "conn closed") || strings.Contains(err.Error(), "connection is already closed")
}
