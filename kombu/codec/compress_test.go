package codec_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"errors"
	. "github.com/kombu-go/kombu/kombu/codec"
	_ "github.com/kombu-go/kombu/kombu/codec/all"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var compressionNames = []struct {
	name, header string
	aliases      []string
}{
	{"zlib", "application/x-gzip", []string{"gzip", "zlib", "GZIP"}},
	{"bzip2", "application/x-bz2", []string{"bzip2", "bzip"}},
	{"xz", "application/x-lzma", []string{"lzma", "xz", "LZMA"}},
	{"zstd", "application/zstd", []string{"zstd", "zstandard"}},
	{"brotli", "application/x-brotli", []string{"brotli", "Brotli"}},
}

func TestCompressionLookup(t *testing.T) {
	for _, c := range compressionNames {
		for _, key := range append([]string{c.name, strings.ToUpper(c.name), c.header, strings.ToUpper(c.header)}, c.aliases...) {
			m, ok := DefaultCompression.Lookup(key)
			if !ok || m.Name != c.name || m.ContentType != c.header {
				t.Errorf("Lookup(%q) = %q %q %v, want %q %q", key, m.Name, m.ContentType, ok, c.name, c.header)
			}
		}
	}
	if _, ok := DefaultCompression.Lookup("snappy"); ok {
		t.Error("snappy is not a builtin")
	}
}

func TestCompressRoundTrip(t *testing.T) {
	inputs := map[string][]byte{
		"empty": {},
		"json":  []byte(`{"n": 4, "text": "zlib"}`),
		"large": bytes.Repeat([]byte("kombu message body "), 50000), // ~950 KiB
	}
	for _, c := range compressionNames {
		for label, in := range inputs {
			keys := []string{c.name, c.header, c.aliases[0]}
			if label == "large" {
				keys = keys[:1]
			}
			for _, key := range keys {
				out, header, err := Compress(key, in)
				if err != nil {
					t.Fatalf("%s/%s Compress(%q): %v", c.name, label, key, err)
				}
				if header != c.header {
					t.Errorf("%s header = %q, want %q", c.name, header, c.header)
				}
				back, err := Decompress(header, out, 0)
				if err != nil {
					t.Fatalf("%s/%s Decompress: %v", c.name, label, err)
				}
				if !bytes.Equal(back, in) {
					t.Fatalf("%s/%s: round trip changed %d bytes into %d", c.name, label, len(in), len(back))
				}
			}
		}
	}
}

func TestCompressGoldenPrefixes(t *testing.T) {
	in := []byte(`{"n": 4, "text": "golden"}`)
	cases := []struct {
		method string
		prefix []byte
	}{
		{"zlib", []byte{0x78, 0x9c}},
		{"gzip", []byte{0x78}}, // kombu's gzip is a zlib stream
		{"xz", []byte{0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00}},
		{"bzip2", []byte("BZh9")},
		{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd}},
	}
	for _, tc := range cases {
		out, _, err := Compress(tc.method, in)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(out, tc.prefix) {
			t.Errorf("%s output starts % x, want % x", tc.method, out[:min(len(out), 8)], tc.prefix)
		}
	}
}

// TestZstdFramesCarryContentSize: Python's zstandard decompress() refuses
// frames without a content size.
func TestZstdFramesCarryContentSize(t *testing.T) {
	for _, n := range []int{0, 1, 200, 300, 1500, 200 << 10, 3 << 20} {
		out, _, err := Compress("zstd", bytes.Repeat([]byte{'k'}, n))
		if err != nil {
			t.Fatal(err)
		}
		var h zstd.Header
		if err := h.Decode(out); err != nil {
			t.Fatal(err)
		}
		if !h.HasFCS || h.FrameContentSize != uint64(n) {
			t.Errorf("%d bytes: frame header content size %v/%d", n, h.HasFCS, h.FrameContentSize)
		}
	}
}

