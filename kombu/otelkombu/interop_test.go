package otelkombu_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu"
)

// runPython runs testdata/py_trace.py with args and returns its last
// stdout line.
func runPython(t *testing.T, args map[string]string) string {
	t.Helper()
	py := testenv.Python(t)
	a, _ := json.Marshal(args)
	script, err := filepath.Abs(filepath.Join("testdata", "py_trace.py"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-I", script, string(a))
	cmd.Dir = t.TempDir()
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("python %s: %v\n%s%s", args["mode"], err, out, stderr)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// A trace started by a Python producer (headers in the format of
// OpenTelemetry's Python instrumentation) continues in a Go handler, and a
// Go producer's trace context is read by a Python consumer with the W3C
// rules of the Python propagator, on redis and RabbitMQ.
func TestTraceInteropWithPython(t *testing.T) {
	for _, env := range []string{"KOMBU_TEST_REDIS_URL", "KOMBU_TEST_AMQP_URL"} {
		t.Run(strings.TrimSuffix(strings.TrimPrefix(env, "KOMBU_TEST_"), "_URL"), func(t *testing.T) {
			url := testenv.ServerURL(t, env)
			pythonToGo(t, url)
			goToPython(t, url)
		})
	}
}

func pythonToGo(t *testing.T, url string) {
	tel := newTelemetry(t)
	queue := fmt.Sprintf("otel-py2go-%d-%d", time.Now().UnixNano(), seq.Add(1))
	const pyTrace, pySpan = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	if got := runPython(t, map[string]string{"url": url, "queue": queue, "mode": "produce",
		"traceparent": "00-" + pyTrace + "-" + pySpan + "-01", "tracestate": "rojo=00f067aa0ba902b7"}); got != "sent" {
		t.Fatalf("python said %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := kombu.Dial(ctx, url, &kombu.Options{Observer: tel.obs})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q := kombu.NewQueue(queue, kombu.DefaultExchange, queue)
	q.AutoDelete = true // as the Python peer declares it (durable, auto-delete)
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var handler trace.SpanContext
	cctx, stop := context.WithCancel(ctx)
	_ = c.Consume(cctx, kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
		handler = trace.SpanContextFromContext(ctx)
		stop()
		return nil
	}))
	if ctx.Err() != nil {
		t.Fatal("no message from python")
	}
	if handler.TraceID().String() != pyTrace || handler.TraceState().Get("rojo") != "00f067aa0ba902b7" {
		t.Errorf("Go handler in trace %s (state %q), want python's %s", handler.TraceID(), handler.TraceState(), pyTrace)
	}
	process := tel.span(t, "process "+queue)
	if process.Parent.SpanID().String() != pySpan || !process.Parent.IsRemote() {
		t.Errorf("process span parent %s, want python's span %s", process.Parent.SpanID(), pySpan)
	}
}

func goToPython(t *testing.T, url string) {
	tel := newTelemetry(t)
	queue := fmt.Sprintf("otel-go2py-%d-%d", time.Now().UnixNano(), seq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := kombu.Dial(ctx, url, &kombu.Options{Observer: tel.obs})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q := kombu.NewQueue(queue, kombu.DefaultExchange, queue)
	q.AutoDelete = true // as the Python peer declares it (durable, auto-delete)
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 1)
	go func() { done <- runPython(t, map[string]string{"url": url, "queue": queue, "mode": "consume"}) }()
	// The Python consumer declares the auto-delete queue; publish once it
	// exists, so that the message is not dropped on the way.
	deadline := time.Now().Add(20 * time.Second)
	for {
		ch, err := conn.Channel(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, derr := q.Declare(ctx, ch)
		_ = ch.Close()
		if derr == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(derr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts, _ := trace.ParseTraceState("kombu=go")
	parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled, TraceState: ts})
	pctx := trace.ContextWithSpanContext(ctx, parent)
	if err := p.Publish(pctx, map[string]any{"n": 1}, &kombu.PublishOptions{RoutingKey: queue}); err != nil {
		t.Fatal(err)
	}
	var got struct{ TraceID, SpanID, Flags, Tracestate, Error string }
	line := <-done
	if err := json.Unmarshal([]byte(strings.ReplaceAll(line, "_id", "id")), &got); err != nil {
		t.Fatalf("python said %q: %v", line, err)
	}
	publish := tel.span(t, "publish "+queue)
	if got.Error != "" || got.TraceID != parent.TraceID().String() || got.SpanID != publish.SpanContext.SpanID().String() ||
		got.Flags != "01" || got.Tracestate != "kombu=go" {
		t.Errorf("python read %+v; want trace %s, parent span %s (the publish span), flags 01, tracestate kombu=go",
			got, parent.TraceID(), publish.SpanContext.SpanID())
	}
}
