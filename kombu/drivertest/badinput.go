package drivertest

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/codec"
	"github.com/kombu-go/kombu/kombu/driver"
)

var badInputCases = []testCase{
	{"UndecodableBody", testUndecodableBody},
	{"UndecodableByTheTransport", testUndecodableByTheTransport},
	{"DisallowedContentTypes", testDisallowedContentTypes},
	{"DecodeErrorsRejectedByDefault", testDecodeErrorsDefault},
	{"DecodeErrorCallbackSettles", testDecodeErrorCallbackSettles},
	{"DisallowedOnGet", testDisallowedOnGet},
	{"MissingContentType", testMissingContentType},
	{"PublishErrorsBeforeIO", testPublishErrorsBeforeIO},
	{"BadCompressionAtConsume", testBadCompressionAtConsume},
	{"DecompressionBomb", testDecompressionBomb},
	{"LongNames", testLongNames},
	{"ReservedNames", testReservedNames},
	{"Mandatory", testMandatory},
}

// decodeErrors collects what OnDecodeError sees, rejecting each message.
type decodeErrors struct {
	mu   sync.Mutex
	errs map[string]error // by the message's "kind" header
}

func (d *decodeErrors) handler(e *env) func(*kombu.Message, error) {
	return func(m *kombu.Message, err error) {
		kind, _ := m.Headers["kind"].(string)
		d.mu.Lock()
		if d.errs == nil {
			d.errs = map[string]error{}
		}
		if _, dup := d.errs[kind]; dup {
			e.t.Errorf("decode error for %q reported twice", kind)
		}
		d.errs[kind] = err
		d.mu.Unlock()
		if kind == "pickle" {
			// Even asked to, kombu never unpickles.
			if _, perr := m.Payload(); !errors.Is(perr, kombu.ErrUnsafeContent) {
				e.t.Errorf("payload of a pickle message: %v, want ErrUnsafeContent", perr)
			}
		}
		if rerr := m.Reject(e.ctx); rerr != nil {
			e.t.Errorf("reject in OnDecodeError: %v", rerr)
		}
	}
}

func (d *decodeErrors) get() map[string]error {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]error{}
	for k, v := range d.errs {
		out[k] = v
	}
	return out
}

func kind(k string) map[string]any { return map[string]any{"kind": k} }

// testUndecodableByTheTransport: messages that the transport cannot even
// decode (another client put garbage in the queue) reach OnDecodeError,
// each once, with ErrDecode, never a handler; rejected, each is
// dead-lettered, none dropped; and the consumer goes on to the next good
// message.
func testUndecodableByTheTransport(e *env) {
	if e.s.h.PushUndecodable == nil {
		e.t.Skipf("transport %q: the harness cannot put undecodable messages in a queue (Harness.PushUndecodable)", e.s.transport)
	}
	dlx := e.declareExchange(kombu.NewExchange(e.name("dlx"), kombu.Direct))
	dlq := e.declareQueue(kombu.NewQueue(e.name("dlq"), dlx, "dead"))
	q := kombu.NewQueue(e.name("q"), kombu.DefaultExchange, "")
	q.Arguments = map[string]any{"x-dead-letter-exchange": dlx.Name, "x-dead-letter-routing-key": "dead"}
	q = e.declareQueue(q)
	ctx, cancel := e.wait()
	defer cancel()
	n, err := e.s.h.PushUndecodable(ctx, q.Name)
	if err != nil || n == 0 {
		e.t.Fatalf("PushUndecodable: %d, %v", n, err)
	}
	e.sendTo(e.producer(nil, nil), q.Name, "good")
	var mu sync.Mutex
	var seen []error
	c := e.consumer(nil, []kombu.Queue{q}, &kombu.ConsumerOptions{OnDecodeError: func(m *kombu.Message, err error) {
		mu.Lock()
		seen = append(seen, err)
		mu.Unlock()
		if rerr := m.Reject(e.ctx); rerr != nil {
			e.t.Errorf("reject in OnDecodeError: %v", rerr)
		}
	}})
	if m := e.recv(c); string(m.Body) != "good" {
		e.t.Errorf("received %q, want \"good\"", m.Body)
	} else {
		e.ack(m)
	}
	mu.Lock()
	if len(seen) != n {
		e.t.Errorf("OnDecodeError called %d times for %d undecodable messages", len(seen), n)
	}
	for _, err := range seen {
		if !errors.Is(err, kombu.ErrDecode) {
			e.t.Errorf("decode error %v does not wrap ErrDecode", err)
		}
	}
	mu.Unlock()
	e.eventuallyLen(dlq, n)
	e.eventuallyLen(q, 0)
}

