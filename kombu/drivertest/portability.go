package drivertest

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

// portabilityCases check that the same input gives the same result on
// every transport: the same refusals, before any I/O, with the same
// error.
var portabilityCases = []testCase{
	{"InvalidNames", testInvalidNames},
	{"HeaderValueTypes", testHeaderValueTypes},
	{"HeaderValuesRefused", testHeaderValuesRefused},
}

// testInvalidNames gives every operation that takes a queue name,
// exchange name, routing key or consumer tag a name that is not UTF-8 and
// one of 256 bytes. Every transport refuses each with the error of
// driver.ValidateName (ErrInvalidArgument) before any I/O, so the
// connection lives: RabbitMQ would close it (501 FRAME_ERROR). A consumer
// started before on the same connection still receives afterwards.
func testInvalidNames(e *env) {
	q := e.simpleQueue("q")
	x := e.declareExchange(kombu.NewExchange(e.name("x"), kombu.Direct))
	before := e.consumer(e.conn, []kombu.Queue{q}, nil)
	ctx, cancel := e.wait()
	defer cancel()
	bads := []struct{ label, name, says string }{
		{"not UTF-8", "bad\xff" + e.id, "not valid UTF-8"},
		{"256 bytes", longName(e.id+".", 256), "bytes long; AMQP allows at most 255"},
	}
	for _, bad := range bads {
		check := func(what string, err error) {
			e.t.Helper()
			if !errors.Is(err, kombu.ErrInvalidArgument) || !strings.Contains(err.Error(), bad.says) {
				e.t.Errorf("%s %s: %v, want ErrInvalidArgument saying %q", what, bad.label, err, bad.says)
			}
		}
		name := bad.name
		ch := e.channel(e.conn)
		bq := kombu.NewQueue(name, kombu.DefaultExchange, "")
		bx := kombu.Exchange{Name: name, Type: kombu.Direct}
		_, err := bq.Declare(ctx, ch)
		check("queue declare", err)
		_, err = kombu.Queue{Name: name, Passive: true}.Declare(ctx, ch)
		check("passive queue declare", err)
		check("exchange declare", bx.Declare(ctx, ch))
		check("passive exchange declare", kombu.Exchange{Name: name, Type: kombu.Direct, Passive: true}.Declare(ctx, ch))
		check("bind: routing key", q.BindTo(ctx, ch, x, name, nil))
		check("bind: exchange", q.BindTo(ctx, ch, kombu.Exchange{Name: name, NoDeclare: true}, "k", nil))
		check("bind: queue", kombu.Queue{Name: name}.BindTo(ctx, ch, x, "k", nil))
		check("unbind: routing key", q.UnbindFrom(ctx, ch, x, name, nil))
		_, err = bq.Purge(ctx, ch)
		check("purge", err)
		_, err = bq.Delete(ctx, ch, false, false)
		check("queue delete", err)
		check("exchange delete", bx.Delete(ctx, ch, false))
		_, err = bq.Len(ctx, ch)
		check("len", err)
		_, err = bq.Get(ctx, ch, false, nil)
		check("get", err)
		p := e.producer(e.conn, &kombu.ProducerOptions{Exchange: x, NoDeclare: true})
		check("publish: routing key", p.Publish(ctx, "x", &kombu.PublishOptions{RoutingKey: name}))
		check("publish: exchange", p.Publish(ctx, "x", &kombu.PublishOptions{RoutingKey: "k",
			Exchange: &kombu.Exchange{Name: name, NoDeclare: true}}))
		_, err = e.conn.Consumer(ctx, []kombu.Queue{{Name: name, NoDeclare: true}}, nil)
		check("consume: queue", err)
		_, err = e.conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{NoDeclare: true, TagPrefix: name})
		check("consume: consumer tag", err)
	}

	// Nothing reached the broker: the connection, and the consumer on it,
	// live on.
	e.sendTo(e.producer(e.conn, nil), q.Name, "after")
	if got := e.recvAck(before); got != "after" {
		e.t.Errorf("received %q after the invalid names", got)
	}
}

// level is a named integer type, as users declare enums.
type level uint8

