package routing

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/kombu-go/kombu/kombu/driver"
)

func bind(queue, key string) driver.Binding {
	return driver.Binding{Queue: queue, Exchange: "x", RoutingKey: key}
}

func bindArgs(queue string, args map[string]any) driver.Binding {
	return driver.Binding{Queue: queue, Exchange: "x", Args: args}
}

func TestRoute(t *testing.T) {
	topicBindings := []driver.Binding{
		bind("q.info", "log.*.info"),
		bind("q.all", "log.#"),
		bind("q.literal", "log.app.info"),
		bind("q.info", "log.app.*"), // second binding of q.info
		bind("q.other", "metrics.#"),
		bind("q.star", "log.*"),
	}
	headerBindings := []driver.Binding{
		bindArgs("h.pdf", map[string]any{"format": "pdf"}),
		bindArgs("h.any", map[string]any{"x-match": "any", "format": "zip", "type": "report"}),
		bindArgs("h.every", nil),
		bindArgs("h.pdf", map[string]any{"type": "report"}),
	}
	cases := []struct {
		name, typ string
		bindings  []driver.Binding
		key       string
		headers   map[string]any
		want      []string
	}{
		{"direct exact", "direct", []driver.Binding{bind("a", "k"), bind("b", "k2"), bind("c", "k")}, "k", nil, []string{"a", "c"}},
		{"direct no wildcards", "direct", []driver.Binding{bind("a", "#"), bind("b", "*")}, "k", nil, nil},
		{"direct wildcard key is literal", "direct", []driver.Binding{bind("a", "#")}, "#", nil, []string{"a"}},
		{"direct dedup", "direct", []driver.Binding{bind("a", "k"), bind("a", "k"), bind("b", "k")}, "k", nil, []string{"a", "b"}},
		{"direct no match", "direct", []driver.Binding{bind("a", "k")}, "K", nil, nil},
		{"direct empty key", "direct", []driver.Binding{bind("a", ""), bind("b", "k")}, "", nil, []string{"a"}},
		{"topic", "topic", topicBindings, "log.app.info", nil, []string{"q.info", "q.all", "q.literal"}},
		{"topic hash zero words", "topic", topicBindings, "log", nil, []string{"q.all"}},
		{"topic star one word", "topic", topicBindings, "log.x", nil, []string{"q.all", "q.star"}},
		{"topic AMQP not kombu", "topic", topicBindings, "log.a.b.info", nil, []string{"q.all"}},
		{"topic none", "topic", topicBindings, "other", nil, nil},
		{"fanout", "fanout", []driver.Binding{bind("a", "x"), bind("b", ""), bind("a", "y"), bind("c", "#")}, "ignored", nil, []string{"a", "b", "c"}},
		{"fanout empty", "fanout", nil, "", nil, nil},
		{"headers", "headers", headerBindings, "ignored", map[string]any{"format": "pdf", "type": "report"}, []string{"h.pdf", "h.any", "h.every"}},
		{"headers nil headers", "headers", headerBindings, "", nil, []string{"h.every"}},
		{"headers second binding of a queue", "headers", headerBindings, "", map[string]any{"type": "report"}, []string{"h.any", "h.every", "h.pdf"}},
	}
	r := NewRouter()
	for _, c := range cases {
		got, err := r.Route(c.typ, c.bindings, c.key, c.headers)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: Route = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestRouteUnknownType(t *testing.T) {
	var r Router // the zero value works
	for _, typ := range []string{"", "Direct", "TOPIC", "x-consistent-hash", "match"} {
		got, err := r.Route(typ, []driver.Binding{bind("a", "k")}, "k", nil)
		if !errors.Is(err, driver.ErrInvalidArgument) {
			t.Errorf("Route(%q) error = %v, want ErrInvalidArgument", typ, err)
		}
		if got != nil {
			t.Errorf("Route(%q) = %q, want nil", typ, got)
		}
		dst := []string{"keep"}
		got, err = r.RouteAppend(dst, typ, nil, "k", nil)
		if err == nil || len(got) != 1 || got[0] != "keep" {
			t.Errorf("RouteAppend(%q) = %q, %v", typ, got, err)
		}
	}
}

func TestValidExchangeType(t *testing.T) {
	for typ, want := range map[string]bool{
		"direct": true, "topic": true, "fanout": true, "headers": true,
		"": false, "Direct": false, "x-delayed-message": false, "match": false, "direct ": false,
	} {
		if got := ValidExchangeType(typ); got != want {
			t.Errorf("ValidExchangeType(%q) = %v", typ, got)
		}
	}
}

func TestRouteAppend(t *testing.T) {
	r := NewRouter()
	bindings := []driver.Binding{bind("a", "k"), bind("b", "k"), bind("a", "k")}
	// What dst holds already is kept and does not take part in dedup.
	dst := make([]string, 1, 8)
	dst[0] = "a"
	got, err := r.RouteAppend(dst, "direct", bindings, "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "a", "b"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("RouteAppend = %q, want %q", got, want)
	}
	if &got[0] != &dst[0] {
		t.Fatal("RouteAppend did not reuse dst")
	}
	allocs := testing.AllocsPerRun(100, func() {
		got, _ = r.RouteAppend(got[:0], "direct", bindings, "k", nil)
		got, _ = r.RouteAppend(got[:0], "topic", bindings, "k", nil)
		got, _ = r.RouteAppend(got[:0], "fanout", bindings, "k", nil)
	})
	if allocs != 0 {
		t.Fatalf("RouteAppend into a reused slice allocates %v times", allocs)
	}
}

func TestRouteTopicDoesNotAllocateOnceCached(t *testing.T) {
	r := NewRouter()
	bindings := []driver.Binding{bind("a", "a.*.c"), bind("b", "a.#"), bind("c", "#.c"), bind("d", "x.y")}
	dst := make([]string, 0, 8)
	allocs := testing.AllocsPerRun(100, func() {
		dst, _ = r.RouteAppend(dst[:0], "topic", bindings, "a.b.c", nil)
	})
	if allocs != 0 {
		t.Fatalf("topic routing allocates %v times", allocs)
	}
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(dst, want) {
		t.Fatalf("got %q, want %q", dst, want)
	}
}

// TestRouteManyQueues crosses the point where dedup switches from a scan
// to a set.
func TestRouteManyQueues(t *testing.T) {
	var bindings []driver.Binding
	var want []string
	for i := range 3 * dedupBloomMax {
		q := fmt.Sprintf("q%03d", i)
		bindings = append(bindings, bind(q, "k"))
		want = append(want, q)
	}
	// Every queue again, in reverse, plus some repeats in the middle.
	for i := len(want) - 1; i >= 0; i-- {
		bindings = append(bindings, bind(want[i], "k"))
	}
	bindings = append(bindings[:10:10], append([]driver.Binding{bind("q005", "k"), bind("q050", "k")}, bindings[10:]...)...)
	got, err := NewRouter().Route("fanout", bindings, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	// q050 moves to position 10 (its first binding); the rest keep order.
	wantOrder := append(append(append([]string{}, want[:10]...), "q050"), without(want[10:], "q050")...)
	if !reflect.DeepEqual(got, wantOrder) {
		t.Fatalf("got %d queues %q\nwant %d %q", len(got), got, len(wantOrder), wantOrder)
	}
}

func without(s []string, x string) []string {
	var out []string
	for _, v := range s {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

func TestRouterCacheIsBounded(t *testing.T) {
	r := NewRouter()
	for i := range maxCachedTopics + 50 {
		key := fmt.Sprintf("k%d.#", i)
		got, err := r.Route("topic", []driver.Binding{bind("q", key)}, fmt.Sprintf("k%d.x", i), nil)
		if err != nil || len(got) != 1 {
			t.Fatalf("key %q: %q, %v", key, got, err)
		}
	}
	if n := r.cachedTopics(); n > maxCachedTopics || n == 0 {
		t.Fatalf("cache holds %d keys, limit %d", n, maxCachedTopics)
	}
	// Keys without wildcard characters never enter the cache.
	r2 := NewRouter()
	r2.Route("topic", []driver.Binding{bind("q", "a.b")}, "a.b", nil)
	if n := r2.cachedTopics(); n != 0 {
		t.Fatalf("literal key cached: %d", n)
	}
}

func TestRouterConcurrent(t *testing.T) {
	r := NewRouter()
	bindings := []driver.Binding{
		bind("a", "a.*.c"), bind("b", "a.#"), bind("c", "#.c"), bind("a", "#"),
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var dst []string
			for i := range 2000 {
				// Fresh keys too (16000 in all), so that goroutines race
				// on cache inserts and on the cache reset.
				key := fmt.Sprintf("a.%d.c", (i*7+g)%50)
				extra := bind("d", fmt.Sprintf("a.%d.#", i+g*2000))
				var err error
				dst, err = r.RouteAppend(dst[:0], "topic", append(bindings[:4:4], extra), key, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if len(dst) < 3 || dst[0] != "a" || dst[1] != "b" || dst[2] != "c" {
					t.Errorf("key %q: %q", key, dst)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestRouteDedupTiers checks deduplication around the boundaries of its
// scan, Bloom filter and map tiers against a naive implementation.
func TestRouteDedupTiers(t *testing.T) {
	r := NewRouter()
	for _, n := range []int{1, 2, dedupScanMax - 1, dedupScanMax, dedupScanMax + 1,
		dedupBloomMax - 1, dedupBloomMax, dedupBloomMax + 1, 1000} {
		var bindings []driver.Binding
		for i := range n {
			// Each queue twice, the second time a few bindings later, and
			// every fifth queue a third time much later.
			bindings = append(bindings, bind(fmt.Sprintf("q%d", i), "k"))
			if i >= 3 {
				bindings = append(bindings, bind(fmt.Sprintf("q%d", i-3), "k"))
			}
		}
		for i := 0; i < n; i += 5 {
			bindings = append(bindings, bind(fmt.Sprintf("q%d", i), "k"))
		}
		var want []string
		seen := map[string]bool{}
		for _, b := range bindings {
			if !seen[b.Queue] {
				seen[b.Queue] = true
				want = append(want, b.Queue)
			}
		}
		got, err := r.Route("direct", bindings, "k", nil)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("n=%d: got %d queues, want %d (%q...)", n, len(got), len(want), got[:min(len(got), 10)])
		}
	}
}
