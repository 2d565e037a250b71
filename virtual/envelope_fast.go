package virtual

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// fastEnvelope decodes the envelope layout Python kombu and kombu-go
// write (a top-level object with body, content-encoding, content-type,
// headers, properties and redelivered; strings without escapes; the known
// properties with integer priority and delivery mode) about four times
// faster than encoding/json: the body is cut out with one IndexByte and
// only non-empty headers go through encoding/json. It reports false for
// anything else, and UnmarshalEnvelope then decodes the slow way, so the
// result, errors included, never depends on which path ran
// (FuzzFastEnvelope checks that).
var errSlow = errors.New("not the common layout")

// scanner reads the common layout; any surprise is errSlow.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) byte(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters, and returns
// its bytes (a slice of the input).
func (s *scanner) str() ([]byte, error) {
	if !s.byte('"') {
		return nil, errSlow
	}
	n := bytes.IndexByte(s.b[s.i:], '"')
	if n < 0 {
		return nil, errSlow
	}
	v := s.b[s.i : s.i+n]
	for _, c := range v {
		if c < 0x20 || c == '\\' {
			return nil, errSlow
		}
	}
	s.i += n + 1
	return v, nil
}

// text reads a string that must be valid UTF-8 (encoding/json would
// replace invalid bytes).
func (s *scanner) text() (string, error) {
	v, err := s.str()
	if err != nil || !utf8.Valid(v) {
		return "", errSlow
	}
	return string(v), nil
}

// nullableText reads a string or null ("").
func (s *scanner) nullableText() (string, error) {
	s.space()
	if bytes.HasPrefix(s.b[s.i:], []byte("null")) {
		s.i += 4
		return "", nil
	}
	return s.text()
}

// integer reads an integer literal.
func (s *scanner) integer() (int64, error) {
	s.space()
	j := s.i
	if j < len(s.b) && s.b[j] == '-' {
		j++
	}
	k := j
	for k < len(s.b) && s.b[k] >= '0' && s.b[k] <= '9' {
		k++
	}
	if k == j || k-j > 15 || (s.b[j] == '0' && k-j > 1) {
		return 0, errSlow
	}
	if k < len(s.b) && (s.b[k] == '.' || s.b[k] == 'e' || s.b[k] == 'E') {
		return 0, errSlow
	}
	n, err := strconv.ParseInt(string(s.b[s.i:k]), 10, 64)
	if err != nil {
		return 0, errSlow
	}
	s.i = k
	return n, nil
}

func (s *scanner) boolean() (bool, error) {
	s.space()
	switch {
	case bytes.HasPrefix(s.b[s.i:], []byte("true")):
		s.i += 4
		return true, nil
	case bytes.HasPrefix(s.b[s.i:], []byte("false")):
		s.i += 5
		return false, nil
	}
	return false, errSlow
}

// object calls f for each key of an object, f reading the value.
func (s *scanner) object(f func(key string) error) error {
	if !s.byte('{') {
		return errSlow
	}
	if s.byte('}') {
		return nil
	}
	seen := map[string]bool{}
	for {
		k, err := s.str()
		if err != nil {
			return err
		}
		key := string(k)
		if seen[key] {
			return errSlow
		}
		seen[key] = true
		if !s.byte(':') {
			return errSlow
		}
		if err := f(key); err != nil {
			return err
		}
		if s.byte('}') {
			return nil
		}
		if !s.byte(',') {
			return errSlow
		}
	}
}

// skip moves past one JSON value and returns its bytes; the value is
// checked by encoding/json later.
func (s *scanner) skip() ([]byte, error) {
	s.space()
	start, depth, inStr := s.i, 0, false
	for s.i < len(s.b) {
		c := s.b[s.i]
		s.i++
		switch {
		case inStr:
			switch c {
			case '\\':
				s.i++
			case '"':
				inStr = false
				if depth == 0 {
					return s.b[start:s.i], nil
				}
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
			if depth == 0 {
				return s.b[start:s.i], nil
			}
			if depth < 0 {
				return nil, errSlow
			}
		case depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			s.i--
			return s.b[start:s.i], nil
		}
	}
	if depth == 0 && !inStr && s.i > start {
		return s.b[start:s.i], nil
	}
	return nil, errSlow
}

func fastEnvelope(raw []byte) (*Envelope, bool) {
	s := &scanner{b: raw}
	env := &Envelope{Raw: raw}
	var body, headers []byte
	hasBody := false
	bodyEncoding := ""
	err := s.object(func(key string) error {
		var err error
		switch key {
		case "body":
			body, err = s.str()
			hasBody = true
		case "content-encoding":
			env.ContentEncoding, err = s.nullableText()
		case "content-type":
			env.ContentType, err = s.nullableText()
		case "headers":
			headers, err = s.skip()
		case "redelivered":
			var b bool
			b, err = s.boolean()
			env.Redelivered = env.Redelivered || b
		case "properties":
			err = s.object(func(key string) error {
				var err error
				p := &env.Properties
				switch key {
				case "body_encoding":
					bodyEncoding, err = s.text()
				case "delivery_tag":
					env.DeliveryTag, err = s.text()
				case "delivery_info":
					err = s.object(func(key string) error {
						var err error
						switch key {
						case "exchange":
							env.Exchange, err = s.text()
						case "routing_key":
							env.RoutingKey, err = s.text()
						case "redelivered":
							var b bool
							b, err = s.boolean()
							env.Redelivered = env.Redelivered || b
						default:
							err = errSlow
						}
						return err
					})
				case "priority":
					var n int64
					n, err = s.integer()
					p.Priority = uint8(min(max(n, 0), 9))
				case "delivery_mode":
					var n int64
					n, err = s.integer()
					if n == 1 || n == 2 {
						p.DeliveryMode = uint8(n)
					}
				case "expiration":
					p.Expiration, err = s.text()
				case "correlation_id":
					p.CorrelationID, err = s.text()
				case "reply_to":
					p.ReplyTo, err = s.text()
				case "message_id":
					p.MessageID, err = s.text()
				case "type":
					p.Type, err = s.text()
				case "user_id":
					p.UserID, err = s.text()
				case "app_id":
					p.AppID, err = s.text()
				case "cluster_id":
					p.ClusterID, err = s.text()
				default:
					err = errSlow
				}
				return err
			})
		default:
			err = errSlow
		}
		return err
	})
	s.space()
	if err != nil || !hasBody || s.i < len(s.b) {
		return nil, false
	}
	if len(headers) > 0 && !bytes.Equal(headers, []byte("{}")) && !bytes.Equal(headers, []byte("null")) {
		h, ok := decodeHeaders(headers)
		if !ok {
			return nil, false
		}
		env.Headers = h
	}
	if bodyEncoding == "base64" {
		dec := make([]byte, base64.StdEncoding.DecodedLen(len(body)))
		n, err := base64.StdEncoding.Decode(dec, body)
		if err != nil {
			return nil, false
		}
		env.Body = dec[:n]
	} else {
		if !utf8.Valid(body) {
			return nil, false
		}
		env.Body = make([]byte, len(body)) // never nil, as []byte(string) is not
		copy(env.Body, body)
	}
	return env, true
}

// decodeHeaders decodes a headers object with numbers as int64 when
// integral, else float64, as the slow path does.
func decodeHeaders(raw []byte) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var h map[string]any
	if err := dec.Decode(&h); err != nil || dec.More() {
		return nil, false
	}
	if len(h) == 0 {
		return nil, true
	}
	return normalizeNumbers(h).(map[string]any), true
}
