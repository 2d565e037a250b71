package sqltest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

const interopCount = 20

// Interop proves that Python kombu's sqlalchemy transport and kombu-go
// share queues on one database, both ways, and that Python's view of rows
// kombu-go holds is right: leased rows are invisible to Python, restored
// on Close, and gone from Python's qsize once acked. goURL and pyURL name
// the same database for each side.
func Interop(t *testing.T, goURL, pyURL string) {
	t.Run("PythonToGo", func(t *testing.T) { pythonToGo(t, goURL, pyURL) })
	t.Run("GoToPython", func(t *testing.T) { goToPython(t, goURL, pyURL) })
	t.Run("PythonSeesLeases", func(t *testing.T) { pythonSeesLeases(t, goURL, pyURL) })
}

func queueName(t *testing.T) string {
	return fmt.Sprintf("interop.%s.%08x", t.Name(), rand.Uint32())
}

func dial(t testing.TB, raw string) *kombu.Connection {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kombu.Dial(ctx, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func pythonToGo(t *testing.T, goURL, pyURL string) {
	q := queueName(t)
	python(t, map[string]any{"mode": "publish", "url": pyURL, "queue": q, "n": interopCount})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn := dial(t, goURL)
	sq, err := conn.SimpleQueue(ctx, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	for i := range interopCount {
		m, err := sq.Get(ctx)
		if err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
		var body struct {
			N    int    `json:"n"`
			Text string `json:"text"`
			List []any  `json:"list"`
		}
		if err := m.Decode(&body); err != nil {
			t.Fatalf("decode %q: %v", m.Body, err)
		}
		if body.N != i || body.Text != "héllo" || fmt.Sprint(body.List) != "[1 2.5 <nil> true]" {
			t.Errorf("message %d: body %s (Python's FIFO order broken or content changed)", i, m.Body)
		}
		if m.ContentType != "application/json" || m.Properties.CorrelationID != "py-"+strconv.Itoa(i) || fmt.Sprint(m.Headers["x-seq"]) != strconv.Itoa(i) {
			t.Errorf("message %d: content type %q, correlation id %q, headers %v", i, m.ContentType, m.Properties.CorrelationID, m.Headers)
		}
		if err := m.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Acked rows are deleted: Python's qsize, which counts every row, is 0.
	if got := python(t, map[string]any{"mode": "qsize", "url": pyURL, "queue": q}); got[0] != "0" {
		t.Errorf("Python's qsize after kombu-go acked everything: %v, want 0", got)
	}
}

func goToPython(t *testing.T, goURL, pyURL string) {
	q := queueName(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn := dial(t, goURL)
	sq, err := conn.SimpleQueue(ctx, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range interopCount {
		body := map[string]any{"n": i, "text": "héllo"}
		if err := sq.Put(ctx, body, &kombu.PublishOptions{Headers: map[string]any{"x-seq": i}, CorrelationID: "go-" + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	_ = sq.Close()
	lines := python(t, map[string]any{"mode": "consume", "url": pyURL, "queue": q, "n": interopCount})
	if len(lines) != interopCount {
		t.Fatalf("Python consumed %d messages, want %d: %v", len(lines), interopCount, lines)
	}
	for i, l := range lines {
		var got struct {
			Payload struct {
				N    int    `json:"n"`
				Text string `json:"text"`
			} `json:"payload"`
			Headers       map[string]any `json:"headers"`
			CorrelationID string         `json:"correlation_id"`
			ContentType   string         `json:"content_type"`
		}
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatalf("python line %q: %v", l, err)
		}
		if got.Payload.N != i || got.Payload.Text != "héllo" || got.CorrelationID != "go-"+strconv.Itoa(i) ||
			got.ContentType != "application/json" || fmt.Sprint(got.Headers["x-seq"]) != strconv.Itoa(i) {
			t.Errorf("Python got %s for message %d", l, i)
		}
	}
}

func pythonSeesLeases(t *testing.T, goURL, pyURL string) {
	q := queueName(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn := dial(t, goURL)
	sq, err := conn.SimpleQueue(ctx, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sq.Put(ctx, "leased", nil); err != nil {
		t.Fatal(err)
	}
	m, err := sq.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = m // held, not acked
	if got := python(t, map[string]any{"mode": "get_nowait", "url": pyURL, "queue": q}); got[0] != "empty" {
		t.Fatalf("Python received a message kombu-go holds: %v", got)
	}
	// Closing returns the unacked message; Python then receives it.
	_ = sq.Close()
	_ = conn.Close()
	if got := python(t, map[string]any{"mode": "get_nowait", "url": pyURL, "queue": q}); got[0] != `{"payload": "leased"}` {
		t.Fatalf("after kombu-go closed with the message unacked, Python got %v, want it", got)
	}
}
