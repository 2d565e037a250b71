package codec_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	. "github.com/kombu-go/kombu/kombu/codec"
	_ "github.com/kombu-go/kombu/kombu/codec/all"
	"io"
	"math"
	"math/big"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

type encodeCase struct {
	name        string
	serializer  string
	v           any
	contentType string
	encoding    string
	wantBody    []byte
	wantCT      string
	wantCE      string
}

// encodeCases are the rows of the wire-format §1.1 serialization table that
// apply to Go (pickle is never produced, see TestEncodePickleRefused).
var encodeCases = []encodeCase{
	{name: "json default for a map", v: map[string]any{"n": 4, "text": "zlib"},
		wantBody: []byte(`{"n":4,"text":"zlib"}`), wantCT: "application/json", wantCE: "utf-8"},
	{name: "json named", serializer: "json", v: []any{1, "a", nil, true},
		wantBody: []byte(`[1,"a",null,true]`), wantCT: "application/json", wantCE: "utf-8"},
	{name: "json named, string body", serializer: "json", v: "héllo <&>",
		wantBody: []byte(`"héllo <&>"`), wantCT: "application/json", wantCE: "utf-8"},
	{name: "json nil", v: nil,
		wantBody: []byte(`null`), wantCT: "application/json", wantCE: "utf-8"},
	{name: "str with no serializer", v: "héllo",
		wantBody: []byte("héllo"), wantCT: "text/plain", wantCE: "utf-8"},
	{name: "bytes with no serializer", v: []byte{0, 1, 0xff},
		wantBody: []byte{0, 1, 0xff}, wantCT: "application/data", wantCE: "binary"},
	{name: "raw bytes", serializer: "raw", v: []byte{0xfe, 0x00},
		wantBody: []byte{0xfe, 0x00}, wantCT: "application/data", wantCE: "binary"},
	{name: "raw str", serializer: "raw", v: "text é",
		wantBody: []byte("text é"), wantCT: "application/data", wantCE: "utf-8"},
	{name: "yaml", serializer: "yaml", v: map[string]any{"a": 1, "b": []any{1.5, "x"}},
		wantBody: []byte("a: 1\nb:\n    - 1.5\n    - x\n"), wantCT: "application/x-yaml", wantCE: "utf-8"},
	{name: "msgpack", serializer: "msgpack", v: map[string]any{"a": 1},
		wantBody: []byte{0x81, 0xa1, 'a', 0x01}, wantCT: "application/x-msgpack", wantCE: "binary"},
	{name: "msgpack bin and str", serializer: "msgpack", v: []any{"x", []byte{0xff}, -1, 1.5},
		wantBody: []byte{0x94, 0xa1, 'x', 0xc4, 0x01, 0xff, 0xff, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0},
		wantCT:   "application/x-msgpack", wantCE: "binary"},
	{name: "serializer by content type", serializer: "application/json", v: 7,
		wantBody: []byte(`7`), wantCT: "application/json", wantCE: "utf-8"},
	{name: "serializer name ignores case", serializer: "JSON", v: 7,
		wantBody: []byte(`7`), wantCT: "application/json", wantCE: "utf-8"},
	{name: "explicit type, str body", contentType: "application/json", v: `{"a": 1}`,
		wantBody: []byte(`{"a": 1}`), wantCT: "application/json", wantCE: "utf-8"},
	{name: "explicit type, str body, latin-1", contentType: "text/plain", encoding: "latin-1", v: "é",
		wantBody: []byte{0xe9}, wantCT: "text/plain", wantCE: "latin-1"},
	{name: "explicit type, str body, utf-16", contentType: "text/plain", encoding: "utf-16", v: "é",
		wantBody: []byte{0xff, 0xfe, 0xe9, 0x00}, wantCT: "text/plain", wantCE: "utf-16"},
	{name: "explicit type, bytes body", contentType: "application/x-custom", v: []byte{1, 2},
		wantBody: []byte{1, 2}, wantCT: "application/x-custom", wantCE: "binary"},
	{name: "explicit type, bytes body, given encoding", contentType: "application/json", encoding: "utf-8",
		v: []byte(`{}`), wantBody: []byte(`{}`), wantCT: "application/json", wantCE: "utf-8"},
	{name: "explicit type wins over serializer", serializer: "msgpack", contentType: "application/json",
		v: `[1]`, wantBody: []byte(`[1]`), wantCT: "application/json", wantCE: "utf-8"},
}

