package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kombu-go/kombu/kombu/driver"
)

// The go-redis client is built with MaxRetries -1: it never sends a
// command again by itself, because a command whose reply was lost may
// have run, and a second LPUSH is a second copy. The store decides what a
// failure means instead, with the helpers below.

// notRunReplies are the error replies with which redis refuses a command
// without running it because of the server's state (loading its dataset,
// busy with a script, a replica or a master without its replicas): the
// same command can succeed later, on this server or on the next master.
var notRunReplies = []string{"LOADING", "BUSY", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS"}

// notRun reports whether err is one of the notRunReplies.
func notRun(err error) bool {
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	msg := re.Error()
	for _, p := range notRunReplies {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// isReply reports whether err is a reply from redis (the command reached
// the server and was answered), as opposed to a failure of the connection.
func isReply(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}

// neverSent reports whether err means that the command never left the
// client: the dial failed, or the pool had no connection to give.
func neverSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrPoolExhausted)
}

// connectionFailed reports whether err is a failure of the connection
// rather than an answer of the server: a network error, a timeout waiting
// for the reply, a connection closed under the command.
func connectionFailed(err error) bool {
	if err == nil || isReply(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return !errors.Is(err, redis.ErrClosed)
}

// wrapErr classifies the error of a command that is safe to send again
// (reads, and writes that have the same effect twice: SADD, DEL, the ack
// and restore scripts): context errors unwrapped, a closed client as
// ErrClosed, a failed connection or a server that refused to run the
// command for now (LOADING, ...) as ErrConnectionLost, so that kombu
// reconnects and retries; other error replies wrapped with the operation.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("%w: redis %s: %w", driver.ErrClosed, op, err)
	}
	if connectionFailed(err) || notRun(err) {
		return fmt.Errorf("%w: redis %s: %w", driver.ErrConnectionLost, op, err)
	}
	return fmt.Errorf("redis %s: %w", op, err)
}

// wrapWriteErr classifies the error of a command that must not run twice
// (LPUSH, PUBLISH). When the command surely did not run (never sent, or
// refused with a notRunReplies reply) it is ErrConnectionLost, which kombu
// may retry; when the connection failed after it was sent, redis may have
// run it, so it is ErrUnconfirmed, which is never retried automatically.
func wrapWriteErr(op string, err error) error {
	if err == nil || !connectionFailed(err) || neverSent(err) {
		return wrapErr(op, err)
	}
	return fmt.Errorf("%w: redis %s: the connection failed before redis answered, the write may or may not have happened: %w",
		driver.ErrUnconfirmed, op, err)
}

// wrap is wrapErr for the store's commands: a connection failure of a
// command whose ctx is done is ctx's error, unwrapped (ContextTimeoutEnabled
// turns ctx's deadline into the socket's, so it shows as an i/o timeout),
// and any failure once the store is closed is ErrClosed.
func (s *Store) wrap(ctx context.Context, op string, err error) error {
	return s.classify(ctx, op, err, wrapErr)
}

// wrapWrite is wrapWriteErr for the store's commands, as wrap.
func (s *Store) wrapWrite(ctx context.Context, op string, err error) error {
	return s.classify(ctx, op, err, wrapWriteErr)
}

func (s *Store) classify(ctx context.Context, op string, err error, wrap func(string, error) error) error {
	if err == nil {
		return nil
	}
	if connectionFailed(err) {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		// The socket's deadline is ctx's, and may pass a moment before
		// ctx says so.
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			return context.DeadlineExceeded
		}
	}
	if s.closed.Load() && !isReply(err) {
		return fmt.Errorf("%w: redis %s: %w", driver.ErrClosed, op, err)
	}
	return wrap(op, err)
}
