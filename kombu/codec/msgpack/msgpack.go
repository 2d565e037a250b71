// Package msgpack adds kombu's msgpack serializer (application/x-msgpack,
// Python's msgpack.packb(use_bin_type=True) form) to codec.Default and to
// every registry codec.NewRegistry makes. Import it for its side effect:
//
//	import _ "github.com/kombu-go/kombu/kombu/codec/msgpack"
//
// Values are encoded with github.com/vmihailenco/msgpack/v5, which honours
// `msgpack` struct tags and falls back to `json` tags, so structs get the
// same keys as in JSON.
package msgpack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/kombu-go/kombu/kombu/codec"
	"math"
	"time"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
)

// maxNesting bounds how deep arrays and maps may nest in a decoded body
// (encoding/json has the same limit).
const maxNesting = 10000

// msgpackMarshal encodes v as Python's msgpack.packb(v, use_bin_type=True)
// would: strings as str, []byte as bin, integers in their smallest form.
// Struct fields use `msgpack` tags, then `json` tags.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	enc.SetCustomStructTag("json")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// msgpackUnmarshal decodes one msgpack object, as Python's
// msgpack.unpackb(data, raw=False) would accept it: str must be UTF-8, map
// keys must be str or bin, and nothing may follow the object.
//
// The body is always parsed first by a small allocation-bounded parser
// (a declared length can never exceed the bytes left), which also produces
// the result for *any, *map[string]any and *[]any: integers as int64
// (uint64 above math.MaxInt64), floats as float64, str as string, bin as
// []byte, maps as map[string]any, the timestamp extension (-1) as
// time.Time. Other targets are then filled by
// github.com/vmihailenco/msgpack/v5.
func unmarshal(data []byte, v any) error {
	r := mpReader{b: data}
	x, err := r.value(0)
	if err != nil {
		return err
	}
	if r.off != len(data) {
		return fmt.Errorf("msgpack: %d bytes of extra data after the object", len(data)-r.off)
	}
	switch p := v.(type) {
	case *any:
		*p = x
		return nil
	case *map[string]any:
		switch m := x.(type) {
		case map[string]any:
			*p = m
		case nil:
			*p = nil
		default:
			return fmt.Errorf("msgpack: cannot decode %T into map[string]any", x)
		}
		return nil
	case *[]any:
		switch s := x.(type) {
		case []any:
			*p = s
		case nil:
			*p = nil
		default:
			return fmt.Errorf("msgpack: cannot decode %T into []any", x)
		}
		return nil
	}
	dec := msgpack.NewDecoder(bytes.NewReader(data))
	dec.SetCustomStructTag("json")
	return dec.Decode(v)
}

var errMsgpackTruncated = errors.New("msgpack: truncated data")

// mpReader parses msgpack from a byte slice.
type mpReader struct {
	b   []byte
	off int
}

func (r *mpReader) left() int { return len(r.b) - r.off }

func (r *mpReader) next(n uint64) ([]byte, error) {
	if n > uint64(r.left()) {
		return nil, errMsgpackTruncated
	}
	s := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return s, nil
}

// uint reads an n-byte big-endian unsigned integer (n is 1, 2, 4 or 8).
func (r *mpReader) uint(n int) (uint64, error) {
	s, err := r.next(uint64(n))
	if err != nil {
		return 0, err
	}
	var u uint64
	for _, b := range s {
		u = u<<8 | uint64(b)
	}
	return u, nil
}

