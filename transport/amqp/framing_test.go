package amqp

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// Hand-built frames, as py-amqp writes them.

func shortstr(s string) []byte { return append([]byte{byte(len(s))}, s...) }

func longField(tag byte, inner []byte) []byte {
	b := []byte{tag, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(inner)))
	return append(b, inner...)
}

func int64Field(tag byte, v int64) []byte {
	b := make([]byte, 9)
	b[0] = tag
	binary.BigEndian.PutUint64(b[1:], uint64(v))
	return b
}

// pyTable is {'big': 2**40, 'neg': -3e9, 'i': 2, 's': 'v', 'd': 1.5,
// 't': True, 'n': None, 'a': [2**40, 'a', None], 'f': {'x': -2**35},
// 'ts': datetime, 'dec': Decimal}, in py-amqp's encoding.
func pyTable(tag byte) []byte {
	var t []byte
	add := func(k string, v []byte) { t = append(append(t, shortstr(k)...), v...) }
	add("big", int64Field(tag, 1<<40))
	add("neg", int64Field(tag, -3000000000))
	add("i", []byte{'I', 0, 0, 0, 2})
	add("s", longField('S', []byte("v")))
	add("d", []byte{'d', 0x3f, 0xf8, 0, 0, 0, 0, 0, 0})
	add("t", []byte{'t', 1})
	add("n", []byte{'V'})
	arr := append(int64Field(tag, 1<<40), longField('S', []byte("a"))...)
	arr = append(arr, 'V')
	add("a", longField('A', arr))
	add("f", longField('F', append(shortstr("x"), int64Field(tag, -1<<35)...)))
	add("ts", []byte{'T', 0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00})
	add("dec", []byte{'D', 2, 0, 0, 0x30, 0x39})
	return t
}

func headerFrame(channel uint16, table []byte) []byte {
	return headerFrameRaw(channel, binary.BigEndian.AppendUint32(nil, uint32(len(table))), table)
}

// headerFrameRaw builds a content-header frame whose headers table is the
// concatenation of parts (length prefix included), followed by a
// delivery mode and a message id.
func headerFrameRaw(channel uint16, parts ...[]byte) []byte {
	var p []byte
	p = binary.BigEndian.AppendUint16(p, 60) // basic
	p = binary.BigEndian.AppendUint16(p, 0)
	p = binary.BigEndian.AppendUint64(p, 5)      // body size
	p = binary.BigEndian.AppendUint16(p, 0xf100) // content-type, content-encoding, headers, delivery mode, message id
	p = append(p, shortstr("application/json")...)
	p = append(p, shortstr("utf-8")...)
	for _, part := range parts {
		p = append(p, part...)
	}
	p = append(p, 2)
	p = append(p, shortstr("mid-1")...)
	return frame(2, channel, p)
}

func frame(typ byte, channel uint16, payload []byte) []byte {
	f := []byte{typ}
	f = binary.BigEndian.AppendUint16(f, channel)
	f = binary.BigEndian.AppendUint32(f, uint32(len(payload)))
	f = append(f, payload...)
	return append(f, frameEnd)
}

// stream is a method frame, a content header with table, a body frame and
// a heartbeat.
func stream(tag byte) []byte {
	var s []byte
	s = append(s, frame(1, 1, []byte{0, 60, 0, 60, 1, 2, 3, 4})...)
	s = append(s, headerFrame(1, pyTable(tag))...)
	s = append(s, frame(3, 1, []byte("hello"))...)
	s = append(s, frame(8, 0, nil)...)
	return s
}

// chunkConn serves a fixed byte stream in chunks of n bytes and records
// what is written.
type chunkConn struct {
	net.Conn
	data []byte
	n    int
	out  bytes.Buffer
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := min(c.n, len(p), len(c.data))
	copy(p, c.data[:k])
	c.data = c.data[k:]
	return k, nil
}

func (c *chunkConn) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *chunkConn) Close() error                { return nil }
func (c *chunkConn) SetReadDeadline(time.Time) error {
	return nil
}

func TestReadRewritesLongLongTag(t *testing.T) {
	in := stream('L')
	want := stream('l')
	for _, n := range []int{1, 2, 3, 7, 8, 13, 64, 100000} {
		for _, readSize := range []int{1, 5, 4096} {
			tc := newTableConn(&chunkConn{data: append([]byte(nil), in...), n: n}, 0)
			var got []byte
			buf := make([]byte, readSize)
			for {
				k, err := tc.Read(buf)
				got = append(got, buf[:k]...)
				if err != nil {
					break
				}
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("chunk %d read %d: stream differs\n got %x\nwant %x", n, readSize, got, want)
			}
		}
	}
}

func TestWriteRewritesLongLongTag(t *testing.T) {
	in := append([]byte("AMQP\x00\x00\x09\x01"), stream('l')...)
	want := append([]byte("AMQP\x00\x00\x09\x01"), stream('L')...)
	for _, n := range []int{1, 3, 7, 11, 50, len(in)} {
		cc := &chunkConn{}
		tc := newTableConn(cc, 0)
		orig := append([]byte(nil), in...)
		for i := 0; i < len(in); i += n {
			chunk := in[i:min(i+n, len(in))]
			if k, err := tc.Write(chunk); err != nil || k != len(chunk) {
				t.Fatalf("write: %d %v", k, err)
			}
		}
		if !bytes.Equal(in, orig) {
			t.Fatal("Write modified its argument")
		}
		if !bytes.Equal(cc.out.Bytes(), want) {
			t.Fatalf("chunk %d: written stream differs\n got %x\nwant %x", n, cc.out.Bytes(), want)
		}
	}
}

