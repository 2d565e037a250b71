package sqs

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu"
)

// The interop tests run Debian's Python kombu 5.2.4 (boto3 1.26) against
// local-aws-sqs (KOMBU_TEST_SQS_INTEROP_URL): boto3 1.26 speaks SQS's
// query protocol, which fauxqs does not.
const interopURLVar = "KOMBU_TEST_SQS_INTEROP_URL"

// interop returns the endpoint's URL for Go with a fresh queue name
// prefix, and the arguments the Python script needs to reach it.
func interop(t *testing.T) (goURL string, py map[string]any) {
	t.Helper()
	raw := testenv.ServerURL(t, interopURLVar)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	prefix := fmt.Sprintf("interop-%08x-", rand.Uint32())
	return raw + "&wait_time_seconds=1&visibility_timeout=30&queue_name_prefix=" + prefix,
		map[string]any{"host": u.Hostname(), "port": port, "prefix": prefix}
}

// runPython runs testdata/kombu_sqs.py with args and returns its JSON
// output lines.
func runPython(t *testing.T, args map[string]any) []map[string]any {
	t.Helper()
	py := testenv.Python(t)
	a, _ := json.Marshal(args)
	script, err := filepath.Abs(filepath.Join("testdata", "kombu_sqs.py"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-I", script, string(a))
	cmd.Dir = t.TempDir()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python %s: %v\nstdout:\n%s\nstderr:\n%s", args["mode"], err, out, stderr.String())
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("python printed %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

func with(base map[string]any, kv ...any) map[string]any {
	m := make(map[string]any, len(base)+len(kv)/2)
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func dialInterop(t *testing.T, raw string) *kombu.Connection {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := kombu.Dial(ctx, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Python kombu publishes (base64 envelope on a queue whose name it
// translated, FIFO group id in the properties); kombu-go consumes,
// requeues one (ChangeMessageVisibility 0: it comes back counted) and
// acks (DeleteMessage: the queue ends empty).
func TestInteropPythonProducerGoConsumer(t *testing.T) {
	goURL, py := interop(t)
	const queue = "py.to:go"
	var msgs []map[string]any
	for i := range 4 {
		msgs = append(msgs, map[string]any{"body": map[string]any{"n": i, "text": "héllo"},
			"headers": map[string]any{"x-seq": i}, "properties": map[string]any{"correlation_id": fmt.Sprint("c", i)}})
	}
	if out := runPython(t, with(py, "mode", "produce", "queue", queue, "messages", msgs)); out[0]["sent"] != 4.0 {
		t.Fatalf("python: %v", out)
	}
	fifoMsg := []map[string]any{{"body": "in a group", "properties": map[string]any{"MessageGroupId": "g1", "MessageDeduplicationId": "d1"}}}
	runPython(t, with(py, "mode", "produce", "queue", "py.jobs.fifo", "messages", fifoMsg))

	conn := dialInterop(t, goURL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sq, err := conn.SimpleQueue(ctx, queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	requeued := false
	for got := 0; got < 4; {
		m, err := sq.Get(ctx)
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		var body struct {
			N    int
			Text string
		}
		if err := m.Decode(&body); err != nil || body.Text != "héllo" || m.ContentType != "application/json" {
			t.Fatalf("body %s (%s): %v", m.Body, m.ContentType, err)
		}
		if seq, _ := m.Headers["x-seq"].(int64); int(seq) != body.N || m.Properties.CorrelationID != fmt.Sprint("c", body.N) {
			t.Errorf("message %d: headers %v, correlation id %q", body.N, m.Headers, m.Properties.CorrelationID)
		}
		if body.N == 0 && !requeued {
			if m.Redelivered || m.DeliveryCount() != 1 {
				t.Errorf("first delivery: redelivered %v, count %d", m.Redelivered, m.DeliveryCount())
			}
			requeued = true
			if err := m.Requeue(ctx); err != nil {
				t.Fatal(err)
			}
			continue
		}
		// local-aws-sqs overcounts receives (3 here); the exact count is
		// checked on fauxqs (TestRequeueCountsReceives).
		if body.N == 0 && (!m.Redelivered || m.DeliveryCount() < 2) {
			t.Errorf("requeued message: redelivered %v, count %d; want true, >= 2 (SQS's receive count)", m.Redelivered, m.DeliveryCount())
		}
		if err := m.Ack(ctx); err != nil {
			t.Fatal(err)
		}
		got++
	}
	fq, err := conn.SimpleQueue(ctx, "py.jobs.fifo", nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := fq.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := m.Payload(); s != "in a group" || m.Properties.Extra["MessageGroupId"] != "g1" {
		t.Errorf("FIFO message %v with properties %v", s, m.Properties.Extra)
	}
	_ = m.Ack(ctx)
	if n, err := sq.Len(ctx); err != nil || n != 0 {
		t.Errorf("after the acks the queue holds %d (%v)", n, err)
	}
}

// kombu-go publishes; Python kombu reads the envelope, requeues one
// message (it comes back with a new receipt handle as delivery tag) and
// acks the others, which deletes them.
func TestInteropGoProducerPythonConsumer(t *testing.T) {
	goURL, py := interop(t)
	const queue = "go.to:py"
	conn := dialInterop(t, goURL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sq, err := conn.SimpleQueue(ctx, queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := sq.Put(ctx, map[string]any{"n": i}, &kombu.PublishOptions{Headers: map[string]any{"x-seq": i}, CorrelationID: fmt.Sprint("g", i)}); err != nil {
			t.Fatal(err)
		}
	}
	fq, err := conn.SimpleQueue(ctx, "go.jobs.fifo", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := fq.Put(ctx, "grouped", &kombu.PublishOptions{Properties: map[string]any{"MessageGroupId": "g7"}}); err != nil {
		t.Fatal(err)
	}
	out := runPython(t, with(py, "mode", "consume", "queue", queue, "count", 4, "requeue", []string{`{"n": 2}`}))
	if len(out) != 5 {
		t.Fatalf("python saw %d deliveries, want 5 (one requeued): %v", len(out), out)
	}
	tags := map[string]bool{}
	var acked []float64
	for _, d := range out {
		body := d["body"].(map[string]any)
		n := body["n"].(float64)
		h := d["headers"].(map[string]any)
		props := d["properties"].(map[string]any)
		if h["x-seq"] != n || props["correlation_id"] != fmt.Sprint("g", n) || d["content_type"] != "application/json" {
			t.Errorf("python got %v", d)
		}
		tag, _ := d["delivery_tag"].(string)
		if tag == "" || tags[tag] {
			t.Errorf("delivery tag %q: want a fresh receipt handle per delivery", tag)
		}
		tags[tag] = true
		if d["action"] == "ack" {
			acked = append(acked, n)
		}
	}
	if fmt.Sprint(acked) != "[0 1 3 2]" {
		t.Errorf("python acked %v, want [0 1 3 2] (2 requeued to the back)", acked)
	}
	if n, err := sq.Len(ctx); err != nil || n != 0 {
		t.Errorf("after Python's acks the queue holds %d (%v)", n, err)
	}
	fout := runPython(t, with(py, "mode", "consume", "queue", "go.jobs.fifo", "count", 1))
	if fout[0]["body"] != "grouped" || fout[0]["properties"].(map[string]any)["MessageGroupId"] != "g7" {
		t.Errorf("python read the FIFO message as %v", fout[0])
	}
}
