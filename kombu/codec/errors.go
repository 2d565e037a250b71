package codec

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by this package wrap one of them (use
// errors.Is) together with the underlying cause.
var (
	// ErrUnknownSerializer: no serializer of that name is registered, or
	// the serializer cannot encode (pickle).
	ErrUnknownSerializer = errors.New("codec: unknown serializer")
	// ErrUnsafeContent: the content type is never decoded (Python pickle,
	// or a type registered without a decoder).
	ErrUnsafeContent = errors.New("codec: refusing to decode unsafe content")
	// ErrEncode: the value could not be serialized.
	ErrEncode = errors.New("codec: cannot encode message body")
	// ErrDecode: the body could not be decoded (invalid JSON, truncated
	// msgpack, bad charset, corrupt compressed data...). The message holds
	// at most the first 64 bytes of the body.
	ErrDecode = errors.New("codec: cannot decode message body")
	// ErrUnknownCompression: no compression method of that name, alias or
	// header value is registered.
	ErrUnknownCompression = errors.New("codec: unknown compression method")
	// ErrTooLarge: decompressed output would exceed the limit.
	ErrTooLarge = errors.New("codec: decompressed body too large")
)

// previewLen is how many body bytes an error message may quote.
const previewLen = 64

// preview quotes at most the first previewLen bytes of body.
func preview(body []byte) string {
	if len(body) <= previewLen {
		return fmt.Sprintf("%q", body)
	}
	return fmt.Sprintf("%q... (%d bytes)", body[:previewLen], len(body))
}

// clip quotes at most the first previewLen bytes of s, for names and
// headers that come from a message and may be arbitrarily long.
func clip(s string) string {
	return preview([]byte(s))
}

// decodeError wraps ErrDecode and cause, naming what was being decoded and
// quoting the start of the body.
func decodeError(what string, body []byte, cause error) error {
	return fmt.Errorf("%w: %s body %s: %w", ErrDecode, what, preview(body), cause)
}
