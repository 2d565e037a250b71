package redis

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu/driver"
)

// pyProc is a Python kombu script run for an interop test.
type pyProc struct {
	t     testing.TB
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
	done  chan error
	errb  strings.Builder
}

func startPython(t testing.TB, script string, args any) *pyProc {
	t.Helper()
	py := testenv.Python(t)
	a, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	path, err := filepath.Abs(filepath.Join("testdata", script))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	p := &pyProc{t: t, lines: make(chan string, 16), done: make(chan error, 1)}
	p.cmd = exec.CommandContext(ctx, py, "-I", path, string(a))
	p.cmd.Dir = t.TempDir() // no kombu/ folder next to the script's cwd
	p.cmd.Stderr = &p.errb
	p.in, _ = p.cmd.StdinPipe()
	out, _ := p.cmd.StdoutPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
	})
	return p
}

// line returns the script's next stdout line.
func (p *pyProc) line(timeout time.Duration) string {
	p.t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			err := <-p.done
			p.t.Fatalf("python exited (%v): %s", err, p.errb.String())
		}
		return l
	case <-time.After(timeout):
		p.t.Fatalf("python said nothing for %v; stderr: %s", timeout, p.errb.String())
	}
	return ""
}

// pyURL is the server URL for Python kombu (no Go-only options).
func pyURL(t testing.TB) string {
	u := serverURL(t, nil)
	u.RawQuery = ""
	return u.String()
}

type interopCase struct {
	typ, bindingKey, routingKey string
}

var interopCases = []interopCase{
	{"direct", "interop.rk", "interop.rk"},
	{"topic", "interop.*.info", "interop.x.info"},
	{"fanout", "", ""},
}

const interopCount = 20

func checkPythonMessage(t *testing.T, d *driver.Delivery, ex, rk string) int {
	t.Helper()
	var body struct {
		N    int    `json:"n"`
		Text string `json:"text"`
		List []any  `json:"list"`
	}
	if err := json.Unmarshal(d.Body, &body); err != nil {
		t.Fatalf("body %q: %v", d.Body, err)
	}
	n := body.N
	p := d.Properties
	if body.Text != "héllo" || fmt.Sprint(body.List) != "[1 2.5 <nil> true]" {
		t.Errorf("body %s", d.Body)
	}
	if d.ContentType != "application/json" || d.ContentEncoding != "utf-8" {
		t.Errorf("content %q %q", d.ContentType, d.ContentEncoding)
	}
	if d.Headers["x-seq"] != int64(n) || d.Headers["x-str"] != "v" {
		t.Errorf("headers %v", d.Headers)
	}
	if p.Priority != uint8(n%10) || p.CorrelationID != fmt.Sprintf("corr-%d", n) || p.ReplyTo != "reply.q" ||
		p.MessageID != fmt.Sprintf("mid-%d", n) || p.Expiration != "60000" || p.AppID != "pyapp" || p.Type != "t1" || p.DeliveryMode != 2 {
		t.Errorf("properties %+v", p)
	}
	if d.Exchange != ex || d.RoutingKey != rk || d.Redelivered {
		t.Errorf("delivery info %q %q %v", d.Exchange, d.RoutingKey, d.Redelivered)
	}
	return n
}

