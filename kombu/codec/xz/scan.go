package xz

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/kombu-go/kombu/kombu/codec"
	"hash/crc32"
)

// The .xz format (tukaani.org/xz/xz-file-format.txt) stores the dictionary
// size of each LZMA2 block in the block header, and decoders allocate it
// up front: a 100-byte stream can ask for 4 GiB. The LZMA2 data itself is a
// sequence of chunks whose headers give their exact uncompressed sizes, so
// the container can be walked without decoding anything. xzPrepare does
// that walk: it refuses streams that declare more than limit bytes of
// output, and lowers every dictionary larger than the declared output to
// the smallest size that still holds it (a back-reference can never reach
// further back than the output produced so far), fixing up the header CRC.

var (
	xzMagic       = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	xzFooterMagic = []byte{'Y', 'Z'}
	errXZFormat   = errors.New("xz: malformed stream")
)

// xzCheckSizes gives the size of each check type (stream flags, low nibble).
var xzCheckSizes = [16]int{0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64}

const xzFilterLZMA2 = 0x21

// xzDictSize decodes an LZMA2 dictionary-size property (0..40).
func xzDictSize(code byte) uint64 {
	if code >= 40 {
		return 1<<32 - 1
	}
	return uint64(2|code&1) << (code/2 + 11)
}

type xzWalker struct {
	b   []byte
	pos int
}

func (w *xzWalker) need(n int) ([]byte, error) {
	if n < 0 || n > len(w.b)-w.pos {
		return nil, fmt.Errorf("%w: truncated at offset %d", errXZFormat, w.pos)
	}
	s := w.b[w.pos : w.pos+n]
	w.pos += n
	return s, nil
}

// xzVarint reads a multibyte integer (at most 9 bytes) from b at *p.
func xzVarint(b []byte, p *int) (uint64, error) {
	var v uint64
	for i := 0; i < 9; i++ {
		if *p >= len(b) {
			return 0, fmt.Errorf("%w: truncated integer", errXZFormat)
		}
		c := b[*p]
		*p++
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if c == 0 && i > 0 {
				return 0, fmt.Errorf("%w: non-minimal integer", errXZFormat)
			}
			return v, nil
		}
	}
	return 0, fmt.Errorf("%w: integer too long", errXZFormat)
}

// xzPrepare checks an .xz file (one or more streams, with stream padding)
// and returns it, or a patched copy with smaller dictionaries.
func xzPrepare(data []byte, limit int64) ([]byte, error) {
	w := &xzWalker{b: data}
	var (
		total     uint64 // declared uncompressed bytes
		propsAt   []int  // offsets of the LZMA2 dictionary-size bytes
		headersAt []int  // offsets of the matching block headers
		streams   int
	)
	for {
		if streams > 0 {
			// Stream padding: zero bytes in groups of four.
			for len(w.b)-w.pos >= 4 && bytes.Equal(w.b[w.pos:w.pos+4], []byte{0, 0, 0, 0}) {
				w.pos += 4
			}
			if w.pos == len(w.b) {
				break
			}
		}
		hdr, err := w.need(12)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(hdr[:6], xzMagic) {
			return nil, fmt.Errorf("%w: bad magic at offset %d", errXZFormat, w.pos-12)
		}
		if hdr[6] != 0 || hdr[7]&0xf0 != 0 || crc32.ChecksumIEEE(hdr[6:8]) != binary.LittleEndian.Uint32(hdr[8:12]) {
			return nil, fmt.Errorf("%w: bad stream header", errXZFormat)
		}
		checkSize := xzCheckSizes[hdr[7]&0x0f]
		for {
			if w.pos >= len(w.b) {
				return nil, fmt.Errorf("%w: truncated", errXZFormat)
			}
			if w.b[w.pos] == 0 { // index indicator
				break
			}
			blockStart := w.pos
			props, err := w.blockHeader()
			if err != nil {
				return nil, err
			}
			propsAt = append(propsAt, props)
			headersAt = append(headersAt, blockStart)
			dataStart := w.pos
			n, err := w.lzma2Chunks(limit, total)
			if err != nil {
				return nil, err
			}
			total += n
			if pad := (4 - (w.pos-dataStart)%4) % 4; pad > 0 {
				if _, err := w.need(pad); err != nil {
					return nil, err
				}
			}
			if _, err := w.need(checkSize); err != nil {
				return nil, err
			}
		}
		if err := w.indexAndFooter(hdr[6:8]); err != nil {
			return nil, err
		}
		streams++
		if w.pos == len(w.b) {
			break
		}
	}
	if total > uint64(limit) {
		return nil, fmt.Errorf("%w: xz stream declares %d bytes, limit %d", codec.ErrTooLarge, total, limit)
	}
	// Shrink dictionaries larger than the whole output.
	need := max(total, 4096)
	var out []byte
	for i, at := range propsAt {
		code := data[at] & 0x3f
		if xzDictSize(code) <= need {
			continue
		}
		small := byte(0)
		for xzDictSize(small) < need {
			small++
		}
		if out == nil {
			out = bytes.Clone(data)
		}
		out[at] = data[at]&0xc0 | small
		h := headersAt[i]
		size := (int(out[h]) + 1) * 4
		binary.LittleEndian.PutUint32(out[h+size-4:], crc32.ChecksumIEEE(out[h:h+size-4]))
	}
	if out == nil {
		return data, nil
	}
	return out, nil
}

