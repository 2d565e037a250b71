package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
)

func TestRecordKeepsEveryValueType(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	m := driver.Message{
		Body:        []byte{0xff, 0, 'a'},
		ContentType: "application/data", ContentEncoding: "binary",
		Headers: map[string]any{
			"int": int64(math.MaxInt64), "min": int64(math.MinInt64), "float": 1.0, "small": 1e-300,
			"big": 1e21, "nan": math.NaN(), "inf": math.Inf(1), "-inf": math.Inf(-1),
			"bytes": []byte{0, 1, 255}, "time": ts, "decimal": amqp091.Decimal{Scale: 3, Value: -42},
			"str": "$bytes", "nil": nil, "bool": false,
			"list":    []any{int64(1), 2.5, []any{}, map[string]any{}},
			"dollar":  map[string]any{"$bytes": "not a tag"},
			"dollar2": map[string]any{"$x": int64(1), "$y": int64(2)},
		},
		Properties: driver.Properties{DeliveryMode: 1, Priority: 9, Timestamp: ts, Expiration: "5",
			Extra: map[string]any{"MessageGroupId": "g"}},
	}
	r, err := messageRecord(&m)
	if err != nil {
		t.Fatal(err)
	}
	line, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back record
	if err := json.Unmarshal(line, &back); err != nil {
		t.Fatal(err)
	}
	got, err := back.message()
	if err != nil {
		t.Fatal(err)
	}
	// NaN != NaN: compare it apart.
	if !math.IsNaN(got.Headers["nan"].(float64)) {
		t.Errorf("nan came back as %v", got.Headers["nan"])
	}
	delete(got.Headers, "nan")
	delete(m.Headers, "nan")
	if !reflect.DeepEqual(got, m) {
		t.Errorf("round trip changed the message:\n got %#v\nwant %#v\nline %s", got, m, line)
	}
	for _, want := range []string{`"float":1.0`, `"big":1e+21`, `"int":9223372036854775807`, `"dollar":{"$table":{"$bytes":"not a tag"}}`,
		`"dollar2":{"$x":1,"$y":2}`, `"bytes":{"$bytes":"AAH/"}`, `"nan":{"$float":"NaN"}`, `"body_base64":"/wBh"`} {
		if !strings.Contains(string(line), want) {
			t.Errorf("line lacks %s: %s", want, line)
		}
	}
}

func TestRecordRejectsMalformedValues(t *testing.T) {
	for _, tc := range []struct{ headers, want string }{
		{`{"n":9223372036854775808}`, "beyond int64"},
		{`{"n":{"$float":"huge"}}`, "malformed $float"},
		{`{"n":{"$bytes":"***"}}`, "illegal base64"},
		{`{"n":{"$time":"yesterday"}}`, "cannot parse"},
		{`{"n":{"$decimal":{"scale":300,"value":1}}}`, "malformed $decimal"},
		{`{"n":{"$what":1}}`, `unknown type tag "$what"`},
		{`{"n":[{"$bytes":1}]}`, "malformed $bytes"},
		{`[1]`, "cannot unmarshal"},
	} {
		_, err := decodeTable(json.RawMessage(tc.headers))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.headers, err, tc.want)
		}
	}
	for _, line := range []string{`{"body":"a","body_base64":"YQ=="}`, `{"body_base64":"%%"}`, `{}`,
		`{"body":"a","properties":{"timestamp":"now"}}`} {
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		if _, err := r.message(); err == nil {
			t.Errorf("%s: no error", line)
		}
	}
	if _, err := messageRecord(&driver.Message{Headers: map[string]any{"ch": make(chan int)}}); err == nil {
		t.Error("a channel header was written")
	}
}

func TestSecretsAreMasked(t *testing.T) {
	var s secrets
	s.addURL("amqp://user:p%40ss@host//;redis://:second-pw@h/0?sentinel_password=third")
	s.addURL("amqp://u:raw:colon@bad url")
	s.addURL("redis://:x@h") // one character: masking it would mangle everything
	text := "p@ss p%40ss second-pw third raw:colon x"
	got := s.mask(text)
	if got != "** ** ** ** ** x" {
		t.Errorf("mask(%q) = %q", text, got)
	}
}

func TestExitCodeMapping(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, exitOK},
		{usagef("bad"), exitUsage},
		{fmt.Errorf("x: %w", kombu.ErrInvalidURL), exitUsage},
		{errors.New("unknown command \"x\" for \"kombu\""), exitUsage},
		{&unreachableError{url: "amqp://h", err: errors.New("refused")}, exitUnreachable},
		{fmt.Errorf("x: %w", kombu.ErrNotFound), exitNotFound},
		{&emptyError{msg: "empty"}, exitEmpty},
		{errInterrupted, exitInterrupted},
		{fmt.Errorf("x: %w", kombu.ErrPreconditionFailed), exitFailure},
		{&unreachableError{url: "amqp://h", err: kombu.ErrAccessRefused}, exitFailure},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
