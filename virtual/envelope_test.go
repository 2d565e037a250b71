package virtual_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

// pythonEnvelope is an LPUSH payload captured from Python kombu 5.2.4
// (wire-format reference §3.3), with extra properties.
const pythonEnvelope = `{"body": "eyJuIjogMiwgInRleHQiOiAiZGlyZWN0LXByaSJ9", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"x-seq": 2}, "properties": {"correlation_id": "corr-1", "reply_to": "wirefmt.reply", "delivery_mode": 2, "expiration": "30000", "delivery_info": {"exchange": "wirefmt.direct", "routing_key": "wirefmt.rk"}, "priority": 5, "body_encoding": "base64", "delivery_tag": "4e45958f-29ee-4771-9f79-af0fa4b5386f"}}`

func TestUnmarshalPythonEnvelope(t *testing.T) {
	e, err := virtual.UnmarshalEnvelope([]byte(pythonEnvelope))
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Body) != `{"n": 2, "text": "direct-pri"}` {
		t.Errorf("body %q", e.Body)
	}
	p := e.Properties
	checks := []struct{ got, want any }{
		{e.ContentType, "application/json"}, {e.ContentEncoding, "utf-8"},
		{e.Headers["x-seq"], int64(2)}, {p.CorrelationID, "corr-1"}, {p.ReplyTo, "wirefmt.reply"},
		{p.DeliveryMode, uint8(2)}, {p.Expiration, "30000"}, {p.Priority, uint8(5)},
		{e.Exchange, "wirefmt.direct"}, {e.RoutingKey, "wirefmt.rk"},
		{e.DeliveryTag, "4e45958f-29ee-4771-9f79-af0fa4b5386f"}, {e.Redelivered, false},
		{string(e.Raw), pythonEnvelope},
	}
	for i, c := range checks {
		if c.got != c.want {
			t.Errorf("check %d: got %#v, want %#v", i, c.got, c.want)
		}
	}
}

// The restore form Python writes: redelivered in headers and delivery_info.
func TestUnmarshalRedelivered(t *testing.T) {
	for _, raw := range []string{
		`{"body": "", "properties": {"delivery_info": {"exchange": "", "routing_key": "q", "redelivered": true}, "delivery_tag": "t"}}`,
		`{"body": "", "properties": {"delivery_info": {"exchange": "", "routing_key": "q"}, "delivery_tag": "t"}, "redelivered": true}`,
	} {
		e, err := virtual.UnmarshalEnvelope([]byte(raw))
		if err != nil || !e.Redelivered {
			t.Errorf("%s: redelivered=%v err=%v", raw, e != nil && e.Redelivered, err)
		}
	}
}

func TestMarshalRoundTripAndPythonShape(t *testing.T) {
	ts := time.Unix(1700000000, 0)
	in := &virtual.Envelope{
		Message: driver.Message{
			Body: []byte{0, 1, 2, 0xff, 'x'}, ContentType: "application/data", ContentEncoding: "binary",
			Headers: map[string]any{"x-seq": int64(7), "nested": map[string]any{"a": []any{int64(1), "b"}}, "uni": "é\"<>&"},
			Properties: driver.Properties{
				DeliveryMode: 1, Priority: 9, CorrelationID: "c", ReplyTo: "r", Expiration: "1500", MessageID: "m",
				Timestamp: ts, Type: "t", UserID: "u", AppID: "a", Extra: map[string]any{"MessageGroupId": "g1"},
			},
		},
		Exchange: "ex", RoutingKey: "rk", Redelivered: true,
	}
	raw, err := in.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// What a Python consumer requires (wire-format reference §2.1).
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, raw)
	}
	props := generic["properties"].(map[string]any)
	di := props["delivery_info"].(map[string]any)
	if di["exchange"] != "ex" || di["routing_key"] != "rk" || props["body_encoding"] != "base64" {
		t.Errorf("properties %v", props)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(props["delivery_tag"].(string)) {
		t.Errorf("delivery_tag %v is not a uuid4", props["delivery_tag"])
	}
	if props["MessageGroupId"] != "g1" || generic["redelivered"] != true {
		t.Errorf("extra property or redelivered missing: %s", raw)
	}
	out, err := virtual.UnmarshalEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Body, in.Body) || out.Properties.Timestamp != ts || out.Headers["uni"] != "é\"<>&" ||
		out.Properties.Expiration != "1500" || out.Properties.Priority != 9 || out.Properties.DeliveryMode != 1 ||
		!out.Redelivered || out.Properties.Extra["MessageGroupId"] != "g1" || out.Exchange != "ex" {
		t.Errorf("round trip lost data:\n in %+v\nout %+v", in, out)
	}
}