// blockHeader checks a block header whose filter chain is a single LZMA2
// filter (the only one Python writes by default and the Go decoder
// supports) and returns the offset of its dictionary-size byte.
func (w *xzWalker) blockHeader() (int, error) {
	start := w.pos
	size := (int(w.b[w.pos]) + 1) * 4
	h, err := w.need(size)
	if err != nil {
		return 0, err
	}
	if crc32.ChecksumIEEE(h[:size-4]) != binary.LittleEndian.Uint32(h[size-4:]) {
		return 0, fmt.Errorf("%w: bad block header checksum", errXZFormat)
	}
	body := h[:size-4]
	flags := body[1]
	if flags&0x3c != 0 {
		return 0, fmt.Errorf("%w: reserved block flags", errXZFormat)
	}
	if flags&0x03 != 0 {
		return 0, fmt.Errorf("%w: only a single LZMA2 filter is supported", errXZFormat)
	}
	p := 2
	if flags&0x40 != 0 { // compressed size
		if _, err := xzVarint(body, &p); err != nil {
			return 0, err
		}
	}
	if flags&0x80 != 0 { // uncompressed size
		if _, err := xzVarint(body, &p); err != nil {
			return 0, err
		}
	}
	id, err := xzVarint(body, &p)
	if err != nil {
		return 0, err
	}
	propSize, err := xzVarint(body, &p)
	if err != nil {
		return 0, err
	}
	if id != xzFilterLZMA2 || propSize != 1 || p >= len(body) {
		return 0, fmt.Errorf("%w: only a single LZMA2 filter is supported", errXZFormat)
	}
	if body[p]&0xc0 != 0 || body[p]&0x3f > 40 {
		return 0, fmt.Errorf("%w: bad LZMA2 dictionary size", errXZFormat)
	}
	return start + p, nil
}

// lzma2Chunks skips the LZMA2 chunks of one block, up to and including the
// end marker, and returns their total uncompressed size. It stops early
// with codec.ErrTooLarge once before+size exceeds limit.
func (w *xzWalker) lzma2Chunks(limit int64, before uint64) (uint64, error) {
	var n uint64
	for {
		c, err := w.need(1)
		if err != nil {
			return 0, err
		}
		ctl := c[0]
		var unpacked, packed int
		switch {
		case ctl == 0x00:
			return n, nil
		case ctl == 0x01 || ctl == 0x02: // uncompressed chunk
			s, err := w.need(2)
			if err != nil {
				return 0, err
			}
			unpacked = int(binary.BigEndian.Uint16(s)) + 1
			packed = unpacked
		case ctl >= 0x80: // LZMA chunk
			s, err := w.need(4)
			if err != nil {
				return 0, err
			}
			unpacked = int(ctl&0x1f)<<16 + int(binary.BigEndian.Uint16(s[:2])) + 1
			packed = int(binary.BigEndian.Uint16(s[2:])) + 1
			if (ctl>>5)&3 >= 2 { // properties byte follows
				if _, err := w.need(1); err != nil {
					return 0, err
				}
			}
		default:
			return 0, fmt.Errorf("%w: bad LZMA2 chunk control byte 0x%02x", errXZFormat, ctl)
		}
		if _, err := w.need(packed); err != nil {
			return 0, err
		}
		n += uint64(unpacked)
		if before+n > uint64(limit) {
			return 0, fmt.Errorf("%w: xz stream declares more than %d bytes", codec.ErrTooLarge, limit)
		}
	}
}

// indexAndFooter skips the index and checks the stream footer.
func (w *xzWalker) indexAndFooter(flags []byte) error {
	start := w.pos
	w.pos++ // index indicator
	p := w.pos
	count, err := xzVarint(w.b, &p)
	if err != nil {
		return err
	}
	if count > uint64(len(w.b)-p)/2 { // two varints of at least a byte each
		return fmt.Errorf("%w: bad index", errXZFormat)
	}
	for i := uint64(0); i < 2*count; i++ {
		if _, err := xzVarint(w.b, &p); err != nil {
			return err
		}
	}
	w.pos = p
	if pad := (4 - (w.pos-start)%4) % 4; pad > 0 {
		if _, err := w.need(pad); err != nil {
			return err
		}
	}
	if _, err := w.need(4); err != nil { // index CRC32, checked by the decoder
		return err
	}
	footer, err := w.need(12)
	if err != nil {
		return err
	}
	if !bytes.Equal(footer[10:], xzFooterMagic) || !bytes.Equal(footer[8:10], flags) {
		return fmt.Errorf("%w: bad stream footer", errXZFormat)
	}
	return nil
}
