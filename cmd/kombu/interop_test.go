package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/testenv"
)

// pythonSide publishes or takes one message with Python kombu's
// SimpleQueue: what a Celery-era producer or consumer sees.
const pythonSide = `
import json, sys, kombu
url, queue, mode = sys.argv[1:4]
with kombu.Connection(url) as conn:
    q = conn.SimpleQueue(queue)
    if mode == "put":
        q.put({"task": "add", "args": [2, 3]}, serializer="json", compression="zlib", headers={"retries": 2})
    else:
        m = q.get(timeout=10)
        print(json.dumps({"payload": m.payload, "headers": m.headers, "content_type": m.content_type}))
        m.ack()
    q.close()
`

func runPython(t *testing.T, args ...string) string {
	t.Helper()
	py := testenv.Python(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, append([]string{"-I", "-c", pythonSide}, args...)...)
	cmd.Dir = t.TempDir() // no kombu/ folder beside it
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python %v: %v\n%s", args[2:], err, out)
	}
	return string(out)
}

// TestPythonKombuInterop: the command reads what Python kombu sends
// (compressed JSON, headers) and Python kombu reads what it publishes.
func TestPythonKombuInterop(t *testing.T) {
	for _, env := range []string{testenv.RedisURL, testenv.AMQPURL} {
		t.Run(strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(env, "KOMBU_TEST_"), "_URL")), func(t *testing.T) {
			url := testenv.ServerURL(t, env)
			q := uniqueName(t, "py")
			t.Cleanup(func() {
				runKombu(t, "", nil, "delete", url, "queue", q)
				runKombu(t, "", nil, "delete", url, "exchange", q)
			})
			runPython(t, url, q, "put")
			line := mustKombu(t, "", "consume", url, q, "--ack", "--count", "1", "--timeout", "10s").stdout
			var r record
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("%v: %q", err, line)
			}
			if string(r.Payload) != `{"args":[2,3],"task":"add"}` || r.PayloadError != "" {
				t.Errorf("payload of Python's message: %s (error %q)", r.Payload, r.PayloadError)
			}
			if !strings.Contains(string(r.Headers), `"compression":"application/x-gzip"`) || !strings.Contains(string(r.Headers), `"retries":2`) {
				t.Errorf("headers of Python's message: %s", r.Headers)
			}

			mustKombu(t, "", "publish", url, "--queue", q, "-H", "retries=3", `{"task": "mul", "args": [4, 5]}`)
			var got struct {
				Payload     map[string]any `json:"payload"`
				Headers     map[string]any `json:"headers"`
				ContentType string         `json:"content_type"`
			}
			out := runPython(t, url, q, "get")
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%v: %q", err, out)
			}
			if got.Payload["task"] != "mul" || got.Headers["retries"] != float64(3) || got.ContentType != "application/json" {
				t.Errorf("Python read %s", out)
			}
		})
	}
}
