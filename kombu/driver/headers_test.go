package driver_test

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
)

func nest(levels int, list bool) any {
	v := any("leaf")
	for range levels {
		if list {
			v = []any{v}
		} else {
			v = map[string]any{"d": v}
		}
	}
	return v
}

func TestNormalizeHeaderValue(t *testing.T) {
	type named string
	type floats []float32
	cases := []struct {
		in   any
		want any
	}{
		{json.Number("0"), int64(0)},
		{json.Number("-0"), int64(0)},
		{json.Number("1.0"), 1.0},
		{json.Number("-2.5e-3"), -0.0025},
		{json.Number("9223372036854775807"), int64(math.MaxInt64)},
		{json.Number("-9223372036854775808"), int64(math.MinInt64)},
		{float32(0.1), 0.1},
		{float32(16777216), 16777216.0},
		{named("x"), "x"},
		{floats{0.5}, []any{0.5}},
		{[2]int8{1, -1}, []any{int64(1), int64(-1)}},
		{[3]byte{'a', 'b', 'c'}, "abc"},
		{json.RawMessage(`{"a":1}`), `{"a":1}`},
		{map[string][]string{"k": {"v"}}, map[string]any{"k": []any{"v"}}},
		{time.Unix(0, 0), "1970-01-01T00:00:00Z"},
		{time.Second, int64(time.Second)}, // a Duration is an integer
		{nest(32, false), nest(32, false)},
		{nest(32, true), nest(32, true)},
		{map[string]any{strings.Repeat("k", 255): 1, "": 2}, map[string]any{strings.Repeat("k", 255): int64(1), "": int64(2)}},
		{make([]any, 8192), make([]any, 8192)},
	}
	for _, c := range cases {
		got, err := driver.NormalizeHeaderValue(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("NormalizeHeaderValue(%#v) = %#v, %v; want %#v", c.in, got, err, c.want)
		}
	}
}

func TestNormalizeHeaderValueRefuses(t *testing.T) {
	n := 1
	cases := map[string]struct {
		in   any
		says string
	}{
		"space before":    {json.Number(" 1"), "not a number"},
		"space after":     {json.Number("1 "), "not a number"},
		"plus":            {json.Number("+1"), "not a number"},
		"leading zero":    {json.Number("01"), "not a number"},
		"empty number":    {json.Number(""), "not a number"},
		"true":            {json.Number("true"), "not a number"},
		"below int64":     {json.Number("-9223372036854775809"), "beyond int64"},
		"float overflow":  {json.Number("-1e309"), "does not fit a float64"},
		"uint beyond":     {uint(math.MaxInt64) + 1, "beyond int64"},
		"NaN float32":     {float32(math.NaN()), "NaN"},
		"+Inf":            {math.Inf(1), "infinity"},
		"pointer":         {&n, "cannot send *int"},
		"struct":          {struct{ A int }{1}, "cannot send struct"},
		"nested chan":     {map[string]any{"a": []any{make(chan int)}}, "cannot send chan int"},
		"non-UTF-8 key":   {map[string]any{"\xff": 1}, "not valid UTF-8"},
		"long key":        {map[string]any{strings.Repeat("k", 256): 1}, "256 bytes long"},
		"non-string keys": {map[bool]int{true: 1}, "keys must be strings"},
		"33 tables":       {nest(33, false), "deeper than 32"},
		"33 lists":        {nest(33, true), "deeper than 32"},
		"8193 values":     {make([]int, 8193), "8193 entries"},
		"bytes":           {[]byte{0xc3}, "not UTF-8 text"},
		"string":          {"\xc3", "not valid UTF-8"},
	}
	for name, c := range cases {
		_, err := driver.NormalizeHeaderValue(c.in)
		if !errors.Is(err, driver.ErrInvalidArgument) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want ErrInvalidArgument saying %q", name, err, c.says)
		}
	}
}

func TestNormalizeHeaders(t *testing.T) {
	if h, err := driver.NormalizeHeaders(nil); h != nil || err != nil {
		t.Errorf("nil headers: %v, %v", h, err)
	}
	in := map[string]any{"list": []any{1}, "map": map[string]any{"k": int8(1)}}
	out, err := driver.NormalizeHeaders(in)
	if err != nil {
		t.Fatal(err)
	}
	out["list"].([]any)[0] = "changed"
	out["map"].(map[string]any)["k"] = "changed"
	if in["list"].([]any)[0] != 1 || in["map"].(map[string]any)["k"] != int8(1) {
		t.Errorf("the input changed with the output: %v", in)
	}
	for name, h := range map[string]map[string]any{
		"empty name":    {"": 1},
		"non-UTF-8":     {"\xff": 1},
		"256-byte name": {strings.Repeat("h", 256): 1},
		"bad value":     {"h": func() {}},
	} {
		if _, err := driver.NormalizeHeaders(h); !errors.Is(err, driver.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
	wide := make(map[string]any, 8193)
	for i := range 8193 {
		wide[strings.Repeat("x", i%100)+string(rune(0x100+i))] = i
	}
	if _, err := driver.NormalizeHeaders(wide); !errors.Is(err, driver.ErrInvalidArgument) {
		t.Errorf("8193 headers: %v, want ErrInvalidArgument", err)
	}
}