func TestEncodeTable(t *testing.T) {
	for _, tc := range encodeCases {
		t.Run(tc.name, func(t *testing.T) {
			body, ct, ce, err := NewRegistry().Encode(tc.serializer, tc.v, tc.contentType, tc.encoding)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !bytes.Equal(body, tc.wantBody) {
				t.Errorf("body = %q, want %q", body, tc.wantBody)
			}
			if ct != tc.wantCT || ce != tc.wantCE {
				t.Errorf("content type/encoding = %q/%q, want %q/%q", ct, ce, tc.wantCT, tc.wantCE)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	r := NewRegistry()
	cases := []struct {
		name        string
		serializer  string
		v           any
		contentType string
		encoding    string
		want        error
	}{
		{"unknown serializer", "nope", 1, "", "", ErrUnknownSerializer},
		{"pickle", "pickle", 1, "", "", ErrUnknownSerializer},
		{"pickle by content type", "application/x-python-serialize", 1, "", "", ErrUnknownSerializer},
		{"raw with a map", "raw", map[string]int{}, "", "", ErrEncode},
		{"json of a channel", "json", make(chan int), "", "", ErrEncode},
		{"yaml of a func", "yaml", func() {}, "", "", ErrEncode},
		{"explicit type with a map", "", map[string]int{}, "application/json", "", ErrEncode},
		{"explicit type, unknown encoding", "", "x", "text/plain", "klingon", ErrEncode},
		{"explicit type, not latin-1", "", "€", "text/plain", "latin-1", ErrEncode},
		{"explicit type, not ascii", "", "é", "text/plain", "ascii", ErrEncode},
		{"text/plain invalid utf-8", "", "\xff", "", "", ErrEncode},
		{"raw str invalid utf-8", "raw", "\xff", "", "", ErrEncode},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := r.Encode(tc.serializer, tc.v, tc.contentType, tc.encoding)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestEncodePickleRefusedMessage(t *testing.T) {
	_, _, _, err := Encode("pickle", map[string]any{}, "", "")
	if !errors.Is(err, ErrUnknownSerializer) || !strings.Contains(err.Error(), "pickle") {
		t.Fatalf("err = %v", err)
	}
}

// TestRoundTrip encodes with each serializer and decodes with Decode.
func TestRoundTrip(t *testing.T) {
	value := map[string]any{
		"int":    int64(42),
		"neg":    int64(-7),
		"big":    int64(math.MaxInt64),
		"float":  1.5,
		"str":    "héllo ✓",
		"bool":   true,
		"nil":    nil,
		"list":   []any{int64(1), "two", 3.25},
		"nested": map[string]any{"k": []any{}},
	}
	for _, name := range []string{"json", "msgpack", "yaml"} {
		t.Run(name, func(t *testing.T) {
			body, ct, ce, err := Encode(name, value, "", "")
			if err != nil {
				t.Fatal(err)
			}
			var got any
			if err := Decode(ct, ce, body, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, value) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, value)
			}
		})
	}
	t.Run("bytes", func(t *testing.T) {
		in := []byte{0, 0xff, 'a'}
		body, ct, ce, err := Encode("", in, "", "")
		if err != nil {
			t.Fatal(err)
		}
		var got any
		if err := Decode(ct, ce, body, &got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.([]byte), in) {
			t.Fatalf("got %q", got)
		}
	})
	for _, name := range []string{"", "raw"} {
		t.Run("string via "+name, func(t *testing.T) {
			body, ct, ce, err := Encode(name, "héllo", "", "")
			if err != nil {
				t.Fatal(err)
			}
			var got any
			if err := Decode(ct, ce, body, &got); err != nil {
				t.Fatal(err)
			}
			if got != "héllo" {
				t.Fatalf("got %#v", got)
			}
		})
	}
	t.Run("msgpack bin", func(t *testing.T) {
		body, ct, ce, err := Encode("msgpack", map[string]any{"b": []byte{1, 2}}, "", "")
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := Decode(ct, ce, body, &got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got["b"].([]byte), []byte{1, 2}) {
			t.Fatalf("got %#v", got)
		}
	})
	t.Run("struct", func(t *testing.T) {
		type task struct {
			ID   string `json:"id" yaml:"id"`
			Args []int  `json:"args" yaml:"args"`
		}
		in := task{ID: "abc", Args: []int{1, 2}}
		for _, name := range []string{"json", "msgpack", "yaml"} {
			body, ct, ce, err := Encode(name, in, "", "")
			if err != nil {
				t.Fatal(err)
			}
			var out task
			if err := Decode(ct, ce, body, &out); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !reflect.DeepEqual(out, in) {
				t.Fatalf("%s: got %+v", name, out)
			}
			var m map[string]any
			if err := Decode(ct, ce, body, &m); err != nil {
				t.Fatal(err)
			}
			if m["id"] != "abc" {
				t.Fatalf("%s: keys %v", name, m)
			}
		}
	})
}

func TestDecodeJSONNumbers(t *testing.T) {
	body := []byte(`{"i": 1, "n": -3, "f": 1.0, "e": 1e3, "big": 18446744073709551615, "huge": 123456789012345678901234567890, "l": [2, 2.5]}`)
	var got any
	if err := Decode("application/json", "utf-8", body, &got); err != nil {
		t.Fatal(err)
	}
	m := got.(map[string]any)
	huge, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	want := map[string]any{
		"i": int64(1), "n": int64(-3), "f": 1.0, "e": 1000.0,
		"big": uint64(math.MaxUint64), "huge": huge,
		"l": []any{int64(2), 2.5},
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %#v\nwant %#v", m, want)
	}
	var top map[string]any
	if err := Decode("application/json", "", body, &top); err != nil {
		t.Fatal(err)
	}
	if top["i"] != int64(1) {
		t.Fatalf("*map[string]any: i = %#v", top["i"])
	}
	var list []any
	if err := Decode("application/json", "", []byte(`[1, 1.5]`), &list); err != nil {
		t.Fatal(err)
	}
	if list[0] != int64(1) || list[1] != 1.5 {
		t.Fatalf("*[]any: %#v", list)
	}
}

// TestDecodeTaggedObjectsStayMaps: kombu 5.3+ type wrappers are left alone.
func TestDecodeTaggedObjectsStayMaps(t *testing.T) {
	body := []byte(`{"__type__": "datetime", "__value__": "2024-01-01T00:00:00+00:00"}`)
	var got any
	if err := Decode("application/json", "utf-8", body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"__type__": "datetime", "__value__": "2024-01-01T00:00:00+00:00"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v", got)
	}
}

// pythonMsgpack is msgpack.packb({"a": 1, "b": [1.5, "x"], "c": b"\x00\xff"},
// use_bin_type=True), written out by hand from the msgpack spec.
var pythonMsgpack = []byte{
	0x83,      // fixmap, 3 entries
	0xa1, 'a', // "a"
	0x01,      // 1
	0xa1, 'b', // "b"
	0x92,                                                 // fixarray, 2 items
	0xcb, 0x3f, 0xf8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // float 64 1.5
	0xa1, 'x', // "x"
	0xa1, 'c', // "c"
	0xc4, 0x02, 0x00, 0xff, // bin 8, 2 bytes
}

func TestDecodePythonMsgpack(t *testing.T) {
	var got any
	if err := Decode("application/x-msgpack", "binary", pythonMsgpack, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": int64(1), "b": []any{1.5, "x"}, "c": []byte{0x00, 0xff}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v\nwant %#v", got, want)
	}
	var typed struct {
		A int      `msgpack:"a"`
		B []any    `msgpack:"b"`
		C []byte   `msgpack:"c"`
		D struct{} `msgpack:"d"`
	}
	if err := Decode("application/x-msgpack", "binary", pythonMsgpack, &typed); err != nil {
		t.Fatal(err)
	}
	if typed.A != 1 || !bytes.Equal(typed.C, []byte{0, 0xff}) || len(typed.B) != 2 {
		t.Fatalf("typed: %+v", typed)
	}
}

func TestDecodeMsgpackTypes(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want any
	}{
		{"negative fixint", []byte{0xff}, int64(-1)},
		{"uint64 max", []byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint64(math.MaxUint64)},
		{"uint32", []byte{0xce, 0x80, 0, 0, 0}, int64(1 << 31)},
		{"int16", []byte{0xd1, 0xff, 0x00}, int64(-256)},
		{"int64 min", []byte{0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}, int64(math.MinInt64)},
		{"float32", []byte{0xca, 0x3f, 0xc0, 0, 0}, 1.5},
		{"str8", []byte{0xd9, 0x02, 'h', 'i'}, "hi"},
		{"nil", []byte{0xc0}, nil},
		{"bin map key", []byte{0x81, 0xc4, 0x01, 'k', 0xc3}, map[string]any{"k": true}},
		{"timestamp32", []byte{0xd6, 0xff, 0, 0, 0, 1}, time.Unix(1, 0).UTC()},
		{"timestamp96", []byte{0xc7, 12, 0xff, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 2}, time.Unix(2, 5).UTC()},
		{"array16", []byte{0xdc, 0, 1, 0x07}, []any{int64(7)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got any
			if err := Decode("application/x-msgpack", "binary", tc.in, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

// pythonYAML is yaml.safe_dump({"a": 1, "b": [1.5, "x"], "c": "\u00e9",
// "big": 2**70, "k": {1: "one"}}) from Python 3.11, PyYAML 6.0.
const pythonYAML = "a: 1\nb:\n- 1.5\n- x\nbig: 1180591620717411303424\nc: \"\\xE9\"\nk:\n  1: one\n"

func TestDecodePythonYAML(t *testing.T) {
	var got any
	if err := Decode("application/x-yaml", "utf-8", []byte(pythonYAML), &got); err != nil {
		t.Fatal(err)
	}
	m, ok := got.(map[string]any)
	if !ok {
		t.Fatalf("top level is %T, want map[string]any", got)
	}
	if m["a"] != int64(1) || m["c"] != "é" {
		t.Fatalf("got %#v", m)
	}
	if !reflect.DeepEqual(m["b"], []any{1.5, "x"}) {
		t.Fatalf("b = %#v", m["b"])
	}
	if k, ok := m["k"].(map[any]any); !ok || k[int64(1)] != "one" && k[1] != "one" {
		t.Fatalf("k = %#v (%T)", m["k"], m["k"])
	}
}

func TestDecodeRawAndText(t *testing.T) {
	cases := []struct {
		name, ct, ce string
		body         []byte
		want         any
	}{
		{"missing type and encoding is utf-8 text", "", "", []byte("héllo"), "héllo"},
		{"application/data binary", "application/data", "binary", []byte{0xff, 0}, []byte{0xff, 0}},
		{"ascii-8bit", "", "ASCII-8BIT", []byte{0xff}, []byte{0xff}},
		{"text/plain utf-8", "text/plain", "utf-8", []byte("x"), "x"},
		{"unknown type utf-8", "application/x-unknown", "UTF8", []byte("y"), "y"},
		{"latin-1", "text/plain", "latin-1", []byte{0xe9}, "é"},
		{"ascii", "text/plain", "us-ascii", []byte("ok"), "ok"},
		{"utf-16 BOM BE", "text/plain", "utf-16", []byte{0xfe, 0xff, 0x00, 0xe9}, "é"},
		{"utf-16-le surrogate pair", "text/plain", "utf_16_le", []byte{0x3d, 0xd8, 0x00, 0xde}, "😀"},
		{"content type parameters ignored", "Application/JSON; charset=utf-8", "", []byte(`[1]`), []any{int64(1)}},
		{"empty body", "application/json", "utf-8", nil, []byte{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got any
			if err := Decode(tc.ct, tc.ce, tc.body, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
	t.Run("into *[]byte, *string and named types", func(t *testing.T) {
		var b []byte
		var s string
		var raw json.RawMessage
		if err := Decode("application/data", "binary", []byte{1}, &b); err != nil || !bytes.Equal(b, []byte{1}) {
			t.Fatalf("%v %v", b, err)
		}
		if err := Decode("text/plain", "utf-8", []byte("hi"), &s); err != nil || s != "hi" {
			t.Fatalf("%q %v", s, err)
		}
		if err := Decode("application/data", "binary", []byte("zz"), &raw); err != nil || string(raw) != "zz" {
			t.Fatalf("%q %v", raw, err)
		}
	})
	t.Run("body is copied", func(t *testing.T) {
		body := []byte{1, 2}
		var b []byte
		if err := Decode("", "binary", body, &b); err != nil {
			t.Fatal(err)
		}
		body[0] = 9
		if b[0] != 1 {
			t.Fatal("decoded bytes alias the body")
		}
	})
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name, ct, ce string
		body         []byte
		target       any
		want         error
	}{
		{"pickle", "application/x-python-serialize", "binary", []byte("\x80\x04K\x01."), new(any), ErrUnsafeContent},
		{"pickle with parameters and case", "Application/X-Python-Serialize; x=1", "", []byte("x"), new(any), ErrUnsafeContent},
		{"empty pickle", "application/x-python-serialize", "", nil, new(any), ErrUnsafeContent},
		{"invalid json", "application/json", "utf-8", []byte(`{"a": `), new(any), ErrDecode},
		{"json trailing data", "application/json", "utf-8", []byte(`{} {}`), new(any), ErrDecode},
		{"json binary body", "application/json", "utf-8", []byte{'"', 0xff, '"'}, new(any), ErrDecode},
		{"json wrong shape", "application/json", "", []byte(`[1]`), new(map[string]any), ErrDecode},
		{"json into struct type mismatch", "application/json", "", []byte(`{"a": "x"}`), new(struct{ A int }), ErrDecode},
		{"truncated msgpack", "application/x-msgpack", "binary", pythonMsgpack[:len(pythonMsgpack)-1], new(any), ErrDecode},
		{"truncated msgpack typed", "application/x-msgpack", "binary", pythonMsgpack[:5], new(map[string]int), ErrDecode},
		{"msgpack huge array header", "application/x-msgpack", "binary", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, new(any), ErrDecode},
		{"msgpack huge map header typed", "application/x-msgpack", "binary", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}, new(map[string]int), ErrDecode},
		{"msgpack int key", "application/x-msgpack", "binary", []byte{0x81, 0x01, 0x01}, new(any), ErrDecode},
		{"msgpack invalid utf-8 str", "application/x-msgpack", "binary", []byte{0xa1, 0xff}, new(any), ErrDecode},
		{"msgpack trailing data", "application/x-msgpack", "binary", []byte{0x01, 0x02}, new(any), ErrDecode},
		{"msgpack unknown ext", "application/x-msgpack", "binary", []byte{0xd4, 0x05, 0x00}, new(any), ErrDecode},
		{"msgpack 0xc1", "application/x-msgpack", "binary", []byte{0xc1}, new(any), ErrDecode},
		{"invalid yaml", "application/x-yaml", "utf-8", []byte("a: [1,"), new(any), ErrDecode},
		{"invalid utf-8 text", "text/plain", "utf-8", []byte{0xc3, 0x28}, new(string), ErrDecode},
		{"invalid utf-8, no type", "", "", []byte{0xff}, new([]byte), ErrDecode},
		{"not ascii", "text/plain", "ascii", []byte{0x80}, new(string), ErrDecode},
		{"odd utf-16", "text/plain", "utf-16", []byte{0x00}, new(string), ErrDecode},
		{"lone surrogate", "text/plain", "utf-16-le", []byte{0x00, 0xd8}, new(string), ErrDecode},
		{"unknown encoding", "text/plain", "klingon", []byte("x"), new(string), ErrDecode},
		{"raw body into a struct", "application/data", "binary", []byte("x"), new(struct{}), ErrDecode},
		{"empty body into a struct", "application/json", "", nil, new(struct{}), ErrDecode},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Decode(tc.ct, tc.ce, tc.body, tc.target)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("non-pointer target", func(t *testing.T) {
		var s string
		if err := Decode("text/plain", "", []byte("x"), s); err == nil {
			t.Fatal("no error")
		}
		if err := Decode("text/plain", "", []byte("x"), nil); err == nil {
			t.Fatal("no error")
		}
	})
}

func TestDecodeErrorQuotesAtMost64Bytes(t *testing.T) {
	body := []byte(`{"start": "` + strings.Repeat("a", 60) + `SECRET-TAIL` + `",`)
	err := Decode("application/json", "utf-8", body, new(any))
	if !errors.Is(err, ErrDecode) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, `{\"start\": \"aaa`) {
		t.Errorf("message does not quote the body start: %s", msg)
	}
	if strings.Contains(msg, "SECRET-TAIL") {
		t.Errorf("message quotes more than 64 bytes: %s", msg)
	}
	if !strings.Contains(msg, fmt.Sprintf("(%d bytes)", len(body))) {
		t.Errorf("message does not give the body size: %s", msg)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cause not kept: %v", err)
	}
}

// TestErrorsClipLongHeaders: content types, encodings and method names come
// from messages; errors quote at most 64 bytes of each.
func TestErrorsClipLongHeaders(t *testing.T) {
	long := strings.Repeat("h", 5000)
	errs := []error{
		Decode("text/plain", long, []byte("x"), new(any)),
		Decode(long, "utf-8", []byte{0xff}, new(any)),
		Decode(long, "binary", []byte("x"), new(struct{})),
		Decode(long, "", nil, new(struct{})),
	}
	_, _, _, err := Encode(long, 1, "", "")
	errs = append(errs, err)
	_, _, _, err = Encode("", "x", long, long)
	errs = append(errs, err)
	_, err = Decompress(long, []byte("x"), 0)
	errs = append(errs, err)
	_, _, err = Compress(long, []byte("x"))
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil {
			t.Fatalf("case %d: no error", i)
		}
		if len(err.Error()) > 400 {
			t.Errorf("case %d: %d-byte error message", i, len(err.Error()))
		}
	}
}

func TestRegistryRegisterLookup(t *testing.T) {
	r := NewRegistry()
	if err := r.Register(Serializer{Name: "", ContentType: "x/y"}); err == nil {
		t.Error("empty name accepted")
	}
	if err := r.Register(Serializer{Name: "x", ContentType: " "}); err == nil {
		t.Error("empty content type accepted")
	}
	upper := Serializer{
		Name: "upper", ContentType: "application/x-upper", Aliases: []string{"UP"},
		Marshal: func(v any) ([]byte, error) { return []byte(strings.ToUpper(v.(string))), nil },
		Unmarshal: func(data []byte, v any) error {
			*v.(*string) = strings.ToLower(string(data))
			return nil
		},
	}
	if err := r.Register(upper); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"upper", "UPPER", "up", "application/x-upper", "Application/X-Upper"} {
		s, ok := r.Lookup(key)
		if !ok || s.Name != "upper" {
			t.Errorf("Lookup(%q) = %v, %v", key, s.Name, ok)
		}
	}
	if s, _ := r.Lookup("upper"); s.ContentEncoding != "utf-8" {
		t.Errorf("default content encoding = %q", s.ContentEncoding)
	}
	body, ct, ce, err := r.Encode("up", "abc", "", "")
	if err != nil || string(body) != "ABC" || ct != "application/x-upper" || ce != "utf-8" {
		t.Fatalf("Encode = %q %q %q %v", body, ct, ce, err)
	}
	var s string
	if err := r.Decode(ct, ce, body, &s); err != nil || s != "abc" {
		t.Fatalf("Decode = %q %v", s, err)
	}
	// Replace by name; the old content type is gone.
	if err := r.Register(Serializer{Name: "UPPER", ContentType: "application/x-upper2"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.ByContentType("application/x-upper"); ok {
		t.Error("old content type still registered")
	}
	// Registered without Unmarshal: refused.
	if err := r.Decode("application/x-upper2", "", []byte("x"), new(any)); !errors.Is(err, ErrUnsafeContent) {
		t.Errorf("decode of a never-decoded type: %v", err)
	}
	// Pickle stays refused even if someone registers a decoder for it.
	if err := r.Register(Serializer{Name: "pickle", ContentType: ContentTypePickle,
		Unmarshal: func([]byte, any) error { return nil }}); err != nil {
		t.Fatal(err)
	}
	if err := r.Decode(ContentTypePickle, "binary", []byte("x"), new(any)); !errors.Is(err, ErrUnsafeContent) {
		t.Errorf("pickle decoded: %v", err)
	}
	r.Unregister("Upper")
	if _, ok := r.Lookup("upper"); ok {
		t.Error("Unregister did not remove")
	}
	r.Unregister("json")
	if _, _, _, err := r.Encode("", map[string]int{}, "", ""); !errors.Is(err, ErrUnknownSerializer) {
		t.Errorf("encode without json: %v", err)
	}
	// With json gone, application/json has no decoder: text.
	var got any
	if err := r.Decode("application/json", "utf-8", []byte(`{}`), &got); err != nil || got != "{}" {
		t.Errorf("decode without json = %#v, %v", got, err)
	}
	if _, ok := Default.Lookup("json"); !ok {
		t.Error("Default registry changed by another registry")
	}
}

func TestRegistryPanickingDecoder(t *testing.T) {
	r := NewRegistry()
	_ = r.Register(Serializer{Name: "boom", ContentType: "x/boom",
		Marshal:   func(any) ([]byte, error) { panic("marshal") },
		Unmarshal: func([]byte, any) error { panic("unmarshal") }})
	if _, _, _, err := r.Encode("boom", 1, "", ""); !errors.Is(err, ErrEncode) {
		t.Errorf("encode: %v", err)
	}
	if err := r.Decode("x/boom", "", []byte("x"), new(any)); !errors.Is(err, ErrDecode) {
		t.Errorf("decode: %v", err)
	}
}

func TestZeroRegistry(t *testing.T) {
	var r Registry
	if _, ok := r.Lookup("json"); ok {
		t.Fatal("zero registry has json")
	}
	var got any
	if err := r.Decode("application/json", "utf-8", []byte("{}"), &got); err != nil || got != "{}" {
		t.Fatalf("got %#v %v", got, err)
	}
	if _, _, _, err := r.Encode("json", 1, "", ""); !errors.Is(err, ErrUnknownSerializer) {
		t.Fatalf("err = %v", err)
	}
}

func TestRegistryConcurrent(t *testing.T) {
	r := NewRegistry()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				if i%2 == 0 {
					_ = r.Register(Serializer{Name: "tmp", ContentType: "x/tmp"})
					r.Unregister("tmp")
					continue
				}
				body, ct, ce, err := r.Encode("json", j, "", "")
				if err != nil {
					t.Error(err)
					return
				}
				var v any
				if err := r.Decode(ct, ce, body, &v); err != nil || v != int64(j) {
					t.Errorf("%v %v", v, err)
					return
				}
			}
		}(i)
	}
	wg.Wait()
}

// TestDecodeHostileStructure: deep nesting and YAML alias expansion are
// refused quickly instead of exhausting the stack or memory.
func TestDecodeHostileStructure(t *testing.T) {
	const depth = 200000
	laughs := "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
	prev := "a"
	for _, c := range "bcdefghi" {
		laughs += string(c) + ": &" + string(c) + " [" + strings.Repeat("*"+prev+", ", 8) + "*" + prev + "]\n"
		prev = string(c)
	}
	cases := []struct {
		name, ct string
		body     []byte
	}{
		{"json nesting", "application/json", []byte(strings.Repeat("[", depth) + strings.Repeat("]", depth))},
		{"yaml nesting", "application/x-yaml", []byte(strings.Repeat("[", depth) + strings.Repeat("]", depth))},
		{"msgpack nesting", "application/x-msgpack", append(bytes.Repeat([]byte{0x91}, depth), 0xc0)},
		{"yaml billion laughs", "application/x-yaml", []byte(laughs)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := Decode(tc.ct, "", tc.body, new(any))
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("err = %v, want ErrDecode", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
}
