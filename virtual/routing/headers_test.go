package routing

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
)

type headersCase struct {
	name    string
	args    map[string]any
	headers map[string]any
	want    bool
}

type myInt int
type myString string
type myTable map[string]any // as amqp091.Table

var t0 = time.Unix(1700000000, 0)

var headersCases = []headersCase{
	// all (default)
	{"all default, every key matches", map[string]any{"a": "1", "b": int32(2)}, map[string]any{"a": "1", "b": int64(2), "c": true}, true},
	{"all explicit, one value differs", map[string]any{"x-match": "all", "a": "1", "b": 2}, map[string]any{"a": "1", "b": 3}, false},
	{"all, key missing", map[string]any{"x-match": "all", "a": "1", "b": 2}, map[string]any{"a": "1"}, false},
	{"all, nil headers", map[string]any{"a": "1"}, nil, false},
	{"all, no keys matches everything", map[string]any{"x-match": "all"}, map[string]any{}, true},
	{"all, nil args matches everything", nil, nil, true},
	{"all ignores x- keys", map[string]any{"x-match": "all", "a": 1, "x-foo": "bar"}, map[string]any{"a": 1}, true},
	{"all, only x- keys matches everything", map[string]any{"x-foo": "bar"}, nil, true},
	{"unknown x-match means all", map[string]any{"x-match": "ALL", "a": 1, "b": 2}, map[string]any{"a": 1}, false},
	{"non-string x-match means all", map[string]any{"x-match": 1, "a": 1}, map[string]any{"a": 1}, true},
	{"x-match as []byte", map[string]any{"x-match": []byte("any"), "a": 1, "b": 2}, map[string]any{"b": 2}, true},

	// any
	{"any, one of two matches", map[string]any{"x-match": "any", "a": "1", "b": "2"}, map[string]any{"a": "no", "b": "2"}, true},
	{"any, none matches", map[string]any{"x-match": "any", "a": "1", "b": "2"}, map[string]any{"a": "2", "b": "1"}, false},
	{"any, no keys matches nothing", map[string]any{"x-match": "any"}, map[string]any{"a": 1}, false},
	{"any ignores x- keys", map[string]any{"x-match": "any", "x-a": "1"}, map[string]any{"x-a": "1"}, false},
	{"any, nil headers", map[string]any{"x-match": "any", "a": 1}, nil, false},

	// -with-x
	{"all-with-x needs x- keys", map[string]any{"x-match": "all-with-x", "a": 1, "x-b": "y"}, map[string]any{"a": 1}, false},
	{"all-with-x matches x- keys", map[string]any{"x-match": "all-with-x", "a": 1, "x-b": "y"}, map[string]any{"a": 1, "x-b": "y"}, true},
	{"all-with-x does not match x-match itself", map[string]any{"x-match": "all-with-x", "a": 1}, map[string]any{"a": 1}, true},
	{"any-with-x matches an x- key", map[string]any{"x-match": "any-with-x", "x-b": "y", "a": 1}, map[string]any{"x-b": "y"}, true},
	{"any-with-x, x- value differs", map[string]any{"x-match": "any-with-x", "x-b": "y"}, map[string]any{"x-b": "z"}, false},
	{"any-with-x, no keys matches nothing", map[string]any{"x-match": "any-with-x"}, map[string]any{"x-match": "any-with-x"}, false},
	{"all-with-x, no keys matches everything", map[string]any{"x-match": "all-with-x"}, nil, true},

	// void binding values test presence
	{"nil value: present with any value", map[string]any{"a": nil}, map[string]any{"a": "whatever"}, true},
	{"nil value: present as nil", map[string]any{"a": nil}, map[string]any{"a": nil}, true},
	{"nil value: absent", map[string]any{"a": nil}, map[string]any{"b": 1}, false},
	{"nil value counts for any", map[string]any{"x-match": "any", "a": nil, "b": 1}, map[string]any{"a": 0}, true},
	{"value vs nil header", map[string]any{"a": ""}, map[string]any{"a": nil}, false},

	// numbers across Go types
	{"int vs int64", map[string]any{"n": 42}, map[string]any{"n": int64(42)}, true},
	{"uint8 vs int16", map[string]any{"n": uint8(7)}, map[string]any{"n": int16(7)}, true},
	{"int vs float64 equal", map[string]any{"n": 3}, map[string]any{"n": 3.0}, true},
	{"float64 vs int not integral", map[string]any{"n": 3.5}, map[string]any{"n": 3}, false},
	{"negative int vs uint", map[string]any{"n": -1}, map[string]any{"n": uint64(math.MaxUint64)}, false},
	{"max uint64 vs max uint64", map[string]any{"n": uint64(math.MaxUint64)}, map[string]any{"n": uint64(math.MaxUint64)}, true},
	{"max int64 vs float 2^63", map[string]any{"n": int64(math.MaxInt64)}, map[string]any{"n": float64(1 << 63)}, false},
	{"int 2^53+1 vs float 2^53", map[string]any{"n": int64(1<<53 + 1)}, map[string]any{"n": float64(1 << 53)}, false},
	{"uint 2^53+1 vs float 2^53", map[string]any{"n": float64(1 << 53)}, map[string]any{"n": uint64(1<<53 + 1)}, false},
	{"int 2^53 vs float 2^53", map[string]any{"n": float64(1 << 53)}, map[string]any{"n": 1 << 53}, true},
	{"uint64 2^63 vs float 2^63", map[string]any{"n": uint64(1 << 63)}, map[string]any{"n": float64(1 << 63)}, true},
	{"float32 vs float64 same value", map[string]any{"n": float32(0.5)}, map[string]any{"n": 0.5}, true},
	{"float32 0.1 vs float64 0.1", map[string]any{"n": float32(0.1)}, map[string]any{"n": 0.1}, false},
	{"NaN never equal", map[string]any{"n": math.NaN()}, map[string]any{"n": math.NaN()}, false},
	{"named int", map[string]any{"n": myInt(5)}, map[string]any{"n": uint32(5)}, true},
	{"number vs string", map[string]any{"n": 1}, map[string]any{"n": "1"}, false},
	{"bool vs number", map[string]any{"b": true}, map[string]any{"b": 1}, false},
	{"number vs bool", map[string]any{"b": 0}, map[string]any{"b": false}, false},

	// strings, bytes, bools, time
	{"string vs []byte", map[string]any{"s": "abc"}, map[string]any{"s": []byte("abc")}, true},
	{"[]byte vs string differs", map[string]any{"s": []byte("abc")}, map[string]any{"s": "abd"}, false},
	{"named string", map[string]any{"s": myString("é")}, map[string]any{"s": "é"}, true},
	{"string case matters", map[string]any{"s": "A"}, map[string]any{"s": "a"}, false},
	{"bool equal", map[string]any{"b": false}, map[string]any{"b": false}, true},
	{"bool differs", map[string]any{"b": false}, map[string]any{"b": true}, false},
	{"time same second", map[string]any{"t": t0}, map[string]any{"t": t0.Add(300 * time.Millisecond)}, true},
	{"time other second", map[string]any{"t": t0}, map[string]any{"t": t0.Add(time.Second)}, false},

	// nested values
	{"list with mixed numbers", map[string]any{"l": []any{1, "a"}}, map[string]any{"l": []any{int64(1), []byte("a")}}, true},
	{"list length differs", map[string]any{"l": []any{1}}, map[string]any{"l": []any{1, 1}}, false},
	{"table vs named table", map[string]any{"m": map[string]any{"k": 1}}, map[string]any{"m": myTable{"k": 1.0}}, true},
	{"table value differs", map[string]any{"m": map[string]any{"k": 1}}, map[string]any{"m": map[string]any{"k": 2}}, false},
	{"table vs list", map[string]any{"m": map[string]any{}}, map[string]any{"m": []any{}}, false},
}

