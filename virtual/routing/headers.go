package routing

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
)

// The x-match modes of a headers binding (RabbitMQ 3.10 and later).
const (
	XMatchAll      = "all"        // every binding header must match (default)
	XMatchAny      = "any"        // at least one binding header must match
	XMatchAllWithX = "all-with-x" // as all, and x- headers take part too
	XMatchAnyWithX = "any-with-x" // as any, and x- headers take part too
)

// HeadersMatch reports whether a message with headers matches a headers
// exchange binding with arguments bindingArgs, as RabbitMQ 3.10+ decides it.
//
// bindingArgs["x-match"] selects the mode: "all" (also the default, and what
// any other value means, as in RabbitMQ, which accepts no other value at
// bind time, see ValidateHeadersBinding), "any", "all-with-x" or
// "any-with-x". The x-match key itself never takes part. With "all" and
// "any", every other binding key that starts with "x-" is ignored too; the
// -with-x modes match them like any other key.
//
// A binding key matches when the message has that header and either the
// binding value is nil (AMQP void: presence alone matches) or the two values
// are equal. Equality ignores the AMQP field type as RabbitMQ does: numbers
// of any Go numeric type are equal when numerically equal (int 1, uint8 1
// and float64 1.0 are equal; float32(0.1) and 0.1 are not), a string equals
// a []byte holding the same bytes, time.Time values are equal when they
// fall in the same second (AMQP timestamps carry whole seconds), and lists
// and tables are compared element by element with these rules. A non-nil
// binding value never equals a nil header value.
//
// With no key left to compare, "all" matches every message and "any"
// matches none. HeadersMatch does not allocate for the common value types.
func HeadersMatch(bindingArgs, headers map[string]any) bool {
	withX, anyMode := false, false
	switch xMatchMode(bindingArgs["x-match"]) {
	case XMatchAny:
		anyMode = true
	case XMatchAllWithX:
		withX = true
	case XMatchAnyWithX:
		withX, anyMode = true, true
	}
	for k, want := range bindingArgs {
		if k == "x-match" || (!withX && strings.HasPrefix(k, "x-")) {
			continue
		}
		got, ok := headers[k]
		matched := ok && (want == nil || valuesEqual(want, got, 0))
		if matched == anyMode {
			// any: the first match decides; all: the first miss decides.
			return anyMode
		}
	}
	return !anyMode
}

// xMatchMode returns the mode an x-match value selects; anything but the
// three other modes means all.
func xMatchMode(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case []byte:
		s = string(x)
	default:
		return XMatchAll
	}
	switch s {
	case XMatchAny, XMatchAllWithX, XMatchAnyWithX:
		return s
	}
	return XMatchAll
}

// ValidateHeadersBinding checks the arguments of a binding to a headers
// exchange as RabbitMQ does when binding: x-match, when present, must be a
// string (or []byte) holding one of the four modes. The error wraps
// driver.ErrPreconditionFailed (RabbitMQ replies 406 PRECONDITION_FAILED).
func ValidateHeadersBinding(args map[string]any) error {
	v, ok := args["x-match"]
	if !ok {
		return nil
	}
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case []byte:
		s = string(x)
	default:
		return fmt.Errorf("%w: invalid x-match field type %T (value %v); expected a string",
			driver.ErrPreconditionFailed, v, v)
	}
	switch s {
	case XMatchAll, XMatchAny, XMatchAllWithX, XMatchAnyWithX:
		return nil
	}
	return fmt.Errorf("%w: invalid x-match field value %q; expected all, any, all-with-x, or any-with-x",
		driver.ErrPreconditionFailed, s)
}

// maxDepth bounds the recursion into nested lists and tables, so that a
// table that contains itself cannot exhaust the stack.
const maxDepth = 32

// valuesEqual compares a binding value with a header value, ignoring the
// AMQP field type as Erlang's == does in RabbitMQ.
func valuesEqual(a, b any, depth int) bool {
	// Fast paths for the types AMQP decoders and kombu produce.
	switch x := a.(type) {
	case string:
		switch y := b.(type) {
		case string:
			return x == y
		case []byte:
			return x == string(y)
		}
	case []byte:
		switch y := b.(type) {
		case string:
			return string(x) == y
		case []byte:
			return string(x) == string(y)
		}
	case bool:
		if y, ok := b.(bool); ok {
			return x == y
		}
	case time.Time:
		if y, ok := b.(time.Time); ok {
			return x.Unix() == y.Unix()
		}
		return false
	case nil:
		return b == nil
	}
	if na, ok := toNumber(a); ok {
		nb, ok := toNumber(b)
		return ok && na.equal(nb)
	}
	if _, ok := toNumber(b); ok {
		return false
	}
	return slowEqual(a, b, depth)
}

