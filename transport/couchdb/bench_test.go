package couchdb

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-kivik/kivik/v4"
	"github.com/go-kivik/kivik/v4/couchdb"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
)

// Benchmarks against the raw kivik client on the same server, in the same
// run, with a 1 KiB JSON body, end to end (a publisher and a consumer
// running at the same time, timed until the consumer has every message):
//
//   - one at a time: raw PUT of a document, and a consumer that reads the
//     head of the queue (_all_docs, limit 1) and DELETEs it with its
//     revision (the delete is the claim); versus kombu-go Publish and
//     Receive/Ack with prefetch 1;
//   - batched: raw _bulk_docs of 100 new documents, and a consumer that
//     reads 100 and deletes them in one _bulk_docs; versus kombu-go
//     PublishBatch of 100 and prefetch 100.
//
// The raw queue has no leases: a consumer that dies between its read and
// its delete loses nothing, but one that dies after the delete loses the
// message. kombu-go claims, then deletes on ack: one more write per message.
//
// KOMBU_COUCHDB_BENCH=1 go test -count=1 -run TestBenchmarkTable -v
// prints the table of docs/benchmarks.md.

var benchBody = func() []byte {
	b, _ := json.Marshal(map[string]any{"task": "bench", "args": []int{1, 2, 3}, "pad": ""})
	b, _ = json.Marshal(map[string]any{"task": "bench", "args": []int{1, 2, 3}, "pad": strings.Repeat("x", 1024-len(b))})
	return b
}()

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

type benchEnv struct {
	url   string
	queue string
	raw   *kivik.DB
	ids   *idClock
	body  json.RawMessage // the kombu envelope of benchBody, as a payload string
}

func newBenchEnv(tb testing.TB) *benchEnv {
	tb.Helper()
	raw := freshDatabaseURL(tb, "")
	s := openStore(tb, raw)
	e := &benchEnv{url: raw, queue: "bench", ids: newIDClock()}
	must(tb, s.DeclareQueue(context.Background(), driver.Queue{Name: e.queue, Durable: true}))
	// The raw client is built as the store's is: its own transport, no
	// request compression.
	c, err := kivik.New("couch", s.opts.Server, couchdb.OptionNoRequestCompression())
	must(tb, err)
	tb.Cleanup(func() { _ = c.Close() })
	e.raw = c.DB(s.opts.Database)
	doc, err := s.newMessage(e.queue, newEnv(string(benchBody), 0))
	must(tb, err)
	e.body = doc["payload"].(json.RawMessage)
	return e
}

func (e *benchEnv) rawDoc() map[string]any {
	return map[string]any{"_id": e.ids.next(e.queue, 0), "kombu": kindMessage, "queue": e.queue, "payload": e.body}
}

func rawPublishOne(tb testing.TB, e *benchEnv, n int) {
	ctx := context.Background()
	for range n {
		d := e.rawDoc()
		_, err := e.raw.Put(ctx, d["_id"].(string), d)
		must(tb, err)
	}
}

func rawPublish100(tb testing.TB, e *benchEnv, n int) {
	ctx := context.Background()
	for done := 0; done < n; done += 100 {
		docs := make([]any, 0, 100)
		for range min(100, n-done) {
			docs = append(docs, e.rawDoc())
		}
		_, err := e.raw.BulkDocs(ctx, docs)
		must(tb, err)
	}
}

// rawConsume takes n messages, batch at a time: read the head, delete what
// was read with the revisions read (a conflict means another consumer had
// it), until n are deleted.
func rawConsume(batch int) func(testing.TB, *benchEnv, int) {
	return func(tb testing.TB, e *benchEnv, n int) {
		ctx := context.Background()
		prefix := messageIDPrefix(e.queue)
		got := 0
		for got < n {
			rs := e.raw.AllDocs(ctx, kivik.Params(map[string]any{
				"include_docs": true, "startkey": prefix, "endkey": prefix + "\ufff0", "limit": min(batch, n-got),
			}))
			var dels []any
			for rs.Next() {
				var d struct {
					ID      string          `json:"_id"`
					Rev     string          `json:"_rev"`
					Payload json.RawMessage `json:"payload"`
				}
				must(tb, rs.ScanDoc(&d))
				dels = append(dels, map[string]any{"_id": d.ID, "_rev": d.Rev, "_deleted": true})
			}
			must(tb, rs.Err())
			_ = rs.Close()
			if len(dels) == 0 {
				time.Sleep(time.Millisecond)
				continue
			}
			if batch == 1 {
				d := dels[0].(map[string]any)
				if _, err := e.raw.Delete(ctx, d["_id"].(string), d["_rev"].(string)); err == nil {
					got++
				} else if !isConflict(err) {
					tb.Fatal(err)
				}
				continue
			}
			res, err := e.raw.BulkDocs(ctx, dels)
			must(tb, err)
			for _, r := range res {
				if r.Error == nil {
					got++
				}
			}
		}
	}
}

var benchPublish = &kombu.PublishOptions{ContentType: "application/json", ContentEncoding: "utf-8"}

