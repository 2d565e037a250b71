package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/kombu-go/kombu/kombu/driver"
)

// record is one message as a JSON line: what consume and get print, what
// dump writes and load reads. Body, properties and headers survive a
// dump/load byte-exact: the body is text when it is valid UTF-8 (body)
// and base64 otherwise (body_base64), and header values keep their types
// (see encodeValue).
type record struct {
	// Where the message was taken from; load ignores these unless asked
	// to route by them.
	Queue       string `json:"queue,omitempty"`
	Exchange    string `json:"exchange"`
	RoutingKey  string `json:"routing_key"`
	Redelivered bool   `json:"redelivered,omitempty"`

	ContentType     string          `json:"content_type,omitempty"`
	ContentEncoding string          `json:"content_encoding,omitempty"`
	Properties      recordProps     `json:"properties"`
	Headers         json.RawMessage `json:"headers,omitempty"`
	Body            *string         `json:"body,omitempty"`
	BodyBase64      *string         `json:"body_base64,omitempty"`

	// Payload is the decoded body (consume and get only; dump and load
	// carry the bytes).
	Payload      json.RawMessage `json:"payload,omitempty"`
	PayloadError string          `json:"payload_error,omitempty"`
	// DecodeError says the transport could not read the message: the
	// body is then its raw bytes.
	DecodeError string `json:"decode_error,omitempty"`
}

