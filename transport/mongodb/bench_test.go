package mongodb

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kombu-go/kombu/kombu"
)

// Benchmarks against the test server (FerretDB: its figures describe
// that server, whose every sorted find reads the whole collection, not
// MongoDB). Each runs end to end in rounds of at most 100 messages, so the
// backlog, and with it FerretDB's cost per find, stays small. The round
// trips per message, counted with a command monitor, carry over to
// MongoDB.
//
//	go test -run '^$' -bench . -benchtime 2000x ./transport/mongodb

// commandCounter counts the driver's commands by name.
type commandCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *commandCounter) monitor() *event.CommandMonitor {
	c.n = map[string]int{}
	return &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		c.mu.Lock()
		c.n[e.CommandName]++
		c.mu.Unlock()
	}}
}

// reset forgets the commands counted so far.
func (c *commandCounter) reset() {
	c.mu.Lock()
	clear(c.n)
	c.mu.Unlock()
}

// perMessage returns the round trips per message, in total and by
// command.
func (c *commandCounter) perMessage(messages int) (float64, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	var names []string
	for name, n := range c.n {
		total += n
		names = append(names, fmt.Sprintf("%s=%.2f", name, float64(n)/float64(messages)))
	}
	sort.Strings(names)
	return float64(total) / float64(messages), strings.Join(names, " ")
}

// e2e is one end-to-end scenario run for n messages; it returns the
// round trips per message and their breakdown by command.
type e2e func(tb testing.TB, n int, start func()) (float64, string)

// bench runs scenario for b.N messages and reports msgs/s and trips/msg.
func bench(b *testing.B, scenario e2e) {
	trips, by := scenario(b, b.N, b.ResetTimer)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(trips, "trips/msg")
	b.Logf("round trips per message: %.2f (%s)", trips, by)
}

// benchPair dials kombu on a database of its own on the test server,
// with a command counter, and opens a producer and a consumer of q with
// prefetch on one channel.
func benchPair(tb testing.TB, q kombu.Queue, prefetch int) (*kombu.Producer, *kombu.Consumer, *commandCounter) {
	tb.Helper()
	o := optionsOf(tb, isolatedURL(tb, ""))
	var cc commandCounter
	o.Monitor = cc.monitor()
	conn := kombu.NewConnectionFromConnector(NewConnector(o), nil)
	tb.Cleanup(func() { _ = conn.Close() })
	ctx := context.Background()
	ch, err := conn.Channel(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := kombu.NewProducer(ctx, ch, nil)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := kombu.NewConsumer(ctx, ch, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: prefetch})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return p, c, &cc
}

var benchBody = map[string]any{"text": strings.Repeat("x", 1000)} // ~1 KiB of JSON

// oneAtATime: Publish, then Receive and Ack with prefetch 1, one message
// at a time.
func oneAtATime(b testing.TB, total int, start func()) (float64, string) {
	ctx := context.Background()
	q := kombu.Queue{Name: "bench.one"}
	p, c, cc := benchPair(b, q, 1)
	cc.reset()
	start()
	for range total {
		if err := p.Publish(ctx, benchBody, &kombu.PublishOptions{RoutingKey: q.Name}); err != nil {
			b.Fatal(err)
		}
		m, err := c.Receive(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Ack(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return cc.perMessage(total)
}

// batched: PublishBatch of 100, then Receive and Ack the 100 with
// prefetch 100.
func batched(b testing.TB, total int, start func()) (float64, string) {
	ctx := context.Background()
	q := kombu.Queue{Name: "bench.batch"}
	p, c, cc := benchPair(b, q, 100)
	bodies := make([]any, 100)
	for i := range bodies {
		bodies[i] = benchBody
	}
	cc.reset()
	start()
	for done := 0; done < total; {
		n := min(100, total-done)
		if err := p.PublishBatch(ctx, bodies[:n], &kombu.PublishOptions{RoutingKey: q.Name}); err != nil {
			b.Fatal(err)
		}
		for range n {
			m, err := c.Receive(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if err := m.Ack(ctx); err != nil {
				b.Fatal(err)
			}
		}
		done += n
	}
	return cc.perMessage(total)
}

func BenchmarkEndToEndOneAtATime(b *testing.B) { bench(b, oneAtATime) }
func BenchmarkEndToEndBatched(b *testing.B)    { bench(b, batched) }

// rawBench is the raw driver doing what Python kombu does: insert the
// envelope-sized document, take it with findOneAndDelete sorted by
// priority (no lease: a crash loses it; not atomic on FerretDB).
func rawBench(b testing.TB, total, batch int, start func()) (float64, string) {
	raw := isolatedURL(b, "")
	o := optionsOf(b, raw)
	var cc commandCounter
	client, err := mongo.Connect(options.Client().ApplyURI(o.URI).SetMonitor(cc.monitor()))
	if err != nil {
		b.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	coll := client.Database(o.Database).Collection("messages")
	ctx := context.Background()
	payload := `{"body": "` + strings.Repeat("x", 1400) + `", "content-type": "application/json"}`
	docs := make([]any, batch)
	cc.reset()
	start()
	for done := 0; done < total; {
		n := min(batch, total-done)
		for i := range n {
			docs[i] = bson.D{{Key: "queue", Value: "raw"}, {Key: "payload", Value: payload}, {Key: "priority", Value: int32(9)}}
		}
		if n == 1 {
			_, err = coll.InsertOne(ctx, docs[0])
		} else {
			_, err = coll.InsertMany(ctx, docs[:n])
		}
		if err != nil {
			b.Fatal(err)
		}
		for range n {
			err := coll.FindOneAndDelete(ctx, bson.D{{Key: "queue", Value: "raw"}},
				options.FindOneAndDelete().SetSort(bson.D{{Key: "priority", Value: 1}})).Err()
			if err != nil {
				b.Fatal(err)
			}
		}
		done += n
	}
	return cc.perMessage(total)
}

func BenchmarkRawOneAtATime(b *testing.B) {
	bench(b, func(tb testing.TB, n int, start func()) (float64, string) { return rawBench(tb, n, 1, start) })
}

func BenchmarkRawBatched(b *testing.B) {
	bench(b, func(tb testing.TB, n int, start func()) (float64, string) { return rawBench(tb, n, 100, start) })
}

// The round trips per message are part of the design (docs/benchmarks.md):
// this fails when a change adds some.
func TestRoundTripsPerMessage(t *testing.T) {
	for _, c := range []struct {
		name     string
		scenario e2e
		max      float64
		why      string
	}{
		{"one at a time", oneAtATime, 4.5, "insert, lease insert, ready delete, ack delete, a share of finds and sweeps"},
		{"batched", batched, 3.5, "lease insert, ready delete, ack delete, a share of insertMany and finds"},
	} {
		trips, by := c.scenario(t, 300, func() {})
		t.Logf("%s: %.2f round trips per message (%s)", c.name, trips, by)
		if trips > c.max {
			t.Errorf("%s: %.2f round trips per message, want at most %.1f (%s)", c.name, trips, c.max, c.why)
		}
	}
}