// testUndecodableBody is B3: a body that does not decode as its content
// type is rejected without requeue after one delivery, and the consumer
// goes on with the next messages.
func testUndecodableBody(e *env) {
	const good = 100
	conn, log := e.dialLogged(nil)
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	long := "{" + strings.Repeat("x", 4000)
	bad := []struct {
		kind string
		body any
	}{
		{"long-invalid-json", long},
		{"truncated-json", []byte(`{"a": 1`)},
		{"binary-json", []byte{0xff, 0xfe, 0xfd, 0x00}},
	}
	for _, b := range bad {
		e.publish(p, b.body, &kombu.PublishOptions{RoutingKey: q.Name, ContentType: "application/json", Headers: kind(b.kind)})
	}
	for i := range good {
		e.publish(p, map[string]any{"i": i}, &kombu.PublishOptions{RoutingKey: q.Name, Headers: kind("good")})
	}
	c := e.consumer(conn, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: 10})
	var mu sync.Mutex
	badSeen := map[string][]*kombu.Message{}
	goodSeen := map[int]int{}
	done := make(chan struct{})
	stop := e.consume(c, func(ctx context.Context, m *kombu.Message) error {
		var v struct{ I int }
		err := m.Decode(&v)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if !errors.Is(err, kombu.ErrDecode) {
				e.t.Errorf("decode error %v does not wrap ErrDecode", err)
			}
			k, _ := m.Headers["kind"].(string)
			badSeen[k] = append(badSeen[k], m)
			if k == "truncated-json" {
				return nil // a handler that ignores the error must not ack
			}
			return err
		}
		goodSeen[v.I]++
		if len(goodSeen) == good && goodSeen[v.I] == 1 {
			close(done)
		}
		return nil
	})
	e.waitFor(done, "the good messages")
	e.eventuallyLen(q, 0)
	time.Sleep(negativeWait) // a wrongly requeued message would come back now
	stop()
	mu.Lock()
	defer mu.Unlock()
	for _, b := range bad {
		ms := badSeen[b.kind]
		if len(ms) != 1 {
			e.t.Errorf("%s delivered %d times, want exactly 1", b.kind, len(ms))
			continue
		}
		if s := ms[0].State(); s != kombu.Rejected {
			e.t.Errorf("%s is %v, want REJECTED", b.kind, s)
		}
	}
	for i := range good {
		if goodSeen[i] != 1 {
			e.t.Errorf("good message %d handled %d times", i, goodSeen[i])
		}
	}
	reports := log.list()
	if len(reports) != len(bad) {
		e.t.Errorf("%d decode errors reported, want %d: %v", len(reports), len(bad), reports)
	}
	for _, err := range reports {
		if !errors.Is(err, kombu.ErrDecode) {
			e.t.Errorf("reported error %v does not wrap ErrDecode", err)
		}
		// The report quotes the body, but never more than about 1 KiB.
		if s := err.Error(); len(s) > 1500 || strings.Contains(s, strings.Repeat("x", 1100)) {
			e.t.Errorf("reported error is %d bytes long", len(s))
		}
	}
	e.expectNone(e.consumer(nil, []kombu.Queue{q}, nil))
}