func (r *mpReader) value(depth int) (any, error) {
	if depth > maxNesting {
		return nil, errors.New("msgpack: nesting too deep")
	}
	s, err := r.next(1)
	if err != nil {
		return nil, err
	}
	c := s[0]
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	case c&0xf0 == 0x80:
		return r.mapOf(uint64(c&0x0f), depth)
	case c&0xf0 == 0x90:
		return r.arrayOf(uint64(c&0x0f), depth)
	case c&0xe0 == 0xa0:
		return r.str(uint64(c & 0x1f))
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	case 0xc4, 0xc5, 0xc6: // bin 8/16/32
		n, err := r.uint(1 << (c - 0xc4))
		if err != nil {
			return nil, err
		}
		b, err := r.next(n)
		if err != nil {
			return nil, err
		}
		return bytes.Clone(b), nil
	case 0xc7, 0xc8, 0xc9: // ext 8/16/32
		n, err := r.uint(1 << (c - 0xc7))
		if err != nil {
			return nil, err
		}
		return r.ext(n)
	case 0xca:
		u, err := r.uint(4)
		if err != nil {
			return nil, err
		}
		return float64(math.Float32frombits(uint32(u))), nil
	case 0xcb:
		u, err := r.uint(8)
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(u), nil
	case 0xcc, 0xcd, 0xce, 0xcf: // uint 8/16/32/64
		u, err := r.uint(1 << (c - 0xcc))
		if err != nil {
			return nil, err
		}
		if u > math.MaxInt64 {
			return u, nil
		}
		return int64(u), nil
	case 0xd0, 0xd1, 0xd2, 0xd3: // int 8/16/32/64
		size := 1 << (c - 0xd0)
		u, err := r.uint(size)
		if err != nil {
			return nil, err
		}
		shift := 64 - 8*size
		return int64(u<<shift) >> shift, nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1/2/4/8/16
		return r.ext(1 << (c - 0xd4))
	case 0xd9, 0xda, 0xdb: // str 8/16/32
		n, err := r.uint(1 << (c - 0xd9))
		if err != nil {
			return nil, err
		}
		return r.str(n)
	case 0xdc, 0xdd: // array 16/32
		n, err := r.uint(2 << (c - 0xdc))
		if err != nil {
			return nil, err
		}
		return r.arrayOf(n, depth)
	case 0xde, 0xdf: // map 16/32
		n, err := r.uint(2 << (c - 0xde))
		if err != nil {
			return nil, err
		}
		return r.mapOf(n, depth)
	}
	return nil, fmt.Errorf("msgpack: invalid type byte 0x%02x", c)
}

func (r *mpReader) str(n uint64) (any, error) {
	b, err := r.next(n)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(b) {
		return nil, errors.New("msgpack: str is not valid UTF-8")
	}
	return string(b), nil
}

func (r *mpReader) arrayOf(n uint64, depth int) (any, error) {
	if n > uint64(r.left()) { // every element takes at least one byte
		return nil, errMsgpackTruncated
	}
	out := make([]any, 0, int(n))
	for i := uint64(0); i < n; i++ {
		e, err := r.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func (r *mpReader) mapOf(n uint64, depth int) (any, error) {
	if n > uint64(r.left())/2 { // every entry takes at least two bytes
		return nil, errMsgpackTruncated
	}
	out := make(map[string]any, int(n))
	for i := uint64(0); i < n; i++ {
		k, err := r.value(depth + 1)
		if err != nil {
			return nil, err
		}
		var key string
		switch kk := k.(type) {
		case string:
			key = kk
		case []byte:
			key = string(kk)
		default:
			return nil, fmt.Errorf("msgpack: map key of type %T (only str and bin keys are allowed)", k)
		}
		e, err := r.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out[key] = e
	}
	return out, nil
}

// ext reads the type byte and n data bytes of an extension value. Only the
// timestamp extension (-1) is understood.
func (r *mpReader) ext(n uint64) (any, error) {
	t, err := r.next(1)
	if err != nil {
		return nil, err
	}
	data, err := r.next(n)
	if err != nil {
		return nil, err
	}
	if int8(t[0]) != -1 {
		return nil, fmt.Errorf("msgpack: unsupported extension type %d", int8(t[0]))
	}
	switch len(data) {
	case 4:
		return time.Unix(int64(binary.BigEndian.Uint32(data)), 0).UTC(), nil
	case 8:
		u := binary.BigEndian.Uint64(data)
		nsec := int64(u >> 34)
		if nsec > 999999999 {
			return nil, errors.New("msgpack: invalid timestamp")
		}
		return time.Unix(int64(u&(1<<34-1)), nsec).UTC(), nil
	case 12:
		nsec := int64(binary.BigEndian.Uint32(data))
		if nsec > 999999999 {
			return nil, errors.New("msgpack: invalid timestamp")
		}
		return time.Unix(int64(binary.BigEndian.Uint64(data[4:])), nsec).UTC(), nil
	}
	return nil, fmt.Errorf("msgpack: invalid timestamp length %d", len(data))
}

func init() {
	if err := codec.RegisterDefault(codec.Serializer{
		Name: "msgpack", ContentType: codec.ContentTypeMsgpack, ContentEncoding: codec.EncodingBinary,
		Marshal: marshal, Unmarshal: unmarshal,
	}); err != nil {
		panic(err)
	}
}
