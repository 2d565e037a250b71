package codec

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// kombu's content types.
const (
	ContentTypeJSON    = "application/json"
	ContentTypeData    = "application/data" // raw bytes; assumed when a message has no content type
	ContentTypeText    = "text/plain"       // a string body sent with no serializer
	ContentTypeMsgpack = "application/x-msgpack"
	ContentTypeYAML    = "application/x-yaml"
	ContentTypePickle  = "application/x-python-serialize" // never decoded
)

// kombu's content encodings.
const (
	EncodingUTF8   = "utf-8"
	EncodingBinary = "binary"
)

// Serializer is a named way of turning values into a message body and back.
type Serializer struct {
	Name            string // "json"
	ContentType     string // "application/json"
	ContentEncoding string // "utf-8" or "binary"; Register sets "utf-8" when empty
	// Aliases are other names Lookup accepts for this serializer.
	Aliases []string
	// Marshal encodes a value; nil means this serializer cannot encode.
	Marshal func(v any) ([]byte, error)
	// Unmarshal decodes a body into the value v points to; nil means
	// bodies of this content type are never decoded (they are refused with
	// ErrUnsafeContent).
	Unmarshal func(data []byte, v any) error

	// passthrough marks the builtin raw serializer: its content type has
	// no decoder, bodies are returned as bytes or text.
	passthrough bool
}

// Registry holds serializers by name, alias and content type. It is safe
// for concurrent use. The zero value is an empty registry; NewRegistry
// returns one with the builtins.
type Registry struct {
	t table[Serializer]
}

func (s Serializer) keys() (string, string, []string) { return s.Name, s.ContentType, s.Aliases }

func (s Serializer) detached() Serializer {
	s.Aliases = slices.Clone(s.Aliases)
	return s
}

// Default is the registry used by the package-level Encode and Decode.
var Default = NewRegistry()

// coreSerializers are always linked: json (the default), raw, and pickle,
// recognised only so that it can be refused.
var coreSerializers = []Serializer{
	{Name: "json", ContentType: ContentTypeJSON, ContentEncoding: EncodingUTF8,
		Marshal: jsonMarshal, Unmarshal: jsonUnmarshal},
	{Name: "raw", ContentType: ContentTypeData, ContentEncoding: EncodingBinary,
		Marshal: rawMarshal, passthrough: true},
	{Name: "pickle", ContentType: ContentTypePickle, ContentEncoding: EncodingBinary},
}

// NewRegistry returns a registry holding the builtin serializers: json (the
// default), raw, pickle (recognised only so that it can be refused), and
// every serializer a linked codec package added with RegisterDefault
// (msgpack and yaml live in codec/msgpack and codec/yaml).
func NewRegistry() *Registry {
	r := &Registry{}
	for _, s := range defaults.serializers() {
		if err := r.Register(s); err != nil {
			panic(err)
		}
	}
	return r
}

// Register adds s, replacing any serializer with the same name (ignoring
// case). Later registrations win when aliases or content types collide, as
// in kombu. It fails when the name or content type is empty.
func (r *Registry) Register(s Serializer) error {
	if normalizeName(s.Name) == "" {
		return errors.New("codec: serializer name is empty")
	}
	if normalizeContentType(s.ContentType) == "" {
		return fmt.Errorf("codec: serializer %q has no content type", s.Name)
	}
	if strings.TrimSpace(s.ContentEncoding) == "" {
		s.ContentEncoding = EncodingUTF8
	}
	r.t.put(s)
	return nil
}

// Unregister removes the serializer with that name (ignoring case), if any.
func (r *Registry) Unregister(name string) { r.t.remove(name) }

// Lookup finds a serializer by name, alias or content type, ignoring case.
func (r *Registry) Lookup(name string) (Serializer, bool) { return r.t.lookup(name) }

// ByContentType finds the serializer registered for a content type
// (ignoring case and parameters).
func (r *Registry) ByContentType(ct string) (Serializer, bool) { return r.t.byContentType(ct) }

// ContentTypeOf returns the content type a serializer name stands for, for
// accept lists: a registered name or alias gives its content type, one of
// kombu's names whose package is not linked (msgpack, yaml) gives kombu's
// content type, and anything else is taken as a content type itself.
func (r *Registry) ContentTypeOf(nameOrType string) string {
	if s, ok := r.Lookup(nameOrType); ok {
		return normalizeContentType(s.ContentType)
	}
	if o, ok := lookupOptional(nameOrType); ok {
		return o.contentType
	}
	return normalizeContentType(nameOrType)
}

// rawMarshal is the raw serializer's Marshal: []byte and string bodies as
// they are.
func rawMarshal(v any) ([]byte, error) {
	switch b := v.(type) {
	case []byte:
		return b, nil
	case string:
		return []byte(b), nil
	}
	return nil, fmt.Errorf("raw serializer needs a []byte or string body, got %T", v)
}

