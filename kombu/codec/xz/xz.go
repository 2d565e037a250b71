// Package xz adds kombu's lzma compression (an xz container; header value
// application/x-lzma; names xz, lzma) to codec.DefaultCompression and to
// every registry codec.NewCompressionRegistry makes. Import it for its side
// effect:
//
//	import _ "github.com/kombu-go/kombu/kombu/codec/xz"
//
// It uses github.com/ulikunitz/xz. Before decoding, the container is walked
// (see prepare) so that a tiny stream cannot make the decoder allocate a
// large dictionary or produce more than the caller's limit.
package xz

import (
	"bytes"
	"io"

	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"

	"github.com/kombu-go/kombu/kombu/codec"
)

func init() {
	if err := codec.RegisterDefaultCompressor(codec.Compressor{
		Name: "xz", ContentType: codec.CompressionXZ, Aliases: []string{"lzma", "xz"},
		Compress: compress, NewReader: newReader, NewLimitedReader: newLimitedReader,
	}); err != nil {
		panic(err)
	}
}

func compress(data []byte) ([]byte, error) {
	// CRC64 check as Python's lzma.compress; the dictionary need not be
	// larger than the data (8 MiB at most, as Python's default preset 6).
	dict := min(max(len(data), lzma.MinDictCap), 8<<20)
	return codec.CompressStream(data, func(w io.Writer) (io.WriteCloser, error) {
		return xz.WriterConfig{DictCap: dict, CheckSum: xz.CRC64}.NewWriter(w)
	})
}

// newReader buffers the whole compressed input, so that newLimitedReader
// can check it before decoding.
func newReader(r io.Reader) (io.ReadCloser, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return newLimitedReader(data, codec.DefaultMaxDecompressedSize)
}

// newLimitedReader walks the container first (xzPrepare): output declared
// larger than limit is refused at once, and LZMA2 dictionaries larger than
// the declared output are shrunk.
func newLimitedReader(data []byte, limit int64) (io.ReadCloser, error) {
	prepared, err := xzPrepare(data, limit)
	if err != nil {
		return nil, err
	}
	r, err := xz.ReaderConfig{DictCap: lzma.MinDictCap}.NewReader(bytes.NewReader(prepared))
	if err != nil {
		return nil, err
	}
	return io.NopCloser(r), nil
}