type recordProps struct {
	DeliveryMode  uint8           `json:"delivery_mode,omitempty"`
	Priority      uint8           `json:"priority,omitempty"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	ReplyTo       string          `json:"reply_to,omitempty"`
	Expiration    string          `json:"expiration,omitempty"`
	MessageID     string          `json:"message_id,omitempty"`
	Timestamp     string          `json:"timestamp,omitempty"` // RFC 3339, nanoseconds kept
	Type          string          `json:"type,omitempty"`
	UserID        string          `json:"user_id,omitempty"`
	AppID         string          `json:"app_id,omitempty"`
	ClusterID     string          `json:"cluster_id,omitempty"`
	Extra         json.RawMessage `json:"extra,omitempty"`
}

// newRecord converts a delivery.
func newRecord(d *driver.Delivery) (*record, error) {
	r, err := messageRecord(&d.Message)
	if err != nil {
		return nil, err
	}
	r.Queue, r.Exchange, r.RoutingKey, r.Redelivered = d.Queue, d.Exchange, d.RoutingKey, d.Redelivered
	if d.DecodeError != nil {
		r.DecodeError = d.DecodeError.Error()
	}
	return r, nil
}

func messageRecord(m *driver.Message) (*record, error) {
	r := &record{ContentType: m.ContentType, ContentEncoding: m.ContentEncoding}
	if utf8.Valid(m.Body) {
		s := string(m.Body)
		r.Body = &s
	} else {
		s := base64.StdEncoding.EncodeToString(m.Body)
		r.BodyBase64 = &s
	}
	if len(m.Headers) > 0 {
		h, err := encodeTable(m.Headers)
		if err != nil {
			return nil, fmt.Errorf("headers: %w", err)
		}
		r.Headers = h
	}
	p := m.Properties
	r.Properties = recordProps{
		DeliveryMode: p.DeliveryMode, Priority: p.Priority, CorrelationID: p.CorrelationID, ReplyTo: p.ReplyTo,
		Expiration: p.Expiration, MessageID: p.MessageID, Type: p.Type, UserID: p.UserID, AppID: p.AppID,
		ClusterID: p.ClusterID,
	}
	if !p.Timestamp.IsZero() {
		r.Properties.Timestamp = p.Timestamp.Format(time.RFC3339Nano)
	}
	if len(p.Extra) > 0 {
		x, err := encodeTable(p.Extra)
		if err != nil {
			return nil, fmt.Errorf("extra properties: %w", err)
		}
		r.Properties.Extra = x
	}
	return r, nil
}

// message converts a record back to the message it was made from.
func (r *record) message() (driver.Message, error) {
	var m driver.Message
	switch {
	case r.Body != nil && r.BodyBase64 != nil:
		return m, fmt.Errorf("both body and body_base64 are set")
	case r.Body != nil:
		m.Body = []byte(*r.Body)
	case r.BodyBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*r.BodyBase64)
		if err != nil {
			return m, fmt.Errorf("body_base64: %w", err)
		}
		m.Body = b
	default:
		return m, fmt.Errorf("no body or body_base64")
	}
	if m.Body == nil {
		m.Body = []byte{}
	}
	m.ContentType, m.ContentEncoding = r.ContentType, r.ContentEncoding
	if len(r.Headers) > 0 && string(r.Headers) != "null" {
		h, err := decodeTable(r.Headers)
		if err != nil {
			return m, fmt.Errorf("headers: %w", err)
		}
		m.Headers = h
	}
	p := r.Properties
	m.Properties = driver.Properties{
		DeliveryMode: p.DeliveryMode, Priority: p.Priority, CorrelationID: p.CorrelationID, ReplyTo: p.ReplyTo,
		Expiration: p.Expiration, MessageID: p.MessageID, Type: p.Type, UserID: p.UserID, AppID: p.AppID,
		ClusterID: p.ClusterID,
	}
	if p.Timestamp != "" {
		ts, err := time.Parse(time.RFC3339Nano, p.Timestamp)
		if err != nil {
			return m, fmt.Errorf("properties.timestamp: %w", err)
		}
		m.Properties.Timestamp = ts
	}
	if len(p.Extra) > 0 && string(p.Extra) != "null" {
		x, err := decodeTable(p.Extra)
		if err != nil {
			return m, fmt.Errorf("properties.extra: %w", err)
		}
		m.Properties.Extra = x
	}
	return m, nil
}

// Typed values. JSON has one number type and no bytes or times, so:
//
//	int64 (every integer width)   a number without '.' or exponent: 7
//	float64                       a number with '.' or exponent: 7.0, 1e+21
//	NaN, ±Inf                     {"$float": "NaN"}, {"$float": "+Inf"}
//	[]byte                        {"$bytes": "<base64>"}
//	time.Time                     {"$time": "<RFC 3339, nanoseconds>"}
//	AMQP decimal                  {"$decimal": {"scale": 2, "value": 1234}}
//	a table with one key "$..."   {"$table": {...}} so that it is not read as one of the above
//
// strings, booleans, null, tables and lists are themselves.
const (
	tagFloat   = "$float"
	tagBytes   = "$bytes"
	tagTime    = "$time"
	tagDecimal = "$decimal"
	tagTable   = "$table"
)

func encodeTable(m map[string]any) (json.RawMessage, error) {
	var b bytes.Buffer
	if err := writeTable(&b, m, false); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeTable(b *bytes.Buffer, m map[string]any, nested bool) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	wrap := nested && len(keys) == 1 && strings.HasPrefix(keys[0], "$")
	if wrap {
		b.WriteString(`{"` + tagTable + `":`)
	}
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		writeString(b, k)
		b.WriteByte(':')
		if err := writeValue(b, m[k]); err != nil {
			return fmt.Errorf("%q: %w", k, err)
		}
	}
	b.WriteByte('}')
	if wrap {
		b.WriteByte('}')
	}
	return nil
}

func writeString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s) // a string always marshals
	b.Write(enc)
}

func writeTagged(b *bytes.Buffer, tag string, v any) {
	enc, _ := json.Marshal(map[string]any{tag: v})
	b.Write(enc)
}

func writeValue(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case string:
		writeString(b, x)
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case int:
		b.WriteString(strconv.Itoa(x))
	case int8, int16, int32, uint8, uint16, uint32:
		fmt.Fprintf(b, "%d", x)
	case uint64:
		b.WriteString(strconv.FormatUint(x, 10))
	case float32:
		return writeValue(b, float64(x))
	case float64:
		switch {
		case math.IsNaN(x):
			writeTagged(b, tagFloat, "NaN")
		case math.IsInf(x, 1):
			writeTagged(b, tagFloat, "+Inf")
		case math.IsInf(x, -1):
			writeTagged(b, tagFloat, "-Inf")
		default:
			s := strconv.FormatFloat(x, 'g', -1, 64)
			if !strings.ContainsAny(s, ".eE") {
				s += ".0"
			}
			b.WriteString(s)
		}
	case []byte:
		writeTagged(b, tagBytes, base64.StdEncoding.EncodeToString(x))
	case time.Time:
		writeTagged(b, tagTime, x.Format(time.RFC3339Nano))
	case amqp091.Decimal:
		writeTagged(b, tagDecimal, map[string]any{"scale": x.Scale, "value": x.Value})
	case map[string]any:
		return writeTable(b, x, true)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeValue(b, e); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		b.WriteByte(']')
	default:
		return fmt.Errorf("value of type %T cannot be written as JSON", v)
	}
	return nil
}

func decodeTable(raw json.RawMessage) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v map[string]any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	out := make(map[string]any, len(v))
	for k, e := range v {
		x, err := typedValue(e)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", k, err)
		}
		out[k] = x
	}
	return out, nil
}

// typedValue turns a value decoded with UseNumber back into its type.
func typedValue(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		s := x.String()
		if strings.ContainsAny(s, ".eE") {
			return strconv.ParseFloat(s, 64)
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("integer %s is beyond int64", s)
		}
		return n, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			t, err := typedValue(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = t
		}
		return out, nil
	case map[string]any:
		if len(x) == 1 {
			for k, e := range x {
				if strings.HasPrefix(k, "$") {
					return taggedValue(k, e)
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			t, err := typedValue(e)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", k, err)
			}
			out[k] = t
		}
		return out, nil
	}
	return v, nil
}

func taggedValue(tag string, v any) (any, error) {
	s, isString := v.(string)
	switch tag {
	case tagFloat:
		switch s {
		case "NaN":
			return math.NaN(), nil
		case "+Inf":
			return math.Inf(1), nil
		case "-Inf":
			return math.Inf(-1), nil
		}
	case tagBytes:
		if isString {
			return base64.StdEncoding.DecodeString(s)
		}
	case tagTime:
		if isString {
			return time.Parse(time.RFC3339Nano, s)
		}
	case tagDecimal:
		if m, ok := v.(map[string]any); ok && len(m) == 2 {
			scale, err1 := strconv.ParseUint(fmt.Sprint(m["scale"]), 10, 8)
			value, err2 := strconv.ParseInt(fmt.Sprint(m["value"]), 10, 32)
			if err1 == nil && err2 == nil {
				return amqp091.Decimal{Scale: uint8(scale), Value: int32(value)}, nil
			}
		}
	case tagTable:
		if m, ok := v.(map[string]any); ok {
			out := make(map[string]any, len(m))
			for k, e := range m {
				t, err := typedValue(e)
				if err != nil {
					return nil, fmt.Errorf("%q: %w", k, err)
				}
				out[k] = t
			}
			return out, nil
		}
	default:
		return nil, fmt.Errorf("unknown type tag %q (a table whose only key starts with '$' is written {%q: {...}})", tag, tagTable)
	}
	return nil, fmt.Errorf("malformed %s value", tag)
}