// Encode serializes a message body as kombu's Producer.publish does and
// returns the body with its content type and content encoding.
//
//   - contentType non-empty: v must be a []byte or a string that is
//     already serialized; name is ignored. The encoding defaults to binary
//     for []byte and utf-8 for a string; a string is encoded with the given
//     encoding (utf-8, ascii, latin-1, utf-16...; binary leaves it alone).
//   - name "": a []byte is sent as application/data + binary, a string as
//     text/plain + utf-8, anything else with json.
//   - name "raw": a []byte as application/data + binary, a string as
//     application/data + utf-8; other values are an error.
//   - any other name, alias or content type: that serializer's Marshal.
//
// Unknown names and serializers that cannot encode (pickle) give
// ErrUnknownSerializer; values the serializer cannot encode give ErrEncode.
func (r *Registry) Encode(name string, v any, contentType, contentEncoding string) (body []byte, ct, ce string, err error) {
	if strings.TrimSpace(contentType) != "" {
		return encodePreserialized(v, contentType, contentEncoding)
	}
	if strings.TrimSpace(name) == "" {
		switch b := v.(type) {
		case []byte:
			return b, ContentTypeData, EncodingBinary, nil
		case string:
			out, err := encodeText(csUTF8, b)
			if err != nil {
				return nil, "", "", fmt.Errorf("%w: text/plain body: %w", ErrEncode, err)
			}
			return out, ContentTypeText, EncodingUTF8, nil
		}
		name = "json"
	}
	s, ok := r.Lookup(name)
	if !ok {
		if o, ok := lookupOptional(name); ok {
			return nil, "", "", fmt.Errorf("%w: %s is not linked into this program: %s", ErrUnknownSerializer, clip(name), o.hint())
		}
		return nil, "", "", fmt.Errorf("%w: %s is not registered", ErrUnknownSerializer, clip(name))
	}
	if s.passthrough {
		switch b := v.(type) {
		case []byte:
			return b, s.ContentType, EncodingBinary, nil
		case string:
			out, err := encodeText(csUTF8, b)
			if err != nil {
				return nil, "", "", fmt.Errorf("%w: %s body: %w", ErrEncode, s.Name, err)
			}
			return out, s.ContentType, EncodingUTF8, nil
		}
		return nil, "", "", fmt.Errorf("%w: %s serializer needs a []byte or string body, got %T", ErrEncode, s.Name, v)
	}
	if s.Marshal == nil {
		return nil, "", "", fmt.Errorf("%w: serializer %q (%s) cannot encode: kombu-go never produces this format",
			ErrUnknownSerializer, s.Name, s.ContentType)
	}
	out, err := safeMarshal(s.Marshal, v)
	if err != nil {
		return nil, "", "", fmt.Errorf("%w: %s: %w", ErrEncode, s.Name, err)
	}
	return out, s.ContentType, s.ContentEncoding, nil
}

func encodePreserialized(v any, contentType, contentEncoding string) ([]byte, string, string, error) {
	enc := strings.TrimSpace(contentEncoding)
	switch b := v.(type) {
	case []byte:
		if enc == "" {
			enc = EncodingBinary
		}
		return b, contentType, enc, nil
	case string:
		if enc == "" {
			enc = EncodingUTF8
		}
		cs := lookupCharset(enc)
		if cs == csUnknown {
			return nil, "", "", fmt.Errorf("%w: unknown content encoding %s", ErrEncode, clip(contentEncoding))
		}
		out, err := encodeText(cs, b)
		if err != nil {
			return nil, "", "", fmt.Errorf("%w: %s body as %s: %w", ErrEncode, clip(contentType), clip(enc), err)
		}
		return out, contentType, enc, nil
	}
	return nil, "", "", fmt.Errorf("%w: with an explicit content type the body must be []byte or string, got %T",
		ErrEncode, v)
}

// transcodeToUTF8 turns the body of a text serializer (json, yaml: content
// encoding utf-8) that was sent in another charset, such as latin-1 or
// utf-16, into UTF-8 before it is parsed. Python kombu parses such a body
// as UTF-8 and fails on any non-ASCII byte; kombu-go honours the charset
// the producer named. Binary serializers and unknown charsets are left
// alone: the parser decides.
func transcodeToUTF8(s Serializer, contentEncoding string, body []byte) ([]byte, error) {
	if lookupCharset(s.ContentEncoding) != csUTF8 {
		return body, nil
	}
	switch cs := lookupCharset(contentEncoding); cs {
	case csUTF8, csASCII, csBinary, csUnknown:
		return body, nil
	default:
		text, err := decodeText(cs, body)
		if err != nil {
			return nil, fmt.Errorf("content encoding %s: %w", clip(contentEncoding), err)
		}
		return []byte(text), nil
	}
}

func safeMarshal(f func(any) ([]byte, error), v any) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("panic: %v", p)
		}
	}()
	return f(v)
}

func safeUnmarshal(f func([]byte, any) error, data []byte, v any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return f(data, v)
}