func TestUnmarshalAcceptsPlainBodyAndRejectsGarbage(t *testing.T) {
	e, err := virtual.UnmarshalEnvelope([]byte(`{"body":"plain text","content-type":"text/plain","properties":{"delivery_tag":"x","delivery_info":{"exchange":"","routing_key":"q"},"priority":42}}`))
	if err != nil || string(e.Body) != "plain text" || e.Properties.Priority != 9 {
		t.Fatalf("plain body: %+v %v", e, err)
	}
	for _, bad := range []string{``, `[]`, `{"properties":{}}`, `{"body":"!!!","properties":{"body_encoding":"base64"}}`, `{"body":1}`} {
		if _, err := virtual.UnmarshalEnvelope([]byte(bad)); !errors.Is(err, virtual.ErrBadEnvelope) {
			t.Errorf("%q: err %v, want ErrBadEnvelope", bad, err)
		}
	}
}

func FuzzUnmarshalEnvelope(f *testing.F) {
	f.Add([]byte(pythonEnvelope))
	f.Add([]byte(`{"body":"","properties":{"priority":"x","timestamp":1e300}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := virtual.UnmarshalEnvelope(data)
		if err != nil {
			return
		}
		raw, err := e.Marshal()
		if err != nil {
			return // headers holding values JSON cannot carry
		}
		back, err := virtual.UnmarshalEnvelope(raw)
		if err != nil {
			t.Fatalf("re-decoding our own envelope failed: %v\n%s", err, raw)
		}
		if !bytes.Equal(back.Body, e.Body) || back.Exchange != e.Exchange || back.RoutingKey != e.RoutingKey {
			t.Fatalf("round trip changed the message")
		}
	})
}

// TestEnvelopeKeepsWholeFloats checks that a float64 header with an
// integral value comes back a float64, as Python's json writes it (2.0),
// not an int64.
func TestEnvelopeKeepsWholeFloats(t *testing.T) {
	h := map[string]any{
		"two": 2.0, "zero": 0.0, "huge": 1e21, "half": 0.5, "int": int64(2),
		"list": []any{3.0, int64(3)}, "map": map[string]any{"f": -4.0},
	}
	e := &virtual.Envelope{Message: driver.Message{Body: []byte("b"), Headers: h}}
	data, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"two":2.0`)) {
		t.Errorf("2.0 written without its decimal point: %s", data)
	}
	back, err := virtual.UnmarshalEnvelope(data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"two": 2.0, "zero": 0.0, "huge": 1e21, "half": 0.5, "int": int64(2),
		"list": []any{3.0, int64(3)}, "map": map[string]any{"f": -4.0},
	}
	if !reflect.DeepEqual(back.Headers, want) {
		t.Errorf("headers came back as %#v", back.Headers)
	}
	if h["two"] != 2.0 || h["list"].([]any)[0] != 3.0 {
		t.Errorf("Marshal changed the headers: %#v", h)
	}
}

// An envelope followed by more data is refused, as Python's json.loads
// refuses it ("Extra data"), on both decoding paths; trailing whitespace
// is fine.
func TestEnvelopeWithTrailingDataIsRefused(t *testing.T) {
	for _, raw := range []string{
		pythonEnvelope + " trailing",
		pythonEnvelope + pythonEnvelope,
		`{"body": "eA==", "properties": {"body_encoding": "base64"}} x`,
	} {
		if _, err := virtual.UnmarshalEnvelope([]byte(raw)); !errors.Is(err, virtual.ErrBadEnvelope) {
			t.Errorf("%.40q...: %v, want ErrBadEnvelope", raw, err)
		}
	}
	if _, err := virtual.UnmarshalEnvelope([]byte(pythonEnvelope + " \n")); err != nil {
		t.Errorf("trailing whitespace: %v", err)
	}
}
