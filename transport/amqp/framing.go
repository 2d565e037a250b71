package amqp

import (
	"encoding/binary"
	"net"
	"sync"
)

// This file holds the net.Conn wrapper that sits between amqp091-go and the
// socket. It exists for one reason: the integer tags of AMQP field tables.
//
// py-amqp (Python kombu) writes integers outside the int32 range with the tag
// 'L' and reads 'L' as a signed 64-bit integer, while it reads 'l' as
// unsigned. amqp091-go writes int64 as 'l' and has no decoder for 'L': a
// single Python message whose headers hold 2**40 makes amqp091-go close the
// whole connection with 501 FRAME_ERROR.
//
// 'L' and 'l' have the same width (8 bytes, big endian), so the wrapper
// rewrites the tag byte inside the headers table of content-header frames:
// 'L' becomes 'l' on the way in, 'l' becomes 'L' on the way out. Nothing
// else changes: every other byte, every length and every frame size stays
// as it was. Only content-header frames (type 2) of the basic class are
// inspected; method and body frames stream through untouched.

const (
	frameMethod    = 1
	frameHeader    = 2
	frameBody      = 3
	frameHeartbeat = 8
	frameEnd       = 0xCE

	frameHeaderSize = 7 // type(1) channel(2) size(4)
	basicClassID    = 60

	// maxInspect bounds how large a content-header frame may be for the
	// wrapper to buffer and rewrite it. Larger ones pass through untouched
	// (amqp091-go rejects frames above the negotiated frame_max anyway), so
	// a hostile size field never makes the wrapper allocate.
	maxInspect = 1 << 20

	readBufSize = 64 << 10
)

// tagRewriter changes the tag of 64-bit integers in AMQP field tables from
// From to To. With Apply false it only reports whether any tag would change.
type tagRewriter struct {
	From, To byte
	Apply    bool
	Hit      bool
}

// table walks an AMQP field table (without its 4-byte length prefix). It
// returns false when the table is malformed or holds a tag it does not
// know; it then stops, and tags already rewritten stay rewritten (each
// rewrite keeps the width, so the frame stays valid).
func (t *tagRewriter) table(b []byte) bool {
	for len(b) > 0 {
		klen := int(b[0])
		if 1+klen >= len(b) {
			return false
		}
		b = b[1+klen:]
		n, ok := t.value(b)
		if !ok {
			return false
		}
		b = b[n:]
	}
	return true
}

// array walks the values of an AMQP field array (without its length).
func (t *tagRewriter) array(b []byte) bool {
	for len(b) > 0 {
		n, ok := t.value(b)
		if !ok {
			return false
		}
		b = b[n:]
	}
	return true
}

// value walks one tagged value at the start of b and returns its encoded
// length, tag included. The widths are those of RabbitMQ's errata and of
// py-amqp, which agree on widths (they differ only on signedness).
func (t *tagRewriter) value(b []byte) (int, bool) {
	if len(b) < 1 {
		return 0, false
	}
	var width int
	switch b[0] {
	case 'V':
		width = 0
	case 't', 'b', 'B':
		width = 1
	case 's', 'u', 'U':
		width = 2
	case 'I', 'i', 'f':
		width = 4
	case 'D':
		width = 5
	case 'l', 'L', 'd', 'T':
		width = 8
	case 'S', 'x', 'F', 'A':
		if len(b) < 5 {
			return 0, false
		}
		n := binary.BigEndian.Uint32(b[1:5])
		if uint64(n) > uint64(len(b)-5) {
			return 0, false
		}
		inner := b[5 : 5+int(n)]
		switch b[0] {
		case 'F':
			if !t.table(inner) {
				return 0, false
			}
		case 'A':
			if !t.array(inner) {
				return 0, false
			}
		}
		return 5 + int(n), true
	default:
		return 0, false
	}
	if len(b) < 1+width {
		return 0, false
	}
	if b[0] == t.From {
		t.Hit = true
		if t.Apply {
			b[0] = t.To
		}
	}
	return 1 + width, true
}

// contentHeader walks the headers table of one content-header frame
// payload (class id, weight, body size, property flags, properties).
func (t *tagRewriter) contentHeader(p []byte) {
	if len(p) < 14 || binary.BigEndian.Uint16(p[0:2]) != basicClassID {
		return
	}
	flags := binary.BigEndian.Uint16(p[12:14])
	off := 14
	// Further flag words follow while bit 0 is set; basic has 14
	// properties and never needs one, but skip them to stay correct.
	for w := flags; w&1 == 1; {
		if off+2 > len(p) {
			return
		}
		w = binary.BigEndian.Uint16(p[off : off+2])
		off += 2
	}
	for _, bit := range [2]uint16{0x8000, 0x4000} { // content-type, content-encoding
		if flags&bit != 0 {
			if off >= len(p) {
				return
			}
			off += 1 + int(p[off])
		}
	}
	if flags&0x2000 == 0 || off+4 > len(p) {
		return
	}
	n := binary.BigEndian.Uint32(p[off : off+4])
	if uint64(n) > uint64(len(p)-off-4) {
		return
	}
	t.table(p[off+4 : off+4+int(n)])
}

// frameScanner tracks frame boundaries in a byte stream that arrives in
// arbitrary pieces.
type frameScanner struct {
	from, to byte
	skip     int  // bytes of the current frame still to pass untouched
	off      bool // not an AMQP frame stream: pass everything
	started  bool
}

