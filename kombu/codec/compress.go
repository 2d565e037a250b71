package codec

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"

	"github.com/andybalholm/brotli"
	dsbzip2 "github.com/dsnet/compress/bzip2"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// DefaultMaxDecompressedSize is the output limit Decompress applies when
// given a limit <= 0.
const DefaultMaxDecompressedSize = 64 << 20

// kombu's compression header values (the `compression` application header).
const (
	CompressionZlib   = "application/x-gzip" // a zlib stream, despite the name
	CompressionBzip2  = "application/x-bz2"
	CompressionXZ     = "application/x-lzma" // an xz container
	CompressionZstd   = "application/zstd"
	CompressionBrotli = "application/x-brotli"
)

// Compressor is a compression method.
type Compressor struct {
	Name        string   // "zlib"
	ContentType string   // the `compression` header value, e.g. "application/x-gzip"
	Aliases     []string // other names accepted, e.g. "gzip"
	// Compress compresses a whole body; nil means this method only
	// decompresses.
	Compress func(data []byte) ([]byte, error)
	// NewReader returns a reader of the decompressed stream; nil means
	// this method only compresses.
	NewReader func(r io.Reader) (io.ReadCloser, error)

	// newLimitedReader, set on builtins, is used by Decompress instead of
	// NewReader: it gets the whole input and the output limit, so it can
	// bound the decoder's own memory (window and dictionary sizes) too.
	newLimitedReader func(data []byte, limit int64) (io.ReadCloser, error)
}

// CompressionRegistry holds compression methods by name, alias and header
// value, all compared ignoring case. It is safe for concurrent use. The
// zero value is empty; NewCompressionRegistry returns one with kombu's
// methods.
type CompressionRegistry struct {
	mu      sync.RWMutex
	entries []Compressor
	byKey   map[string]int
}

// DefaultCompression is the registry used by the package-level Compress and
// Decompress.
var DefaultCompression = NewCompressionRegistry()

// NewCompressionRegistry returns a registry holding kombu's compression
// methods: zlib, bzip2, xz, zstd and brotli.
func NewCompressionRegistry() *CompressionRegistry {
	c := &CompressionRegistry{}
	for _, m := range []Compressor{
		{Name: "zlib", ContentType: CompressionZlib, Aliases: []string{"gzip", "zlib"},
			Compress: zlibCompress, NewReader: zlibNewReader,
			newLimitedReader: func(data []byte, _ int64) (io.ReadCloser, error) {
				return zlibNewReader(bytes.NewReader(data))
			}},
		{Name: "bzip2", ContentType: CompressionBzip2, Aliases: []string{"bzip2", "bzip"},
			Compress: bzip2Compress, NewReader: bzip2NewReader},
		{Name: "xz", ContentType: CompressionXZ, Aliases: []string{"lzma", "xz"},
			Compress: xzCompress, NewReader: xzNewReader, newLimitedReader: xzLimitedReader},
		{Name: "zstd", ContentType: CompressionZstd, Aliases: []string{"zstd", "zstandard"},
			Compress: zstdCompress, NewReader: zstdNewReader, newLimitedReader: zstdLimitedReader},
		{Name: "brotli", ContentType: CompressionBrotli, Aliases: []string{"brotli"},
			Compress: brotliCompress, NewReader: brotliNewReader},
	} {
		if err := c.Register(m); err != nil {
			panic(err)
		}
	}
	return c
}

// Register adds m, replacing any method with the same name (ignoring case).
// Later registrations win when aliases or header values collide. It fails
// when the name or content type is empty.
func (c *CompressionRegistry) Register(m Compressor) error {
	name := normalizeName(m.Name)
	if name == "" {
		return errors.New("codec: compressor name is empty")
	}
	if normalizeContentType(m.ContentType) == "" {
		return fmt.Errorf("codec: compressor %q has no content type", m.Name)
	}
	m.Aliases = slices.Clone(m.Aliases)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = slices.DeleteFunc(c.entries, func(e Compressor) bool {
		return normalizeName(e.Name) == name
	})
	c.entries = append(c.entries, m)
	c.reindex()
	return nil
}

