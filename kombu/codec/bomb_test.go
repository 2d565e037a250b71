package codec_test

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"errors"
	. "github.com/kombu-go/kombu/kombu/codec"
	_ "github.com/kombu-go/kombu/kombu/codec/all"
	"hash/crc32"
	"io"
	"sync"
	"testing"

	dsbzip2 "github.com/dsnet/compress/bzip2"
	"github.com/klauspost/compress/zstd"
)

// bombSize is how much the test bombs expand to.
const bombSize = 256 << 20

// The bombs are built from a streaming writer fed with zeros, but without
// compressing 256 MiB each time: a deflate writer flushed after each MiB of
// zeros emits the same bytes for every MiB once its window is full of
// zeros, so that block is repeated and the trailer computed; bzip2 and zstd
// streams may be concatenated, so one stream of zeros is repeated.

type bomb struct {
	method string // header value to decompress with
	build  func(t testing.TB, size int) []byte
}

var bombs = []bomb{
	{"application/x-gzip", zlibBomb},
	{"gzip", gzipBomb}, // a real RFC 1952 gzip member
	{"application/x-bz2", func(t testing.TB, size int) []byte {
		return repeatStream(t, func(w io.Writer) (io.WriteCloser, error) {
			return dsbzip2.NewWriter(w, &dsbzip2.WriterConfig{Level: dsbzip2.BestCompression})
		}, size, 16<<20)
	}},
	{"application/zstd", func(t testing.TB, size int) []byte {
		return repeatStream(t, func(w io.Writer) (io.WriteCloser, error) {
			return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1))
		}, size, 8<<20)
	}},
}

// repeatStream compresses chunk zero bytes into one stream and repeats
// that stream until it expands to size (a multiple of 1 MiB).
func repeatStream(t testing.TB, newWriter func(io.Writer) (io.WriteCloser, error), size, chunk int) []byte {
	t.Helper()
	chunk = min(chunk, size)
	var one bytes.Buffer
	w, err := newWriter(&one)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for n := 0; n < chunk; n += len(zeros) {
		if _, err := w.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return bytes.Repeat(one.Bytes(), size/chunk)
}

// flushedZeros writes four MiB of zeros into w, flushing after each, and
// returns what came out for the first MiB (with the stream header) and for
// one steady-state MiB.
func flushedZeros(t testing.TB, out *bytes.Buffer, w interface {
	io.Writer
	Flush() error
}) (first, steady []byte) {
	t.Helper()
	zeros := make([]byte, 1<<20)
	var parts [][]byte
	for i := 0; i < 4; i++ {
		if _, err := w.Write(zeros); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, bytes.Clone(out.Bytes()))
		out.Reset()
	}
	if !bytes.Equal(parts[1], parts[2]) || !bytes.Equal(parts[2], parts[3]) {
		t.Fatal("deflate output for a MiB of zeros is not steady; cannot build the bomb")
	}
	return parts[0], parts[1]
}

func zlibBomb(t testing.TB, size int) []byte {
	var out bytes.Buffer
	w, err := zlib.NewWriterLevel(&out, zlib.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	first, steady := flushedZeros(t, &out, w)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	final := out.Bytes()[:out.Len()-4] // the last block, without the Adler-32
	bomb := append(first, bytes.Repeat(steady, size>>20-1)...)
	bomb = append(bomb, final...)
	// Adler-32 of n zero bytes: a stays 1, b is n*1 mod 65521.
	return binary.BigEndian.AppendUint32(bomb, uint32(size%65521)<<16|1)
}

func gzipBomb(t testing.TB, size int) []byte {
	var out bytes.Buffer
	w, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	first, steady := flushedZeros(t, &out, w)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	final := out.Bytes()[:out.Len()-8] // the last block, without CRC-32 and size
	bomb := append(first, bytes.Repeat(steady, size>>20-1)...)
	bomb = append(bomb, final...)
	crc := crc32.NewIEEE()
	zeros := make([]byte, 1<<20)
	for i := 0; i < size>>20; i++ {
		crc.Write(zeros)
	}
	bomb = binary.LittleEndian.AppendUint32(bomb, crc.Sum32())
	return binary.LittleEndian.AppendUint32(bomb, uint32(size))
}

var (
	bombMu    sync.Mutex
	bombCache = map[string][]byte{}
)

// bombData returns (and caches) the compressed form of bombSize zeros.
func bombData(t testing.TB, b bomb) []byte {
	bombMu.Lock()
	defer bombMu.Unlock()
	if data, ok := bombCache[b.method]; ok {
		return data
	}
	data := b.build(t, bombSize)
	bombCache[b.method] = data
	return data
}

// TestBombsAreValid: the bomb construction yields a valid stream of
// exactly size zeros (checked at 8 MiB to keep it quick).
func TestBombsAreValid(t *testing.T) {
	const size = 8 << 20
	for _, b := range bombs {
		out, err := Decompress(b.method, b.build(t, size), size)
		if err != nil {
			t.Fatalf("%s: %v", b.method, err)
		}
		if len(out) != size || bytes.ContainsFunc(out, func(r rune) bool { return r != 0 }) {
			t.Fatalf("%s: %d bytes, not %d zeros", b.method, len(out), size)
		}
	}
}

func TestDecompressionBombs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 256 MiB bombs")
	}
	for _, b := range bombs {
		t.Run(b.method, func(t *testing.T) {
			data := bombData(t, b)
			t.Logf("%d compressed bytes expand to %d MiB", len(data), bombSize>>20)

			var err error
			alloc := allocatedBy(func() {
				var out []byte
				out, err = Decompress(b.method, data, 0)
				if out != nil {
					t.Errorf("got %d bytes of output", len(out))
				}
			})
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("default limit: err = %v, want ErrTooLarge", err)
			}
			if alloc >= 2*DefaultMaxDecompressedSize {
				t.Errorf("refusing the bomb allocated %d MiB, limit is %d MiB",
					alloc>>20, DefaultMaxDecompressedSize>>20)
			}
			t.Logf("allocated %d MiB at the 64 MiB limit", alloc>>20)

			const small = 100 << 10
			alloc = allocatedBy(func() { _, err = Decompress(b.method, data, small) })
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("limit %d: err = %v, want ErrTooLarge", small, err)
			}
			// The decoders' own state (bzip2 blocks, zstd window) is a
			// few MiB whatever the limit.
			if alloc >= 16<<20 {
				t.Errorf("small limit: allocated %d MiB", alloc>>20)
			}
		})
	}
}

// TestXZBombRefusedBeforeDecoding: an xz stream declaring more output than
// the limit is refused from its chunk headers.
func TestXZBombRefusedBeforeDecoding(t *testing.T) {
	data, _, err := Compress("xz", make([]byte, 4<<20))
	if err != nil {
		t.Fatal(err)
	}
	alloc := allocatedBy(func() { _, err = Decompress("xz", data, 1<<20) })
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if alloc > 256<<10 {
		t.Errorf("refusing allocated %d KiB", alloc>>10)
	}
}

func TestBrotliBombSmallLimit(t *testing.T) {
	data, _, err := Compress("brotli", make([]byte, 8<<20))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decompress("brotli", data, 1<<20); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}
