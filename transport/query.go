package transport

import (
	"fmt"
	"io"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
)

// maxValueShown caps how much of an option value an error repeats.
const maxValueShown = 64

// Query reads a URL's query options into typed variables, so that every
// transport rejects unknown and invalid options the same way.
//
// Each reader method (String, Bool, Int, ...) takes an option by name,
// marks it as known and, when the URL has it, consumes it and stores the
// converted value in *dst. When the URL lacks it, *dst is left unchanged,
// so callers set defaults first. An invalid value leaves *dst unchanged
// and is reported by Err. After reading every option it understands, the
// transport calls Err, which also reports options nobody read.
//
// A Query is not safe for concurrent use.
type Query struct {
	transport string
	keys      []string // in the order of the URL
	vals      map[string]qvalue
	known     map[string]bool
	err       error
}

type qvalue struct {
	v    string
	bare bool // written without '=' ("?ssl")
}

// OptionError reports a query option that is malformed, given twice or
// has an invalid value. It wraps driver.ErrInvalidURL.
type OptionError struct {
	Transport string // the transport's name, "" when not set
	Key       string
	// Value is the offending value; "" when the option's name looks like
	// a secret (password, secret, token, key, ...), whose value is never
	// kept or printed, and for errors that are not about the value.
	Value  string
	Reason string
}

func (e *OptionError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "transport: option %q", truncate(e.Key, maxValueShown))
	if e.Transport != "" {
		fmt.Fprintf(&b, " for %s", e.Transport)
	}
	b.WriteString(": ")
	if e.Value != "" {
		fmt.Fprintf(&b, "invalid value %q: ", truncate(e.Value, maxValueShown))
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Unwrap makes errors.Is(err, driver.ErrInvalidURL) true.
func (e *OptionError) Unwrap() error { return driver.ErrInvalidURL }

// UnknownOptionError reports query options that the transport does not
// know. It wraps driver.ErrInvalidURL.
type UnknownOptionError struct {
	Transport string   // the transport's name, "" when not set
	Unknown   []string // in the order of the URL
	Known     []string // the options the transport asked for, sorted
}

func (e *UnknownOptionError) Error() string {
	var b strings.Builder
	b.WriteString("transport: unknown option")
	if len(e.Unknown) > 1 {
		b.WriteByte('s')
	}
	for i, k := range e.Unknown {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %q", k)
	}
	if e.Transport != "" {
		fmt.Fprintf(&b, " for %s", e.Transport)
	}
	b.WriteString(" (known: ")
	if len(e.Known) == 0 {
		b.WriteString("none")
	} else {
		b.WriteString(strings.Join(e.Known, ", "))
	}
	b.WriteByte(')')
	return b.String()
}

// Unwrap makes errors.Is(err, driver.ErrInvalidURL) true.
func (e *UnknownOptionError) Unwrap() error { return driver.ErrInvalidURL }

// NewQuery returns the query options of u. It fails with an *OptionError
// on an empty option name, a malformed %-escape, an option given more
// than once or more than 256 options. A nil u has no options.
func NewQuery(u *url.URL) (*Query, error) {
	q := &Query{vals: map[string]qvalue{}, known: map[string]bool{}}
	if u == nil {
		return q, nil
	}
	p, err := parseQuery(u.RawQuery)
	if err != nil {
		return nil, err
	}
	q.keys, q.vals = p.keys, p.vals
	return q, nil
}

type parsedQuery struct {
	keys []string
	vals map[string]qvalue
}

// parseQuery splits a raw query on '&' (empty parts are skipped) and
// decodes names and values as net/url does ('+' is a space).
func parseQuery(raw string) (parsedQuery, *OptionError) {
	p := parsedQuery{vals: map[string]qvalue{}}
	if raw == "" {
		return p, nil
	}
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		rk, rv, hasEq := strings.Cut(part, "=")
		if len(p.keys) == maxOptions {
			return p, &OptionError{Key: rk, Reason: fmt.Sprintf("more than %d options", maxOptions)}
		}
		k, err := url.QueryUnescape(rk)
		if err != nil {
			return p, &OptionError{Key: rk, Reason: "malformed %-escape in option name"}
		}
		if k == "" {
			return p, &OptionError{Key: k, Reason: "empty option name"}
		}
		v, err := url.QueryUnescape(rv)
		if err != nil {
			return p, &OptionError{Key: k, Reason: "malformed %-escape in value (write '%' as %25)"}
		}
		if _, dup := p.vals[k]; dup {
			return p, &OptionError{Key: k, Reason: "given more than once"}
		}
		p.keys = append(p.keys, k)
		p.vals[k] = qvalue{v: v, bare: !hasEq}
	}
	return p, nil
}

// Format prints q for debugging with any verb (%v, %+v, %#v, ...): the
// transport's name and the options in URL order, with the values of
// secret-looking options shown as "**".
func (q *Query) Format(f fmt.State, _ rune) {
	if q == nil {
		_, _ = io.WriteString(f, "<nil>")
		return
	}
	var b strings.Builder
	b.WriteString("transport.Query{")
	if q.transport != "" {
		b.WriteString(q.transport)
		b.WriteString(": ")
	}
	for i, k := range q.keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		v := q.vals[k].v
		if isSecretKey(k) && v != "" {
			v = mask
		}
		fmt.Fprintf(&b, "%q=%q", k, truncate(v, maxValueShown))
	}
	b.WriteByte('}')
	_, _ = io.WriteString(f, b.String())
}