// TestInteropPythonProducerGoConsumer: Python kombu publishes, Go consumes,
// for direct, topic and fanout exchanges.
func TestInteropPythonProducerGoConsumer(t *testing.T) {
	for _, tc := range interopCases {
		t.Run(tc.typ, func(t *testing.T) {
			opts := isolated(t, nil)
			prefix := opts.Get("global_keyprefix")
			conn := dialDriver(t, opts)
			ch := openChannel(t, conn)
			ctx := testCtx(t)
			ex, q := uniqueName(t, "ex"), uniqueName(t, "q")
			st := storeOf(t, conn)
			c := rawClient(t, st)
			cleanupKeys(t, c, prefix)

			// Go declares and binds first; Python's declaration of the same
			// binding must then write the very same set member.
			if err := ch.ExchangeDeclare(ctx, driver.Exchange{Name: ex, Type: tc.typ}); err != nil {
				t.Fatal(err)
			}
			if _, err := ch.QueueDeclare(ctx, driver.Queue{Name: q}); err != nil {
				t.Fatal(err)
			}
			if err := ch.QueueBind(ctx, driver.Binding{Queue: q, Exchange: ex, RoutingKey: tc.bindingKey}); err != nil {
				t.Fatal(err)
			}
			if err := ch.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "go"}); err != nil {
				t.Fatal(err)
			}
			py := startPython(t, "py_produce.py", map[string]any{
				"url": pyURL(t), "transport_options": map[string]any{"global_keyprefix": prefix},
				"exchange": ex, "type": tc.typ, "queue": q, "binding_key": tc.bindingKey, "routing_key": tc.routingKey,
				"count": interopCount, "wait_ready": tc.typ == "fanout",
			})
			py.line(30 * time.Second) // declared
			if tc.typ == "fanout" {
				_, _ = io.WriteString(py.in, "go\n")
			}
			if l := py.line(30 * time.Second); !strings.Contains(l, "published") {
				t.Fatalf("python: %s", l)
			}
			if n := c.SCard(ctx, prefix+"_kombu.binding."+ex).Val(); n != 1 {
				t.Errorf("binding table has %d members after both declared the same binding: %q", n, c.SMembers(ctx, prefix+"_kombu.binding."+ex).Val())
			}
			seen := map[int]bool{}
			for _, d := range receiveN(t, ch, interopCount, 20*time.Second) {
				seen[checkPythonMessage(t, d, ex, tc.routingKey)] = true
				if err := ch.Ack(ctx, d.Tag, false); err != nil {
					t.Fatal(err)
				}
			}
			if len(seen) != interopCount {
				t.Errorf("got %d distinct messages", len(seen))
			}
		})
	}
}

