package drivertest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/codec"
	"github.com/kombu-go/kombu/kombu/driver"
)

var propertyCases = []testCase{
	{"RoundTrip", testPropertiesRoundTrip},
	{"DeliveryMode", testDeliveryMode},
	{"WeirdHeaders", testWeirdHeaders},
	{"NonUTF8HeadersRejected", testNonUTF8Headers},
	{"BinaryBodies", testBinaryBodies},
	{"Serializers", testSerializers},
	{"Compression", testCompression},
	{"PublishDoesNotRetainInput", testPublishDoesNotRetain},
}

// userIDFor returns a user_id property the broker accepts: RabbitMQ
// requires it to be the user the connection logged in as.
func (e *env) userIDFor() string {
	if e.s.transport == "amqp" {
		if e.s.userID != "" {
			return e.s.userID
		}
		return "guest"
	}
	return "kombu-go-user"
}

func testPropertiesRoundTrip(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	ts := time.Unix(time.Now().Unix(), 0)
	opts := &kombu.PublishOptions{
		RoutingKey:    q.Name,
		CorrelationID: "corr-7f3a",
		ReplyTo:       "reply.to.queue",
		MessageID:     "msg-0001",
		Timestamp:     ts,
		Type:          "tasks.add",
		UserID:        e.userIDFor(),
		AppID:         "drivertest",
		Expiration:    time.Hour,
		Priority:      5,
		DeliveryMode:  kombu.Transient,
		Headers:       map[string]any{"task": "tasks.add", "retries": 3},
	}
	e.publish(p, "with properties", opts)
	e.publish(p, "bare", &kombu.PublishOptions{RoutingKey: q.Name})
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	// Priority 5 may be served before or after 0: find each by its body.
	byBody := map[string]*kombu.Message{}
	for range 2 {
		m := e.recv(c)
		byBody[string(m.Body)] = m
		e.ack(m)
	}
	m, bare := byBody["with properties"], byBody["bare"]
	if m == nil || bare == nil {
		e.t.Fatalf("received %v, want the two messages", byBody)
	}
	pr := m.Properties
	check := func(field string, got, want any) {
		e.t.Helper()
		if got != want {
			e.t.Errorf("%s = %#v, want %#v", field, got, want)
		}
	}
	check("content type", m.ContentType, "text/plain")
	check("content encoding", m.ContentEncoding, "utf-8")
	check("correlation_id", pr.CorrelationID, opts.CorrelationID)
	check("reply_to", pr.ReplyTo, opts.ReplyTo)
	check("message_id", pr.MessageID, opts.MessageID)
	check("timestamp", pr.Timestamp.Unix(), ts.Unix())
	check("type", pr.Type, opts.Type)
	check("user_id", pr.UserID, opts.UserID)
	check("app_id", pr.AppID, opts.AppID)
	check("expiration", pr.Expiration, "3600000")
	check("delivery_mode", pr.DeliveryMode, uint8(kombu.Transient))
	if e.s.features.Priority != driver.PriorityNone {
		check("priority", pr.Priority, uint8(5))
	}
	check("header task", m.Headers["task"], "tasks.add")
	check("header retries", normalize(m.Headers["retries"]), int64(3))
	check("routing key", m.RoutingKey, q.Name)

	pr = bare.Properties
	check("bare correlation_id", pr.CorrelationID, "")
	check("bare reply_to", pr.ReplyTo, "")
	check("bare message_id", pr.MessageID, "")
	check("bare timestamp is zero", pr.Timestamp.IsZero(), true)
	check("bare type", pr.Type, "")
	check("bare expiration", pr.Expiration, "")
	check("bare priority", pr.Priority, uint8(0))
	check("bare delivery_mode (kombu's default, persistent)", pr.DeliveryMode, uint8(kombu.Persistent))
	e.expectNone(c)
}