// SetTransport names the transport in the errors of q.
func (q *Query) SetTransport(name string) { q.transport = name }

// Has reports whether the URL has option key. It neither consumes nor
// marks it as known.
func (q *Query) Has(key string) bool {
	_, ok := q.vals[key]
	return ok
}

// take marks key as known and returns its value.
func (q *Query) take(key string) (qvalue, bool) {
	q.known[key] = true
	v, ok := q.vals[key]
	return v, ok
}

// fail records the first invalid value.
func (q *Query) fail(key, value, reason string) {
	if q.err != nil {
		return
	}
	if isSecretKey(key) {
		value = ""
	}
	q.err = &OptionError{Transport: q.transport, Key: key, Value: value, Reason: reason}
}

// String stores the value of option key in *dst, as given (decoded).
func (q *Query) String(key string, dst *string) {
	if v, ok := q.take(key); ok {
		*dst = v.v
	}
}

// Bool stores option key in *dst. It accepts true/false, 1/0, yes/no and
// on/off in any case; a bare "?key" with no '=' means true.
func (q *Query) Bool(key string, dst *bool) {
	v, ok := q.take(key)
	if !ok {
		return
	}
	if v.bare {
		*dst = true
		return
	}
	switch strings.ToLower(v.v) {
	case "true", "1", "yes", "on":
		*dst = true
	case "false", "0", "no", "off":
		*dst = false
	default:
		q.fail(key, v.v, "want a boolean (true/false, 1/0, yes/no, on/off)")
	}
}

// Int stores the decimal integer option key in *dst.
func (q *Query) Int(key string, dst *int) {
	q.IntRange(key, dst, math.MinInt, math.MaxInt)
}

// IntRange stores the decimal integer option key in *dst, which must lie
// in min..max.
func (q *Query) IntRange(key string, dst *int, min, max int) {
	v, ok := q.take(key)
	if !ok {
		return
	}
	n, err := strconv.Atoi(v.v)
	switch {
	case err != nil && min == math.MinInt && max == math.MaxInt:
		q.fail(key, v.v, "want an integer")
	case err != nil || n < min || n > max:
		q.fail(key, v.v, fmt.Sprintf("want an integer in %d..%d", min, max))
	default:
		*dst = n
	}
}

// Float stores the finite floating-point option key in *dst.
func (q *Query) Float(key string, dst *float64) {
	v, ok := q.take(key)
	if !ok {
		return
	}
	f, err := strconv.ParseFloat(v.v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		q.fail(key, v.v, "want a finite number")
		return
	}
	*dst = f
}

// Duration stores option key in *dst. Like kombu, it takes seconds as a
// number ("30", "0.5" are 30s and 500ms); it also takes Go durations
// ("1m30s", "250ms"). Negative durations are invalid; zero is valid.
func (q *Query) Duration(key string, dst *time.Duration) {
	v, ok := q.take(key)
	if !ok {
		return
	}
	const reason = "want a non-negative duration in seconds (30, 0.5) or a Go duration (1m30s)"
	if f, err := strconv.ParseFloat(v.v, 64); err == nil {
		ns := math.Round(f * float64(time.Second))
		switch {
		case math.IsNaN(f) || f < 0:
			q.fail(key, v.v, reason)
		case ns >= math.MaxInt64:
			q.fail(key, v.v, "duration too long")
		default:
			*dst = time.Duration(ns)
		}
		return
	}
	d, err := time.ParseDuration(v.v)
	if err != nil || d < 0 {
		q.fail(key, v.v, reason)
		return
	}
	*dst = d
}

// IntList stores the comma-separated integers of option key in *dst. Both
// "0,3,6,9" and "[0, 3, 6, 9]" are accepted; "" and "[]" give an empty,
// non-nil list.
func (q *Query) IntList(key string, dst *[]int) {
	v, ok := q.take(key)
	if !ok {
		return
	}
	const reason = "want comma-separated integers, e.g. 0,3,6,9 or [0,3,6,9]"
	s := strings.TrimSpace(v.v)
	if strings.HasPrefix(s, "[") || strings.HasSuffix(s, "]") {
		if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
			q.fail(key, v.v, reason)
			return
		}
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	out := []int{}
	if s != "" {
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				q.fail(key, v.v, reason)
				return
			}
			out = append(out, n)
		}
	}
	*dst = out
}

// Err returns the first invalid value met by a reader method (an
// *OptionError) or else, when the URL has options that no reader method
// asked for, an *UnknownOptionError naming them and the known ones. Both
// wrap driver.ErrInvalidURL. The value of an option whose name looks like
// a secret is never part of the error.
func (q *Query) Err() error {
	if q.err != nil {
		return q.err
	}
	var unknown []string
	for _, k := range q.keys {
		if !q.known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	known := make([]string, 0, len(q.known))
	for k := range q.known {
		known = append(known, k)
	}
	sort.Strings(known)
	return &UnknownOptionError{Transport: q.transport, Unknown: unknown, Known: known}
}