// number is an integer (signed or unsigned) or a float.
type number struct {
	kind uint8 // numInt, numUint, numFloat
	i    int64
	u    uint64
	f    float64
}

const (
	numInt = iota
	numUint
	numFloat
)

func toNumber(v any) (number, bool) {
	switch x := v.(type) {
	case int:
		return number{kind: numInt, i: int64(x)}, true
	case int8:
		return number{kind: numInt, i: int64(x)}, true
	case int16:
		return number{kind: numInt, i: int64(x)}, true
	case int32:
		return number{kind: numInt, i: int64(x)}, true
	case int64:
		return number{kind: numInt, i: x}, true
	case uint:
		return number{kind: numUint, u: uint64(x)}, true
	case uint8:
		return number{kind: numUint, u: uint64(x)}, true
	case uint16:
		return number{kind: numUint, u: uint64(x)}, true
	case uint32:
		return number{kind: numUint, u: uint64(x)}, true
	case uint64:
		return number{kind: numUint, u: x}, true
	case float32:
		return number{kind: numFloat, f: float64(x)}, true
	case float64:
		return number{kind: numFloat, f: x}, true
	case nil, string, []byte, bool, map[string]any, []any:
		return number{}, false
	}
	// Named numeric types.
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return number{kind: numInt, i: rv.Int()}, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return number{kind: numUint, u: rv.Uint()}, true
	case reflect.Float32, reflect.Float64:
		return number{kind: numFloat, f: rv.Float()}, true
	}
	return number{}, false
}

// equal compares exactly: no rounding of integers to floats.
func (a number) equal(b number) bool {
	if a.kind > b.kind {
		a, b = b, a
	}
	switch a.kind {
	case numInt:
		switch b.kind {
		case numInt:
			return a.i == b.i
		case numUint:
			return a.i >= 0 && uint64(a.i) == b.u
		default:
			return floatIsInt(b.f, a.i)
		}
	case numUint:
		if b.kind == numUint {
			return a.u == b.u
		}
		return floatIsUint(b.f, a.u)
	}
	return a.f == b.f
}

// floatIsInt reports whether f is exactly the integer i.
func floatIsInt(f float64, i int64) bool {
	// [-2^63, 2^63) converts to int64 without overflow.
	if f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
		return false
	}
	return int64(f) == i
}

// floatIsUint reports whether f is exactly the integer u.
func floatIsUint(f float64, u uint64) bool {
	if f != math.Trunc(f) || f < 0 || f >= 1<<64 {
		return false
	}
	return uint64(f) == u
}

// slowEqual handles lists, tables and named types through reflection.
func slowEqual(a, b any, depth int) bool {
	if depth >= maxDepth {
		return false
	}
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if !va.IsValid() || !vb.IsValid() {
		return !va.IsValid() && !vb.IsValid()
	}
	if sa, ok := stringish(va); ok {
		sb, ok := stringish(vb)
		return ok && sa == sb
	}
	switch va.Kind() {
	case reflect.Bool:
		return vb.Kind() == reflect.Bool && va.Bool() == vb.Bool()
	case reflect.Map:
		if vb.Kind() != reflect.Map || va.Type().Key().Kind() != reflect.String ||
			vb.Type().Key().Kind() != reflect.String || va.Len() != vb.Len() {
			break
		}
		it := va.MapRange()
		for it.Next() {
			k := it.Key()
			w := vb.MapIndex(k.Convert(vb.Type().Key()))
			if !w.IsValid() || !valuesEqual(it.Value().Interface(), w.Interface(), depth+1) {
				return false
			}
		}
		return true
	case reflect.Slice, reflect.Array:
		if k := vb.Kind(); (k != reflect.Slice && k != reflect.Array) || va.Len() != vb.Len() {
			break
		}
		for i := range va.Len() {
			if !valuesEqual(va.Index(i).Interface(), vb.Index(i).Interface(), depth+1) {
				return false
			}
		}
		return true
	}
	if va.Type() == vb.Type() {
		return reflect.DeepEqual(a, b)
	}
	return false
}

// stringish returns the bytes of a string or byte-slice kinded value.
func stringish(v reflect.Value) (string, bool) {
	switch v.Kind() {
	case reflect.String:
		return v.String(), true
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return string(v.Bytes()), true
		}
	}
	return "", false
}