// TestInteropGoProducerPythonConsumer: Go publishes, Python kombu consumes,
// for direct, topic and fanout exchanges. Go routes with the binding rows
// Python wrote.
func TestInteropGoProducerPythonConsumer(t *testing.T) {
	for _, tc := range interopCases {
		t.Run(tc.typ, func(t *testing.T) {
			opts := isolated(t, nil)
			prefix := opts.Get("global_keyprefix")
			conn := dialDriver(t, opts)
			ch := openChannel(t, conn)
			ctx := testCtx(t)
			ex, q := uniqueName(t, "ex"), uniqueName(t, "q")
			st := storeOf(t, conn)
			cleanupKeys(t, rawClient(t, st), prefix)

			py := startPython(t, "py_consume.py", map[string]any{
				"url": pyURL(t), "transport_options": map[string]any{"global_keyprefix": prefix},
				"exchange": ex, "type": tc.typ, "queue": q, "binding_key": tc.bindingKey,
				"count": interopCount, "timeout": 20,
			})
			if l := py.line(30 * time.Second); l != "ready" {
				t.Fatalf("python: %s", l)
			}
			if err := ch.ExchangeDeclare(ctx, driver.Exchange{Name: ex, Type: tc.typ}); err != nil {
				t.Fatal(err)
			}
			for i := range interopCount {
				body, _ := json.Marshal(map[string]any{"n": i, "text": "héllo", "list": []any{1, 2.5, nil, true}})
				err := ch.Publish(ctx, &driver.Publishing{Exchange: ex, RoutingKey: tc.routingKey, Message: driver.Message{
					Body: body, ContentType: "application/json", ContentEncoding: "utf-8",
					Headers: map[string]any{"x-seq": i, "x-str": "v"},
					Properties: driver.Properties{
						Priority: uint8(i % 10), CorrelationID: fmt.Sprintf("corr-%d", i), ReplyTo: "reply.q",
						MessageID: fmt.Sprintf("mid-%d", i), Expiration: "60000", AppID: "goapp", Type: "t1",
					},
				}})
				if err != nil {
					t.Fatal(err)
				}
			}
			var got []struct {
				Body struct {
					N    int    `json:"n"`
					Text string `json:"text"`
					List []any  `json:"list"`
				} `json:"body"`
				ContentType     string         `json:"content_type"`
				ContentEncoding string         `json:"content_encoding"`
				Headers         map[string]any `json:"headers"`
				Properties      map[string]any `json:"properties"`
				DeliveryInfo    map[string]any `json:"delivery_info"`
				Redelivered     bool           `json:"redelivered"`
			}
			if err := json.Unmarshal([]byte(py.line(40*time.Second)), &got); err != nil {
				t.Fatal(err)
			}
			if len(got) != interopCount {
				t.Fatalf("python got %d messages, want %d", len(got), interopCount)
			}
			seen := map[int]bool{}
			for _, m := range got {
				n := m.Body.N
				seen[n] = true
				p := m.Properties
				if m.Body.Text != "héllo" || fmt.Sprint(m.Body.List) != "[1 2.5 <nil> true]" || m.ContentType != "application/json" ||
					m.ContentEncoding != "utf-8" || m.Headers["x-seq"] != float64(n) || m.Headers["x-str"] != "v" || m.Redelivered {
					t.Errorf("message %+v", m)
				}
				if p["priority"] != float64(n%10) || p["correlation_id"] != fmt.Sprintf("corr-%d", n) || p["reply_to"] != "reply.q" ||
					p["message_id"] != fmt.Sprintf("mid-%d", n) || p["expiration"] != "60000" || p["app_id"] != "goapp" ||
					p["type"] != "t1" || p["delivery_mode"] != float64(2) {
					t.Errorf("properties %v", p)
				}
				if m.DeliveryInfo["exchange"] != ex || m.DeliveryInfo["routing_key"] != tc.routingKey {
					t.Errorf("delivery_info %v", m.DeliveryInfo)
				}
			}
			if len(seen) != interopCount {
				t.Errorf("python got %d distinct messages", len(seen))
			}
		})
	}
}

// TestInteropPythonRestoresDeadGoConsumer: a Go consumer takes messages and
// dies without acking; Python kombu's restore_visible brings them back from
// the unacked records Go wrote.
func TestInteropPythonRestoresDeadGoConsumer(t *testing.T) {
	opts := isolated(t, url.Values{"visibility_timeout": {"1"}})
	prefix := opts.Get("global_keyprefix")
	s := openStore(t, opts)
	cleanupKeys(t, rawClient(t, s), prefix)
	ctx := testCtx(t)
	q := uniqueName(t, "q")
	const n = 20 // a batch large enough for the skiplist anchor
	for i := range n {
		env := newEnv(fmt.Sprintf(`{"n": %d}`, i), uint8(i%5*2))
		env.Exchange, env.RoutingKey = "", q
		env.Headers = map[string]any{"i": i}
		if err := s.Put(ctx, q, env); err != nil {
			t.Fatal(err)
		}
	}
	items, err := s.GetBatch(ctx, []string{q}, n, 0)
	if err != nil || len(items) != n {
		t.Fatalf("took %d: %v", len(items), err)
	}
	// The consumer "dies": nothing is acked or requeued.
	time.Sleep(1100 * time.Millisecond)
	py := startPython(t, "py_restore.py", map[string]any{
		"url": pyURL(t), "transport_options": map[string]any{"global_keyprefix": prefix, "visibility_timeout": 1},
		"queue": q, "count": n, "mode": "restore",
	})
	var got []struct {
		Body        map[string]any `json:"body"`
		Redelivered bool           `json:"redelivered"`
		Headers     map[string]any `json:"headers"`
	}
	if err := json.Unmarshal([]byte(py.line(40*time.Second)), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("python restored %d of %d", len(got), n)
	}
	for _, m := range got {
		if !m.Redelivered || m.Headers["redelivered"] != true {
			t.Errorf("restored message not marked redelivered: %+v", m)
		}
	}
	// Python's restore leaves the anchor alone.
	c := rawClient(t, s)
	if sc, err := c.ZScore(ctx, prefix+"unacked_index", anchorMember).Result(); err != nil || !math.IsInf(sc, 1) {
		t.Errorf("anchor score %v, %v; want +inf", sc, err)
	}
	if n := c.HLen(ctx, prefix+"unacked").Val(); n != 0 {
		t.Errorf("%d unacked entries left after Python's restore", n)
	}
}

