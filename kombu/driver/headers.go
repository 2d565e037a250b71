package driver

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on header values. They are amqp091-go's (a Go consumer on
// RabbitMQ loses its whole connection on a table nested deeper or wider),
// so a message that one transport accepts can be read on all of them.
const (
	MaxHeaderDepth   = 32   // tables and lists inside the headers, counted from 1
	MaxHeaderEntries = 8192 // entries of one table or list
)

// NormalizeHeaders is the one rule for the header values users send: it
// returns a copy of h in which every value has one of the portable types
// that every transport hands back as they are:
//
//	sent                                      arrives
//	nil, nil map, nil slice                   nil
//	bool                                      bool
//	string (UTF-8)                            string
//	[]byte (UTF-8)                            string
//	int, int8 … int64, uint8 … uint32         int64
//	uint, uint64 up to math.MaxInt64          int64
//	float32, float64 (finite)                 float64 (float32(0.1) becomes 0.1)
//	json.Number                               int64 if an integer literal, else float64
//	time.Time                                 string, UTC RFC 3339 (time.RFC3339Nano)
//	map[string]T                              map[string]any
//	[]T, [N]T                                 []any
//
// Named types follow their kind. Anything else (channels, functions,
// structs, pointers, complex numbers, maps whose keys are not strings,
// integers beyond int64, NaN and infinities, text that is not UTF-8,
// tables or lists nested deeper than MaxHeaderDepth or holding more than
// MaxHeaderEntries entries) is an error wrapping ErrInvalidArgument that
// names the header. Header names are non-empty UTF-8 of at most 255
// bytes; keys of nested tables may be empty. A nil or empty h gives nil.
func NormalizeHeaders(h map[string]any) (map[string]any, error) {
	if len(h) == 0 {
		return nil, nil
	}
	if len(h) > MaxHeaderEntries {
		return nil, fmt.Errorf("%w: %d headers; at most %d", ErrInvalidArgument, len(h), MaxHeaderEntries)
	}
	out := make(map[string]any, len(h))
	for k, v := range h {
		if k == "" {
			return nil, fmt.Errorf("%w: empty header name", ErrInvalidArgument)
		}
		if err := checkTableKey(k); err != nil {
			return nil, fmt.Errorf("%w: header name %w", ErrInvalidArgument, err)
		}
		nv, err := normalizeValue(v, 0)
		if err != nil {
			return nil, fmt.Errorf("%w: header %s: %w", ErrInvalidArgument, quoteName(k), err)
		}
		out[k] = nv
	}
	return out, nil
}

// NormalizeHeaderValue converts one value as NormalizeHeaders converts a
// header's value; transports use it for values given at driver level
// (a json.Number in queue arguments, say). Errors wrap ErrInvalidArgument.
func NormalizeHeaderValue(v any) (any, error) {
	nv, err := normalizeValue(v, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return nv, nil
}

func checkTableKey(k string) error {
	if len(k) > MaxNameLen {
		return fmt.Errorf("%s is %d bytes long; AMQP allows at most %d", quoteName(k), len(k), MaxNameLen)
	}
	if !utf8.ValidString(k) {
		return fmt.Errorf("%s is not valid UTF-8", quoteName(k))
	}
	return nil
}

// normalizeValue converts v, found inside depth tables or lists.
func normalizeValue(v any, depth int) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case bool:
		return x, nil
	case string:
		if !utf8.ValidString(x) {
			return nil, fmt.Errorf("value is not valid UTF-8")
		}
		return x, nil
	case []byte:
		return bytesValue(x)
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case int32:
		return int64(x), nil
	case float64:
		return floatValue(x)
	case float32:
		return float32Value(x)
	case json.Number:
		return numberValue(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	case map[string]any:
		if x == nil {
			return nil, nil
		}
		if err := checkContainer(depth+1, len(x)); err != nil {
			return nil, err
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			if err := checkTableKey(k); err != nil {
				return nil, fmt.Errorf("key %w", err)
			}
			ne, err := normalizeValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = ne
		}
		return out, nil
	case []any:
		if x == nil {
			return nil, nil
		}
		if err := checkContainer(depth+1, len(x)); err != nil {
			return nil, err
		}
		out := make([]any, len(x))
		for i, e := range x {
			ne, err := normalizeValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = ne
		}
		return out, nil
	}
	return reflectValue(reflect.ValueOf(v), depth)
}

// reflectValue converts the types the fast cases of normalizeValue do not
// name: other integer widths, named types, typed slices, arrays and maps.
func reflectValue(rv reflect.Value, depth int) (any, error) {
	switch rv.Kind() {
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.String:
		return normalizeValue(rv.String(), depth)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u := rv.Uint()
		if u > math.MaxInt64 {
			return nil, fmt.Errorf("integer %d is beyond int64, the widest integer AMQP and JSON transports carry", u)
		}
		return int64(u), nil
	case reflect.Float32:
		return float32Value(float32(rv.Float()))
	case reflect.Float64:
		return floatValue(rv.Float())
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil, nil
		}
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, rv.Len())
			reflect.Copy(reflect.ValueOf(b), rv)
			return bytesValue(b)
		}
		if err := checkContainer(depth+1, rv.Len()); err != nil {
			return nil, err
		}
		out := make([]any, rv.Len())
		for i := range out {
			ne, err := normalizeValue(rv.Index(i).Interface(), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = ne
		}
		return out, nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("cannot send %s: table keys must be strings", rv.Type())
		}
		if rv.IsNil() {
			return nil, nil
		}
		if err := checkContainer(depth+1, rv.Len()); err != nil {
			return nil, err
		}
		out := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			k := it.Key().String()
			if err := checkTableKey(k); err != nil {
				return nil, fmt.Errorf("key %w", err)
			}
			ne, err := normalizeValue(it.Value().Interface(), depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = ne
		}
		return out, nil
	}
	return nil, fmt.Errorf("cannot send %s; header values are nil, bool, string, []byte, integers, floats, json.Number, time.Time, maps with string keys and slices of these", rv.Type())
}

func checkContainer(depth, entries int) error {
	if depth > MaxHeaderDepth {
		return fmt.Errorf("tables and lists nest deeper than %d levels", MaxHeaderDepth)
	}
	if entries > MaxHeaderEntries {
		return fmt.Errorf("a table or list holds %d entries; at most %d", entries, MaxHeaderEntries)
	}
	return nil
}

func bytesValue(b []byte) (any, error) {
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("[]byte value is not UTF-8 text; encode binary data (base64, say) first")
	}
	return string(b), nil
}

func floatValue(f float64) (any, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("%v cannot be sent: JSON has no NaN or infinity", f)
	}
	return f, nil
}

// float32Value widens f by its shortest decimal form, as JSON writes it:
// float32(0.1) becomes 0.1, not 0.10000000149011612.
func float32Value(f float32) (any, error) {
	if _, err := floatValue(float64(f)); err != nil {
		return nil, err
	}
	w, _ := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	return w, nil
}

// numberValue reads a json.Number as JSON means it: an integer literal is
// an int64, a fraction or exponent a float64.
func numberValue(n json.Number) (any, error) {
	s := string(n)
	if s == "" || strings.TrimSpace(s) != s || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) || !json.Valid([]byte(s)) {
		return nil, fmt.Errorf("json.Number %q is not a number", clip(s))
	}
	if !strings.ContainsAny(s, ".eE") {
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("json.Number %s is beyond int64, the widest integer AMQP and JSON transports carry", clip(s))
		}
		return i, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("json.Number %s does not fit a float64", clip(s))
	}
	return floatValue(f)
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
