package redis

import (
	"bytes"
	"encoding/base64"
	"unicode/utf8"

	"github.com/kombu-go/kombu/virtual"
)

// bodySentinel replaces the body while the rest of an envelope is decoded:
// as base64 it decodes to a single zero byte, otherwise it stays "AA==",
// which tells decodeEnvelope how the envelope says its body is encoded.
const bodySentinel = "AA=="

// decodeEnvelope is virtual.UnmarshalEnvelope, faster for the envelopes
// kombu writes: their first key is "body", a plain JSON string (base64)
// that makes up most of the bytes. It is cut out with one IndexByte, the
// small remainder goes through virtual.UnmarshalEnvelope, and the body is
// decoded on its own. Anything else (escapes or control characters in the
// body, another "body" key, a body that is not valid base64) is handed to
// virtual.UnmarshalEnvelope whole, so the result, errors included, is
// always the same as virtual.UnmarshalEnvelope's.
func decodeEnvelope(raw []byte) (*virtual.Envelope, error) {
	start := bodyStart(raw)
	if start < 0 {
		return virtual.UnmarshalEnvelope(raw)
	}
	n := bytes.IndexByte(raw[start:], '"')
	if n < 0 {
		return virtual.UnmarshalEnvelope(raw)
	}
	body := raw[start : start+n]
	rest := raw[start+n:]
	for _, c := range body {
		if c < 0x20 || c == '\\' {
			return virtual.UnmarshalEnvelope(raw)
		}
	}
	if bytes.Contains(rest, []byte(`"body"`)) {
		return virtual.UnmarshalEnvelope(raw)
	}
	small := make([]byte, 0, start+len(bodySentinel)+len(rest))
	small = append(small, raw[:start]...)
	small = append(small, bodySentinel...)
	small = append(small, rest...)
	env, err := virtual.UnmarshalEnvelope(small)
	if err != nil {
		return virtual.UnmarshalEnvelope(raw)
	}
	switch string(env.Body) {
	case "\x00": // base64
		dec := make([]byte, base64.StdEncoding.DecodedLen(len(body)))
		m, err := base64.StdEncoding.Decode(dec, body)
		if err != nil {
			return virtual.UnmarshalEnvelope(raw)
		}
		env.Body = dec[:m]
	case bodySentinel:
		if !utf8.Valid(body) {
			return virtual.UnmarshalEnvelope(raw)
		}
		env.Body = make([]byte, len(body)) // never nil, as []byte(string) is not
		copy(env.Body, body)
	default:
		return virtual.UnmarshalEnvelope(raw)
	}
	env.Raw = raw
	return env, nil
}

// bodyStart returns the offset of the first byte of the body string when
// raw starts with {"body": " (any JSON white space around the tokens), or -1.
func bodyStart(raw []byte) int {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return -1
	}
	i = skipSpace(raw, i+1)
	if !bytes.HasPrefix(raw[i:], []byte(`"body"`)) {
		return -1
	}
	i = skipSpace(raw, i+len(`"body"`))
	if i >= len(raw) || raw[i] != ':' {
		return -1
	}
	i = skipSpace(raw, i+1)
	if i >= len(raw) || raw[i] != '"' {
		return -1
	}
	return i + 1
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