// testDisallowedContentTypes is B4: content types outside the accept list
// go to OnDecodeError with ErrContentDisallowed and never to the receiver.
func testDisallowedContentTypes(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	refused := []struct {
		kind, contentType string
		body              any
	}{
		{"pickle", "application/x-python-serialize", []byte("\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.")},
		{"yaml", "application/x-yaml", "a: 1\n"},
		{"msgpack", "application/x-msgpack", []byte{0x81, 0xa1, 'a', 0x01}},
		{"unknown", "application/x-made-up", "???"},
	}
	for _, r := range refused {
		e.publish(p, r.body, &kombu.PublishOptions{RoutingKey: q.Name, ContentType: r.contentType, Headers: kind(r.kind)})
	}
	e.publish(p, map[string]any{"ok": true}, &kombu.PublishOptions{RoutingKey: q.Name, Headers: kind("good")})
	var de decodeErrors
	c := e.consumer(nil, []kombu.Queue{q}, &kombu.ConsumerOptions{Accept: []string{"json"}, OnDecodeError: de.handler(e)})
	m := e.recv(c)
	if k := m.Headers["kind"]; k != "good" {
		e.t.Errorf("received a %v message, want only the accepted one", k)
	}
	e.ack(m)
	e.expectNone(c)
	errs := de.get()
	for _, r := range refused {
		if err := errs[r.kind]; !errors.Is(err, kombu.ErrContentDisallowed) {
			e.t.Errorf("%s (%s): decode error %v, want ErrContentDisallowed", r.kind, r.contentType, err)
		}
	}
	if len(errs) != len(refused) {
		e.t.Errorf("decode errors for %v", errs)
	}
	e.eventuallyLen(q, 0)
}

// testDecodeErrorsDefault checks that, with no OnDecodeError, refused
// and undecompressable messages are rejected and reported, and the
// handler only sees the good one.
func testDecodeErrorsDefault(e *env) {
	conn, log := e.dialLogged(nil)
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.publish(p, "a: 1\n", &kombu.PublishOptions{RoutingKey: q.Name, ContentType: "application/x-yaml", Headers: kind("yaml")})
	e.publish(p, "x", &kombu.PublishOptions{RoutingKey: q.Name, Headers: map[string]any{"kind": "compression", "compression": "application/x-made-up"}})
	e.publish(p, "good", &kombu.PublishOptions{RoutingKey: q.Name, Headers: kind("good")})
	c := e.consumer(conn, []kombu.Queue{q}, &kombu.ConsumerOptions{Accept: []string{"json", "text/plain"}})
	got := make(chan *kombu.Message, 10)
	stop := e.consume(c, func(ctx context.Context, m *kombu.Message) error {
		got <- m
		return nil
	})
	m := e.take(got, "the good message")
	if k := m.Headers["kind"]; k != "good" {
		e.t.Errorf("handler got a %v message", k)
	}
	e.eventuallyLen(q, 0)
	time.Sleep(negativeWait)
	stop()
	if n := len(got); n != 0 {
		e.t.Errorf("handler got %d more messages", n)
	}
	var disallowed, decode int
	for _, err := range log.list() {
		switch {
		case errors.Is(err, kombu.ErrContentDisallowed):
			disallowed++
		case errors.Is(err, kombu.ErrDecode):
			decode++
		default:
			e.t.Errorf("unexpected background error: %v", err)
		}
	}
	if disallowed != 1 || decode != 1 {
		e.t.Errorf("reported %d disallowed and %d decode errors, want 1 and 1", disallowed, decode)
	}
	e.expectNone(e.consumer(nil, []kombu.Queue{q}, nil))
}

