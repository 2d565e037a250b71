package amqp

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"sync"
)

// This file holds the net.Conn wrapper that sits between amqp091-go and the
// socket. It exists because of AMQP field tables that amqp091-go cannot
// read: on any of them it closes the whole connection, and the message
// goes back to the head of its queue to kill the next consumer too.
//
// py-amqp (Python kombu) writes integers outside the int32 range with the tag
// 'L' and reads 'L' as a signed 64-bit integer, while it reads 'l' as
// unsigned. amqp091-go writes int64 as 'l' and has no decoder for 'L': a
// single Python message whose headers hold 2**40 would close the
// connection with 501 FRAME_ERROR. 'L' and 'l' have the same width (8
// bytes, big endian), so the wrapper rewrites the tag byte inside the
// headers table of content-header frames: 'L' becomes 'l' on the way in,
// 'l' becomes 'L' on the way out, and nothing else changes.
//
// RabbitMQ and py-amqp also accept headers that amqp091-go v1.16.0 refuses
// (read.go): tables and arrays nested more than 32 deep, more than 8192
// entries in one of them, tags it does not know. On the way in, the
// wrapper replaces such a headers table with a marker table of one entry
// (refusedKey: the reason), fixing the frame size; the channel turns the
// marker into driver.Delivery.DecodeError, so the message reaches the
// decode-error path and the connection lives.
//
// Only content-header frames (type 2) of the basic class are inspected;
// method and body frames stream through untouched.

const (
	frameMethod    = 1
	frameHeader    = 2
	frameBody      = 3
	frameHeartbeat = 8
	frameEnd       = 0xCE

	frameHeaderSize = 7 // type(1) channel(2) size(4)
	basicClassID    = 60

	// minInspect is the smallest bound on the content-header frames the
	// wrapper buffers and inspects; the bound is frame_max when larger.
	// Larger frames pass through untouched (amqp091-go rejects frames
	// above the negotiated frame_max anyway), so a hostile size field
	// never makes the wrapper allocate.
	minInspect = 1 << 20

	readBufSize = 64 << 10

	// refusedName names refused headers: a dash and a per-connection
	// random suffix follow it in the key of the marker table.
	refusedName = "x-kombu-go-refused-headers"
	// maxReasonLen keeps the marker table small (a few hundred bytes), so
	// a frame that grows by the replacement stays under AMQP's minimum
	// frame_max of 4096 bytes (the other basic properties take at most
	// about 2.7 kB).
	maxReasonLen = 200
)

// markerTable encodes the table {key: reason}, length prefix included.
func markerTable(key, reason string) []byte {
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	n := 1 + len(key) + 1 + 4 + len(reason)
	b := make([]byte, 0, 4+n)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = append(b, byte(len(key)))
	b = append(b, key...)
	b = append(b, 'S')
	b = binary.BigEndian.AppendUint32(b, uint32(len(reason)))
	return append(b, reason...)
}

// refusedHeaders reports whether h is the marker table of a connection
// whose key is key, and returns the reason it carries.
func refusedHeaders(h map[string]any, key string) (reason string, ok bool) {
	if len(h) != 1 || key == "" {
		return "", false
	}
	reason, ok = h[key].(string)
	return reason, ok
}

// tableWalker walks the AMQP field tables of content-header frames. It
// changes the tag of 64-bit integers from From to To (only reporting, in
// Hit, whether it would when Apply is false), and it checks the table
// against what amqp091-go v1.16.0 reads (read.go): the tags it knows,
// containers nested at most maxFieldDepth deep and holding at most
// maxContainerElements entries each. Refused says why the first problem
// found would make amqp091-go close the connection.
type tableWalker struct {
	From, To byte
	Apply    bool
	Hit      bool
	Refused  string
}

// The limits of amqp091-go v1.16.0's table reader (read.go maxFieldDepth
// and maxContainerElements). A table or array nested deeper, or one with
// more entries, fails the whole frame with ErrSyntax.
const (
	maxFieldDepth        = 32
	maxContainerElements = 8192
)

