package amqp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu/driver"
)

// Wire compatibility with Python kombu (Debian python3-kombu), both ways,
// on the broker of `make test`. The headers hold integers beyond int32,
// which py-amqp writes with the tag 'L' (amqp091-go alone closes the
// connection on them) and reads as signed only from 'L'.

var interopHeaders = map[string]any{
	"small":  2,
	"big":    int64(1) << 40,
	"neg":    int64(-3000000000),
	"minus":  -5,
	"f":      1.5,
	"s":      "v",
	"t":      true,
	"none":   nil,
	"list":   []any{int64(1) << 40, "a", nil},
	"nested": map[string]any{"deep": int64(-1) << 35},
}

func runPython(t testing.TB, script string, spec any) []byte {
	t.Helper()
	py := testenv.Python(t)
	js, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	abs, err := filepath.Abs(filepath.Join("testdata", script))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, py, "-I", abs, string(js))
	cmd.Dir = t.TempDir() // no kombu/ folder in the working directory
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	return out
}

// kombuTopology declares what kombu would: a durable exchange of typ and
// durable queues bound to it.
func kombuTopology(t *testing.T, ch *Channel, typ string, bindings map[string]string) string {
	t.Helper()
	ctx := tctx(t)
	x := unique(t, "interop."+typ)
	must(t, ch.ExchangeDeclare(ctx, driver.Exchange{Name: x, Type: typ, Durable: true}))
	t.Cleanup(func() {
		c2 := dial(t, serverURL(t))
		if ch2, err := c2.Channel(context.Background()); err == nil {
			_ = ch2.ExchangeDelete(context.Background(), x, false)
		}
	})
	for q, key := range bindings {
		declareQueue(t, ch, driver.Queue{Name: q, Durable: true})
		must(t, ch.QueueBind(ctx, driver.Binding{Queue: q, Exchange: x, RoutingKey: key}))
	}
	return x
}

type interopCase struct {
	typ      string
	bindKey  string // binding key of the queues
	pubKey   string // routing key used to publish
	nQueues  int
	messages int
}

var interopCases = []interopCase{
	{typ: "direct", bindKey: "interop.rk", pubKey: "interop.rk", nQueues: 1, messages: 3},
	{typ: "topic", bindKey: "interop.*.info", pubKey: "interop.py.info", nQueues: 1, messages: 3},
	{typ: "fanout", bindKey: "", pubKey: "anything", nQueues: 2, messages: 2},
}

func TestInteropPythonToGo(t *testing.T) {
	t.Parallel()
	for _, tc := range interopCases {
		t.Run(tc.typ, func(t *testing.T) {
			t.Parallel()
			_, ch := setup(t)
			queues := map[string]string{}
			var qnames []string
			for i := range tc.nQueues {
				q := unique(t, fmt.Sprint("py2go", i))
				queues[q] = tc.bindKey
				qnames = append(qnames, q)
			}
			x := kombuTopology(t, ch, tc.typ, queues)
			var msgs []map[string]any
			for i := range tc.messages {
				msgs = append(msgs, map[string]any{
					"body":           map[string]any{"n": i, "text": "from python"},
					"routing_key":    tc.pubKey,
					"headers":        interopHeaders,
					"priority":       4,
					"correlation_id": fmt.Sprint("corr-", i),
					"reply_to":       "reply.q",
					"expiration":     60,
					"message_id":     fmt.Sprint("mid-", i),
				})
			}
			runPython(t, "interop_produce.py", map[string]any{"url": serverURL(t), "exchange": x, "type": tc.typ, "messages": msgs})

			ctx := tctx(t)
			for _, q := range qnames {
				must(t, ch.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "go-" + q}))
			}
			ds := receiveN(t, ch, tc.messages*tc.nQueues)
			perQueue := map[string]int{}
			for _, d := range ds {
				perQueue[d.Queue]++
				var body map[string]any
				if err := json.Unmarshal(d.Body, &body); err != nil {
					t.Fatalf("body %q: %v", d.Body, err)
				}
				if body["text"] != "from python" {
					t.Errorf("body %v", body)
				}
				if d.ContentType != "application/json" || d.ContentEncoding != "utf-8" {
					t.Errorf("content %q %q", d.ContentType, d.ContentEncoding)
				}
				p := d.Properties
				if p.DeliveryMode != 2 || p.Priority != 4 || p.ReplyTo != "reply.q" || p.Expiration != "60000" ||
					p.CorrelationID == "" || p.MessageID == "" {
					t.Errorf("properties %+v", p)
				}
				if d.Exchange != x || d.RoutingKey != tc.pubKey {
					t.Errorf("delivery info %q %q", d.Exchange, d.RoutingKey)
				}
				checkGoHeaders(t, d.Headers)
				must(t, ch.Ack(ctx, d.Tag, false))
			}
			for _, q := range qnames {
				if perQueue[q] != tc.messages {
					t.Errorf("queue %s got %d messages, want %d", q, perQueue[q], tc.messages)
				}
			}
		})
	}
}

