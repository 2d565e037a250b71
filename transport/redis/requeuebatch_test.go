package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/virtual"
)

// takeAll takes every message of queues, a few per round trip, and
// returns the items in the order they were delivered.
func takeAll(t testing.TB, s *Store, queues []string) []virtual.Item {
	t.Helper()
	var all []virtual.Item
	for {
		items, err := s.GetBatch(testCtx(t), queues, 3, 0)
		if err != nil && len(items) == 0 {
			return all
		}
		all = append(all, items...)
	}
}

func bodies(items []virtual.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = string(it.Envelope.Body)
	}
	return out
}

// TestRequeueBatchKeepsDeliveryOrder: deliveries from two queues and two
// priority lists, taken a few per round trip, go back in one batch; each
// list then holds its messages at the front (before one sent meanwhile) in
// the order they were delivered, marked redelivered as kombu marks a restore (headers and
// delivery_info), their delivery tags unchanged, and nothing stays unacked.
// Taken again, they come in the same order as the first time.
func TestRequeueBatchKeepsDeliveryOrder(t *testing.T) {
	s := openStore(t, isolated(t, nil))
	c := rawClient(t, s)
	cleanupKeys(t, c, s.o.GlobalKeyPrefix)
	ctx := testCtx(t)
	qa, qb := uniqueName(t, "a"), uniqueName(t, "b")
	for i := range 7 {
		must(t, s.Put(ctx, qa, newEnv(fmt.Sprintf("a%d", i), 0)))
		must(t, s.Put(ctx, qb, newEnv(fmt.Sprintf("b%d", i), 0)))
		must(t, s.Put(ctx, qa, newEnv(fmt.Sprintf("a-high%d", i), 6)))
	}
	queues := []string{qa, qb}
	first := takeAll(t, s, queues)
	if len(first) != 21 {
		t.Fatalf("took %d deliveries, want 21: %q", len(first), bodies(first))
	}
	// Sent after the deliveries: the requeued ones go in front of it.
	must(t, s.Put(ctx, qa, newEnv("never delivered", 0)))

	must(t, s.RequeueBatch(ctx, first))

	p := s.o.GlobalKeyPrefix
	if n := c.HLen(ctx, p+"unacked").Val(); n != 0 {
		t.Errorf("%d unacked entries left after the batch requeue", n)
	}
	for _, list := range []string{p + qa, p + qb, p + qa + Sep + "6"} {
		vals := c.LRange(ctx, list, 0, -1).Val()
		slices.Reverse(vals) // front first
		var want []string
		for _, it := range first {
			if s.k.list(it.Queue, s.k.step(it.Envelope.Properties.Priority)) == list {
				want = append(want, string(it.Envelope.Body))
			}
		}
		var got []string
		for i, v := range vals {
			env, err := virtual.UnmarshalEnvelope([]byte(v))
			if err != nil {
				t.Fatalf("%s[%d] is not an envelope: %v", list, i, err)
			}
			got = append(got, string(env.Body))
			if string(env.Body) == "never delivered" {
				continue
			}
			var raw struct {
				Headers    map[string]any `json:"headers"`
				Properties struct {
					DeliveryTag  string         `json:"delivery_tag"`
					DeliveryInfo map[string]any `json:"delivery_info"`
				} `json:"properties"`
			}
			must(t, json.Unmarshal([]byte(v), &raw))
			if raw.Headers["redelivered"] != true || raw.Properties.DeliveryInfo["redelivered"] != true {
				t.Errorf("%q restored without kombu's redelivered marks: %s", env.Body, v)
			}
			i := slices.IndexFunc(first, func(it virtual.Item) bool { return string(it.Envelope.Body) == string(env.Body) })
			if raw.Properties.DeliveryTag != first[i].Envelope.DeliveryTag {
				t.Errorf("%q restored with tag %q, was %q", env.Body, raw.Properties.DeliveryTag, first[i].Envelope.DeliveryTag)
			}
		}
		if list == p+qa {
			want = append(want, "never delivered")
		}
		if !slices.Equal(got, want) {
			t.Errorf("list %s front first: %q, want %q", list, got, want)
		}
	}

	again := takeAll(t, s, queues)
	got := slices.DeleteFunc(bodies(again), func(b string) bool { return b == "never delivered" })
	if len(got) != len(again)-1 || !slices.Equal(got, bodies(first)) {
		t.Errorf("taken again as %q, want %q and the message never delivered", bodies(again), bodies(first))
	}
	must(t, s.AckBatch(ctx, again))
	flush(t, s)
}

