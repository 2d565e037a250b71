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
	return codec.CompressStream(data, func(w io.Writer) (io.WriteCloser, error) {
		return brotli.NewWriter(w), nil
	})
}

func newReader(r io.Reader) (io.ReadCloser, error) {
	return io.NopCloser(brotli.NewReader(r)), nil
}
