package codec

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
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
	// NewLimitedReader, when set, is used by Decompress instead of
	// NewReader: it gets the whole input and the output limit, so it can
	// bound the decoder's own memory (window and dictionary sizes) too.
	// An error wrapping ErrTooLarge is passed to the caller as it is.
	NewLimitedReader func(data []byte, limit int64) (io.ReadCloser, error)
}

func (m Compressor) keys() (string, string, []string) { return m.Name, m.ContentType, m.Aliases }

func (m Compressor) detached() Compressor {
	m.Aliases = slices.Clone(m.Aliases)
	return m
}

// CompressionRegistry holds compression methods by name, alias and header
// value, all compared ignoring case. It is safe for concurrent use. The
// zero value is empty; NewCompressionRegistry returns one with the
// builtins.
type CompressionRegistry struct {
	t table[Compressor]
}

// DefaultCompression is the registry used by the package-level Compress and
// Decompress.
var DefaultCompression = NewCompressionRegistry()

// coreCompressors are always linked: zlib needs only the standard library.
var coreCompressors = []Compressor{
	{Name: "zlib", ContentType: CompressionZlib, Aliases: []string{"gzip", "zlib"},
		Compress: zlibCompress, NewReader: zlibNewReader},
}

// NewCompressionRegistry returns a registry holding zlib and every method a
// linked codec package added with RegisterDefaultCompressor (bzip2, xz,
// zstd and brotli live in codec/bzip2, codec/xz, codec/zstd and
// codec/brotli).
func NewCompressionRegistry() *CompressionRegistry {
	c := &CompressionRegistry{}
	for _, m := range defaults.compressors() {
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
	if normalizeName(m.Name) == "" {
		return errors.New("codec: compressor name is empty")
	}
	if normalizeContentType(m.ContentType) == "" {
		return fmt.Errorf("codec: compressor %q has no content type", m.Name)
	}
	c.t.put(m)
	return nil
}

// Unregister removes the method with that name (ignoring case), if any.
func (c *CompressionRegistry) Unregister(name string) { c.t.remove(name) }

// Lookup finds a method by name, alias or header value, ignoring case.
func (c *CompressionRegistry) Lookup(nameOrType string) (Compressor, bool) {
	return c.t.lookup(nameOrType)
}

// find is Lookup with an error that names the package to import when the
// method is one of kombu's that this program does not link.
func (c *CompressionRegistry) find(nameOrType string) (Compressor, error) {
	if m, ok := c.Lookup(nameOrType); ok {
		return m, nil
	}
	if o, ok := lookupOptional(nameOrType); ok {
		return Compressor{}, fmt.Errorf("%w: %s is not linked into this program: %s", ErrUnknownCompression, clip(nameOrType), o.hint())
	}
	return Compressor{}, fmt.Errorf("%w: %s", ErrUnknownCompression, clip(nameOrType))
}

// Compress compresses data with the method named by a name, alias or
// header value, and returns the value for the message's `compression`
// header. Unknown methods give ErrUnknownCompression.
func (c *CompressionRegistry) Compress(nameOrType string, data []byte) (out []byte, headerValue string, err error) {
	m, err := c.find(nameOrType)
	if err != nil {
		return nil, "", err
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
	m, err := c.find(nameOrType)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = DefaultMaxDecompressedSize
	}
	limit = min(limit, math.MaxInt64-1)
	var rc io.ReadCloser
	switch {
	case m.NewLimitedReader != nil:
		rc, err = m.NewLimitedReader(data, limit)
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

// CompressStream compresses data through the writer newWriter puts in
// front of a buffer: what the Compress function of a stream-based method
// (zlib, bzip2, xz, brotli) does.
func CompressStream(data []byte, newWriter func(io.Writer) (io.WriteCloser, error)) ([]byte, error) {
	var buf bytes.Buffer
	w, err := newWriter(&buf)
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

func zlibCompress(data []byte) ([]byte, error) {
	return CompressStream(data, func(w io.Writer) (io.WriteCloser, error) {
		return zlib.NewWriter(w), nil // default level: header 78 9c, as Python's zlib.compress
	})
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