// testDecodeErrorCallbackSettles checks that a message handed to an
// OnDecodeError callback that neither acks nor rejects it is rejected
// without requeue once the callback returns: with a prefetch of 1, bad
// messages would otherwise fill the window and stall the consumer.
func testDecodeErrorCallbackSettles(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	for range 2 {
		e.publish(p, []byte("???"), &kombu.PublishOptions{RoutingKey: q.Name, ContentType: "application/x-made-up", Headers: kind("disallowed")})
	}
	e.publish(p, "x", &kombu.PublishOptions{RoutingKey: q.Name, Headers: map[string]any{"kind": "compression", "compression": "application/x-made-up"}})
	e.publish(p, []byte(`{"n": `), &kombu.PublishOptions{RoutingKey: q.Name, ContentType: "application/json", Headers: kind("undecodable")})
	e.publish(p, map[string]any{"n": 1}, &kombu.PublishOptions{RoutingKey: q.Name, Headers: kind("good")})
	e.eventuallyLen(q, 5)

	var mu sync.Mutex
	var bad []*kombu.Message
	c := e.consumer(nil, []kombu.Queue{q}, &kombu.ConsumerOptions{
		PrefetchCount: 1,
		Accept:        []string{"json"},
		OnDecodeError: func(m *kombu.Message, err error) {
			mu.Lock()
			bad = append(bad, m) // and leave it unsettled
			mu.Unlock()
		},
	})
	got := make(chan *kombu.Message, 10)
	stop := e.consume(c, func(ctx context.Context, m *kombu.Message) error {
		var v struct{ N int }
		if err := m.Decode(&v); err != nil {
			return err
		}
		got <- m
		return nil
	})
	m := e.take(got, "the good message behind four undecodable ones")
	if k := m.Headers["kind"]; k != "good" {
		e.t.Errorf("handler got a %v message", k)
	}
	e.eventually("the good message to be acked", func() bool { return m.State() == kombu.Acked })
	e.eventuallyLen(q, 0)
	time.Sleep(negativeWait) // give a wrongly requeued message the time to come back
	stop()
	mu.Lock()
	defer mu.Unlock()
	kinds := map[string]int{}
	for _, m := range bad {
		k, _ := m.Headers["kind"].(string)
		kinds[k]++
		if m.State() != kombu.Rejected {
			e.t.Errorf("%s message left unsettled by the callback is %v, want REJECTED", k, m.State())
		}
	}
	if kinds["disallowed"] != 2 || kinds["compression"] != 1 || kinds["undecodable"] != 1 || len(bad) != 4 {
		e.t.Errorf("OnDecodeError saw %v, want 2 disallowed, 1 compression, 1 undecodable", kinds)
	}
	e.expectNone(e.consumer(nil, []kombu.Queue{q}, nil))
}

func testDisallowedOnGet(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.publish(p, []byte("\x80\x04K\x01."), &kombu.PublishOptions{RoutingKey: q.Name, ContentType: "application/x-python-serialize"})
	e.eventuallyLen(q, 1)
	ctx, cancel := e.wait()
	defer cancel()
	if m, err := q.Get(ctx, e.ch, false, []string{"json"}); !errors.Is(err, kombu.ErrContentDisallowed) {
		e.t.Errorf("get of a pickle message = %v, %v; want ErrContentDisallowed", m, err)
	}
	// It was rejected, not left unacked or requeued.
	e.eventuallyLen(q, 0)
	if _, err := q.Get(ctx, e.channel(e.conn), false, nil); !errors.Is(err, kombu.ErrEmpty) {
		e.t.Errorf("get after the refused message: %v, want ErrEmpty", err)
	}
}

