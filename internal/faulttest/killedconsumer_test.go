package faulttest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu"
	_ "github.com/kombu-go/kombu/transport/memory"
)

// childLines runs the consumer process's loop in this process on a memory
// broker holding n messages and returns what it printed.
func childLines(t *testing.T, n int, o childOrders) []string {
	t.Helper()
	o.URL = "memory://killedconsumer-" + strings.ReplaceAll(t.Name(), "/", "-")
	o.Queue = "q"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, _ := dialDeclared(t, ctx, o.URL, o.Queue)
	defer conn.Close()
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := NewLedger(n)
	for seq := range n {
		if err := p.Publish(ctx, l.Body(seq), &kombu.PublishOptions{RoutingKey: o.Queue, ContentType: "application/data"}); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	child, err := consumeAndHold(o, &out)
	if child != nil {
		defer child.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(out.String()), "\n")
}

func count(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// TestConsumerProcessAcksThenHolds: the consumer process acks Acks
// messages one by one (each "acked" right after its "delivered"), then
// receives Hold more without acking and ends with "holding".
func TestConsumerProcessAcksThenHolds(t *testing.T) {
	lines := childLines(t, 30, childOrders{Prefetch: 5, Acks: 12, Hold: 5})
	if got := count(lines, "delivered "); got != 17 {
		t.Errorf("%d deliveries, want 12 acked + 5 held", got)
	}
	if got := count(lines, "acked "); got != 12 {
		t.Errorf("%d acks, want 12", got)
	}
	if lines[len(lines)-1] != "holding" {
		t.Errorf("last line %q, want holding", lines[len(lines)-1])
	}
	for i, l := range lines[:24] { // 12 × (delivered, acked)
		want := "delivered "
		if i%2 == 1 {
			want = "acked "
		}
		if !strings.HasPrefix(l, want) {
			t.Fatalf("line %d %q, want %s...", i, l, want)
		}
	}
}

// TestConsumerProcessAcksMultiple: with AckMultipleEvery 4, the acks come
// in groups of 4 after every fourth delivery, covering those four.
func TestConsumerProcessAcksMultiple(t *testing.T) {
	lines := childLines(t, 30, childOrders{Prefetch: 10, Acks: 8, Hold: 3, Every: 4})
	want := []string{"delivered", "delivered", "delivered", "delivered", "acked", "acked", "acked", "acked",
		"delivered", "delivered", "delivered", "delivered", "acked", "acked", "acked", "acked",
		"delivered", "delivered", "delivered", "holding"}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i, w := range want {
		if word, _, _ := strings.Cut(lines[i], " "); word != w {
			t.Fatalf("line %d %q, want %s...:\n%s", i, lines[i], w, strings.Join(lines, "\n"))
		}
	}
	// The acked bodies are the delivered ones, in order.
	for i := range 4 {
		if strings.TrimPrefix(lines[4+i], "acked ") != strings.Fields(lines[i])[1] {
			t.Errorf("ack %d covers %q, not the delivery %q", i, lines[4+i], lines[i])
		}
	}
}
