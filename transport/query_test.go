package transport

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
)

func newQuery(t *testing.T, rawQuery string) *Query {
	t.Helper()
	q, err := NewQuery(&url.URL{Scheme: "amqp", Host: "h", RawQuery: rawQuery})
	if err != nil {
		t.Fatalf("NewQuery(%q): %v", rawQuery, err)
	}
	q.SetTransport("amqp")
	return q
}

func wantOptionError(t *testing.T, err error, contains ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", contains)
	}
	if !errors.Is(err, driver.ErrInvalidURL) {
		t.Errorf("%v does not wrap ErrInvalidURL", err)
	}
	for _, s := range contains {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

func TestNewQueryErrors(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"a=1&a=2", `option "a": given more than once`},
		{"a=1&a", `option "a": given more than once`},
		{"a+b=1&a%20b=2", `option "a b": given more than once`},
		{"=1", "empty option name"},
		{"a=%zz", "malformed %-escape in value"},
		{"a%zz=1", "malformed %-escape in option name"},
	} {
		q, err := NewQuery(&url.URL{RawQuery: tc.raw})
		if q != nil {
			t.Errorf("NewQuery(%q) returned a query", tc.raw)
		}
		wantOptionError(t, err, tc.want)
	}
	q, err := NewQuery(nil)
	if err != nil || q.Err() != nil {
		t.Fatalf("NewQuery(nil) = %v, %v", q, err)
	}
}