// testMissingContentType checks messages with no content type (from a
// foreign producer): they are application/data, always accepted, and the
// body is handed over as is. As in kombu, Payload returns the bytes for a
// binary content encoding and decodes the charset otherwise (UTF-8 when
// none is given, so a body that is not UTF-8 is a decode error).
func testMissingContentType(e *env) {
	q := e.simpleQueue("q")
	msgs := []struct {
		kind, encoding string
		body           []byte
	}{
		{"binary", "binary", []byte{0xff, 0x00, 'r', 'a', 'w'}},
		{"text", "", []byte("plain wörds")},
		{"invalid", "", []byte{'x', 0xff}},
	}
	ctx, cancel := e.wait()
	defer cancel()
	// Only a foreign producer can send a message with no content type.
	for _, m := range msgs {
		err := e.ch.Driver().Publish(ctx, &driver.Publishing{RoutingKey: q.Name, Message: driver.Message{
			Body: m.body, ContentEncoding: m.encoding, Headers: kind(m.kind), Properties: driver.Properties{DeliveryMode: 2},
		}})
		if err != nil {
			e.t.Fatalf("publish: %v", err)
		}
	}
	var de decodeErrors
	c := e.consumer(nil, []kombu.Queue{q}, &kombu.ConsumerOptions{Accept: []string{"json"}, OnDecodeError: de.handler(e)})
	for range msgs {
		m := e.recv(c)
		k, _ := m.Headers["kind"].(string)
		var want []byte
		for _, x := range msgs {
			if x.kind == k {
				want = x.body
			}
		}
		if m.ContentType != "" || !bytes.Equal(m.Body, want) {
			e.t.Errorf("%s: content type %q body %q, want none and %q", k, m.ContentType, m.Body, want)
		}
		var raw []byte
		if err := m.Decode(&raw); k != "invalid" && (err != nil || !bytes.Equal(raw, want)) {
			e.t.Errorf("%s: decode into []byte = %q, %v", k, raw, err)
		}
		v, err := m.Payload()
		switch k {
		case "binary":
			if b, ok := v.([]byte); err != nil || !ok || !bytes.Equal(b, want) {
				e.t.Errorf("binary payload = %#v, %v; want the raw bytes", v, err)
			}
		case "text":
			if err != nil || v != string(want) {
				e.t.Errorf("text payload = %#v, %v; want %q", v, err, want)
			}
		case "invalid":
			if !errors.Is(err, kombu.ErrDecode) {
				e.t.Errorf("payload of a non-UTF-8 body with no encoding = %#v, %v; want ErrDecode", v, err)
			}
		}
		e.ack(m)
	}
	e.expectNone(c)
	if errs := de.get(); len(errs) != 0 {
		e.t.Errorf("messages with no content type were refused: %v", errs)
	}
}

// testPublishErrorsBeforeIO is B5 at publish time: unknown serializers and
// compression methods, bad header values and bad delivery modes fail
// before the transport is touched, even on a closed connection.
func testPublishErrorsBeforeIO(e *env) {
	q := e.simpleQueue("q")
	conn := e.dial(nil)
	p := e.producer(conn, nil)
	pc := e.producer(conn, &kombu.ProducerOptions{Compression: "no-such-method"})
	cases := []struct {
		name string
		p    *kombu.Producer
		opts kombu.PublishOptions
		want error
	}{
		{"unknown serializer", p, kombu.PublishOptions{Serializer: "no-such-serializer"}, kombu.ErrUnknownSerializer},
		{"pickle serializer", p, kombu.PublishOptions{Serializer: "pickle"}, kombu.ErrUnknownSerializer},
		{"unknown compression", p, kombu.PublishOptions{Compression: "lz77"}, kombu.ErrUnknownCompression},
		{"producer's unknown compression", pc, kombu.PublishOptions{}, kombu.ErrUnknownCompression},
		{"non-UTF-8 header", p, kombu.PublishOptions{Headers: map[string]any{"k": "\xff"}}, kombu.ErrInvalidArgument},
		{"delivery mode 7", p, kombu.PublishOptions{DeliveryMode: 7}, kombu.ErrInvalidArgument},
		{"negative expiration", p, kombu.PublishOptions{Expiration: -time.Second}, kombu.ErrInvalidArgument},
		{"expiration under a millisecond", p, kombu.PublishOptions{Expiration: time.Microsecond}, kombu.ErrInvalidArgument},
		{"expiration beyond MaxExpiry", p, kombu.PublishOptions{Expiration: kombu.MaxExpiry + time.Millisecond}, kombu.ErrInvalidArgument},
	}
	ctx, cancel := e.wait()
	defer cancel()
	run := func(closed bool) {
		for _, tc := range cases {
			o := tc.opts
			o.RoutingKey = q.Name
			err := tc.p.Publish(ctx, map[string]any{"k": "v"}, &o)
			if !errors.Is(err, tc.want) {
				e.t.Errorf("publish with %s (connection closed: %t): %v, want %v", tc.name, closed, err, tc.want)
			}
			if closed && errors.Is(err, kombu.ErrClosed) {
				e.t.Errorf("publish with %s reached the closed connection: %v", tc.name, err)
			}
		}
	}
	run(false)
	if n := e.queueLen(q); n != 0 {
		e.t.Errorf("failed publishes left %d messages", n)
	}
	if err := conn.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	run(true)
	if err := p.Publish(ctx, "fine", &kombu.PublishOptions{RoutingKey: q.Name}); !errors.Is(err, kombu.ErrClosed) {
		e.t.Errorf("valid publish on a closed connection: %v, want ErrClosed", err)
	}
	e.expectNone(e.consumer(nil, []kombu.Queue{q}, nil))
}