func kombuConn(tb testing.TB, e *benchEnv) *kombu.Connection {
	tb.Helper()
	c, err := kombu.Dial(context.Background(), e.url, nil)
	must(tb, err)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func goPublishOne(tb testing.TB, e *benchEnv, n int) {
	p, err := kombuConn(tb, e).Producer(context.Background(), &kombu.ProducerOptions{RoutingKey: e.queue})
	must(tb, err)
	ctx := context.Background()
	for range n {
		must(tb, p.Publish(ctx, benchBody, benchPublish))
	}
}

func goPublish100(tb testing.TB, e *benchEnv, n int) {
	p, err := kombuConn(tb, e).Producer(context.Background(), &kombu.ProducerOptions{RoutingKey: e.queue})
	must(tb, err)
	ctx := context.Background()
	bodies := make([]any, 100)
	for i := range bodies {
		bodies[i] = benchBody
	}
	for done := 0; done < n; done += 100 {
		must(tb, p.PublishBatch(ctx, bodies[:min(100, n-done)], benchPublish))
	}
}

func goConsume(prefetch int) func(testing.TB, *benchEnv, int) {
	return func(tb testing.TB, e *benchEnv, n int) {
		ctx := context.Background()
		c, err := kombuConn(tb, e).Consumer(ctx, []kombu.Queue{{Name: e.queue, Durable: true}}, &kombu.ConsumerOptions{PrefetchCount: prefetch})
		must(tb, err)
		for range n {
			m, err := c.Receive(ctx)
			must(tb, err)
			must(tb, m.Ack(ctx))
		}
		must(tb, c.Close())
	}
}

// e2e runs a publisher and a consumer at the same time, timed until the
// consumer has its n messages.
func e2e(pub, con func(testing.TB, *benchEnv, int)) func(testing.TB, *benchEnv, int) time.Duration {
	return func(tb testing.TB, e *benchEnv, n int) time.Duration {
		done := make(chan struct{})
		start := time.Now()
		go func() {
			defer close(done)
			con(tb, e, n)
		}()
		pub(tb, e, n)
		<-done
		return time.Since(start)
	}
}

var benchScenarios = []struct {
	name, what string
	n          int
	run        func(testing.TB, *benchEnv, int) time.Duration
}{
	{"RawOneAtATime", "raw kivik, one at a time (PUT; read head + DELETE)", 200, e2e(rawPublishOne, rawConsume(1))},
	{"EndToEndJSON", "kombu-go, one at a time (Publish; prefetch 1)", 200, e2e(goPublishOne, goConsume(1))},
	{"RawBulk100", "raw kivik, _bulk_docs by 100 (write 100; read 100 + delete 100)", 1000, e2e(rawPublish100, rawConsume(100))},
	{"EndToEndJSONBatched", "kombu-go batched (PublishBatch 100; prefetch 100)", 1000, e2e(goPublish100, goConsume(100))},
}

func benchmark(b *testing.B, name string) {
	for _, s := range benchScenarios {
		if s.name != name {
			continue
		}
		e := newBenchEnv(b)
		b.ResetTimer()
		el := s.run(b, e, b.N)
		b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
	}
}

func BenchmarkRawOneAtATime(b *testing.B)       { benchmark(b, "RawOneAtATime") }
func BenchmarkEndToEndJSON(b *testing.B)        { benchmark(b, "EndToEndJSON") }
func BenchmarkRawBulk100(b *testing.B)          { benchmark(b, "RawBulk100") }
func BenchmarkEndToEndJSONBatched(b *testing.B) { benchmark(b, "EndToEndJSONBatched") }

// TestBenchmarkTable runs every scenario in interleaved rounds, each in a
// fresh database, and prints the medians as the markdown table of
// docs/benchmarks.md. It runs only with KOMBU_COUCHDB_BENCH=1.
func TestBenchmarkTable(t *testing.T) {
	if os.Getenv("KOMBU_COUCHDB_BENCH") == "" {
		t.Skip("set KOMBU_COUCHDB_BENCH=1 to measure")
	}
	const rounds = 5
	rates := make([][]float64, len(benchScenarios))
	for r := range rounds {
		for i, s := range benchScenarios {
			t.Run(fmt.Sprintf("%s/%d", s.name, r), func(t *testing.T) {
				e := newBenchEnv(t)
				el := s.run(t, e, s.n)
				rates[i] = append(rates[i], float64(s.n)/el.Seconds())
			})
		}
	}
	median := func(xs []float64) float64 {
		ys := slices.Clone(xs)
		slices.Sort(ys)
		return ys[len(ys)/2]
	}
	var out strings.Builder
	fmt.Fprintf(&out, "| scenario | msgs/s (median of %d) | rounds | ratio |\n|---|---:|---|---:|\n", rounds)
	for i, s := range benchScenarios {
		m := median(rates[i])
		ratio := ""
		if i%2 == 1 {
			ratio = fmt.Sprintf("%.2f× raw", m/median(rates[i-1]))
		}
		var all []string
		for _, r := range rates[i] {
			all = append(all, fmt.Sprintf("%.0f", r))
		}
		fmt.Fprintf(&out, "| %s | %.0f | %s | %s |\n", s.what, m, strings.Join(all, ", "), ratio)
	}
	t.Log("\n" + out.String())
}
