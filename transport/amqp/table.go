package amqp

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kombu-go/kombu/kombu/driver"
)

// toTable converts kombu headers or x-arguments into an AMQP field table
// that py-amqp reads back with the same values:
//
//   - every integer type becomes int32 ('I') when it fits, else int64
//     (written 'l' by amqp091-go and turned into 'L' on the wire, which
//     py-amqp reads as signed); uint64 above MaxInt64 is refused;
//   - float32 and json.Number become what driver.NormalizeHeaderValue
//     makes of them: float64 ('d', as py-amqp writes floats) or int64;
//   - string ('S'), []byte ('x'), bool ('t'), nil ('V'), time.Time ('T'),
//     amqp091.Decimal ('D'), maps with string keys ('F') and slices ('A').
//
// Anything else is an error wrapping driver.ErrInvalidArgument.
func toTable(m map[string]any) (amqp.Table, error) {
	if len(m) == 0 {
		return nil, nil
	}
	t := make(amqp.Table, len(m))
	for k, v := range m {
		if len(k) > 255 {
			return nil, fmt.Errorf("%w: table key longer than 255 bytes", driver.ErrInvalidArgument)
		}
		fv, err := toField(v)
		if err != nil {
			return nil, fmt.Errorf("%w (key %q)", err, k)
		}
		t[k] = fv
	}
	return t, nil
}

func intField(v int64) any {
	if v >= math.MinInt32 && v <= math.MaxInt32 {
		return int32(v)
	}
	return v
}

func toField(v any) (any, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string, bool, float64, []byte, amqp.Decimal:
		return v, nil
	case time.Time:
		return v, nil
	case float32, json.Number:
		// As on every transport (driver.NormalizeHeaderValue): float32(0.1)
		// is 0.1, a json.Number is the number it spells, not its text.
		n, err := driver.NormalizeHeaderValue(v)
		if err != nil {
			return nil, err
		}
		return toField(n)
	case int:
		return intField(int64(v)), nil
	case int8:
		return int32(v), nil
	case int16:
		return int32(v), nil
	case int32:
		return v, nil
	case int64:
		return intField(v), nil
	case uint:
		return uintField(uint64(v))
	case uint8:
		return int32(v), nil
	case uint16:
		return int32(v), nil
	case uint32:
		return intField(int64(v)), nil
	case uint64:
		return uintField(v)
	case map[string]any:
		return toTable(v)
	case amqp.Table:
		return toTable(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			f, err := toField(e)
			if err != nil {
				return nil, err
			}
			out[i] = f
		}
		return out, nil
	}
	// Typed slices, maps and named types: converted by the rule of every
	// transport, then encoded.
	n, err := driver.NormalizeHeaderValue(v)
	if err != nil {
		return nil, err
	}
	return toField(n)
}

func uintField(v uint64) (any, error) {
	if v > math.MaxInt64 {
		return nil, fmt.Errorf("%w: integer %d does not fit a signed 64-bit table field", driver.ErrInvalidArgument, v)
	}
	return intField(int64(v)), nil
}

// fromTable converts a received field table into plain Go values: every
// integer becomes int64, float32 becomes float64, nested tables become
// map[string]any, arrays []any; strings, []byte, bool, nil, time.Time and
// amqp091.Decimal stay as they are.
func fromTable(t amqp.Table) map[string]any {
	m := make(map[string]any, len(t))
	for k, v := range t {
		m[k] = fromField(v)
	}
	return m
}

func fromField(v any) any {
	switch v := v.(type) {
	case int8:
		return int64(v)
	case uint8:
		return int64(v)
	case int16:
		return int64(v)
	case uint16:
		return int64(v)
	case int32:
		return int64(v)
	case uint32:
		return int64(v)
	case int:
		return int64(v)
	case float32:
		return float64(v)
	case amqp.Table:
		return fromTable(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = fromField(e)
		}
		return out
	}
	return v
}