func (t *tableWalker) refuse(reason string) bool {
	if t.Refused == "" {
		t.Refused = reason
	}
	return false
}

// table walks an AMQP field table (without its 4-byte length prefix) at
// depth (0 for the headers table itself). It returns false when the table
// is malformed or would be refused; it then stops, and tags already
// rewritten stay rewritten (each rewrite keeps the width, so the frame
// stays valid).
func (t *tableWalker) table(b []byte, depth int) bool {
	if depth > maxFieldDepth {
		return t.refuse(fmt.Sprintf("tables and arrays nest deeper than %d levels", maxFieldDepth))
	}
	entries := 0
	for rest := b; len(rest) > 0; entries++ {
		klen := int(rest[0])
		if 1+klen >= len(rest) {
			return t.refuse("malformed table")
		}
		rest = rest[1+klen:]
		n, ok := t.value(rest, depth)
		if !ok {
			return false
		}
		rest = rest[n:]
	}
	if entries > maxContainerElements && tooManyKeys(b, entries) {
		return t.refuse(fmt.Sprintf("a table holds more than %d entries", maxContainerElements))
	}
	return true
}

// tooManyKeys reports whether amqp091-go refuses a well-formed table of
// entries entries: it counts distinct keys, and fails when an entry comes
// after maxContainerElements of them (a repeated key only overwrites).
func tooManyKeys(b []byte, entries int) bool {
	seen := make(map[string]struct{}, maxContainerElements)
	var skip tableWalker
	for i := 0; i < entries-1; i++ {
		klen := int(b[0])
		seen[string(b[1:1+klen])] = struct{}{}
		if len(seen) >= maxContainerElements {
			return true
		}
		n, _ := skip.value(b[1+klen:], 0)
		b = b[1+klen+n:]
	}
	return false
}

// array walks the values of an AMQP field array (without its length) at
// depth.
func (t *tableWalker) array(b []byte, depth int) bool {
	if depth > maxFieldDepth {
		return t.refuse(fmt.Sprintf("tables and arrays nest deeper than %d levels", maxFieldDepth))
	}
	for elems := 0; len(b) > 0; elems++ {
		if elems == maxContainerElements {
			return t.refuse(fmt.Sprintf("an array holds more than %d values", maxContainerElements))
		}
		n, ok := t.value(b, depth)
		if !ok {
			return false
		}
		b = b[n:]
	}
	return true
}

// value walks one tagged value at the start of b, inside a container at
// depth, and returns its encoded length, tag included. The tags and widths
// are amqp091-go's (RabbitMQ's errata), plus py-amqp's 'L', which has the
// width of 'l'.
func (t *tableWalker) value(b []byte, depth int) (int, bool) {
	if len(b) < 1 {
		return 0, t.refuse("malformed table")
	}
	var width int
	switch b[0] {
	case 'V':
		width = 0
	case 't', 'b', 'B':
		width = 1
	case 's', 'u':
		width = 2
	case 'I', 'i', 'f':
		width = 4
	case 'D':
		width = 5
	case 'l', 'L', 'd', 'T':
		width = 8
	case 'S', 'x', 'F', 'A':
		if len(b) < 5 {
			return 0, t.refuse("malformed table")
		}
		n := binary.BigEndian.Uint32(b[1:5])
		if uint64(n) > uint64(len(b)-5) {
			return 0, t.refuse("malformed table")
		}
		inner := b[5 : 5+int(n)]
		switch b[0] {
		case 'F':
			if !t.table(inner, depth+1) {
				return 0, false
			}
		case 'A':
			if !t.array(inner, depth+1) {
				return 0, false
			}
		}
		return 5 + int(n), true
	default:
		return 0, t.refuse(fmt.Sprintf("field type %q, which amqp091-go cannot read", b[0]))
	}
	if len(b) < 1+width {
		return 0, t.refuse("malformed table")
	}
	if b[0] == t.From {
		t.Hit = true
		if t.Apply {
			b[0] = t.To
		}
	}
	return 1 + width, true
}

