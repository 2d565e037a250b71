package beanstalk

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu"
)

// kombu30 runs testdata/kombu30.py, kombu 3.0's beanstalk transport
// re-enacted on Debian's kombu 5 (which builds and reads the envelopes).
func kombu30(t *testing.T, args ...string) []byte {
	t.Helper()
	script, err := filepath.Abs("testdata/kombu30.py")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.Python(t), append([]string{"-I", script}, args...)...)
	cmd.Dir = t.TempDir() // no kombu/ folder of this repository on the path
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("kombu30.py %v: %v\n%s", args, err, ee.Stderr)
		}
		t.Fatal(err)
	}
	return out
}

// A job kombu-go puts is read by kombu's own envelope code, as kombu
// 3.0's beanstalk transport read it: body, headers, content type, and the
// priority in delivery_info and on the job.
func TestInteropKombuReadsGoJobs(t *testing.T) {
	raw := serverURL(t)
	ctx, tube := testCtx(t), tubeName(t)
	conn, err := kombu.Dial(ctx, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Publish(ctx, map[string]any{"n": 1, "text": "héllo"}, &kombu.PublishOptions{
		RoutingKey: tube, Priority: 4, Headers: map[string]any{"x-from": "go"}})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Body        string         `json:"body"`
		ContentType string         `json:"content_type"`
		Headers     map[string]any `json:"headers"`
		Priority    int            `json:"priority"`
		JobPri      int            `json:"job_pri"`
		RoutingKey  string         `json:"routing_key"`
	}
	if err := json.Unmarshal(kombu30(t, "get", serverOptions(t).Addr, tube), &got); err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(got.Body), &body); err != nil || body["text"] != "héllo" || body["n"] != 1.0 {
		t.Errorf("body %q (%v)", got.Body, err)
	}
	if got.ContentType != "application/json" || got.Headers["x-from"] != "go" || got.Priority != 4 || got.JobPri != 4 ||
		got.RoutingKey != tube {
		t.Errorf("kombu read %+v", got)
	}
}

// A job put as kombu 3.0 put it reaches a kombu-go consumer whole.
func TestInteropGoReadsKombuJobs(t *testing.T) {
	raw := serverURL(t)
	ctx, tube := testCtx(t), tubeName(t)
	spec, _ := json.Marshal(map[string]any{"body": `{"x": 1}`, "priority": 2, "content_type": "application/json",
		"headers": map[string]any{"x-from": "python"}})
	kombu30(t, "put", serverOptions(t).Addr, tube, string(spec))
	conn, err := kombu.Dial(ctx, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q := kombu.NewQueue(tube, kombu.DefaultExchange, "")
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m, err := c.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := m.Decode(&body); err != nil || fmt.Sprint(body["x"]) != "1" {
		t.Errorf("body %s decoded as %v (%v)", m.Body, body, err)
	}
	if m.ContentType != "application/json" || m.Headers["x-from"] != "python" || m.Properties.Priority != 2 || m.Redelivered ||
		m.RoutingKey != tube {
		t.Errorf("received %+v", m)
	}
	if err := m.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := q.Len(ctx, c.Channel()); err != nil || n != 0 {
		t.Errorf("the tube holds %d jobs after the ack (%v)", n, err)
	}
}
