package codec

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// charset is a content_encoding this package can apply to text.
type charset int

const (
	csUnknown charset = iota
	csBinary          // binary, ascii-8bit: bytes are left alone
	csUTF8
	csASCII
	csLatin1
	csUTF16 // BOM-detected on decode (little endian without one); BOM + LE on encode
	csUTF16LE
	csUTF16BE
)

// charsetNames maps normalized Python codec names (lower case, "-" for "_"
// and " ") to charsets. It covers the encodings kombu users put in
// content_encoding in practice.
var charsetNames = map[string]charset{
	"binary":     csBinary,
	"ascii-8bit": csBinary,

	"utf-8":   csUTF8,
	"utf8":    csUTF8,
	"u8":      csUTF8,
	"utf":     csUTF8,
	"cp65001": csUTF8,

	"ascii":    csASCII,
	"us-ascii": csASCII,
	"646":      csASCII,

	"latin-1":    csLatin1,
	"latin1":     csLatin1,
	"latin":      csLatin1,
	"l1":         csLatin1,
	"iso-8859-1": csLatin1,
	"iso8859-1":  csLatin1,
	"8859":       csLatin1,
	"cp819":      csLatin1,
	"iso-ir-100": csLatin1,

	"utf-16":    csUTF16,
	"utf16":     csUTF16,
	"u16":       csUTF16,
	"utf-16-le": csUTF16LE,
	"utf-16le":  csUTF16LE,
	"utf-16-be": csUTF16BE,
	"utf-16be":  csUTF16BE,
}

// lookupCharset resolves a content_encoding; "" means utf-8, as in kombu.
func lookupCharset(enc string) charset {
	e := strings.ToLower(strings.TrimSpace(enc))
	if e == "" {
		return csUTF8
	}
	e = strings.NewReplacer("_", "-", " ", "-").Replace(e)
	return charsetNames[e]
}

var (
	errInvalidUTF8 = errors.New("invalid UTF-8")
	errOddUTF16    = errors.New("truncated UTF-16 data (odd length)")
	errSurrogate   = errors.New("unpaired UTF-16 surrogate")
)

// decodeText decodes body from the charset cs to a Go (UTF-8) string.
func decodeText(cs charset, body []byte) (string, error) {
	switch cs {
	case csBinary:
		return string(body), nil
	case csUTF8:
		if !utf8.Valid(body) {
			return "", errInvalidUTF8
		}
		return string(body), nil
	case csASCII:
		for i, b := range body {
			if b >= 0x80 {
				return "", fmt.Errorf("byte 0x%02x at offset %d is not ASCII", b, i)
			}
		}
		return string(body), nil
	case csLatin1:
		var sb strings.Builder
		sb.Grow(len(body))
		for _, b := range body {
			sb.WriteRune(rune(b))
		}
		return sb.String(), nil
	case csUTF16, csUTF16LE, csUTF16BE:
		return decodeUTF16(cs, body)
	}
	return "", errors.New("unknown content encoding")
}

func decodeUTF16(cs charset, body []byte) (string, error) {
	if len(body)%2 != 0 {
		return "", errOddUTF16
	}
	little := cs != csUTF16BE
	if cs == csUTF16 && len(body) >= 2 {
		switch {
		case body[0] == 0xff && body[1] == 0xfe:
			body = body[2:]
		case body[0] == 0xfe && body[1] == 0xff:
			little = false
			body = body[2:]
		}
	}
	units := make([]uint16, len(body)/2)
	for i := range units {
		if little {
			units[i] = uint16(body[2*i]) | uint16(body[2*i+1])<<8
		} else {
			units[i] = uint16(body[2*i])<<8 | uint16(body[2*i+1])
		}
	}
	var sb strings.Builder
	sb.Grow(len(units))
	for i := 0; i < len(units); i++ {
		u := rune(units[i])
		if !utf16.IsSurrogate(u) {
			sb.WriteRune(u)
			continue
		}
		if i+1 < len(units) {
			if r := utf16.DecodeRune(u, rune(units[i+1])); r != utf8.RuneError {
				sb.WriteRune(r)
				i++
				continue
			}
		}
		return "", errSurrogate
	}
	return sb.String(), nil
}

// encodeText encodes the Go string s with the charset cs, as Python's
// str.encode would encode the same text. s must be valid UTF-8 unless cs is
// binary.
func encodeText(cs charset, s string) ([]byte, error) {
	if cs == csBinary {
		return []byte(s), nil
	}
	if !utf8.ValidString(s) {
		return nil, errInvalidUTF8
	}
	switch cs {
	case csUTF8:
		return []byte(s), nil
	case csASCII, csLatin1:
		maxRune := rune(0x7f)
		if cs == csLatin1 {
			maxRune = 0xff
		}
		out := make([]byte, 0, len(s))
		for _, r := range s {
			if r > maxRune {
				return nil, fmt.Errorf("character %q cannot be encoded", r)
			}
			out = append(out, byte(r))
		}
		return out, nil
	case csUTF16, csUTF16LE, csUTF16BE:
		units := utf16.Encode([]rune(s))
		out := make([]byte, 0, 2*len(units)+2)
		little := cs != csUTF16BE
		if cs == csUTF16 {
			out = append(out, 0xff, 0xfe)
		}
		for _, u := range units {
			if little {
				out = append(out, byte(u), byte(u>>8))
			} else {
				out = append(out, byte(u>>8), byte(u))
			}
		}
		return out, nil
	}
	return nil, errors.New("unknown content encoding")
}