// testBadCompressionAtConsume is B5 at consume time: an unknown or corrupt
// compression goes to the decode-error path.
func testBadCompressionAtConsume(e *env) {
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.publish(p, "x", &kombu.PublishOptions{RoutingKey: q.Name, Headers: map[string]any{"kind": "unknown", "compression": "application/x-made-up"}})
	e.publish(p, []byte("not a zlib stream"), &kombu.PublishOptions{RoutingKey: q.Name, Headers: map[string]any{"kind": "corrupt", "compression": codec.CompressionZlib}})
	e.publish(p, "good", &kombu.PublishOptions{RoutingKey: q.Name, Headers: kind("good")})
	var de decodeErrors
	c := e.consumer(nil, []kombu.Queue{q}, &kombu.ConsumerOptions{OnDecodeError: de.handler(e)})
	if got := e.recvAck(c); got != "good" {
		e.t.Errorf("received %q, want only \"good\"", got)
	}
	e.expectNone(c)
	errs := de.get()
	for _, k := range []string{"unknown", "corrupt"} {
		if !errors.Is(errs[k], kombu.ErrDecode) {
			e.t.Errorf("%s compression: decode error %v, want ErrDecode", k, errs[k])
		}
	}
	if !errors.Is(errs["unknown"], kombu.ErrUnknownCompression) {
		e.t.Errorf("unknown compression: %v, want ErrUnknownCompression too", errs["unknown"])
	}
	e.eventuallyLen(q, 0)
}

var (
	bombOnce sync.Once
	bomb     []byte
)

// zlibBomb is 100 MiB of zeros, zlib-compressed (about 100 KiB).
func zlibBomb() []byte {
	bombOnce.Do(func() {
		var buf bytes.Buffer
		w, _ := zlib.NewWriterLevel(&buf, zlib.BestSpeed)
		zeros := make([]byte, 1<<20)
		for range 100 {
			_, _ = w.Write(zeros)
		}
		_ = w.Close()
		bomb = buf.Bytes()
	})
	return bomb
}

// testDecompressionBomb is B7: a body that decompresses beyond
// Options.MaxDecompressedSize is refused, and the consumer keeps going.
func testDecompressionBomb(e *env) {
	const limit = 8 << 20
	conn, _ := e.dialLogged(func(o *kombu.Options) { o.MaxDecompressedSize = limit })
	q := e.simpleQueue("q")
	p := e.producer(nil, nil)
	e.publish(p, zlibBomb(), &kombu.PublishOptions{RoutingKey: q.Name, Headers: map[string]any{"kind": "bomb", "compression": codec.CompressionZlib}})
	under := bytes.Repeat([]byte("ok"), 1<<19) // 1 MiB, well under the limit
	e.publish(p, under, &kombu.PublishOptions{RoutingKey: q.Name, Compression: "zlib", Headers: kind("good")})
	var de decodeErrors
	c := e.consumer(conn, []kombu.Queue{q}, &kombu.ConsumerOptions{OnDecodeError: de.handler(e)})
	m := e.recv(c)
	if k := m.Headers["kind"]; k != "good" || !bytes.Equal(m.Body, under) {
		e.t.Errorf("received %v message of %d bytes, want the good one of %d", k, len(m.Body), len(under))
	}
	e.ack(m)
	e.expectNone(c)
	err := de.get()["bomb"]
	if !errors.Is(err, kombu.ErrDecode) || !errors.Is(err, kombu.ErrTooLarge) {
		e.t.Errorf("decompression bomb: %v, want ErrDecode and ErrTooLarge", err)
	}
	e.eventuallyLen(q, 0)
}