func checkGoHeaders(t *testing.T, h map[string]any) {
	t.Helper()
	want := map[string]any{
		"small": int64(2), "big": int64(1) << 40, "neg": int64(-3000000000), "minus": int64(-5),
		"f": 1.5, "s": "v", "t": true, "none": nil,
		"list":   []any{int64(1) << 40, "a", nil},
		"nested": map[string]any{"deep": int64(-1) << 35},
	}
	for k, v := range want {
		if !reflect.DeepEqual(h[k], v) {
			t.Errorf("header %s = %#v (%T), want %#v", k, h[k], h[k], v)
		}
	}
}

func TestInteropGoToPython(t *testing.T) {
	t.Parallel()
	for _, tc := range interopCases {
		t.Run(tc.typ, func(t *testing.T) {
			t.Parallel()
			_, ch := setup(t)
			queues := map[string]string{}
			var qspec []map[string]any
			for i := range tc.nQueues {
				q := unique(t, fmt.Sprint("go2py", i))
				queues[q] = tc.bindKey
				qspec = append(qspec, map[string]any{"name": q, "routing_key": tc.bindKey})
			}
			x := kombuTopology(t, ch, tc.typ, queues)
			ps := make([]*driver.Publishing, tc.messages)
			for i := range ps {
				ps[i] = &driver.Publishing{Exchange: x, RoutingKey: tc.pubKey, Message: driver.Message{
					Body:        fmt.Appendf(nil, `{"n":%d,"text":"from go"}`, i),
					ContentType: "application/json", ContentEncoding: "utf-8",
					Headers: interopHeaders,
					Properties: driver.Properties{Priority: 4, CorrelationID: fmt.Sprint("corr-", i),
						ReplyTo: "reply.q", Expiration: "60000", MessageID: fmt.Sprint("mid-", i)},
				}}
			}
			must(t, ch.PublishBatch(tctx(t), ps))
			out := runPython(t, "interop_consume.py", map[string]any{"url": serverURL(t), "exchange": x, "type": tc.typ,
				"queues": qspec, "count": tc.messages, "timeout": 20})
			dec := json.NewDecoder(bytes.NewReader(out))
			dec.UseNumber()
			var got []map[string]any
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if len(got) != tc.messages*tc.nQueues {
				t.Fatalf("python got %d messages, want %d: %s", len(got), tc.messages*tc.nQueues, out)
			}
			perQueue := map[string]int{}
			for _, m := range got {
				perQueue[fmt.Sprint(m["queue_name"])]++
				body, _ := m["body"].(map[string]any)
				if body["text"] != "from go" {
					t.Errorf("body %v", m["body"])
				}
				if m["content_type"] != "application/json" || m["content_encoding"] != "utf-8" {
					t.Errorf("content %v %v", m["content_type"], m["content_encoding"])
				}
				if fmt.Sprint(m["delivery_mode"]) != "2" || fmt.Sprint(m["priority"]) != "4" ||
					m["reply_to"] != "reply.q" || m["expiration"] != "60000" || m["exchange"] != x || m["queue"] != tc.pubKey {
					t.Errorf("properties %v", m)
				}
				h, _ := m["headers"].(map[string]any)
				wantH := map[string]string{
					"small": "2", "big": "1099511627776", "neg": "-3000000000", "minus": "-5", "f": "1.5",
					"s": "v", "t": "true", "none": "<nil>", "list": "[1099511627776 a <nil>]",
					"nested": "map[deep:-34359738368]",
				}
				for k, v := range wantH {
					if g := fmt.Sprint(h[k]); g != v {
						t.Errorf("python header %s = %s, want %s", k, g, v)
					}
				}
			}
			for q := range queues {
				if perQueue[q] != tc.messages {
					t.Errorf("queue %s: python got %d, want %d (%v)", q, perQueue[q], tc.messages, perQueue)
				}
			}
		})
	}
}

// TestRawAmqp091FailsOnPythonLongLong shows why the transport rewrites
// tags: amqp091-go on its own cannot read a Python message whose headers
// hold 2**40 (py-amqp's 'L'), and loses the whole connection; the
// transport reads the same message.
func TestRawAmqp091FailsOnPythonLongLong(t *testing.T) {
	t.Parallel()
	_, ch := setup(t)
	q := unique(t, "rawL")
	x := kombuTopology(t, ch, "direct", map[string]string{q: q})
	runPython(t, "interop_produce.py", map[string]any{"url": serverURL(t), "exchange": x, "type": "direct",
		"messages": []map[string]any{
			{"body": "one", "routing_key": q, "headers": map[string]any{"big": int64(1) << 40}},
			{"body": "two", "routing_key": q, "headers": map[string]any{"big": int64(1) << 40}},
		}})
	raw := rawDial(t, serverURL(t))
	rch, err := raw.Channel()
	must(t, err)
	_, _, err = rch.Get(q, false)
	if err == nil {
		t.Fatal("amqp091-go read py-amqp's 'L' tag: the rewrite may no longer be needed")
	}
	t.Logf("raw amqp091-go: %v (connection closed: %v)", err, raw.IsClosed())
	d, err := ch.Get(tctx(t), q, true)
	must(t, err)
	if d.Headers["big"] != int64(1)<<40 {
		t.Fatalf("headers %v", d.Headers)
	}
}