// headerValueTypes lists the header values users send with exactly what
// every transport hands back (driver.NormalizeHeaders; the table is in
// docs/transports.md).
func headerValueTypes() (sent, arrives map[string]any) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.FixedZone("UTC+1", 3600))
	const atUTC = "2024-01-02T02:04:05.123456789Z"
	sent, arrives = map[string]any{}, map[string]any{}
	for _, c := range []struct {
		name          string
		sent, arrives any
	}{
		{"json-int", json.Number("42"), int64(42)},
		{"json-negative", json.Number("-7"), int64(-7)},
		{"json-float", json.Number("1.5"), 1.5},
		{"json-exponent", json.Number("1e3"), 1000.0},
		{"json-2^53+1", json.Number("9007199254740993"), int64(9007199254740993)},
		{"int", 7, int64(7)},
		{"int8", int8(-8), int64(-8)},
		{"int16", int16(-16), int64(-16)},
		{"int32", int32(math.MinInt32), int64(math.MinInt32)},
		{"int64", int64(math.MinInt64), int64(math.MinInt64)},
		{"uint", uint(9), int64(9)},
		{"uint8", uint8(255), int64(255)},
		{"uint16", uint16(65535), int64(65535)},
		{"uint32", uint32(math.MaxUint32), int64(math.MaxUint32)},
		{"uint64", uint64(math.MaxInt64), int64(math.MaxInt64)},
		{"named-int", level(3), int64(3)},
		{"float32", float32(1.5), 1.5},
		{"float32-inexact", float32(0.1), 0.1},
		{"float64", 3.25, 3.25},
		{"float64-integral", 2.0, 2.0},
		{"float64-zero", 0.0, 0.0},
		{"bytes", []byte("raw text"), "raw text"},
		{"time", at, atUTC},
		{"nil", nil, nil},
		{"true", true, true},
		{"string", "s", "s"},
		{"strings", []string{"a", "b"}, []any{"a", "b"}},
		{"ints", []int{1, 2}, []any{int64(1), int64(2)}},
		{"string-map", map[string]string{"k": "v"}, map[string]any{"k": "v"}},
		{"empty-map", map[string]any{}, map[string]any{}},
		{"empty-list", []any{}, []any{}},
		{"nil-map", map[string]any(nil), nil},
		{"nil-list", []any(nil), nil},
		{"nested",
			map[string]any{
				"u16":  uint16(1),
				"list": []any{int8(1), float32(0.5), json.Number("2"), 4.0, map[string]any{"at": at, "b": []byte("x")}},
				"deep": map[string]any{"deeper": map[string]any{"n": json.Number("-0.25")}},
			},
			map[string]any{
				"u16":  int64(1),
				"list": []any{int64(1), 0.5, int64(2), 4.0, map[string]any{"at": atUTC, "b": "x"}},
				"deep": map[string]any{"deeper": map[string]any{"n": -0.25}},
			}},
	} {
		sent[c.name], arrives[c.name] = c.sent, c.arrives
	}
	return sent, arrives
}

// testHeaderValueTypes publishes every kind of header value users send and
// checks that exactly the same values and types arrive on every transport,
// through a consumer and through Get.
func testHeaderValueTypes(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	sent, want := headerValueTypes()
	e.publish(p, "typed", &kombu.PublishOptions{RoutingKey: q.Name, Headers: sent})
	e.publish(p, "typed", &kombu.PublishOptions{RoutingKey: q.Name, Headers: sent})
	check := func(how string, got map[string]any) {
		e.t.Helper()
		for k, w := range want {
			g, ok := got[k]
			if !ok {
				e.t.Errorf("%s: header %q is missing", how, k)
				continue
			}
			if !reflect.DeepEqual(g, w) {
				e.t.Errorf("%s: header %q arrived as %#v (%T), want %#v (%T)", how, k, g, g, w, w)
			}
		}
		if len(got) != len(want) {
			e.t.Errorf("%s: %d headers arrived, want %d", how, len(got), len(want))
		}
	}
	m := e.getEventually(q, e.ch, false)
	check("get", m.Headers)
	e.ack(m)
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	m = e.recv(c)
	check("consumer", m.Headers)
	e.ack(m)
}

// testHeaderValuesRefused checks that header values no transport can
// carry as sent are refused before any I/O, with ErrInvalidArgument, on
// every transport: memory used to keep them as they were.
func testHeaderValuesRefused(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	n := 1
	deep := any("leaf")
	for range 33 {
		deep = map[string]any{"d": deep}
	}
	wide := make(map[string]any, 8193)
	for i := range 8193 {
		wide[strings.Repeat("k", i%200+1)+string(rune('a'+i/200))] = i
	}
	long := make([]any, 8193)
	cases := map[string]any{
		"chan":                    make(chan int),
		"func":                    func() {},
		"struct":                  struct{ A int }{1},
		"pointer":                 &n,
		"complex":                 complex(1, 2),
		"uint64 beyond int64":     uint64(math.MaxInt64) + 1,
		"json.Number text":        json.Number("forty-two"),
		"json.Number beyond int":  json.Number("18446744073709551616"),
		"json.Number beyond f64":  json.Number("1e400"),
		"NaN":                     math.NaN(),
		"infinity":                math.Inf(-1),
		"non-UTF-8 bytes":         []byte{0xff, 0xfe},
		"int keys":                map[int]string{1: "a"},
		"chan in a list":          []any{"ok", make(chan int)},
		"33 nested tables":        deep,
		"8193 entries in a table": wide,
		"8193 values in a list":   long,
	}
	ctx, cancel := e.wait()
	defer cancel()
	for name, v := range cases {
		err := p.Publish(ctx, "never sent", &kombu.PublishOptions{RoutingKey: q.Name, Headers: map[string]any{"h": v}})
		if !errors.Is(err, kombu.ErrInvalidArgument) || !strings.Contains(err.Error(), `header "h"`) {
			e.t.Errorf("header %s: %v, want ErrInvalidArgument naming the header", name, err)
		}
	}
	e.expectOnlyControl(p, q)
}

// expectOnlyControl sends a control message to q and checks that it is
// the only message there: the publishes refused before were not sent.
func (e *env) expectOnlyControl(p *kombu.Producer, q kombu.Queue) {
	e.t.Helper()
	e.sendTo(p, q.Name, "control")
	e.eventuallyLen(q, 1)
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	if got := e.recvAck(c); got != "control" {
		e.t.Errorf("received %q, want only the control message", got)
	}
	e.expectNone(c)
}