func testDeliveryMode(e *env) {
	transient := kombu.NewExchange(e.name("transient"), kombu.Direct)
	transient.DeliveryMode = kombu.Transient
	transient = e.declareExchange(transient)
	q := e.declareQueue(kombu.NewQueue(e.name("q"), transient, "k"))
	p := e.producer(nil, &kombu.ProducerOptions{Exchange: transient, RoutingKey: "k"})
	e.publish(p, "exchange default", nil)
	e.publish(p, "persistent", &kombu.PublishOptions{DeliveryMode: kombu.Persistent})
	e.publish(p, "transient", &kombu.PublishOptions{DeliveryMode: kombu.Transient})
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	want := map[string]uint8{"exchange default": 1, "persistent": 2, "transient": 1}
	for range want {
		m := e.recv(c)
		if w, ok := want[string(m.Body)]; !ok || m.Properties.DeliveryMode != w {
			e.t.Errorf("message %q has delivery mode %d, want %d", m.Body, m.Properties.DeliveryMode, w)
		}
		e.ack(m)
	}
	ctx, cancel := e.wait()
	defer cancel()
	if err := p.Publish(ctx, "bad", &kombu.PublishOptions{DeliveryMode: 3}); !errors.Is(err, kombu.ErrInvalidArgument) {
		e.t.Errorf("publish with delivery mode 3: %v, want ErrInvalidArgument", err)
	}
	e.expectNone(c)
}

// weirdHeaders are header values that must come back exactly, after the
// gocloud drivertest's weird-strings table, plus the value types AMQP
// field tables and kombu's JSON envelope both carry.
func weirdHeaders() map[string]any {
	return map[string]any{
		"empty":                 "",
		"space":                 " ",
		"padded":                "  leading and trailing  ",
		"latin":                 "héllo wörld ñ ß",
		"cjk":                   "日本語のテキスト",
		"emoji":                 "🐇🥕✨👩‍👩‍👧",
		"quotes":                `"double" and 'single' and ` + "`back`",
		"backslashes":           `C:\path\to\file \\ \n \u0041`,
		"nul":                   "before\x00after",
		"controls":              "tab\tnewline\ncr\rbell\a",
		"markup":                `<a href="x">&amp;</a>`,
		"json-like":             `{"not": "an object"}`,
		"long":                  strings.Repeat("0123456789abcdef", 256),
		" spaced key ":          "key with spaces",
		"ключ":                  "cyrillic key",
		"emoji-🔑":               "emoji key",
		"dots.dashes-and_under": "punctuated key",
		"UPPER lower":           "mixed case key",
		"int":                   42,
		"negative":              -7,
		"big":                   int64(9007199254740993), // 2^53+1: not exact as a float64
		"min-int64":             int64(math.MinInt64),
		"zero":                  0,
		"float":                 3.25,
		"negative-float":        -0.5,
		"true":                  true,
		"false":                 false,
		"null":                  nil,
		"list":                  []any{1, "two", 3.5, false, map[string]any{"k": "v"}, []any{"nested"}},
		"empty-list":            []any{},
		"map":                   map[string]any{"a": 1, "b": []any{"x", 2, true}, "c": map[string]any{"deep": "ünïcode"}},
		"empty-map":             map[string]any{},
	}
}

func testWeirdHeaders(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	headers := weirdHeaders()
	e.publish(p, "weird", &kombu.PublishOptions{RoutingKey: q.Name, Headers: headers})
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	m := e.recv(c)
	for k, want := range headers {
		got, ok := m.Headers[k]
		if !ok {
			e.t.Errorf("header %q is missing", k)
			continue
		}
		if g, w := normalize(got), normalize(want); !reflect.DeepEqual(g, w) {
			e.t.Errorf("header %q = %#v (%T), want %#v", k, g, got, w)
		}
	}
	e.ack(m)
}

func testNonUTF8Headers(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	cases := map[string]map[string]any{
		"key":          {"bad\xff\xfekey": "v"},
		"value":        {"k": "bad\xffvalue"},
		"truncated":    {"k": "\xe6\x97"},
		"nested value": {"k": map[string]any{"inner": "\xc3\x28"}},
		"nested key":   {"k": map[string]any{"\xff": "v"}},
		"list value":   {"k": []any{"ok", "\xa0\xa1"}},
	}
	ctx, cancel := e.wait()
	defer cancel()
	for name, h := range cases {
		err := p.Publish(ctx, "never sent", &kombu.PublishOptions{RoutingKey: q.Name, Headers: h})
		if !errors.Is(err, kombu.ErrInvalidArgument) {
			e.t.Errorf("publish with a non-UTF-8 header %s: %v, want ErrInvalidArgument", name, err)
		}
	}
	e.expectOnlyControl(p, q)
}

