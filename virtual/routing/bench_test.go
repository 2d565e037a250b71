package routing

import (
	"fmt"
	"testing"

	"github.com/kombu-go/kombu/kombu/driver"
)

var benchTopicKeys = []struct{ binding, routing string }{
	{"celery.#", "celery.task.add"},
	{"log.*.info", "log.app.info"},
	{"#.error", "svc.db.pool.error"},
	{"a.#.b.c", "a.x.y.b.z.b.c"},
	{"orders.eu", "orders.eu"},
}

func BenchmarkTopicMatch(b *testing.B) {
	for _, k := range benchTopicKeys {
		tp := CompileTopic(k.binding)
		b.Run("compiled/"+k.binding, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !tp.Match(k.routing) {
					b.Fatal("no match")
				}
			}
		})
		b.Run("uncompiled/"+k.binding, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !TopicMatch(k.binding, k.routing) {
					b.Fatal("no match")
				}
			}
		})
	}
}

// benchBindings returns n bindings to n queues with keys made by key.
func benchBindings(n int, key func(i int) string) []driver.Binding {
	bs := make([]driver.Binding, n)
	for i := range bs {
		bs[i] = driver.Binding{Queue: fmt.Sprintf("queue.%d", i), Exchange: "x", RoutingKey: key(i)}
	}
	return bs
}

func BenchmarkRouteDirect(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		bs := benchBindings(n, func(i int) string { return fmt.Sprintf("key.%d", i%5) })
		r := NewRouter()
		b.Run(fmt.Sprintf("bindings=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			dst := make([]string, 0, n)
			for b.Loop() {
				dst, _ = r.RouteAppend(dst[:0], "direct", bs, "key.3", nil)
			}
		})
	}
}

func BenchmarkRouteTopic(b *testing.B) {
	patterns := []string{"celery.#", "log.*.info", "#.error", "log.#", "metrics.*", "a.b.c"}
	for _, n := range []int{1, 10, 100} {
		bs := benchBindings(n, func(i int) string { return patterns[i%len(patterns)] })
		r := NewRouter()
		b.Run(fmt.Sprintf("bindings=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			dst := make([]string, 0, n)
			for b.Loop() {
				dst, _ = r.RouteAppend(dst[:0], "topic", bs, "log.app.info", nil)
			}
		})
	}
}

func BenchmarkRouteHeaders(b *testing.B) {
	bs := make([]driver.Binding, 10)
	for i := range bs {
		bs[i] = driver.Binding{Queue: fmt.Sprintf("queue.%d", i), Exchange: "x",
			Args: map[string]any{"x-match": "all", "format": "pdf", "shard": i % 3}}
	}
	headers := map[string]any{"format": "pdf", "shard": int64(1), "other": "x"}
	r := NewRouter()
	b.ReportAllocs()
	dst := make([]string, 0, len(bs))
	for b.Loop() {
		dst, _ = r.RouteAppend(dst[:0], "headers", bs, "", headers)
	}
}