func TestRewriteLeavesOtherFramesAlone(t *testing.T) {
	// A body frame that happens to contain 'L' bytes, a header frame of
	// another class than basic, a huge declared size (passed through
	// without buffering).
	var s []byte
	s = append(s, frame(3, 1, []byte("LLLLLLLLL"))...)
	other := headerFrame(1, append(shortstr("big"), int64Field('L', 1)...))
	other[frameHeaderSize+1] = 50 // class 50, queue
	s = append(s, other...)
	tc := newTableConn(&chunkConn{data: append([]byte(nil), s...), n: 3}, 0)
	got, _ := io.ReadAll(tc)
	if !bytes.Equal(got, s) {
		t.Fatalf("changed\n got %x\nwant %x", got, s)
	}
	huge := []byte{2, 0, 1, 0xff, 0xff, 0xff, 0xf0, 0, 60}
	tc = newTableConn(&chunkConn{data: append([]byte(nil), huge...), n: 4}, 0)
	got, _ = io.ReadAll(tc)
	if !bytes.Equal(got, huge) {
		t.Fatalf("huge frame header changed: %x", got)
	}
	if len(tc.rbuf) > readBufSize {
		t.Fatalf("buffer grew to %d", len(tc.rbuf))
	}
	// A protocol-header reply (the broker refusing our version).
	ph := []byte("AMQP\x00\x00\x09\x01")
	tc = newTableConn(&chunkConn{data: append([]byte(nil), ph...), n: 1}, 0)
	got, _ = io.ReadAll(tc)
	if !bytes.Equal(got, ph) {
		t.Fatalf("protocol header changed: %q", got)
	}
}

// FuzzTableConnRead feeds arbitrary bytes through the read side. Whatever
// the input: no panic; the output does not depend on how the bytes arrive;
// reading the output again changes nothing (every table left is one
// amqp091-go reads); and when no table was replaced, only 'L' tags
// changed, to 'l'.
func FuzzTableConnRead(f *testing.F) {
	f.Add(stream('L'), 3)
	f.Add(headerFrame(1, pyTable('l')), 1)
	f.Add([]byte{2, 0, 1, 0, 0, 0, 20, 0, 60}, 2)
	f.Add(headerFrame(1, nestedTables(33)), 5)
	f.Add(headerFrame(1, nestedArrays(40)), 64)
	f.Add(headerFrame(1, append(shortstr("u"), 'U', 0, 1)), 1)
	f.Add(append(headerFrame(1, append(shortstr("s"), 'S', 0, 0, 0, 9, 'x')), stream('L')...), 7)
	f.Fuzz(func(t *testing.T, data []byte, n int) {
		if n <= 0 {
			n = 1
		}
		got := readThrough(data, n)
		if whole := readThrough(data, len(data)+1); !bytes.Equal(got, whole) {
			t.Fatalf("output depends on the read size\nchunk %d %x\nwhole    %x", n, got, whole)
		}
		if again := readThrough(got, n); !bytes.Equal(again, got) {
			t.Fatalf("a second pass changed the output\nfirst  %x\nsecond %x", got, again)
		}
		if bytes.Contains(got, []byte(testRefusedKey)) {
			return
		}
		if len(got) != len(data) {
			t.Fatalf("length changed: %d -> %d", len(data), len(got))
		}
		for i := range got {
			if got[i] != data[i] && !(data[i] == 'L' && got[i] == 'l') {
				t.Fatalf("byte %d changed %x -> %x", i, data[i], got[i])
			}
		}
	})
}

// loopConn serves the same bytes forever.
type loopConn struct {
	chunkConn
	pos int
}

func (c *loopConn) Read(p []byte) (int, error) {
	k := copy(p, c.data[c.pos:])
	c.pos = (c.pos + k) % len(c.data)
	return k, nil
}

func (c *loopConn) Write(p []byte) (int, error) { return len(p), nil }

// The wrapper sees every frame: reading and writing frames whose tables
// need no replacement allocate nothing (the tag rewrite works in place).
func TestTableConnCommonPathDoesNotAllocate(t *testing.T) {
	var in []byte
	for range 64 {
		in = append(in, stream('L')...)
	}
	rc := newTableConn(&loopConn{chunkConn: chunkConn{data: in}}, 0)
	buf := make([]byte, 4096)
	if n := testing.AllocsPerRun(1000, func() { _, _ = rc.Read(buf) }); n != 0 {
		t.Errorf("Read allocates %v times per call", n)
	}
	for _, tag := range []byte{'L', 'l'} { // nothing to rewrite; a rewrite in the reused buffer
		wc := newTableConn(&loopConn{}, 0)
		out := stream(tag)
		if n := testing.AllocsPerRun(1000, func() { _, _ = wc.Write(out) }); n != 0 {
			t.Errorf("Write of %q tags allocates %v times per call", tag, n)
		}
	}
}