// longName pads prefix to n bytes.
func longName(prefix string, n int) string {
	if len(prefix) >= n {
		return prefix[:n]
	}
	return prefix + strings.Repeat("n", n-len(prefix))
}

// testLongNames is B8: names and routing keys over AMQP's 255-byte limit
// are refused with ErrInvalidArgument (or ErrPreconditionFailed from a
// server that checks), and 255 bytes work.
func testLongNames(e *env) {
	x := e.declareExchange(kombu.NewExchange(e.name("x"), kombu.Direct))
	q := e.simpleQueue("q")
	long := longName(e.id+".", 256)
	ctx, cancel := e.wait()
	defer cancel()
	check := func(what string, err error) {
		e.t.Helper()
		if !isInvalidName(err) {
			e.t.Errorf("%s of 256 bytes: %v, want ErrInvalidArgument or ErrPreconditionFailed", what, err)
		}
	}
	lq := kombu.NewQueue(long, kombu.DefaultExchange, "")
	_, err := lq.Declare(ctx, e.channel(e.conn))
	check("queue name", err)
	if err == nil {
		e.cleanupReserved(long, false)
	}
	lx := kombu.NewExchange(long, kombu.Direct)
	err = lx.Declare(ctx, e.channel(e.conn))
	check("exchange name", err)
	if err == nil {
		e.cleanupReserved(long, true)
	}
	check("binding key", q.BindTo(ctx, e.channel(e.conn), x, long, nil))
	p := e.producer(nil, &kombu.ProducerOptions{Exchange: x})
	check("routing key", p.Publish(ctx, "x", &kombu.PublishOptions{RoutingKey: long}))
	pd := e.producer(nil, nil)
	check("default-exchange routing key", pd.Publish(ctx, "x", &kombu.PublishOptions{RoutingKey: long}))
	_, err = e.conn.Consumer(ctx, []kombu.Queue{lq}, nil)
	check("consumer queue", err)

	// 255 bytes is the limit, and works.
	key := longName(e.id+".", 255)
	if err := q.BindTo(ctx, e.ch, x, key, nil); err != nil {
		e.t.Fatalf("bind with a 255-byte key: %v", err)
	}
	e.publish(p, "255", &kombu.PublishOptions{RoutingKey: key})
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	m := e.recv(c)
	if string(m.Body) != "255" || m.RoutingKey != key {
		e.t.Errorf("received %q with a %d-byte routing key", m.Body, len(m.RoutingKey))
	}
	e.ack(m)
	e.expectNone(c)
}

// testReservedNames is B8's amq. prefix: creating amq.* entities is
// refused with ErrAccessRefused, while the predeclared amq.* exchanges
// exist and may be redeclared, checked and used.
func testReservedNames(e *env) {
	ctx, cancel := e.wait()
	defer cancel()
	name := "amq." + e.id
	x := kombu.NewExchange(name, kombu.Direct)
	if err := x.Declare(ctx, e.channel(e.conn)); !errors.Is(err, kombu.ErrAccessRefused) {
		e.t.Errorf("declare exchange %q: %v, want ErrAccessRefused", name, err)
		e.cleanupReserved(name, true)
	}
	q := kombu.NewQueue(name, kombu.DefaultExchange, "")
	if _, err := q.Declare(ctx, e.channel(e.conn)); !errors.Is(err, kombu.ErrAccessRefused) {
		e.t.Errorf("declare queue %q: %v, want ErrAccessRefused", name, err)
		e.cleanupReserved(name, false)
	}
	amqDirect := kombu.NewExchange("amq.direct", kombu.Direct)
	if err := amqDirect.Declare(ctx, e.channel(e.conn)); err != nil {
		e.t.Errorf("redeclare amq.direct with its own attributes: %v", err)
	}
	if err := (kombu.Exchange{Name: "amq.topic", Type: kombu.Topic, Passive: true}).Declare(ctx, e.channel(e.conn)); err != nil {
		e.t.Errorf("passive declare of amq.topic: %v", err)
	}
	// Queues bind to predeclared exchanges without declaring them.
	amqDirect.NoDeclare = true
	bq := e.declareQueue(kombu.NewQueue(e.name("q"), amqDirect, e.id))
	c := e.consumer(nil, []kombu.Queue{bq}, nil)
	p := e.producer(nil, &kombu.ProducerOptions{Exchange: amqDirect})
	e.publish(p, "via amq.direct", &kombu.PublishOptions{RoutingKey: e.id})
	if got := e.recvAck(c); got != "via amq.direct" {
		e.t.Errorf("received %q", got)
	}
}