// headersSpan locates the headers table of a content-header frame payload
// (class id, weight, body size, property flags, properties): the offset
// of its 4-byte length prefix and the offset just past it. ok is false
// when the payload has no headers or is too malformed to find them.
func headersSpan(p []byte) (start, end int, ok bool) {
	if len(p) < 14 || binary.BigEndian.Uint16(p[0:2]) != basicClassID {
		return 0, 0, false
	}
	flags := binary.BigEndian.Uint16(p[12:14])
	off := 14
	// Further flag words follow while bit 0 is set; basic has 14
	// properties and never needs one, but skip them to stay correct.
	for w := flags; w&1 == 1; {
		if off+2 > len(p) {
			return 0, 0, false
		}
		w = binary.BigEndian.Uint16(p[off : off+2])
		off += 2
	}
	for _, bit := range [2]uint16{0x8000, 0x4000} { // content-type, content-encoding
		if flags&bit != 0 {
			if off >= len(p) {
				return 0, 0, false
			}
			off += 1 + int(p[off])
		}
	}
	if flags&0x2000 == 0 || off+4 > len(p) {
		return 0, 0, false
	}
	n := binary.BigEndian.Uint32(p[off : off+4])
	if uint64(n) > uint64(len(p)-off-4) {
		return 0, 0, false
	}
	return off, off + 4 + int(n), true
}

// contentHeader walks the headers table of one content-header frame
// payload. It returns the table's span (length prefix included) when the
// walker refused it.
func (t *tableWalker) contentHeader(p []byte) (start, end int, refused bool) {
	start, end, ok := headersSpan(p)
	if !ok {
		return 0, 0, false
	}
	if t.table(p[start+4:end], 0) {
		return 0, 0, false
	}
	return start, end, t.Refused != ""
}

// frameScanner tracks frame boundaries in a byte stream that arrives in
// arbitrary pieces.
type frameScanner struct {
	from, to byte
	inspect  int  // largest frame payload buffered and inspected
	refuse   bool // stop at tables amqp091-go would refuse (read side)
	skip     int  // bytes of the current frame still to pass untouched
	off      bool // not an AMQP frame stream: pass everything
	started  bool
}

// refusedFrame is a content-header frame whose headers table amqp091-go
// would refuse, found by frameScanner.step at the start of the bytes it
// did not settle.
type refusedFrame struct {
	size       int // whole frame: header, payload and end byte
	start, end int // the headers table in the frame, length prefix included
	reason     string
}

// step settles what it can of buf (bytes not yet scanned). It returns how
// many leading bytes are final, and whether it stopped at an incomplete
// content-header frame (or frame header) that needs more bytes. With dry
// true it changes nothing in buf and stops (returning need=true) at the
// first content-header frame that would be rewritten. Otherwise it stops
// at the first content-header frame whose table it refuses, returning it:
// the caller replaces the table and scans again from there.
func (s *frameScanner) step(buf []byte, dry bool) (n int, need bool, refused *refusedFrame) {
	pos := 0
	for {
		if s.off {
			return len(buf), false, nil
		}
		if s.skip > 0 {
			k := min(s.skip, len(buf)-pos)
			pos += k
			s.skip -= k
			if s.skip > 0 {
				return pos, false, nil
			}
		}
		if pos == len(buf) {
			return pos, false, nil
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
			return pos, true, nil
		}
		typ := buf[pos]
		size := binary.BigEndian.Uint32(buf[pos+3 : pos+7])
		total := frameHeaderSize + int(size) + 1
		if typ != frameHeader || int64(size) > int64(s.inspect) {
			s.skip = total
			continue
		}
		if len(buf)-pos < total {
			return pos, true, nil
		}
		payload := buf[pos+frameHeaderSize : pos+frameHeaderSize+int(size)]
		tw := tableWalker{From: s.from, To: s.to, Apply: !dry}
		start, end, bad := tw.contentHeader(payload)
		if dry && tw.Hit {
			return pos, true, nil
		}
		if bad && s.refuse && !dry {
			return pos, false, &refusedFrame{size: total, start: frameHeaderSize + start, end: frameHeaderSize + end, reason: tw.Refused}
		}
		pos += total
	}
}

