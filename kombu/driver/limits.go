package driver

import (
	"fmt"
	"math"
	"time"
)

// Limits every transport applies the same way, so that a program that
// works on memory:// is not refused by RabbitMQ. They are RabbitMQ's, the
// strictest broker kombu speaks to. package kombu checks them before any
// I/O; transports check them again for callers of the driver.
const (
	// MaxPrefetchCount is the largest prefetch count (AMQP's uint16);
	// 0 means unlimited.
	MaxPrefetchCount = math.MaxUint16
	// MaxExpiry is the longest message TTL, queue expiry or per-message
	// expiration: 10 years (315 360 000 000 ms), RabbitMQ's limit.
	MaxExpiry = 3650 * 24 * time.Hour
	// MaxQueuePriority is the largest x-max-priority.
	MaxQueuePriority = math.MaxUint8
)

// CheckPrefetchCount refuses a prefetch count outside 0..MaxPrefetchCount.
func CheckPrefetchCount(n int) error {
	if n < 0 || n > MaxPrefetchCount {
		return fmt.Errorf("%w: prefetch count %d out of range 0..%d", ErrInvalidArgument, n, MaxPrefetchCount)
	}
	return nil
}

// CheckExpiration refuses a per-message expiration (milliseconds) that is
// negative or beyond MaxExpiry.
func CheckExpiration(ms int64) error {
	if ms < 0 || ms > MaxExpiry.Milliseconds() {
		return fmt.Errorf("%w: expiration %d ms out of range 0..%d", ErrInvalidArgument, ms, MaxExpiry.Milliseconds())
	}
	return nil
}

// queueArgRanges are the integer queue arguments and their ranges.
var queueArgRanges = map[string]struct{ min, max int64 }{
	"x-message-ttl":      {0, MaxExpiry.Milliseconds()},
	"x-expires":          {1, MaxExpiry.Milliseconds()},
	"x-max-length":       {0, math.MaxInt64},
	"x-max-length-bytes": {0, math.MaxInt64},
	"x-max-priority":     {0, MaxQueuePriority},
}

// NormalizeQueueArgs checks the integer x-arguments (x-message-ttl,
// x-expires, x-max-length, x-max-length-bytes, x-max-priority): each must
// be a Go integer within its range, else the error wraps
// ErrInvalidArgument. It returns args with those values as int64 (a copy
// when one changed), so that declarations compare as RabbitMQ compares
// them: by value, whatever the integer width.
func NormalizeQueueArgs(args map[string]any) (map[string]any, error) {
	out, copied := args, false
	for k, v := range args {
		r, ok := queueArgRanges[k]
		if !ok {
			continue
		}
		n, err := integerArg(k, v)
		if err != nil {
			return nil, err
		}
		if n < r.min || n > r.max {
			return nil, fmt.Errorf("%w: queue argument %s = %d out of range %d..%d", ErrInvalidArgument, k, n, r.min, r.max)
		}
		if _, same := v.(int64); same {
			continue
		}
		if !copied {
			out, copied = make(map[string]any, len(args)), true
			for k2, v2 := range args {
				out[k2] = v2
			}
		}
		out[k] = n
	}
	return out, nil
}

// integerArg returns v as an int64 when it is a Go integer that fits.
func integerArg(k string, v any) (int64, error) {
	if n, ok := Int64(v); ok {
		return n, nil
	}
	switch v.(type) {
	case uint, uint64:
		return 0, fmt.Errorf("%w: queue argument %s = %v out of range", ErrInvalidArgument, k, v)
	}
	return 0, fmt.Errorf("%w: queue argument %s must be an integer, not %T", ErrInvalidArgument, k, v)
}

// Int64 returns v as an int64 when v is a Go integer of any width whose
// value fits; ok is false for anything else.
func Int64(v any) (n int64, ok bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint:
		if uint64(x) <= math.MaxInt64 {
			return int64(x), true
		}
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	}
	return 0, false
}