// cleanupReserved deletes an entity with a refused name (amq.*, too long)
// that a faulty transport let the test create.
func (e *env) cleanupReserved(name string, exchange bool) {
	ctx, cancel := e.wait()
	defer cancel()
	if exchange {
		_ = kombu.Exchange{Name: name}.Delete(ctx, e.channel(e.conn), false)
		return
	}
	_, _ = kombu.Queue{Name: name}.Delete(ctx, e.channel(e.conn), false, false)
}

func testMandatory(e *env) {
	e.require(e.s.features.Mandatory, "Mandatory")
	x := e.declareExchange(kombu.NewExchange(e.name("x"), kombu.Direct))
	q := e.declareQueue(kombu.NewQueue(e.name("q"), x, "k"))
	returns := make(chan kombu.Return, 8)
	p := e.producer(nil, &kombu.ProducerOptions{Exchange: x, OnReturn: func(r kombu.Return) { returns <- r }})
	e.publish(p, "lost", &kombu.PublishOptions{RoutingKey: "nowhere", Mandatory: true})
	select {
	case r := <-returns:
		if r.RoutingKey != "nowhere" || r.Exchange != x.Name || r.ReplyCode != 312 || string(r.Body) != "lost" {
			e.t.Errorf("return: exchange %q routing key %q code %d %q body %q", r.Exchange, r.RoutingKey, r.ReplyCode, r.ReplyText, r.Body)
		}
	case <-time.After(e.s.h.Timeout):
		e.t.Fatalf("OnReturn was not called for an unroutable mandatory message")
	}
	e.publish(p, "found", &kombu.PublishOptions{RoutingKey: "k", Mandatory: true})
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	if got := e.recvAck(c); got != "found" {
		e.t.Errorf("received %q, want \"found\"", got)
	}
	select {
	case r := <-returns:
		e.t.Errorf("routable message returned: %q", r.Body)
	case <-time.After(negativeWait):
	}

	ctx, cancel := e.wait()
	defer cancel()
	plain := e.producer(nil, &kombu.ProducerOptions{Exchange: x})
	if err := plain.Publish(ctx, "lost", &kombu.PublishOptions{RoutingKey: "nowhere", Mandatory: true}); !errors.Is(err, kombu.ErrUnroutable) {
		e.t.Errorf("unroutable mandatory publish without OnReturn: %v, want ErrUnroutable", err)
	}
	if err := plain.Publish(ctx, "dropped", &kombu.PublishOptions{RoutingKey: "nowhere"}); err != nil {
		e.t.Errorf("unroutable publish that is not mandatory: %v, want nil", err)
	}
	def := e.producer(nil, nil)
	err := def.Publish(ctx, "lost", &kombu.PublishOptions{RoutingKey: e.name("no-such-queue"), Mandatory: true})
	if !errors.Is(err, kombu.ErrUnroutable) {
		e.t.Errorf("mandatory publish to a missing queue: %v, want ErrUnroutable", err)
	}
	e.expectNone(c)
}
