package amqp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
)

// Messages whose headers amqp091-go v1.16.0 refuses (tables and arrays
// nested more than 32 deep, more than 8192 entries in one) are published
// with Python kombu, which RabbitMQ and py-amqp accept. Each must reach the
// decode-error path like any other undecodable message, on a connection
// that lives on for the consumer and for a producer sharing it.

type refusedMessage struct {
	Body  map[string]any `json:"body"`
	Shape string         `json:"shape"`
	N     int            `json:"n"`
	// want is what the Go consumer must report: "" for a message it
	// receives with its headers, else a part of the decode error.
	want string
}

var refusedMessages = []refusedMessage{
	{Shape: "deep", N: 33, want: "deeper than 32 levels"},
	{Shape: "deep", N: 32},
	{Shape: "wide", N: 8193, want: "more than 8192 entries"},
	{Shape: "wide", N: 8192},
	{Shape: "deep_list", N: 40, want: "deeper than 32 levels"},
	{Shape: "long_list", N: 8193, want: "more than 8192 values"},
	{Shape: "plain", N: 1},
}

func TestRefusedHeadersAreDecodeErrors(t *testing.T) {
	t.Parallel()
	ctx := tctx(t)
	var bgMu sync.Mutex
	var background []error
	conn, err := kombu.Dial(ctx, serverURL(t), &kombu.Options{ErrorHandler: func(err error) {
		bgMu.Lock()
		background = append(background, err)
		bgMu.Unlock()
	}})
	must(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	cch, err := conn.Channel(ctx)
	must(t, err)
	pch, err := conn.Channel(ctx)
	must(t, err)

	name := unique(t, "refused")
	dead := kombu.Queue{Name: name + ".dead"}
	q := kombu.Queue{Name: name, Arguments: map[string]any{
		"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead.Name}}
	for _, qq := range []kombu.Queue{dead, q} {
		_, err := qq.Declare(ctx, pch)
		must(t, err)
		t.Cleanup(func() {
			c2 := dial(t, serverURL(t))
			if ch2, err := c2.Channel(context.Background()); err == nil {
				_, _ = ch2.QueueDelete(context.Background(), qq.Name, false, false)
			}
		})
	}

	msgs := make([]refusedMessage, len(refusedMessages))
	for i, m := range refusedMessages {
		m.Body = map[string]any{"i": i, "shape": m.Shape}
		msgs[i] = m
	}
	runPython(t, "refused_headers.py", map[string]any{"url": serverURL(t), "queue": q.Name, "action": "publish", "messages": msgs})

	decodeErrs := map[float64]error{}
	var mu sync.Mutex
	c, err := kombu.NewConsumer(ctx, cch, []kombu.Queue{q}, &kombu.ConsumerOptions{NoDeclare: true,
		OnDecodeError: func(m *kombu.Message, err error) {
			var body map[string]any
			if jerr := json.Unmarshal(m.Body, &body); jerr != nil {
				t.Errorf("body of an undecodable message: %q", m.Body)
			}
			mu.Lock()
			decodeErrs[body["i"].(float64)] = err
			mu.Unlock()
			if err := m.Reject(ctx); err != nil {
				t.Errorf("reject: %v", err)
			}
		}})
	must(t, err)
	t.Cleanup(func() { _ = c.Close() })

	for i, m := range msgs {
		if m.want != "" {
			continue
		}
		got, err := c.Receive(ctx)
		if err != nil {
			t.Fatalf("receive %s %d: %v", m.Shape, m.N, err)
		}
		var body map[string]any
		must(t, got.Decode(&body))
		if fmt.Sprint(body["i"]) != fmt.Sprint(i) {
			t.Fatalf("received message %v, want %d (%s %d)", body["i"], i, m.Shape, m.N)
		}
		if d, n := headerShape(got.Headers); m.Shape == "deep" && d != m.N+1 || m.Shape == "wide" && n != m.N {
			t.Errorf("%s %d: headers arrived %d deep with %d entries", m.Shape, m.N, d, n)
		}
		must(t, got.Ack(ctx))
	}
	mu.Lock()
	for i, m := range msgs {
		err, reported := decodeErrs[float64(i)]
		switch {
		case m.want == "" && reported:
			t.Errorf("%s %d: decode error %v", m.Shape, m.N, err)
		case m.want != "" && !reported:
			t.Errorf("%s %d: no decode error", m.Shape, m.N)
		case m.want != "" && (!errors.Is(err, kombu.ErrDecode) || !strings.Contains(err.Error(), m.want)):
			t.Errorf("%s %d: decode error %v, want ErrDecode saying %q", m.Shape, m.N, err, m.want)
		}
	}
	mu.Unlock()

	// The connection lived: a producer sharing it publishes, the consumer
	// receives, and neither channel reconnected.
	p, err := kombu.NewProducer(ctx, pch, nil)
	must(t, err)
	must(t, p.Publish(ctx, "after", &kombu.PublishOptions{RoutingKey: q.Name}))
	got, err := c.Receive(ctx)
	must(t, err)
	if v, err := got.Payload(); err != nil || v != "after" {
		t.Fatalf("received %q (%v) after the refused messages", got.Body, err)
	}
	must(t, got.Ack(ctx))
	cd, pd := cch.Driver().(*Channel), pch.Driver().(*Channel)
	if cd.conn != pd.conn || cd.conn.isClosed() {
		t.Error("the AMQP connection was replaced or closed")
	}
	if n, err := q.Len(ctx, pch); err != nil || n != 0 {
		t.Errorf("queue holds %d messages (%v), want 0: refused messages must not be requeued", n, err)
	}
	bgMu.Lock()
	for _, err := range background {
		t.Errorf("background error: %v", err)
	}
	bgMu.Unlock()

	// Rejected without requeue, the refused messages are dead-lettered
	// whole: Python reads their headers as they were sent.
	var deadGot []struct {
		Body         map[string]any `json:"body"`
		Depth        int            `json:"depth"`
		Size         int            `json:"size"`
		DeadLettered bool           `json:"dead_lettered"`
	}
	var out []byte
	for deadline := time.Now().Add(10 * time.Second); ; {
		out = runPython(t, "refused_headers.py", map[string]any{"url": serverURL(t), "queue": dead.Name, "action": "get"})
		must(t, json.Unmarshal(out, &deadGot))
		if len(deadGot) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	want := 0
	for _, m := range msgs {
		if m.want != "" {
			want++
		}
	}
	if len(deadGot) != want {
		t.Fatalf("dead-letter queue holds %d messages, want %d: %s", len(deadGot), want, out)
	}
	for _, d := range deadGot {
		m := msgs[int(d.Body["i"].(float64))]
		switch m.Shape {
		case "deep", "deep_list":
			if d.Depth != m.N+1 {
				t.Errorf("%s %d dead-lettered with depth %d", m.Shape, m.N, d.Depth)
			}
		default:
			if d.Size != m.N {
				t.Errorf("%s %d dead-lettered with %d entries", m.Shape, m.N, d.Size)
			}
		}
		if !d.DeadLettered {
			t.Errorf("%s %d has no x-death header", m.Shape, m.N)
		}
	}
}

// headerShape returns how deep h nests (h itself counts 1) and how many
// entries its widest table has.
func headerShape(h map[string]any) (depth, width int) {
	var walk func(v any) (int, int)
	walk = func(v any) (int, int) {
		d, w := 0, 0
		switch x := v.(type) {
		case map[string]any:
			w = len(x)
			for _, e := range x {
				ed, ew := walk(e)
				d, w = max(d, ed), max(w, ew)
			}
		case []any:
			w = len(x)
			for _, e := range x {
				ed, ew := walk(e)
				d, w = max(d, ed), max(w, ew)
			}
		default:
			return 0, 0
		}
		return d + 1, w
	}
	return walk(h)
}

// TestRawAmqp091FailsOnDeepHeaders shows why the wrapper replaces such
// tables: amqp091-go on its own loses the whole connection on a message
// whose headers nest 33 tables deep.
func TestRawAmqp091FailsOnDeepHeaders(t *testing.T) {
	t.Parallel()
	_, ch := setup(t)
	q := declareQueue(t, ch, driver.Queue{})
	runPython(t, "refused_headers.py", map[string]any{"url": serverURL(t), "queue": q, "action": "publish",
		"messages": []refusedMessage{{Body: map[string]any{"i": 0}, Shape: "deep", N: 33}}})
	raw := rawDial(t, serverURL(t))
	rch, err := raw.Channel()
	must(t, err)
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, ok, err := rch.Get(q, false)
		if err != nil {
			t.Logf("raw amqp091-go: %v (connection closed: %v)", err, raw.IsClosed())
			break
		}
		if ok {
			t.Fatal("amqp091-go read headers 33 tables deep: the replacement may no longer be needed")
		}
		if time.Now().After(deadline) {
			t.Fatal("the message never arrived")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// RabbitMQ requeues the message when it notices the raw connection
	// is gone.
	var d *driver.Delivery
	for deadline := time.Now().Add(10 * time.Second); ; {
		if d, err = ch.Get(tctx(t), q, false); !errors.Is(err, driver.ErrEmpty) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	must(t, err)
	if d.DecodeError == nil || !strings.Contains(d.DecodeError.Error(), "deeper than 32 levels") || d.Headers != nil {
		t.Fatalf("transport Get: DecodeError %v, headers %v", d.DecodeError, d.Headers)
	}
	must(t, ch.Reject(tctx(t), d.Tag, false))
}