func TestQueryString(t *testing.T) {
	q := newQuery(t, "queue=a+b%2Fc&empty=&bare")
	a, b, c, d := "x", "x", "x", "default"
	q.String("queue", &a)
	q.String("empty", &b)
	q.String("bare", &c)
	q.String("absent", &d)
	if a != "a b/c" || b != "" || c != "" || d != "default" {
		t.Fatalf("got %q %q %q %q", a, b, c, d)
	}
	if err := q.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestQueryBool(t *testing.T) {
	for raw, want := range map[string]bool{
		"ssl=true": true, "ssl=TRUE": true, "ssl=1": true, "ssl=yes": true, "ssl=On": true, "ssl": true,
		"ssl=false": false, "ssl=0": false, "ssl=No": false, "ssl=off": false,
	} {
		q := newQuery(t, raw)
		got := !want
		q.Bool("ssl", &got)
		if got != want || q.Err() != nil {
			t.Errorf("%q: got %v, err %v", raw, got, q.Err())
		}
	}
	for _, raw := range []string{"ssl=", "ssl=2", "ssl=truthy", "ssl=t"} {
		q := newQuery(t, raw)
		got := true
		q.Bool("ssl", &got)
		if !got {
			t.Errorf("%q changed dst", raw)
		}
		wantOptionError(t, q.Err(), `option "ssl" for amqp`, "want a boolean")
	}
}

func TestQueryInt(t *testing.T) {
	q := newQuery(t, "a=42&b=-7&c=%2B3")
	var a, b, c int
	d := 9
	q.Int("a", &a)
	q.Int("b", &b)
	q.Int("c", &c)
	q.Int("d", &d)
	if a != 42 || b != -7 || c != 3 || d != 9 || q.Err() != nil {
		t.Fatalf("got %d %d %d %d, err %v", a, b, c, d, q.Err())
	}
	for _, raw := range []string{"n=x", "n=1.5", "n=", "n=99999999999999999999999"} {
		q := newQuery(t, raw)
		n := 5
		q.Int("n", &n)
		if n != 5 {
			t.Errorf("%q changed dst to %d", raw, n)
		}
		wantOptionError(t, q.Err(), `option "n" for amqp`, "want an integer")
	}
}

func TestQueryIntRange(t *testing.T) {
	q := newQuery(t, "prefetch=10")
	var n int
	q.IntRange("prefetch", &n, 0, 65535)
	if n != 10 || q.Err() != nil {
		t.Fatalf("n = %d, err %v", n, q.Err())
	}
	for _, raw := range []string{"prefetch=-1", "prefetch=65536", "prefetch=abc"} {
		q := newQuery(t, raw)
		n := 3
		q.IntRange("prefetch", &n, 0, 65535)
		if n != 3 {
			t.Errorf("%q changed dst", raw)
		}
		wantOptionError(t, q.Err(), "want an integer in 0..65535")
	}
}

func TestQueryFloat(t *testing.T) {
	q := newQuery(t, "a=0.25&b=1e3&c=-2")
	var a, b, c float64
	q.Float("a", &a)
	q.Float("b", &b)
	q.Float("c", &c)
	if a != 0.25 || b != 1000 || c != -2 || q.Err() != nil {
		t.Fatalf("got %v %v %v, err %v", a, b, c, q.Err())
	}
	for _, raw := range []string{"f=x", "f=NaN", "f=inf", "f=-Inf", "f=", "f=1e999"} {
		q := newQuery(t, raw)
		f := 1.0
		q.Float("f", &f)
		if f != 1 {
			t.Errorf("%q changed dst", raw)
		}
		wantOptionError(t, q.Err(), "want a finite number")
	}
}

func TestQueryDuration(t *testing.T) {
	for raw, want := range map[string]time.Duration{
		"heartbeat=30":     30 * time.Second,
		"heartbeat=0.5":    500 * time.Millisecond,
		"heartbeat=0":      0,
		"heartbeat=0.001":  time.Millisecond,
		"heartbeat=1e1":    10 * time.Second,
		"heartbeat=1m30s":  90 * time.Second,
		"heartbeat=250ms":  250 * time.Millisecond,
		"heartbeat=-0":     0,
		"heartbeat=4.0000": 4 * time.Second,
	} {
		q := newQuery(t, raw)
		got := time.Hour
		q.Duration("heartbeat", &got)
		if got != want || q.Err() != nil {
			t.Errorf("%q: got %v, err %v", raw, got, q.Err())
		}
	}
	for raw, why := range map[string]string{
		"heartbeat=-1":       `invalid value "-1": want a non-negative duration`,
		"heartbeat=x":        `invalid value "x": want a non-negative duration`,
		"heartbeat=-1s":      `invalid value "-1s"`,
		"heartbeat=":         "want a non-negative duration",
		"heartbeat=NaN":      "want a non-negative duration",
		"heartbeat=1e300":    "duration too long",
		"heartbeat=inf":      "duration too long",
		"heartbeat=30+s":     "want a non-negative duration",
		"heartbeat=9999999h": "want a non-negative duration",
	} {
		q := newQuery(t, raw)
		got := time.Hour
		q.Duration("heartbeat", &got)
		if got != time.Hour {
			t.Errorf("%q changed dst to %v", raw, got)
		}
		wantOptionError(t, q.Err(), `transport: option "heartbeat" for amqp: `, why)
	}
}

func TestQueryIntList(t *testing.T) {
	for raw, want := range map[string][]int{
		"p=0,3,6,9":                {0, 3, 6, 9},
		"p=[0, 3, 6, 9]":           {0, 3, 6, 9},
		"p=%5B0%2C+3%2C+6%2C+9%5D": {0, 3, 6, 9},
		"p=5":                      {5},
		"p=+-1,+2":                 {-1, 2},
		"p=":                       {},
		"p=[]":                     {},
		"p=[ ]":                    {},
	} {
		q := newQuery(t, raw)
		var got []int
		q.IntList("p", &got)
		if got == nil || !slices.Equal(got, want) || q.Err() != nil {
			t.Errorf("%q: got %#v, err %v", raw, got, q.Err())
		}
	}
	for _, raw := range []string{"p=1,,2", "p=1,", "p=[1,2", "p=1,2]", "p=a,b", "p=]", "p=[", "p=1.5"} {
		q := newQuery(t, raw)
		got := []int{7}
		q.IntList("p", &got)
		if !slices.Equal(got, []int{7}) {
			t.Errorf("%q changed dst", raw)
		}
		wantOptionError(t, q.Err(), "want comma-separated integers")
	}
}

func TestQueryUnknown(t *testing.T) {
	q := newQuery(t, "heartbeat=30&foo=1&ssl=1&bar=2")
	q.SetTransport("redis")
	var d time.Duration
	var ssl bool
	var n int
	q.Duration("heartbeat", &d)
	q.Bool("ssl", &ssl)
	q.Int("max_connections", &n)
	err := q.Err()
	wantOptionError(t, err, `transport: unknown options "foo", "bar" for redis (known: heartbeat, max_connections, ssl)`)
	var ue *UnknownOptionError
	if !errors.As(err, &ue) || !slices.Equal(ue.Unknown, []string{"foo", "bar"}) {
		t.Fatalf("%#v", err)
	}

	q = newQuery(t, "foo=1")
	q.SetTransport("redis")
	q.String("a", new(string))
	q.String("b", new(string))
	q.String("c", new(string))
	if got, want := q.Err().Error(), `transport: unknown option "foo" for redis (known: a, b, c)`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}

	q, _ = NewQuery(&url.URL{RawQuery: "foo=1"})
	if got, want := q.Err().Error(), `transport: unknown option "foo" (known: none)`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestQueryFirstInvalidWins(t *testing.T) {
	q := newQuery(t, "a=x&b=y&zzz=1")
	var a, b int
	q.Int("a", &a)
	q.Int("b", &b)
	var oe *OptionError
	if err := q.Err(); !errors.As(err, &oe) || oe.Key != "a" || oe.Value != "x" || oe.Transport != "amqp" {
		t.Fatalf("err = %#v", err)
	}
}

func TestQuerySecretValueHidden(t *testing.T) {
	for _, key := range []string{"password", "secret_key", "token", "key", "sasl_password"} {
		q := newQuery(t, key+"=s3cr3t-PW")
		var n int
		q.Int(key, &n)
		err := q.Err()
		wantOptionError(t, err, "option \""+key+"\"", "want an integer")
		var oe *OptionError
		if !errors.As(err, &oe) || oe.Value != "" {
			t.Errorf("%s: OptionError keeps the value: %#v", key, err)
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: %v leaks the value", key, err)
		}
	}
}

func TestQueryLongValueTruncated(t *testing.T) {
	q := newQuery(t, "n="+strings.Repeat("9x", 5000))
	var n int
	q.Int("n", &n)
	err := q.Err()
	wantOptionError(t, err, "…")
	if len(err.Error()) > 300 {
		t.Errorf("error is %d bytes", len(err.Error()))
	}
}

func TestQueryHasAndRepeatedReads(t *testing.T) {
	q := newQuery(t, "ssl=1")
	if !q.Has("ssl") || q.Has("nope") {
		t.Fatal("Has")
	}
	if q.Err() == nil {
		t.Fatal("Has consumed the option")
	}
	var s string
	var b bool
	q.String("ssl", &s)
	q.Bool("ssl", &b)
	if s != "1" || !b || q.Err() != nil {
		t.Fatalf("%q %v %v", s, b, q.Err())
	}
}

func TestQueryIntBounds(t *testing.T) {
	q := newQuery(t, "n=9223372036854775807")
	var n int
	q.Int("n", &n)
	if n != math.MaxInt || q.Err() != nil {
		t.Fatalf("%d %v", n, q.Err())
	}
}

func TestQueryFormatHidesSecrets(t *testing.T) {
	q := newQuery(t, "heartbeat=30&password=s3cr3t-PW&sasl_token=s3cr3t-PW&empty_password=")
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		got := fmt.Sprintf(verb, q)
		if strings.Contains(got, "s3cr3t") {
			t.Errorf("%s: %s leaks", verb, got)
		}
		want := `transport.Query{amqp: "heartbeat"="30" "password"="**" "sasl_token"="**" "empty_password"=""}`
		if got != want {
			t.Errorf("%s: got %s, want %s", verb, got, want)
		}
	}
	if got := fmt.Sprint((*Query)(nil)); got != "<nil>" {
		t.Errorf("nil: %s", got)
	}
}

func TestErrorsPrintNoSecrets(t *testing.T) {
	q := newQuery(t, "password=s3cr3t-PW")
	var n int
	q.Int("password", &n)
	errs := []error{q.Err()}
	_, err := ParseURL("amqp://u:s3cr3t-PW@h:0/")
	errs = append(errs, err)
	for _, err := range errs {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			if got := fmt.Sprintf(verb, err); strings.Contains(got, "s3cr3t") {
				t.Errorf("%s: %s leaks", verb, got)
			}
		}
	}
}
