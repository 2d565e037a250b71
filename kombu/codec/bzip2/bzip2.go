// Package bzip2 adds kombu's bzip2 compression (header value
// application/x-bz2; names bzip2, bzip) to codec.DefaultCompression and to
// every registry codec.NewCompressionRegistry makes. Import it for its side
// effect:
//
//	import _ "github.com/kombu-go/kombu/kombu/codec/bzip2"
//
// It compresses at level 9 (BZh9), as Python's bz2 module does, with
// github.com/dsnet/compress, and decompresses with the standard library.
package bzip2

import (
	stdbzip2 "compress/bzip2"
	"io"

	dsbzip2 "github.com/dsnet/compress/bzip2"

	"github.com/kombu-go/kombu/kombu/codec"
)

func init() {
	if err := codec.RegisterDefaultCompressor(codec.Compressor{
		Name: "bzip2", ContentType: codec.CompressionBzip2, Aliases: []string{"bzip2", "bzip"},
		Compress: compress, NewReader: newReader,
	}); err != nil {
		panic(err)
	}
}

func compress(data []byte) ([]byte, error) {
	return codec.CompressStream(data, func(w io.Writer) (io.WriteCloser, error) {
		return dsbzip2.NewWriter(w, &dsbzip2.WriterConfig{Level: dsbzip2.BestCompression}) // BZh9, as Python's bz2
	})
}

func newReader(r io.Reader) (io.ReadCloser, error) {
	return io.NopCloser(stdbzip2.NewReader(r)), nil
}