func TestHeadersMatchTable(t *testing.T) {
	for _, c := range headersCases {
		if got := HeadersMatch(c.args, c.headers); got != c.want {
			t.Errorf("%s: HeadersMatch(%v, %v) = %v, want %v", c.name, c.args, c.headers, got, c.want)
		}
	}
}

func TestHeadersMatchSelfReferentialTable(t *testing.T) {
	a := map[string]any{}
	a["self"] = a
	b := map[string]any{}
	b["self"] = b
	// Must terminate; cyclic tables cannot come from the wire.
	HeadersMatch(map[string]any{"t": a}, map[string]any{"t": b})
}

func TestHeadersMatchDoesNotAllocate(t *testing.T) {
	args := map[string]any{"x-match": "all", "format": "pdf", "type": "report", "size": 3, "x-ignored": 1}
	headers := map[string]any{"format": "pdf", "type": []byte("report"), "size": int64(3), "other": true}
	allocs := testing.AllocsPerRun(100, func() {
		if !HeadersMatch(args, headers) {
			t.Fatal("no match")
		}
	})
	if allocs != 0 {
		t.Fatalf("HeadersMatch allocates %v times", allocs)
	}
}

func TestValidateHeadersBinding(t *testing.T) {
	for _, args := range []map[string]any{
		nil,
		{"a": 1},
		{"x-match": "all"},
		{"x-match": "any"},
		{"x-match": "all-with-x"},
		{"x-match": []byte("any-with-x")},
	} {
		if err := ValidateHeadersBinding(args); err != nil {
			t.Errorf("ValidateHeadersBinding(%v) = %v", args, err)
		}
	}
	for _, args := range []map[string]any{
		{"x-match": "ALL"},
		{"x-match": ""},
		{"x-match": "some"},
		{"x-match": 1},
		{"x-match": nil},
		{"x-match": true},
	} {
		err := ValidateHeadersBinding(args)
		if !errors.Is(err, driver.ErrPreconditionFailed) {
			t.Errorf("ValidateHeadersBinding(%v) = %v, want ErrPreconditionFailed", args, err)
		}
	}
}