// TestKombuZlibExample decodes the body observed in a Python kombu Redis
// envelope (wire format §1.1).
func TestKombuZlibExample(t *testing.T) {
	data, err := base64.StdEncoding.DecodeString("eJyrVspTslIw0VFQKkmtKAEylapyMpOUagFQSgbd")
	if err != nil {
		t.Fatal(err)
	}
	out, err := Decompress("application/x-gzip", data, 0)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"n": 4, "text": "zlib"}` {
		t.Fatalf("got %q", out)
	}
	var v map[string]any
	if err := Decode("application/json", "utf-8", out, &v); err != nil || v["n"] != int64(4) {
		t.Fatalf("decoded %#v %v", v, err)
	}
}

// TestDecompressRealGzip: data with the gzip magic is read as RFC 1952.
func TestDecompressRealGzip(t *testing.T) {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write([]byte("real gzip"))
	_ = w.Close()
	for _, key := range []string{"application/x-gzip", "gzip", "zlib"} {
		out, err := Decompress(key, buf.Bytes(), 0)
		if err != nil || string(out) != "real gzip" {
			t.Fatalf("%s: %q %v", key, out, err)
		}
	}
}

// Python fixtures, made with Python 3.11's bz2 and lzma modules.
const (
	// bz2.compress(b'{"n": 4, "text": "bz2"}')
	pyBzip2 = "425a683931415926535924a17caf00000a9980500414101201045a20003100000a7a9ea699a9b510425b626995990c37e3f17724538509024a17caf0"
	// lzma.compress(b'{"n": 4, "text": "xz"}', preset=9|lzma.PRESET_EXTREME): 64 MiB dictionary
	pyXZPreset9 = "fd377a585a000004e6d6b446020021011c00000010cf58cc0100157b226e223a20342c202274657874223a2022787a227d0000009d8c2b3cb32dba0400012e16560955df1fb6f37d010000000004595a"
	// lzma.compress(b'hello', filters=[{"id": lzma.FILTER_LZMA2, "dict_size": 1536<<20}])
	pyXZBigDict = "fd377a585a000004e6d6b44602002101250000003b787b4101000468656c6c6f00000000b137b9dbe5da1e9b00011d05b82d80af1fb6f37d010000000004595a"
	// lzma.compress(b'first ', check=CHECK_CRC32) + lzma.compress(b'second', check=CHECK_SHA256)
	pyXZTwoStreams = "fd377a585a0000016922de360200210116000000742fe5a3010005666972737420000000fc7af11c00011a06c5eac8799042990d010000000001595afd377a585a00000ae1fb0ca10200210116000000742fe5a30100057365636f6e6400000016367aacb67a4a017c8da8ab95682ccb390863780f7114dda0a0e0c55644c7c4000136066b81f940189b4b9a01000000000a595a"
	// lzma.compress(b'none', check=CHECK_NONE)
	pyXZNoCheck = "fd377a585a000000ff12d9410200210116000000742fe5a30100036e6f6e65000001140467a6450906729e7a010000000000595a"
)

func TestDecompressPythonFixtures(t *testing.T) {
	cases := []struct {
		name, method, data, want string
	}{
		{"bz2", "application/x-bz2", pyBzip2, `{"n": 4, "text": "bz2"}`},
		{"xz preset 9", "application/x-lzma", pyXZPreset9, `{"n": 4, "text": "xz"}`},
		{"xz 1.5 GiB dictionary", "lzma", pyXZBigDict, "hello"},
		{"xz two streams", "xz", pyXZTwoStreams, "first second"},
		{"xz no check", "xz", pyXZNoCheck, "none"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Decompress(tc.method, mustHex(t, tc.data), 0)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.want {
				t.Fatalf("got %q, want %q", out, tc.want)
			}
		})
	}
	t.Run("xz with stream padding", func(t *testing.T) {
		a := mustHex(t, pyXZNoCheck)
		data := append(append(append([]byte{}, a...), 0, 0, 0, 0, 0, 0, 0, 0), a...)
		out, err := Decompress("xz", data, 0)
		if err != nil || string(out) != "nonenone" {
			t.Fatalf("%q %v", out, err)
		}
	})
}

// TestXZHugeDictionaryIsShrunk: a 5-byte payload whose header asks for a
// 1.5 GiB dictionary must not make the decoder allocate it.
func TestXZHugeDictionaryIsShrunk(t *testing.T) {
	data := mustHex(t, pyXZBigDict)
	alloc := allocatedBy(func() {
		out, err := Decompress("xz", data, 0)
		if err != nil || string(out) != "hello" {
			t.Fatalf("%q %v", out, err)
		}
	})
	if alloc > 4<<20 {
		t.Fatalf("decompressing 5 bytes allocated %d bytes", alloc)
	}
}

func TestDecompressErrors(t *testing.T) {
	good := map[string][]byte{}
	for _, c := range compressionNames {
		out, _, err := Compress(c.name, bytes.Repeat([]byte("abcdefgh"), 4096))
		if err != nil {
			t.Fatal(err)
		}
		good[c.name] = out
	}
	for _, c := range compressionNames {
		t.Run(c.name, func(t *testing.T) {
			g := good[c.name]
			for label, data := range map[string][]byte{
				"empty":     {},
				"garbage":   []byte("this is not compressed data at all"),
				"truncated": g[:len(g)/2],
			} {
				out, err := Decompress(c.header, data, 0)
				if !errors.Is(err, ErrDecode) {
					t.Errorf("%s: got %d bytes, err = %v, want ErrDecode", label, len(out), err)
				}
			}
		})
	}
	if _, err := Decompress("snappy", []byte("x"), 0); !errors.Is(err, ErrUnknownCompression) {
		t.Errorf("unknown decompress: %v", err)
	}
	if _, _, err := Compress("application/x-snappy", []byte("x")); !errors.Is(err, ErrUnknownCompression) {
		t.Errorf("unknown compress: %v", err)
	}
	if _, _, err := Compress("", []byte("x")); !errors.Is(err, ErrUnknownCompression) {
		t.Errorf("empty name: %v", err)
	}
}

func TestCompressionRegisterOwn(t *testing.T) {
	c := NewCompressionRegistry()
	if err := c.Register(Compressor{ContentType: "x/y"}); err == nil {
		t.Error("empty name accepted")
	}
	if err := c.Register(Compressor{Name: "x"}); err == nil {
		t.Error("empty content type accepted")
	}
	rev := func(b []byte) []byte {
		out := make([]byte, len(b))
		for i, x := range b {
			out[len(b)-1-i] = x
		}
		return out
	}
	err := c.Register(Compressor{
		Name: "reverse", ContentType: "application/x-reverse", Aliases: []string{"rev"},
		Compress: func(b []byte) ([]byte, error) { return rev(b), nil },
		NewReader: func(r io.Reader) (io.ReadCloser, error) {
			b, err := io.ReadAll(r)
			return io.NopCloser(bytes.NewReader(rev(b))), err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, header, err := c.Compress("REV", []byte("abc"))
	if err != nil || string(out) != "cba" || header != "application/x-reverse" {
		t.Fatalf("%q %q %v", out, header, err)
	}
	back, err := c.Decompress(header, out, 0)
	if err != nil || string(back) != "abc" {
		t.Fatalf("%q %v", back, err)
	}
	if _, err := c.Decompress(header, []byte("abcdef"), 5); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("limit not applied to a registered method: %v", err)
	}
	// Replacing the builtin zlib under its name drops its aliases.
	if err := c.Register(Compressor{Name: "ZLIB", ContentType: "application/x-other"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Lookup("application/x-gzip"); ok {
		t.Error("old header value still registered")
	}
	if _, err := c.Decompress("zlib", []byte("x"), 0); !errors.Is(err, ErrUnknownCompression) {
		t.Errorf("decompress without a reader: %v", err)
	}
	c.Unregister("reverse")
	if _, ok := c.Lookup("rev"); ok {
		t.Error("Unregister did not remove")
	}
	if _, ok := DefaultCompression.Lookup("gzip"); !ok {
		t.Error("DefaultCompression changed by another registry")
	}
	var zero CompressionRegistry
	if _, _, err := zero.Compress("zlib", nil); !errors.Is(err, ErrUnknownCompression) {
		t.Errorf("zero registry: %v", err)
	}
}

func TestDecompressLimitExact(t *testing.T) {
	in := bytes.Repeat([]byte{'z'}, 10000)
	for _, c := range compressionNames {
		data, _, err := Compress(c.name, in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := Decompress(c.name, data, int64(len(in)))
		if err != nil || len(out) != len(in) {
			t.Errorf("%s at exactly the limit: %d bytes, %v", c.name, len(out), err)
		}
		if _, err := Decompress(c.name, data, int64(len(in)-1)); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s one byte over the limit: %v", c.name, err)
		}
	}
}

// allocatedBy returns the bytes allocated on the heap while f runs.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
