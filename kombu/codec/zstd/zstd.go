// Package zstd adds kombu's zstd compression (header value
// application/zstd; names zstd, zstandard) to codec.DefaultCompression and
// to every registry codec.NewCompressionRegistry makes. Import it for its
// side effect:
//
//	import _ "github.com/kombu-go/kombu/kombu/codec/zstd"
//
// It uses github.com/klauspost/compress/zstd, with the decoder's window
// bounded by the caller's output limit.
package zstd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/kombu-go/kombu/kombu/codec"
)

func init() {
	if err := codec.RegisterDefaultCompressor(codec.Compressor{
		Name: "zstd", ContentType: codec.CompressionZstd, Aliases: []string{"zstd", "zstandard"},
		Compress: compress, NewReader: newReader, NewLimitedReader: newLimitedReader,
	}); err != nil {
		panic(err)
	}
}

var encoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	// Python's zstandard.ZstdDecompressor().decompress, which kombu uses,
	// needs the content size in the frame header. EncodeAll leaves it out
	// of multi-segment frames under 256 bytes, so every frame is made
	// single-segment (which always carries it). Zero frames keep an empty
	// body a valid frame.
	return zstd.NewWriter(nil, zstd.WithSingleSegment(true), zstd.WithZeroFrames(true))
})

func compress(data []byte) ([]byte, error) {
	enc, err := encoder()
	if err != nil {
		return nil, err
	}
	return enc.EncodeAll(data, nil), nil
}

func newReader(r io.Reader) (io.ReadCloser, error) {
	return newBoundedReader(r, codec.DefaultMaxDecompressedSize)
}

func newLimitedReader(data []byte, limit int64) (io.ReadCloser, error) {
	if len(data) == 0 {
		// The streaming decoder reads nothing as an empty stream; a zstd
		// body always holds at least one frame.
		return nil, io.ErrUnexpectedEOF
	}
	return newBoundedReader(bytes.NewReader(data), limit)
}

// newBoundedReader bounds the window (the decoder's history buffer) to the
// output limit, but accepts the 8 MiB every zstd decoder should support.
func newBoundedReader(r io.Reader, limit int64) (io.ReadCloser, error) {
	window := uint64(max(limit, 8<<20))
	window = min(window, zstd.MaxWindowSize)
	d, err := zstd.NewReader(r,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(window),
		zstd.WithDecoderMaxMemory(window))
	if err != nil {
		return nil, err
	}
	return &limitErrors{rc: d.IOReadCloser(), limit: limit}, nil
}

// limitErrors reports the decoder's own size refusals as codec.ErrTooLarge.
type limitErrors struct {
	rc    io.ReadCloser
	limit int64
}

func (l *limitErrors) Read(p []byte) (int, error) {
	n, err := l.rc.Read(p)
	if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		err = fmt.Errorf("%w: zstd: limit %d bytes: %w", codec.ErrTooLarge, l.limit, err)
	}
	return n, err
}

func (l *limitErrors) Close() error { return l.rc.Close() }
