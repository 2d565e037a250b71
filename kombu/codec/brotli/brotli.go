// Package brotli adds kombu's brotli compression (header value
// application/x-brotli) to codec.DefaultCompression and to every registry
// codec.NewCompressionRegistry makes. Import it for its side effect:
//
//	import _ "github.com/kombu-go/kombu/kombu/codec/brotli"
//
// It uses github.com/andybalholm/brotli, which also links net/http; that is
// why it is not part of package codec.
package brotli

import (
	"bytes"
	"io"

	"github.com/andybalholm/brotli"

	"github.com/kombu-go/kombu/kombu/codec"
)

func init() {
	if err := codec.RegisterDefaultCompressor(codec.Compressor{
		Name: "brotli", ContentType: codec.CompressionBrotli, Aliases: []string{"brotli"},
		Compress: compress, NewReader: newReader,
	}); err != nil {
		panic(err)
	}
}

func compress(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	w := brotli.NewWriter(&buf)
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func newReader(r io.Reader) (io.ReadCloser, error) {
	return io.NopCloser(brotli.NewReader(r)), nil
}
