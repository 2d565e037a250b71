package codec

import (
	"errors"
	"strings"
	"testing"
)

// A format whose package is not linked is refused with an error that names
// the import, on encode, decode, compress and decompress alike.
func TestUnlinkedCodecNamesItsImport(t *testing.T) {
	r := NewRegistry()
	r.Unregister("msgpack")
	r.Unregister("yaml")
	c := NewCompressionRegistry()
	c.Unregister("zstd")

	_, _, _, err := r.Encode("msgpack", map[string]any{"a": 1}, "", "")
	wantHint(t, err, ErrUnknownSerializer, "kombu/codec/msgpack")
	var v any
	err = r.Decode("application/x-yaml", "utf-8", []byte("a: 1\n"), &v)
	wantHint(t, err, ErrUnknownSerializer, "kombu/codec/yaml")
	_, _, err = c.Compress("zstandard", []byte("x"))
	wantHint(t, err, ErrUnknownCompression, "kombu/codec/zstd")
	_, err = c.Decompress(CompressionZstd, []byte("x"), 0)
	wantHint(t, err, ErrUnknownCompression, "kombu/codec/zstd")

	// Accept lists still understand kombu's names.
	if got := r.ContentTypeOf("msgpack"); got != ContentTypeMsgpack {
		t.Fatalf("ContentTypeOf(msgpack) = %q", got)
	}
	if got := r.ContentTypeOf("JSON"); got != ContentTypeJSON {
		t.Fatalf("ContentTypeOf(JSON) = %q", got)
	}
	if got := r.ContentTypeOf("Application/X-Custom; v=1"); got != "application/x-custom" {
		t.Fatalf("ContentTypeOf(custom) = %q", got)
	}
	// An unknown name gets no hint.
	_, _, _, err = r.Encode("protobuf", 1, "", "")
	if !errors.Is(err, ErrUnknownSerializer) || strings.Contains(err.Error(), "import") {
		t.Fatalf("unknown serializer: %v", err)
	}
}

func wantHint(t *testing.T, err, sentinel error, pkg string) {
	t.Helper()
	if !errors.Is(err, sentinel) || !strings.Contains(err.Error(), `import _ "github.com/kombu-go/kombu/`+pkg+`"`) {
		t.Fatalf("got %v, want %v naming %s", err, sentinel, pkg)
	}
}

// RegisterDefault reaches Default and every registry made afterwards, not
// the ones made before.
func TestRegisterDefault(t *testing.T) {
	before := NewRegistry()
	s := Serializer{Name: "test-register-default", ContentType: "application/x-test-register-default",
		Marshal: jsonMarshal, Unmarshal: jsonUnmarshal}
	if err := RegisterDefault(s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Default.Unregister(s.Name) })
	if _, ok := Default.Lookup(s.Name); !ok {
		t.Fatal("Default lacks it")
	}
	if _, ok := NewRegistry().Lookup(s.ContentType); !ok {
		t.Fatal("a new registry lacks it")
	}
	if _, ok := before.Lookup(s.Name); ok {
		t.Fatal("an older registry gained it")
	}
	if err := RegisterDefault(Serializer{Name: "x"}); err == nil {
		t.Fatal("a serializer without content type was accepted")
	}

	m := Compressor{Name: "test-register-default", ContentType: "application/x-test-register-default",
		Compress: zlibCompress, NewReader: zlibNewReader}
	if err := RegisterDefaultCompressor(m); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { DefaultCompression.Unregister(m.Name) })
	out, hv, err := NewCompressionRegistry().Compress(m.Name, []byte("abc"))
	if err != nil || hv != m.ContentType {
		t.Fatalf("%v %q", err, hv)
	}
	back, err := Decompress(hv, out, 0)
	if err != nil || string(back) != "abc" {
		t.Fatalf("%q %v", back, err)
	}
}

// A text serializer's body sent in another charset is read in that
// charset; binary serializers and raw bodies are untouched.
func TestDecodeTextSerializerInOtherCharset(t *testing.T) {
	cases := []struct {
		name, encoding string
		body           []byte
	}{
		{"latin-1", "latin-1", []byte("{\"a\": \"caf\xe9\"}")},
		{"iso-8859-1 alias", "ISO_8859_1", []byte("{\"a\": \"caf\xe9\"}")},
		{"utf-16 with BOM", "utf-16", utf16le("\ufeff{\"a\": \"café\"}")},
		{"utf-16-le", "utf-16-le", utf16le("{\"a\": \"café\"}")},
		{"ascii naming utf-8 bytes", "ascii", []byte(`{"a": "café"}`)},
		{"utf-8", "utf-8", []byte(`{"a": "café"}`)},
	}
	for _, c := range cases {
		var v map[string]any
		if err := Decode(ContentTypeJSON, c.encoding, c.body, &v); err != nil || v["a"] != "café" {
			t.Errorf("%s: %v %v", c.name, v, err)
		}
	}
	// A producer's own latin-1 JSON round-trips.
	body, ct, ce, err := Encode("", `{"a": "café"}`, ContentTypeJSON, "latin-1")
	if err != nil || string(body) != "{\"a\": \"caf\xe9\"}" {
		t.Fatalf("encode: %q %v", body, err)
	}
	var v map[string]any
	if err := Decode(ct, ce, body, &v); err != nil || v["a"] != "café" {
		t.Fatalf("round trip: %v %v", v, err)
	}
	// Bytes invalid in the named charset are a decode error.
	if err := Decode(ContentTypeJSON, "utf-16", []byte{'{', 0, '}'}, &v); !errors.Is(err, ErrDecode) {
		t.Fatalf("odd utf-16: %v", err)
	}
}

func utf16le(s string) []byte {
	var out []byte
	for _, r := range s {
		if r > 0xffff {
			panic("BMP only")
		}
		out = append(out, byte(r), byte(r>>8))
	}
	return out
}