// Unregister removes the method with that name (ignoring case), if any.
func (c *CompressionRegistry) Unregister(name string) {
	name = normalizeName(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = slices.DeleteFunc(c.entries, func(e Compressor) bool {
		return normalizeName(e.Name) == name
	})
	c.reindex()
}

// reindex rebuilds byKey: names beat aliases beat header values, and among
// equals the later registration wins.
func (c *CompressionRegistry) reindex() {
	c.byKey = make(map[string]int)
	for i, e := range c.entries {
		c.byKey[normalizeContentType(e.ContentType)] = i
	}
	for i, e := range c.entries {
		for _, a := range e.Aliases {
			if a := normalizeName(a); a != "" {
				c.byKey[a] = i
			}
		}
	}
	for i, e := range c.entries {
		c.byKey[normalizeName(e.Name)] = i
	}
}

// Lookup finds a method by name, alias or header value, ignoring case.
func (c *CompressionRegistry) Lookup(nameOrType string) (Compressor, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	i, ok := c.byKey[normalizeName(nameOrType)]
	if !ok {
		i, ok = c.byKey[normalizeContentType(nameOrType)]
	}
	if !ok {
		return Compressor{}, false
	}
	m := c.entries[i]
	m.Aliases = slices.Clone(m.Aliases)
	return m, true
}

// Compress compresses data with the method named by a name, alias or
// header value, and returns the value for the message's `compression`
// header. Unknown methods give ErrUnknownCompression.
func (c *CompressionRegistry) Compress(nameOrType string, data []byte) (out []byte, headerValue string, err error) {
	m, ok := c.Lookup(nameOrType)
	if !ok {
		return nil, "", fmt.Errorf("%w: %s", ErrUnknownCompression, clip(nameOrType))
	}
	if m.Compress == nil {
		return nil, "", fmt.Errorf("%w: %q cannot compress", ErrUnknownCompression, m.Name)
	}
	out, err = m.Compress(data)
	if err != nil {
		return nil, "", fmt.Errorf("codec: %s compression: %w", m.Name, err)
	}
	return out, m.ContentType, nil
}

// Decompress decompresses data with the method named by a name, alias or
// header value. It returns at most limit bytes (DefaultMaxDecompressedSize
// when limit <= 0): longer output is refused with ErrTooLarge. Output is
// streamed through io.LimitReader(limit+1) into growing chunks, so a bomb
// costs about limit bytes of memory plus the decoder's own state, which is
// bounded for the builtins (zstd windows, xz dictionaries). Corrupt or
// truncated input gives ErrDecode, unknown methods ErrUnknownCompression.
func (c *CompressionRegistry) Decompress(nameOrType string, data []byte, limit int64) ([]byte, error) {
	m, ok := c.Lookup(nameOrType)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownCompression, clip(nameOrType))
	}
	if limit <= 0 {
		limit = DefaultMaxDecompressedSize
	}
	limit = min(limit, math.MaxInt64-1)
	var (
		rc  io.ReadCloser
		err error
	)
	switch {
	case m.newLimitedReader != nil:
		rc, err = m.newLimitedReader(data, limit)
	case m.NewReader != nil:
		rc, err = m.NewReader(bytes.NewReader(data))
	default:
		return nil, fmt.Errorf("%w: %q cannot decompress", ErrUnknownCompression, m.Name)
	}
	if err != nil {
		return nil, wrapDecompressError(m.Name, data, limit, err)
	}
	defer rc.Close()
	out, err := readAtMost(rc, limit)
	if err != nil {
		return nil, wrapDecompressError(m.Name, data, limit, err)
	}
	return out, nil
}

func wrapDecompressError(name string, data []byte, limit int64, err error) error {
	if errors.Is(err, ErrTooLarge) {
		return err
	}
	if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		return fmt.Errorf("%w: %s: limit %d bytes: %w", ErrTooLarge, name, limit, err)
	}
	return decodeError(name+" compressed", data, err)
}

// readAtMost reads r to io.EOF and fails with ErrTooLarge once more than
// limit bytes come out. It reads into chunks that double up to 1 MiB, never
// asking for more than limit+1 bytes in all, and joins them at the end, so
// refusing a bomb costs about limit bytes.
func readAtMost(r io.Reader, limit int64) ([]byte, error) {
	const firstChunk, maxChunk = 4 << 10, 1 << 20
	lr := io.LimitReader(r, limit+1)
	var (
		chunks [][]byte
		total  int64
		size   int64 = firstChunk
	)
	for total <= limit {
		buf := make([]byte, min(size, limit+1-total))
		got, err := fill(lr, buf)
		if got > 0 {
			chunks = append(chunks, buf[:got])
			total += int64(got)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		size = min(2*size, maxChunk)
	}
	if total > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	switch len(chunks) {
	case 0:
		return []byte{}, nil
	case 1:
		return chunks[0], nil
	}
	out := make([]byte, 0, total)
	for _, ch := range chunks {
		out = append(out, ch...)
	}
	return out, nil
}

// fill reads until buf is full or r fails. Unlike io.ReadFull it passes
// io.EOF and io.ErrUnexpectedEOF through unchanged, so a truncated stream
// is not mistaken for a clean end.
func fill(r io.Reader, buf []byte) (int, error) {
	n, idle := 0, 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
		if m == 0 {
			if idle++; idle > 100 {
				return n, io.ErrNoProgress
			}
		} else {
			idle = 0
		}
	}
	return n, nil
}