// step settles what it can of buf (bytes not yet scanned). It returns how
// many leading bytes are final, and whether it stopped at an incomplete
// content-header frame (or frame header) that needs more bytes. With dry
// true it changes nothing in buf and stops (returning need=true) at the
// first content-header frame that would be rewritten.
func (s *frameScanner) step(buf []byte, dry bool) (n int, need bool) {
	pos := 0
	for {
		if s.off {
			return len(buf), false
		}
		if s.skip > 0 {
			k := min(s.skip, len(buf)-pos)
			pos += k
			s.skip -= k
			if s.skip > 0 {
				return pos, false
			}
		}
		if pos == len(buf) {
			return pos, false
		}
		if !s.started {
			s.started = true
			if buf[pos] == 'A' {
				// "AMQP" 0 0 9 1: the protocol header the client sends
				// first, or the one a broker sends back to refuse it.
				s.skip = 8
				continue
			}
			if t := buf[pos]; t != frameMethod && t != frameHeader && t != frameBody && t != frameHeartbeat {
				s.off = true
				continue
			}
		}
		if len(buf)-pos < frameHeaderSize {
			return pos, true
		}
		typ := buf[pos]
		size := binary.BigEndian.Uint32(buf[pos+3 : pos+7])
		total := frameHeaderSize + int(size) + 1
		if typ != frameHeader || size > maxInspect {
			s.skip = total
			continue
		}
		if len(buf)-pos < total {
			return pos, true
		}
		payload := buf[pos+frameHeaderSize : pos+frameHeaderSize+int(size)]
		rw := tagRewriter{From: s.from, To: s.to, Apply: !dry}
		rw.contentHeader(payload)
		if dry && rw.Hit {
			return pos, true
		}
		pos += total
	}
}

// tableConn wraps the broker socket; see the comment at the top of the file.
type tableConn struct {
	net.Conn

	// Read side, used only by amqp091-go's reader goroutine: buf[r:w] is
	// unread, and buf[r:r+ready] is final (already rewritten).
	rbuf    []byte
	r, w    int
	ready   int
	rscan   frameScanner
	readErr error

	// Write side: amqp091-go serializes its writes, the lock is a guard.
	writeMu  sync.Mutex
	wscan    frameScanner
	wpending []byte // the start of an outgoing frame that must be rewritten
}

func newTableConn(c net.Conn) *tableConn {
	return &tableConn{
		Conn:  c,
		rbuf:  make([]byte, readBufSize),
		rscan: frameScanner{from: 'L', to: 'l'},
		wscan: frameScanner{from: 'l', to: 'L'},
	}
}

// Read hands amqp091-go the next bytes of the stream, with 'L' tags inside
// content-header tables rewritten to 'l'.
func (c *tableConn) Read(p []byte) (int, error) {
	for c.ready == 0 {
		if c.readErr != nil {
			if c.w > c.r { // an incomplete frame before EOF: hand it over as is
				c.ready = c.w - c.r
				break
			}
			return 0, c.readErr
		}
		if c.w == len(c.rbuf) {
			if c.r > 0 {
				c.w = copy(c.rbuf, c.rbuf[c.r:c.w])
				c.r = 0
			} else {
				// A content-header frame larger than the buffer (but within
				// maxInspect, so this is bounded): grow.
				nb := make([]byte, min(2*len(c.rbuf), maxInspect+frameHeaderSize+1))
				c.w = copy(nb, c.rbuf[c.r:c.w])
				c.rbuf = nb
			}
		}
		n, err := c.Conn.Read(c.rbuf[c.w:])
		if n > 0 {
			scanFrom := c.r + c.ready
			c.w += n
			k, _ := c.rscan.step(c.rbuf[scanFrom:c.w], false)
			c.ready += k
		}
		if err != nil {
			c.readErr = err
		}
	}
	n := copy(p, c.rbuf[c.r:c.r+c.ready])
	c.r += n
	c.ready -= n
	if c.r == c.w {
		c.r, c.w = 0, 0
	}
	return n, nil
}

// Write sends p with 'l' tags inside content-header tables rewritten to
// 'L', so that py-amqp reads negative 64-bit integers correctly. p itself
// is never modified: when a rewrite is needed the bytes are copied first.
func (c *tableConn) Write(p []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if len(c.wpending) == 0 {
		probe := c.wscan
		k, need := probe.step(p, true)
		if !need {
			// Common case: nothing to rewrite and no frame cut short at
			// the end of p, so the bytes go out as they are.
			c.wscan = probe
			return c.Conn.Write(p)
		}
		// Send the settled prefix as is and keep the rest to rewrite.
		c.wscan = probe
		if k > 0 {
			if n, err := c.Conn.Write(p[:k]); err != nil {
				return n, err
			}
		}
		c.wpending = append(c.wpending[:0], p[k:]...)
	} else {
		c.wpending = append(c.wpending, p...)
	}
	k, _ := c.wscan.step(c.wpending, false)
	if k > 0 {
		if _, err := c.Conn.Write(c.wpending[:k]); err != nil {
			return 0, err
		}
		c.wpending = c.wpending[:copy(c.wpending, c.wpending[k:])]
	}
	return len(p), nil
}
