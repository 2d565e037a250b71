package virtual

import (
	"errors"
	"reflect"
	"testing"

	"github.com/kombu-go/kombu/kombu/driver"
)

var envelopeSeeds = []string{
	`{"body": "eyJuIjogMX0=", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"x-seq": 1}, "properties": {"delivery_mode": 2, "delivery_info": {"exchange": "wire.ex", "routing_key": "wire/rk"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "63eeee5d-8739-4d38-84eb-3e810d04c1f5"}}`,
	`{"body":"eyJuIjogMX0=","content-encoding":null,"content-type":"text/plain","headers":{},"properties":{"delivery_mode":2,"delivery_info":{"exchange":"","routing_key":"q"},"priority":5,"body_encoding":"base64","delivery_tag":"t"}}`,
	`{"body": "plain text", "content-type": "text/plain", "properties": {"delivery_tag": "t"}}`,
	`{"body": "not base64!", "properties": {"body_encoding": "base64", "delivery_tag": "t"}}`,
	`{"body": "a\"b", "properties": {"delivery_tag": "t"}}`,
	`{"body": "eA==", "body": "eQ==", "properties": {"body_encoding": "base64"}}`,
	`{"body": "line\nbreak", "properties": {}}`,
	`{"body": "\u00e9", "properties": {}}`,
	"{\"body\": \"\xff\xfe\", \"properties\": {}}",
	`{"body": "eA==", "properties": {"body_encoding": "base64"}} trailing`,
	`{"body": null, "properties": {}}`,
	`{"properties": {"body_encoding": "base64"}, "body": "eA=="}`,
	` { "body" : "eA==" , "properties": {"body_encoding": "base64", "priority": 12}, "redelivered": true}`,
	`{"body": "AA==", "properties": {"body_encoding": "utf-8"}}`,
	`{"body": "`,
	`[]`,
	``,
}

// sameDecode checks that the fast path, when it takes an input, decodes it
// exactly as the slow path does.
func sameDecode(t *testing.T, raw []byte) {
	t.Helper()
	want, werr := unmarshalEnvelopeSlow(raw)
	got, gerr := UnmarshalEnvelope(raw)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%q: error %v, slow path: %v", raw, gerr, werr)
	}
	if werr != nil {
		if gerr.Error() != werr.Error() || !errors.Is(gerr, ErrBadEnvelope) {
			t.Fatalf("%q: error %q, want %q", raw, gerr, werr)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got %#v\nwant %#v", raw, got, want)
	}
}

func benchEnvelope() *Envelope {
	body := make([]byte, 1024)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	return &Envelope{Message: driver.Message{Body: body, ContentType: "application/json", ContentEncoding: "utf-8",
		Properties: driver.Properties{DeliveryMode: 2, Priority: 7}}, Exchange: "ex", RoutingKey: "q"}
}

func TestFastEnvelopeMatchesSlow(t *testing.T) {
	plain, _ := benchEnvelope().Marshal()
	if _, ok := fastEnvelope(plain); !ok {
		t.Fatal("the fast path does not take kombu-go's own envelope")
	}
	env := benchEnvelope()
	env.Headers = map[string]any{"a": int64(1), "f": 2.5, "s": "x", "l": []any{int64(1), "y"}}
	env.Properties.CorrelationID, env.Properties.Expiration = "c", "1000"
	env.Properties.Extra = map[string]any{"MessageGroupId": "g"}
	full, _ := env.Marshal()
	for _, s := range append(envelopeSeeds, string(plain), string(full)) {
		sameDecode(t, []byte(s))
	}
}

func FuzzFastEnvelope(f *testing.F) {
	for _, s := range envelopeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		sameDecode(t, raw)
	})
}

func BenchmarkUnmarshalEnvelope(b *testing.B) {
	raw, _ := benchEnvelope().Marshal()
	b.Run("slow", func(b *testing.B) {
		for range b.N {
			_, _ = unmarshalEnvelopeSlow(raw)
		}
	})
	b.Run("fast", func(b *testing.B) {
		for range b.N {
			_, _ = UnmarshalEnvelope(raw)
		}
	})
}

func BenchmarkMarshalEnvelope(b *testing.B) {
	env := benchEnvelope()
	b.ReportAllocs()
	for range b.N {
		if _, err := env.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}