// Decode decodes a message body as kombu's consumer does, into the value v
// points to.
//
//   - A missing content type means application/data.
//   - Pickle (application/x-python-serialize) is never decoded: the error
//     wraps ErrUnsafeContent. So is any type registered without Unmarshal.
//   - An empty body is not decoded: *[]byte, *string and *any get an empty
//     value ([]byte{} for *any, as kombu hands back b""); other targets
//     get an ErrDecode error.
//   - A content type with a registered decoder is decoded with it; v may
//     be any pointer the decoder accepts.
//   - Otherwise (application/data, text/plain, unknown types) the body is
//     returned as is when the content encoding is binary or ascii-8bit, or
//     decoded from its charset (utf-8 when missing; a body that is not valid
//     in that charset is an error). v must then point to a []byte, a string
//     (or a type based on one) or an any.
//
// Body errors wrap ErrDecode and quote at most 64 bytes of the body. Content
// types are compared ignoring case and parameters.
func (r *Registry) Decode(contentType, contentEncoding string, body []byte, v any) error {
	rv := reflect.ValueOf(v)
	if v == nil || rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("codec: Decode needs a non-nil pointer, got %T", v)
	}
	ct := normalizeContentType(contentType)
	if ct == "" {
		ct = ContentTypeData
	}
	if ct == ContentTypePickle {
		return fmt.Errorf("%w: %s (Python pickle) is never decoded", ErrUnsafeContent, ct)
	}
	s, ok := r.ByContentType(ct)
	if ok && !s.passthrough && s.Unmarshal == nil {
		return fmt.Errorf("%w: %s is registered as never decoded", ErrUnsafeContent, clip(ct))
	}
	if len(body) == 0 {
		return storeEmpty(ct, v)
	}
	if ok && !s.passthrough {
		text, err := transcodeToUTF8(s, contentEncoding, body)
		if err != nil {
			return decodeError(clip(ct), body, err)
		}
		if err := safeUnmarshal(s.Unmarshal, text, v); err != nil {
			return decodeError(clip(ct), body, err)
		}
		return nil
	}
	if o, ok := lookupOptional(ct); ok {
		return fmt.Errorf("%w: %s is not linked into this program: %s", ErrUnknownSerializer, clip(ct), o.hint())
	}
	cs := lookupCharset(contentEncoding)
	if cs == csUnknown {
		return decodeError(clip(ct), body, fmt.Errorf("unknown content encoding %s", clip(contentEncoding)))
	}
	if cs == csBinary {
		return storeBytes(ct, body, v)
	}
	text, err := decodeText(cs, body)
	if err != nil {
		return decodeError(clip(ct), body, fmt.Errorf("content encoding %s: %w", clip(contentEncoding), err))
	}
	return storeText(ct, text, v)
}

func storeEmpty(ct string, v any) error {
	if p, ok := v.(*any); ok {
		*p = []byte{}
		return nil
	}
	e := reflect.ValueOf(v).Elem()
	switch {
	case e.Kind() == reflect.String:
		e.SetString("")
		return nil
	case e.Kind() == reflect.Slice && e.Type().Elem().Kind() == reflect.Uint8:
		e.SetBytes([]byte{})
		return nil
	}
	return fmt.Errorf("%w: empty %s body cannot be decoded into %T", ErrDecode, clip(ct), v)
}

// storeBytes stores a binary body; the caller's slice is never aliased.
func storeBytes(ct string, body []byte, v any) error {
	switch p := v.(type) {
	case *[]byte:
		*p = slices.Clone(body)
		return nil
	case *any:
		*p = slices.Clone(body)
		return nil
	case *string:
		*p = string(body)
		return nil
	}
	e := reflect.ValueOf(v).Elem()
	switch {
	case e.Kind() == reflect.String:
		e.SetString(string(body))
		return nil
	case e.Kind() == reflect.Slice && e.Type().Elem().Kind() == reflect.Uint8:
		e.SetBytes(slices.Clone(body))
		return nil
	}
	return fmt.Errorf("%w: %s has no decoder; its body goes into *[]byte, *string or *any, not %T", ErrDecode, clip(ct), v)
}

func storeText(ct, text string, v any) error {
	switch p := v.(type) {
	case *string:
		*p = text
		return nil
	case *any:
		*p = text
		return nil
	case *[]byte:
		*p = []byte(text)
		return nil
	}
	e := reflect.ValueOf(v).Elem()
	switch {
	case e.Kind() == reflect.String:
		e.SetString(text)
		return nil
	case e.Kind() == reflect.Slice && e.Type().Elem().Kind() == reflect.Uint8:
		e.SetBytes([]byte(text))
		return nil
	}
	return fmt.Errorf("%w: %s has no decoder; its body goes into *[]byte, *string or *any, not %T", ErrDecode, clip(ct), v)
}

// Encode serializes v with the Default registry; see Registry.Encode.
func Encode(name string, v any, contentType, contentEncoding string) (body []byte, ct, ce string, err error) {
	return Default.Encode(name, v, contentType, contentEncoding)
}

// Decode decodes body into v with the Default registry; see Registry.Decode.
func Decode(contentType, contentEncoding string, body []byte, v any) error {
	return Default.Decode(contentType, contentEncoding, body, v)
}