func testBinaryBodies(e *env) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	bigSize := 1 << 20
	if m := e.s.features.MaxBodySize; m > 0 && m < bigSize {
		bigSize = m // SQS
	}
	big := make([]byte, bigSize)
	_, _ = rand.Read(big)
	bodies := []struct {
		name string
		body []byte
	}{
		{"non-UTF-8", []byte{0xff, 0xfe, 0x00, 0xc3, 0x28, 'a', 0x80}},
		{"all bytes", all},
		{"empty", []byte{}},
		{"1 MiB (or Features.MaxBodySize)", big},
		{"NUL only", []byte{0}},
	}
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	for i, b := range bodies {
		e.publish(p, b.body, &kombu.PublishOptions{RoutingKey: q.Name, Headers: map[string]any{"i": fmt.Sprint(i)}})
	}
	e.publish(p, "", &kombu.PublishOptions{RoutingKey: q.Name, Headers: map[string]any{"i": "text"}})
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	for range len(bodies) + 1 {
		m := e.recv(c)
		idx, _ := m.Headers["i"].(string)
		if idx == "text" {
			if len(m.Body) != 0 || m.ContentType != "text/plain" {
				e.t.Errorf("empty string: body %q content type %q, want empty text/plain", m.Body, m.ContentType)
			}
			// kombu hands back an empty body undecoded, as b"".
			if v, err := m.Payload(); err != nil || !reflect.DeepEqual(v, []byte{}) {
				e.t.Errorf("empty string payload = %#v, %v; want []byte{}", v, err)
			}
			e.ack(m)
			continue
		}
		var i int
		if _, err := fmt.Sscan(idx, &i); err != nil || i < 0 || i >= len(bodies) {
			e.t.Fatalf("message with header i=%q", idx)
		}
		b := bodies[i]
		if !bytes.Equal(m.Body, b.body) {
			e.t.Errorf("%s body: got %d bytes, want %d bytes, equal %t", b.name, len(m.Body), len(b.body), bytes.Equal(m.Body, b.body))
		}
		if m.ContentType != "application/data" || m.ContentEncoding != "binary" {
			e.t.Errorf("%s body: content type %q encoding %q, want application/data, binary", b.name, m.ContentType, m.ContentEncoding)
		}
		v, err := m.Payload()
		if raw, ok := v.([]byte); err != nil || !ok || !bytes.Equal(raw, b.body) {
			e.t.Errorf("%s body: payload %T, %v; want the raw bytes", b.name, v, err)
		}
		e.ack(m)
	}
	e.expectNone(c)
}

// structured is a value every serializer can carry.
func structured() map[string]any {
	return map[string]any{
		"s":     "héllo 🐇",
		"n":     42,
		"neg":   -9,
		"f":     1.5,
		"t":     true,
		"nil":   nil,
		"list":  []any{1, "x", false},
		"map":   map[string]any{"k": "v", "n": 7},
		"empty": "",
	}
}

func testSerializers(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	value := structured()
	cases := []struct {
		serializer, contentType, encoding string
		body                              any
	}{
		{"json", "application/json", "utf-8", value},
		{"msgpack", "application/x-msgpack", "binary", value},
		{"yaml", "application/x-yaml", "utf-8", value},
		{"", "text/plain", "utf-8", "plain text ✓ with ünïcode"},
		{"raw", "application/data", "binary", []byte{0, 1, 2, 0xff}},
	}
	for _, tc := range cases {
		e.publish(p, tc.body, &kombu.PublishOptions{RoutingKey: q.Name, Serializer: tc.serializer})
	}
	c := e.consumer(nil, []kombu.Queue{q}, &kombu.ConsumerOptions{
		Accept: []string{"json", "msgpack", "yaml", "text/plain", "application/data"},
	})
	for range cases {
		m := e.recv(c)
		i := slices.IndexFunc(cases, func(tc struct {
			serializer, contentType, encoding string
			body                              any
		}) bool {
			return tc.contentType == m.ContentType
		})
		if i < 0 {
			e.t.Errorf("unexpected content type %q", m.ContentType)
			e.ack(m)
			continue
		}
		tc := cases[i]
		if m.ContentEncoding != tc.encoding {
			e.t.Errorf("%s: content encoding %q, want %q", tc.contentType, m.ContentEncoding, tc.encoding)
		}
		got, err := m.Payload()
		if err != nil {
			e.t.Errorf("%s: payload: %v", tc.contentType, err)
		} else if g, w := normalize(got), normalize(tc.body); !reflect.DeepEqual(g, w) {
			e.t.Errorf("%s: payload %#v, want %#v", tc.contentType, g, w)
		}
		if tc.serializer == "json" {
			var s struct {
				S    string         `json:"s"`
				N    int            `json:"n"`
				Map  map[string]any `json:"map"`
				List []any          `json:"list"`
			}
			if err := m.Decode(&s); err != nil || s.S != "héllo 🐇" || s.N != 42 || s.Map["k"] != "v" || len(s.List) != 3 {
				e.t.Errorf("json decode into a struct: %+v, %v", s, err)
			}
		}
		e.ack(m)
	}
	e.expectNone(c)
}