// Compress compresses data with DefaultCompression; see
// CompressionRegistry.Compress.
func Compress(nameOrType string, data []byte) (out []byte, headerValue string, err error) {
	return DefaultCompression.Compress(nameOrType, data)
}

// Decompress decompresses data with DefaultCompression; see
// CompressionRegistry.Decompress.
func Decompress(nameOrType string, data []byte, limit int64) ([]byte, error) {
	return DefaultCompression.Decompress(nameOrType, data, limit)
}

// ---- zlib (kombu's "gzip") ----

func zlibCompress(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf) // default level: header 78 9c, as Python's zlib.compress
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// zlibNewReader reads a zlib stream, or a gzip stream when the data starts
// with the gzip magic 1f 8b (a zlib header can never start with 0x1f).
func zlibNewReader(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		return gzip.NewReader(br)
	}
	return zlib.NewReader(br)
}

// ---- bzip2 ----

func bzip2Compress(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := dsbzip2.NewWriter(&buf, &dsbzip2.WriterConfig{Level: dsbzip2.BestCompression}) // BZh9, as Python's bz2
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func bzip2NewReader(r io.Reader) (io.ReadCloser, error) {
	return io.NopCloser(bzip2.NewReader(r)), nil
}

// ---- xz (kombu's "lzma") ----

func xzCompress(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	// CRC64 check as Python's lzma.compress; the dictionary need not be
	// larger than the data (8 MiB at most, as Python's default preset 6).
	dict := min(max(len(data), lzma.MinDictCap), 8<<20)
	w, err := xz.WriterConfig{DictCap: dict, CheckSum: xz.CRC64}.NewWriter(&buf)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// xzNewReader buffers the whole compressed input, so that xzLimitedReader
// can check it before decoding.
func xzNewReader(r io.Reader) (io.ReadCloser, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return xzLimitedReader(data, DefaultMaxDecompressedSize)
}

// xzLimitedReader walks the container first (xzPrepare): output declared
// larger than limit is refused at once, and LZMA2 dictionaries larger than
// the declared output are shrunk, so a tiny stream cannot make the decoder
// allocate a 4 GiB dictionary.
func xzLimitedReader(data []byte, limit int64) (io.ReadCloser, error) {
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

// ---- zstd ----

var zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	// Python's zstandard.ZstdDecompressor().decompress, which kombu uses,
	// needs the content size in the frame header. EncodeAll leaves it out
	// of multi-segment frames under 256 bytes, so every frame is made
	// single-segment (which always carries it). Zero frames keep an empty
	// body a valid frame.
	return zstd.NewWriter(nil, zstd.WithSingleSegment(true), zstd.WithZeroFrames(true))
})

func zstdCompress(data []byte) ([]byte, error) {
	enc, err := zstdEncoder()
	if err != nil {
		return nil, err
	}
	return enc.EncodeAll(data, nil), nil
}

func zstdNewReader(r io.Reader) (io.ReadCloser, error) {
	return newZstdReader(r, DefaultMaxDecompressedSize)
}

func zstdLimitedReader(data []byte, limit int64) (io.ReadCloser, error) {
	if len(data) == 0 {
		// The streaming decoder reads nothing as an empty stream; a zstd
		// body always holds at least one frame.
		return nil, io.ErrUnexpectedEOF
	}
	return newZstdReader(bytes.NewReader(data), limit)
}

// newZstdReader bounds the window (the decoder's history buffer) to the
// output limit, but accepts the 8 MiB every zstd decoder should support.
func newZstdReader(r io.Reader, limit int64) (io.ReadCloser, error) {
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
	return d.IOReadCloser(), nil
}

// ---- brotli ----

func brotliCompress(data []byte) ([]byte, error) {
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

func brotliNewReader(r io.Reader) (io.ReadCloser, error) {
	return io.NopCloser(brotli.NewReader(r)), nil
}