// TestRequeueBatchLeavesWhatItNoLongerOwns: as Requeue, the batch puts an
// entry back only while its unacked_index score is one this delivery gave
// it. A delivery whose lease expired, restored by the sweep and taken
// again by another delivery, is left to that delivery; one that is gone
// is not pushed again.
func TestRequeueBatchLeavesWhatItNoLongerOwns(t *testing.T) {
	s := openStore(t, isolated(t, url.Values{"visibility_timeout": {"60"}}))
	c := rawClient(t, s)
	cleanupKeys(t, c, s.o.GlobalKeyPrefix)
	ctx := testCtx(t)
	q := uniqueName(t, "q")
	for _, b := range []string{"m0", "m1", "m2"} {
		must(t, s.Put(ctx, q, newEnv(b, 0)))
	}
	first := takeAll(t, s, []string{q})
	if got := bodies(first); fmt.Sprint(got) != "[m0 m1 m2]" {
		t.Fatalf("took %q", got)
	}
	age(t, c, s, receiptOf(t, first[1]), 2*time.Minute)
	if n, err := s.RestoreVisible(ctx); err != nil || n != 1 {
		t.Fatalf("RestoreVisible = %d, %v; want 1", n, err)
	}
	retaken, err := s.Get(ctx, []string{q}, 0)
	must(t, err)
	if string(retaken.Envelope.Body) != "m1" {
		t.Fatalf("took %q after the restore, want m1", retaken.Envelope.Body)
	}

	must(t, s.RequeueBatch(ctx, first))
	p := s.o.GlobalKeyPrefix
	if n := c.LLen(ctx, p+q).Val(); n != 2 {
		t.Errorf("queue holds %d after the batch requeue, want 2 (m0, m2)", n)
	}
	if !c.HExists(ctx, p+"unacked", receiptOf(t, retaken).tag).Val() {
		t.Error("the batch requeue took the unacked entry of m1's new delivery")
	}
	again := takeAll(t, s, []string{q})
	if got := bodies(again); fmt.Sprint(got) != "[m0 m2]" {
		t.Errorf("taken after the batch requeue: %q, want [m0 m2]", got)
	}

	// Once m1's new delivery is acked, its entry is gone: requeueing the
	// old one again pushes nothing.
	must(t, s.Ack(ctx, retaken))
	flush(t, s)
	must(t, s.RequeueBatch(ctx, first[1:2]))
	if n := c.LLen(ctx, p+q).Val(); n != 0 {
		t.Errorf("queue holds %d after requeueing an acked delivery, want 0", n)
	}
	must(t, s.AckBatch(ctx, again))
	flush(t, s)
}

// TestRequeueBatchOfUndecodableValues: values that are not kombu envelopes
// go back byte for byte in their delivery order with the others: one the
// take moved to the poison list (not a JSON object) leaves the poison
// list, one recorded in unacked (an object without a body) leaves unacked.
func TestRequeueBatchOfUndecodableValues(t *testing.T) {
	s := openStore(t, isolated(t, nil))
	c := rawClient(t, s)
	cleanupKeys(t, c, s.o.GlobalKeyPrefix)
	ctx := testCtx(t)
	p := s.o.GlobalKeyPrefix
	q := uniqueName(t, "q")
	poison := p + "_kombu_go.poison." + q
	must(t, c.LPush(ctx, p+q, "not json").Err())
	must(t, s.Put(ctx, q, newEnv("good", 0)))
	must(t, c.LPush(ctx, p+q, `{"no": "body"}`).Err())
	items := takeAll(t, s, []string{q})
	if len(items) != 3 || items[0].DecodeErr == nil || items[1].DecodeErr != nil || items[2].DecodeErr == nil {
		t.Fatalf("took %q", bodies(items))
	}
	if n := c.LLen(ctx, poison).Val(); n != 1 {
		t.Fatalf("poison list holds %d after the take, want 1", n)
	}

	must(t, s.RequeueBatch(ctx, items))
	vals := c.LRange(ctx, p+q, 0, -1).Val()
	slices.Reverse(vals)
	if len(vals) != 3 || vals[0] != "not json" || !redelivered(vals[1]) || vals[2] != `{"no": "body"}` {
		t.Errorf("queue front first after the batch requeue: %q", vals)
	}
	if n := c.LLen(ctx, poison).Val(); n != 0 {
		t.Errorf("poison list holds %d after the batch requeue, want 0", n)
	}
	if n := c.HLen(ctx, p+"unacked").Val(); n != 0 {
		t.Errorf("%d unacked entries left after the batch requeue", n)
	}
	again := takeAll(t, s, []string{q})
	if got := bodies(again); len(got) != 3 || got[0] != "not json" || got[1] != "good" || got[2] != `{"no": "body"}` {
		t.Errorf("taken again as %q", got)
	}
	must(t, s.AckBatch(ctx, again))
	flush(t, s)
}

