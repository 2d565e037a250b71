package codec_test

import (
	"errors"
	"fmt"

	"github.com/kombu-go/kombu/kombu/codec"
)

func ExampleRegistry_Encode() {
	// No serializer named: a map goes out as JSON, like kombu's default.
	body, ct, ce, err := codec.Default.Encode("", map[string]any{"n": 4, "text": "zlib"}, "", "")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s %s %s\n", ct, ce, body)

	// A string with no serializer is text/plain; bytes are application/data.
	_, ct, ce, _ = codec.Encode("", "hello", "", "")
	fmt.Println(ct, ce)
	_, ct, ce, _ = codec.Encode("", []byte{0xff}, "", "")
	fmt.Println(ct, ce)
	// Output:
	// application/json utf-8 {"n":4,"text":"zlib"}
	// text/plain utf-8
	// application/data binary
}

func ExampleRegistry_Decode() {
	var v any
	err := codec.Default.Decode("application/json", "utf-8", []byte(`{"n": 4, "ratio": 0.5}`), &v)
	if err != nil {
		panic(err)
	}
	m := v.(map[string]any)
	fmt.Printf("%T %v, %T %v\n", m["n"], m["n"], m["ratio"], m["ratio"])

	// Python pickle is never decoded.
	err = codec.Decode("application/x-python-serialize", "binary", []byte("\x80\x04K\x01."), &v)
	fmt.Println(errors.Is(err, codec.ErrUnsafeContent))
	// Output:
	// int64 4, float64 0.5
	// true
}

func ExampleCompressionRegistry_Decompress() {
	// kombu's "gzip" is a zlib stream, announced as application/x-gzip.
	data, header, err := codec.DefaultCompression.Compress("gzip", []byte(`{"n": 4, "text": "zlib"}`))
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s % x\n", header, data[:2])

	out, err := codec.DefaultCompression.Decompress(header, data, 0) // 0: the 64 MiB default limit
	if err != nil {
		panic(err)
	}
	fmt.Println(string(out))

	_, err = codec.Decompress(header, data, 10)
	fmt.Println(errors.Is(err, codec.ErrTooLarge))
	// Output:
	// application/x-gzip 78 9c
	// {"n": 4, "text": "zlib"}
	// true
}
