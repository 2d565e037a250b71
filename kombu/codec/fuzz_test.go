package codec_test

import (
	"errors"
	. "github.com/kombu-go/kombu/kombu/codec"
	_ "github.com/kombu-go/kombu/kombu/codec/all"
	"strings"
	"testing"
)

// fuzzTargets are the kinds of value FuzzDecode decodes into.
func fuzzTarget(kind uint8) any {
	switch kind % 6 {
	case 0:
		return new(any)
	case 1:
		return new(string)
	case 2:
		return new([]byte)
	case 3:
		return new(map[string]any)
	case 4:
		return new([]any)
	default:
		return new(struct {
			ID   string  `json:"id" yaml:"id"`
			N    int     `json:"n" yaml:"n"`
			Args []any   `json:"args" yaml:"args"`
			F    float64 `json:"f" yaml:"f"`
		})
	}
}

func FuzzDecode(f *testing.F) {
	for i, tc := range encodeCases {
		body, ct, ce, err := NewRegistry().Encode(tc.serializer, tc.v, tc.contentType, tc.encoding)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ct, ce, body, uint8(i))
	}
	f.Add("application/x-msgpack", "binary", pythonMsgpack, uint8(0))
	f.Add("application/x-msgpack", "binary", pythonMsgpack, uint8(5))
	f.Add("application/x-msgpack", "binary", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, uint8(3))
	f.Add("application/x-yaml", "utf-8", []byte(pythonYAML), uint8(0))
	f.Add("application/x-yaml", "utf-8", []byte("a: &x [1]\nb: *x\n"), uint8(3))
	f.Add("application/json", "utf-8", []byte(`{"__type__": "bytes", "__value__": "x"}`), uint8(0))
	f.Add("application/json", "utf-8", []byte(`[1, 2.5, 1e400, 123456789012345678901234567890]`), uint8(4))
	f.Add("application/x-python-serialize", "binary", []byte("\x80\x04K\x01."), uint8(0))
	f.Add("", "", []byte("plain"), uint8(1))
	f.Add("text/plain", "utf-16", []byte{0xff, 0xfe, 'a', 0}, uint8(1))
	f.Add("text/plain", "latin-1", []byte{0xe9}, uint8(2))
	f.Add("text/plain", strings.Repeat("x", 5000), []byte("0"), uint8(1))
	f.Add(strings.Repeat("y", 5000), "binary", []byte("0"), uint8(5))

	f.Fuzz(func(t *testing.T, contentType, contentEncoding string, body []byte, kind uint8) {
		err := Decode(contentType, contentEncoding, body, fuzzTarget(kind))
		if strings.ToLower(strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0])) == ContentTypePickle && !errors.Is(err, ErrUnsafeContent) {
			t.Fatalf("pickle not refused: %v", err)
		}
		if err != nil && !errors.Is(err, ErrDecode) && !errors.Is(err, ErrUnsafeContent) {
			t.Fatalf("error wraps no sentinel: %v", err)
		}
		if err != nil && len(err.Error()) > 4096 {
			t.Fatalf("error message of %d bytes", len(err.Error()))
		}
	})
}

var fuzzMethods = []string{"application/x-gzip", "application/x-bz2", "application/x-lzma", "application/zstd", "application/x-brotli"}

func FuzzDecompress(f *testing.F) {
	inputs := [][]byte{{}, []byte(`{"n": 4, "text": "zlib"}`), make([]byte, 300<<10)}
	for _, tc := range encodeCases {
		body, _, _, err := NewRegistry().Encode(tc.serializer, tc.v, tc.contentType, tc.encoding)
		if err != nil {
			f.Fatal(err)
		}
		inputs = append(inputs, body)
	}
	for m, method := range fuzzMethods {
		for _, in := range inputs {
			data, _, err := Compress(method, in)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(m), data, uint8(16))
			f.Add(uint8(m), data, uint8(0))
		}
	}
	for _, fixture := range []string{pyXZPreset9, pyXZBigDict, pyXZTwoStreams, pyXZNoCheck} {
		f.Add(uint8(2), mustHex(f, fixture), uint8(1))
	}
	f.Add(uint8(1), mustHex(f, pyBzip2), uint8(1))
	for m, b := range bombs {
		f.Add(uint8(m%4), b.build(f, 4<<20), uint8(255))
	}

	f.Fuzz(func(t *testing.T, method uint8, data []byte, limitKiB uint8) {
		limit := int64(limitKiB)<<10 + 1 // 1 byte .. 255 KiB
		out, err := Decompress(fuzzMethods[int(method)%len(fuzzMethods)], data, limit)
		if int64(len(out)) > limit {
			t.Fatalf("%d bytes out, limit %d", len(out), limit)
		}
		if err != nil && out != nil {
			t.Fatal("output together with an error")
		}
		if err != nil && !errors.Is(err, ErrDecode) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("error wraps no sentinel: %v", err)
		}
	})
}