// redelivered reports whether raw is an envelope marked redelivered.
func redelivered(raw string) bool {
	env, err := virtual.UnmarshalEnvelope([]byte(raw))
	return err == nil && env.Redelivered
}

// TestRequeueBatchChunksKeepOrder: a batch larger than restoreChunk takes
// a round trip per chunk, last chunk first, and the order still holds.
func TestRequeueBatchChunksKeepOrder(t *testing.T) {
	s := openStore(t, isolated(t, nil))
	c := rawClient(t, s)
	cleanupKeys(t, c, s.o.GlobalKeyPrefix)
	ctx := testCtx(t)
	q := uniqueName(t, "q")
	n := restoreChunk*2 + 7
	batch := make([]virtual.QueuedEnvelope, n)
	for i := range batch {
		batch[i] = virtual.QueuedEnvelope{Queue: q, Envelope: newEnv(fmt.Sprintf("m%05d", i), 0)}
	}
	must(t, s.PutBatch(ctx, batch))
	var first []virtual.Item
	for len(first) < n {
		items, err := s.GetBatch(ctx, []string{q}, 500, 0)
		must(t, err)
		first = append(first, items...)
	}
	rt := countRoundTrips(s.rdb, requeueBatchScript)
	must(t, s.RequeueBatch(ctx, first))
	if got, want := rt.count(), 3; got != want {
		t.Errorf("requeue of %d took %d round trips, want %d", n, got, want)
	}
	var again []virtual.Item
	for len(again) < n {
		items, err := s.GetBatch(ctx, []string{q}, 500, 0)
		must(t, err)
		again = append(again, items...)
	}
	if !slices.Equal(bodies(again), bodies(first)) {
		t.Error("a batch requeue in several chunks changed the order")
	}
	must(t, s.AckBatch(ctx, again))
	flush(t, s)
}

// roundTrips counts the round trips a client sends that run one of the
// given scripts (EVALSHA or EVAL, alone or in a pipeline: a pipeline is
// one round trip).
type roundTrips struct {
	mu     sync.Mutex
	n      int
	hashes []string
}

func countRoundTrips(c *redis.Client, scripts ...*redis.Script) *roundTrips {
	rt := &roundTrips{}
	for _, s := range scripts {
		rt.hashes = append(rt.hashes, s.Hash())
	}
	c.AddHook(rt)
	return rt
}

func (rt *roundTrips) count() int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.n
}

// runs reports whether cmds run one of the counted scripts.
func (rt *roundTrips) runs(cmds ...redis.Cmder) bool {
	for _, c := range cmds {
		args := c.Args()
		if len(args) < 2 {
			continue
		}
		switch strings.ToLower(fmt.Sprint(args[0])) {
		case "evalsha":
			if slices.Contains(rt.hashes, fmt.Sprint(args[1])) {
				return true
			}
		case "eval":
			for _, s := range rt.hashes {
				if redis.NewScript(fmt.Sprint(args[1])).Hash() == s {
					return true
				}
			}
		}
	}
	return false
}

func (rt *roundTrips) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (rt *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if rt.runs(cmd) {
			rt.mu.Lock()
			rt.n++
			rt.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}

func (rt *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if rt.runs(cmds...) {
			rt.mu.Lock()
			rt.n++
			rt.mu.Unlock()
		}
		return next(ctx, cmds)
	}
}