// tableConn wraps the broker socket; see the comment at the top of the file.
type tableConn struct {
	net.Conn

	// refusedKey names the one entry of the table that replaces a refused
	// headers table. It ends in random hex, so no publisher can forge it.
	refusedKey string

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

// newTableConn wraps c. frameMax is the largest frame asked for: content
// headers up to that size are inspected (amqp091-go refuses larger ones
// anyway, so a hostile size field never makes the wrapper allocate more).
func newTableConn(c net.Conn, frameMax int) *tableConn {
	inspect := max(frameMax, minInspect)
	var nonce [8]byte
	_, _ = rand.Read(nonce[:]) // crypto/rand.Read never fails (Go 1.24+)
	return &tableConn{
		Conn:       c,
		refusedKey: refusedName + "-" + hex.EncodeToString(nonce[:]),
		rbuf:       make([]byte, readBufSize),
		rscan:      frameScanner{from: 'L', to: 'l', inspect: inspect, refuse: true},
		wscan:      frameScanner{from: 'l', to: 'L', inspect: inspect},
	}
}

// Read hands amqp091-go the next bytes of the stream, with 'L' tags inside
// content-header tables rewritten to 'l' and refused tables replaced.
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
				// the inspected size, so this is bounded): grow.
				c.grow(min(2*len(c.rbuf), c.rscan.inspect+frameHeaderSize+1))
			}
		}
		// At most readBufSize at a time: replaced tables can make what was
		// read several times larger, and the buffer must not compound that.
		n, err := c.Conn.Read(c.rbuf[c.w:min(len(c.rbuf), c.w+readBufSize)])
		if n > 0 {
			c.w += n
			c.scan()
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

// scan settles the bytes read after the ready ones, replacing the headers
// table of every refused content-header frame on the way.
func (c *tableConn) scan() {
	for {
		from := c.r + c.ready
		k, _, refused := c.rscan.step(c.rbuf[from:c.w], false)
		c.ready += k
		if refused == nil {
			return
		}
		c.replaceTable(from+k, refused)
	}
}

// replaceTable swaps the headers table of the refused frame at c.rbuf[at:]
// for the marker table, fixing the frame size and moving what follows.
func (c *tableConn) replaceTable(at int, f *refusedFrame) {
	marker := markerTable(c.refusedKey, f.reason)
	oldFrame := c.rbuf[at : at+f.size]
	frame := make([]byte, 0, f.size-(f.end-f.start)+len(marker))
	frame = append(frame, oldFrame[:f.start]...)
	frame = append(frame, marker...)
	frame = append(frame, oldFrame[f.end:]...)
	binary.BigEndian.PutUint32(frame[3:7], uint32(len(frame)-frameHeaderSize-1))
	tail := c.w - (at + f.size)
	if need := at + len(frame) + tail; need > len(c.rbuf) {
		c.grow(need)
	}
	copy(c.rbuf[at+len(frame):], c.rbuf[at+f.size:c.w])
	copy(c.rbuf[at:], frame)
	c.w = at + len(frame) + tail
}

// grow enlarges the read buffer to size, keeping every offset.
func (c *tableConn) grow(size int) {
	nb := make([]byte, max(size, len(c.rbuf)))
	copy(nb, c.rbuf[:c.w])
	c.rbuf = nb
}

// Write sends p with 'l' tags inside content-header tables rewritten to
// 'L', so that py-amqp reads negative 64-bit integers correctly. p itself
// is never modified: when a rewrite is needed the bytes are copied first.
func (c *tableConn) Write(p []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if len(c.wpending) == 0 {
		probe := c.wscan
		k, need, _ := probe.step(p, true)
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
	k, _, _ := c.wscan.step(c.wpending, false)
	if k > 0 {
		if _, err := c.Conn.Write(c.wpending[:k]); err != nil {
			return 0, err
		}
		c.wpending = c.wpending[:copy(c.wpending, c.wpending[k:])]
	}
	return len(p), nil
}