// TestInteropGoRestoresDeadPythonConsumer: a Python kombu consumer takes
// messages and dies; the Go restore sweep brings them back.
func TestInteropGoRestoresDeadPythonConsumer(t *testing.T) {
	opts := isolated(t, url.Values{"visibility_timeout": {"1"}})
	prefix := opts.Get("global_keyprefix")
	s := openStore(t, opts)
	c := rawClient(t, s)
	cleanupKeys(t, c, prefix)
	ctx := testCtx(t)
	q := uniqueName(t, "q")
	const n = 5
	for i := range n {
		env := newEnv(fmt.Sprintf(`{"n": %d}`, i), 0)
		env.Exchange, env.RoutingKey = "", q
		if err := s.Put(ctx, q, env); err != nil {
			t.Fatal(err)
		}
	}
	py := startPython(t, "py_restore.py", map[string]any{
		"url": pyURL(t), "transport_options": map[string]any{"global_keyprefix": prefix, "visibility_timeout": 1},
		"queue": q, "count": n, "mode": "take_and_die",
	})
	py.line(30 * time.Second)
	if <-py.done; c.HLen(ctx, prefix+"unacked").Val() != n {
		t.Fatalf("python left %d unacked entries, want %d", c.HLen(ctx, prefix+"unacked").Val(), n)
	}
	time.Sleep(1100 * time.Millisecond)
	if r, err := s.RestoreVisible(ctx); err != nil || r != n {
		t.Fatalf("RestoreVisible = %d, %v", r, err)
	}
	items, err := s.GetBatch(ctx, []string{q}, n+1, time.Second)
	if err != nil || len(items) != n {
		t.Fatalf("got %d: %v", len(items), err)
	}
	for _, it := range items {
		if !it.Envelope.Redelivered {
			t.Error("not marked redelivered")
		}
	}
	_ = s.AckBatch(ctx, items)
	flush(t, s)
}

// TestInteropDefaultExchangeToPythonQueue: Go publishes to the default
// exchange (routing key = queue name) a queue that only a Python consumer
// declared, and that is empty. Celery binds each queue to the exchange of
// the same name, which Go finds; a plain kombu Queue(name) leaves nothing
// in redis at all.
func TestInteropDefaultExchangeToPythonQueue(t *testing.T) {
	for _, tc := range []struct{ name, exchange string }{
		{"celery-style", "same"},
		{"plain-queue", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.exchange == "" {
				t.Skip("needs virtual to route non-mandatory default-exchange publishes without asking " +
					"QueueStore.QueueExists, as Python kombu does: an empty queue that only a Python " +
					"Queue(name) consumer declared is otherwise unroutable and the message is dropped")
			}
			opts := isolated(t, nil)
			prefix := opts.Get("global_keyprefix")
			conn := dialDriver(t, opts)
			ch := openChannel(t, conn)
			ctx := testCtx(t)
			q := uniqueName(t, "q")
			ex := ""
			if tc.exchange == "same" {
				ex = q
			}
			cleanupKeys(t, rawClient(t, storeOf(t, conn)), prefix)
			py := startPython(t, "py_consume.py", map[string]any{
				"url": pyURL(t), "transport_options": map[string]any{"global_keyprefix": prefix},
				"exchange": ex, "type": "direct", "queue": q, "binding_key": q, "count": 3, "timeout": 10,
			})
			if l := py.line(30 * time.Second); l != "ready" {
				t.Fatalf("python: %s", l)
			}
			for i := range 3 {
				body, _ := json.Marshal(map[string]any{"n": i})
				if err := ch.Publish(ctx, &driver.Publishing{RoutingKey: q, Message: driver.Message{Body: body, ContentType: "application/json", ContentEncoding: "utf-8"}}); err != nil {
					t.Fatal(err)
				}
			}
			var got []map[string]any
			if err := json.Unmarshal([]byte(py.line(30*time.Second)), &got); err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 {
				t.Errorf("python got %d of 3 messages published to the default exchange", len(got))
			}
		})
	}
}