// TestChannelCloseRequeuesInOneRoundTrip: a kombu channel closed with 100
// unacked deliveries puts them back with one round trip to redis, and a
// consumer then gets them in the order they were first delivered. Before
// RequeueBatch, the close cost one restoreScript round trip per delivery
// (see BenchmarkRequeue100).
func TestChannelCloseRequeuesInOneRoundTrip(t *testing.T) {
	const n = 100
	opts := isolated(t, nil)
	ctx := testCtx(t)
	conn, err := kombu.Dial(ctx, serverURL(t, opts).String(), nil)
	must(t, err)
	defer conn.Close()
	var rc *redis.Client
	if !conn.As(&rc) {
		t.Fatal("no go-redis client beneath the connection")
	}
	cleanupKeys(t, rc, opts.Get("global_keyprefix"))
	q := kombu.Queue{Name: uniqueName(t, "q")}
	p, err := conn.Producer(ctx, nil)
	must(t, err)
	for i := range n {
		must(t, p.Publish(ctx, fmt.Sprintf("m%03d", i), &kombu.PublishOptions{RoutingKey: q.Name}))
	}
	ch, err := conn.Channel(ctx)
	must(t, err)
	c, err := kombu.NewConsumer(ctx, ch, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: n})
	must(t, err)
	var first []string
	for range n {
		m, err := c.Receive(ctx)
		must(t, err)
		first = append(first, string(m.Body))
	}
	// Loaded beforehand: a redis that has never seen the script answers
	// the first EVALSHA with NOSCRIPT, and go-redis sends EVAL.
	must(t, requeueBatchScript.Load(ctx, rc).Err())
	rt := countRoundTrips(rc, requeueBatchScript, restoreScript, unpoisonScript)
	must(t, ch.Close())
	if got := rt.count(); got != 1 {
		t.Errorf("closing a channel with %d unacked took %d requeue round trips, want 1", n, got)
	}
	c2, err := conn.Consumer(ctx, []kombu.Queue{q}, nil)
	must(t, err)
	defer c2.Close()
	var again []string
	for range n {
		m, err := c2.Receive(ctx)
		must(t, err)
		if !m.Redelivered {
			t.Errorf("%q came back without Redelivered", m.Body)
		}
		again = append(again, string(m.Body))
		must(t, m.Ack(ctx))
	}
	if !slices.Equal(again, first) {
		t.Errorf("after the close, delivered as %q; want %q", again, first)
	}
}

// BenchmarkRequeue100 measures putting back 100 unacked deliveries, as a
// channel close or Recover does: "batch" is RequeueBatch (what virtual
// uses), "one-at-a-time" a Requeue per delivery (what it did before, which
// also reversed their order). It reports the requeue round trips per
// close.
func BenchmarkRequeue100(b *testing.B) {
	for _, mode := range []string{"batch", "one-at-a-time"} {
		b.Run(mode, func(b *testing.B) {
			s := openStore(b, isolated(b, nil))
			c := rawClient(b, s)
			cleanupKeys(b, c, s.o.GlobalKeyPrefix)
			ctx := context.Background()
			q := uniqueName(b, "q")
			batch := make([]virtual.QueuedEnvelope, 100)
			for i := range batch {
				batch[i] = virtual.QueuedEnvelope{Queue: q, Envelope: newEnv(fmt.Sprintf("m%03d", i), 0)}
			}
			must(b, s.PutBatch(ctx, batch))
			rt := countRoundTrips(s.rdb, requeueBatchScript, restoreScript)
			var spent time.Duration
			for range b.N {
				items, err := s.GetBatch(ctx, []string{q}, 100, 0)
				must(b, err)
				start := time.Now()
				if mode == "batch" {
					must(b, s.RequeueBatch(ctx, items))
				} else {
					for _, it := range items {
						must(b, s.Requeue(ctx, it))
					}
				}
				spent += time.Since(start)
			}
			b.ReportMetric(float64(rt.count())/float64(b.N), "round-trips/close")
			b.ReportMetric(float64(spent.Microseconds())/float64(b.N), "µs/close")
		})
	}
}