func testCompression(e *env) {
	methods := []struct{ name, header string }{
		{"zlib", codec.CompressionZlib},
		{"gzip", codec.CompressionZlib}, // kombu's alias
		{"bzip2", codec.CompressionBzip2},
		{"xz", codec.CompressionXZ},
		{"zstd", codec.CompressionZstd},
		{"brotli", codec.CompressionBrotli},
	}
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	payload := map[string]any{"text": strings.Repeat("compress me ", 1000), "n": 1}
	for _, m := range methods {
		e.publish(p, payload, &kombu.PublishOptions{RoutingKey: q.Name, Compression: m.name, Headers: map[string]any{"method": m.name}})
	}
	// A producer-wide default compression works too.
	pz := e.producer(nil, &kombu.ProducerOptions{Compression: "zstd"})
	e.publish(pz, payload, &kombu.PublishOptions{RoutingKey: q.Name, Headers: map[string]any{"method": "producer-zstd"}})
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	seen := map[string]bool{}
	for range len(methods) + 1 {
		m := e.recv(c)
		method, _ := m.Headers["method"].(string)
		seen[method] = true
		want := codec.CompressionZstd
		if i := slices.IndexFunc(methods, func(x struct{ name, header string }) bool { return x.name == method }); i >= 0 {
			want = methods[i].header
		}
		if got := m.Headers["compression"]; got != want {
			e.t.Errorf("%s: compression header %#v, want %q", method, got, want)
		}
		if m.ContentType != "application/json" {
			e.t.Errorf("%s: content type %q, want application/json (of the uncompressed body)", method, m.ContentType)
		}
		var got map[string]any
		if err := m.Decode(&got); err != nil {
			e.t.Errorf("%s: decode: %v", method, err)
		} else if !reflect.DeepEqual(normalize(got), normalize(payload)) {
			e.t.Errorf("%s: decoded body differs", method)
		}
		e.ack(m)
	}
	if len(seen) != len(methods)+1 {
		e.t.Errorf("received methods %v", seen)
	}
	e.expectNone(c)
}

// normalize maps the numeric, list and map types transports decode into
// one form (int64, float64, []any, map[string]any) so that values can be
// compared across transports. []byte stays []byte.
func normalize(v any) any {
	switch x := v.(type) {
	case nil, string, bool, []byte:
		return x
	case float32:
		return float64(x)
	case float64:
		return x
	case time.Time:
		return x.Unix()
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if u := rv.Uint(); u <= math.MaxInt64 {
			return int64(u)
		}
		return rv.Uint()
	case reflect.String:
		return rv.String()
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = normalize(rv.Index(i).Interface())
		}
		return out
	case reflect.Map:
		out := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			out[fmt.Sprint(it.Key().Interface())] = normalize(it.Value().Interface())
		}
		return out
	}
	return v
}

// testPublishDoesNotRetainInput changes the body slice and the headers
// map after Publish returns: the message must not change with them.
func testPublishDoesNotRetain(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	body := []byte("original body")
	nested := map[string]any{"k": "original"}
	list := []any{"original"}
	headers := map[string]any{"h": "original", "nested": nested, "list": list}
	e.publish(p, body, &kombu.PublishOptions{RoutingKey: q.Name, Headers: headers})
	e.publish(p, body, &kombu.PublishOptions{RoutingKey: q.Name, Headers: headers, ContentType: "application/x-custom"})
	copy(body, "CHANGED")
	headers["h"] = "changed"
	headers["added"] = true
	nested["k"] = "changed"
	list[0] = "changed"
	c := e.consumer(nil, []kombu.Queue{q}, &kombu.ConsumerOptions{Accept: []string{"application/x-custom"}})
	for range 2 {
		m := e.recv(c)
		if string(m.Body) != "original body" {
			e.t.Errorf("body changed with the caller's slice: %q", m.Body)
		}
		want := map[string]any{"h": "original", "nested": map[string]any{"k": "original"}, "list": []any{"original"}}
		for k, w := range want {
			if !reflect.DeepEqual(normalize(m.Headers[k]), w) {
				e.t.Errorf("header %q changed with the caller's map: %#v", k, m.Headers[k])
			}
		}
		if _, ok := m.Headers["added"]; ok {
			e.t.Errorf("header added to the caller's map after Publish appeared in the message")
		}
		e.ack(m)
	}
}