// TestInteropQueueDeletedByEitherLanguage: a delete made by Python kombu or
// by kombu-go leaves nothing that makes the other say the queue exists.
// Python deletes a queue that Go declared, bound and published to: Go's
// passive declare, on the declaring connection and on a fresh one, says
// not found, as Python's does, and no key kombu-go wrote for it remains.
// Go deletes a queue Python declared and published to: Python's passive
// declare says not found.
func TestInteropQueueDeletedByEitherLanguage(t *testing.T) {
	// No global_keyprefix: Python kombu's passive declare does not apply
	// it (its EXISTS is not among the commands it prefixes).
	conn := dialDriver(t, nil)
	ch := openChannel(t, conn)
	c := rawClient(t, storeOf(t, conn))
	ctx := testCtx(t)
	ex, q, q2 := uniqueName(t, "ex"), uniqueName(t, "q"), uniqueName(t, "q2")
	cleanupKeys(t, c, "", q, q2, bindingKeyPrefix+ex)
	must(t, ch.ExchangeDeclare(ctx, driver.Exchange{Name: ex, Type: "direct"}))
	_, err := ch.QueueDeclare(ctx, driver.Queue{Name: q})
	must(t, err)
	must(t, ch.QueueBind(ctx, driver.Binding{Queue: q, Exchange: ex, RoutingKey: "rk"}))
	must(t, ch.Publish(ctx, &driver.Publishing{Exchange: ex, RoutingKey: "rk", Message: driver.Message{Body: []byte("x")}}))
	pyArgs := map[string]any{
		"url": pyURL(t), "exchange": ex, "type": "direct", "queue": q, "binding_key": "rk", "mode": "delete",
	}
	if got := startPython(t, "py_queue.py", pyArgs).line(30 * time.Second); got != "not found" {
		t.Fatalf("python after its delete: %s", got)
	}
	if _, err := ch.QueueDeclare(ctx, driver.Queue{Name: q, Passive: true}); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("passive declare on the connection that declared it: %v, want ErrNotFound", err)
	}
	fresh := openChannel(t, dialDriver(t, nil))
	if _, err := fresh.QueueDeclare(ctx, driver.Queue{Name: q, Passive: true}); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("passive declare on another connection: %v, want ErrNotFound", err)
	}
	var left []string
	iter := c.Scan(ctx, 0, "*"+globEscape(q)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		left = append(left, iter.Val())
	}
	if len(left) != 0 {
		t.Errorf("keys left after python's delete: %q", left)
	}

	// The other way round.
	pyArgs["queue"], pyArgs["mode"] = q2, "passive"
	py := startPython(t, "py_produce.py", map[string]any{
		"url": pyURL(t), "exchange": ex, "type": "direct", "queue": q2, "binding_key": "rk2", "routing_key": "rk2", "count": 1,
	})
	py.line(30 * time.Second)
	<-py.done
	if got := startPython(t, "py_queue.py", pyArgs).line(30 * time.Second); got != "exists" {
		t.Fatalf("python before Go's delete: %s", got)
	}
	if _, err := fresh.QueueDelete(ctx, q2, false, false); err != nil {
		t.Fatal(err)
	}
	if got := startPython(t, "py_queue.py", pyArgs).line(30 * time.Second); got != "not found" {
		t.Errorf("python after Go's delete: %s", got)
	}
}
