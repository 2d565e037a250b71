package redis

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

// flush sends the store's deferred acks now.
func flush(t *testing.T, s *Store) {
	t.Helper()
	if err := s.flushAcks(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

func receiptOf(t *testing.T, it virtual.Item) *receipt {
	t.Helper()
	r, ok := it.Receipt.(*receipt)
	if !ok {
		t.Fatalf("receipt is %T", it.Receipt)
	}
	return r
}

func TestPutWritesKombuListsAndEnvelope(t *testing.T) {
	s := openStore(t, isolated(t, nil))
	c := rawClient(t, s)
	cleanupKeys(t, c, s.o.GlobalKeyPrefix)
	ctx := testCtx(t)
	q := uniqueName(t, "q")

	for _, p := range []uint8{0, 2, 3, 5, 6, 8, 9} {
		if err := s.Put(ctx, q, newEnv(fmt.Sprintf(`{"p": %d}`, p), p)); err != nil {
			t.Fatal(err)
		}
	}
	p := s.o.GlobalKeyPrefix
	want := map[string]int64{p + q: 2, p + q + "\x06\x163": 2, p + q + "\x06\x166": 2, p + q + "\x06\x169": 1}
	for key, n := range want {
		if got := c.LLen(ctx, key).Val(); got != n {
			t.Errorf("LLEN %q = %d, want %d", key, got, n)
		}
	}
	raw := c.LIndex(ctx, p+q, -1).Val()
	var env map[string]any
	if err := json.Unmarshal([]byte(raw), &env); err != nil {
		t.Fatal(err)
	}
	props := env["properties"].(map[string]any)
	di := props["delivery_info"].(map[string]any)
	if props["body_encoding"] != "base64" || env["body"] != "eyJwIjogMH0=" || di["exchange"] != "" || di["routing_key"] != "rk" {
		t.Errorf("envelope %s", raw)
	}
	if tag, _ := props["delivery_tag"].(string); len(tag) != 36 {
		t.Errorf("delivery_tag %q is not a uuid", tag)
	}
	if n, err := s.Size(ctx, q); err != nil || n != 7 {
		t.Errorf("Size = %d, %v; want 7", n, err)
	}
}

func TestGetRecordsUnackedLikeKombu(t *testing.T) {
	s := openStore(t, isolated(t, nil))
	c := rawClient(t, s)
	cleanupKeys(t, c, s.o.GlobalKeyPrefix)
	ctx := testCtx(t)
	q := uniqueName(t, "q")
	p := s.o.GlobalKeyPrefix

	// A message written by Python kombu, byte for byte.
	py := `{"body": "eyJuIjogMX0=", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"x-seq": 1}, "properties": {"delivery_mode": 2, "delivery_info": {"exchange": "wire.ex", "routing_key": "wire/rk"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "63eeee5d-8739-4d38-84eb-3e810d04c1f5"}}`
	c.LPush(ctx, p+q, py)
	before := float64(time.Now().UnixMicro()) / 1e6
	it, err := s.Get(ctx, []string{q}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if it.Queue != q || string(it.Envelope.Body) != `{"n": 1}` || it.Envelope.Exchange != "wire.ex" || it.Envelope.Headers["x-seq"] != int64(1) {
		t.Fatalf("item %+v", it)
	}
	tag := "63eeee5d-8739-4d38-84eb-3e810d04c1f5"
	rec := c.HGet(ctx, p+"unacked", tag).Val()
	if want := "[" + py + `, "wire.ex", "wire/rk"]`; rec != want {
		t.Errorf("unacked record\n got %s\nwant %s", rec, want)
	}
	var parsed []json.RawMessage
	if err := json.Unmarshal([]byte(rec), &parsed); err != nil || len(parsed) != 3 {
		t.Errorf("unacked record is not a 3-element JSON array: %v", err)
	}
	score := c.ZScore(ctx, p+"unacked_index", tag).Val()
	if after := float64(time.Now().UnixMicro()) / 1e6; score < before-0.01 || score > after+0.01 {
		t.Errorf("unacked_index score %f not in [%f, %f]", score, before, after)
	}
	if got := c.HGet(ctx, p+"unacked_queue", tag).Val(); got != q {
		t.Errorf("unacked_queue = %q", got)
	}
	if c.Exists(ctx, p+q).Val() != 0 {
		t.Error("the list still exists")
	}

	if err := s.Ack(ctx, it); err != nil {
		t.Fatal(err)
	}
	// The ack is sent within ackFlushDelay even without another fetch.
	deadline := time.Now().Add(2 * time.Second)
	for c.HExists(ctx, p+"unacked", tag).Val() {
		if time.Now().After(deadline) {
			t.Fatal("ack not sent")
		}
		time.Sleep(time.Millisecond)
	}
	if c.ZScore(ctx, p+"unacked_index", tag).Err() != redis.Nil || c.HExists(ctx, p+"unacked_queue", tag).Val() {
		t.Error("ack left index or queue entries")
	}
}

func TestGetOrderIsKombus(t *testing.T) {
	s := openStore(t, isolated(t, nil))
	cleanupKeys(t, rawClient(t, s), s.o.GlobalKeyPrefix)
	ctx := testCtx(t)
	q1, q2 := uniqueName(t, "q1"), uniqueName(t, "q2")
	put := func(q string, body string, pri uint8) {
		if err := s.Put(ctx, q, newEnv(body, pri)); err != nil {
			t.Fatal(err)
		}
	}
	put(q2, "q2-p9", 9)
	put(q1, "q1-p5", 5)
	put(q2, "q2-p0-a", 0)
	put(q1, "q1-p3", 3)
	put(q2, "q2-p0-b", 1)
	put(q1, "q1-p0", 0)
	// Priority step first (0 before 3 before 9), then the queue order
	// given, FIFO within a list.
	want := []string{"q1-p0", "q2-p0-a", "q2-p0-b", "q1-p5", "q1-p3", "q2-p9"}
	var got []string
	for range want {
		it, err := s.Get(ctx, []string{q1, q2}, 0)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(it.Envelope.Body))
		_ = s.Ack(ctx, it)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("order %v, want %v", got, want)
	}
	if _, err := s.Get(ctx, []string{q1, q2}, 0); !errors.Is(err, driver.ErrEmpty) {
		t.Errorf("Get on empty queues: %v", err)
	}
}

func TestGetBatchAndBlockingWait(t *testing.T) {
	s := openStore(t, isolated(t, nil))
	cleanupKeys(t, rawClient(t, s), s.o.GlobalKeyPrefix)
	ctx := testCtx(t)
	q := uniqueName(t, "q")
	var batch []virtual.QueuedEnvelope
	for i := range 10 {
		batch = append(batch, virtual.QueuedEnvelope{Queue: q, Envelope: newEnv(strconv.Itoa(i), 0)})
	}
	if err := s.PutBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	items, err := s.GetBatch(ctx, []string{q}, 4, 0)
	if err != nil || len(items) != 4 {
		t.Fatalf("GetBatch: %d items, %v", len(items), err)
	}
	for i, it := range items {
		if string(it.Envelope.Body) != strconv.Itoa(i) {
			t.Errorf("item %d is %s", i, it.Envelope.Body)
		}
	}
	if err := s.AckBatch(ctx, items); err != nil {
		t.Fatal(err)
	}
	items, err = s.GetBatch(ctx, []string{q}, 100, 0)
	if err != nil || len(items) != 6 {
		t.Fatalf("GetBatch: %d items, %v", len(items), err)
	}
	_ = s.AckBatch(ctx, items)

	// A blocking Get returns as soon as another store publishes.
	other := openStore(t, url.Values{"global_keyprefix": {s.o.GlobalKeyPrefix}})
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = other.Put(ctx, q, newEnv("late", 0))
	}()
	start := time.Now()
	it, err := s.Get(ctx, []string{q}, 5*time.Second)
	if err != nil || string(it.Envelope.Body) != "late" {
		t.Fatalf("blocking Get: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second || d < 250*time.Millisecond {
		t.Errorf("blocking Get took %v", d)
	}
	start = time.Now()
	if _, err := s.Get(ctx, []string{q}, 200*time.Millisecond); !errors.Is(err, driver.ErrEmpty) {
		t.Errorf("Get with wait on an empty queue: %v", err)
	}
	if d := time.Since(start); d < 190*time.Millisecond || d > time.Second {
		t.Errorf("Get waited %v, want about 200ms", d)
	}
	flush(t, s)
}

func TestRequeueGoesToFrontMarkedRedelivered(t *testing.T) {
	s := openStore(t, isolated(t, nil))
	c := rawClient(t, s)
	cleanupKeys(t, c, s.o.GlobalKeyPrefix)
	ctx := testCtx(t)
	q := uniqueName(t, "q")
	e1 := newEnv("m1", 6)
	e1.Headers = map[string]any{"big": int64(12345678901234567)}
	_ = s.Put(ctx, q, e1)
	_ = s.Put(ctx, q, newEnv("m2", 6))
	it, err := s.Get(ctx, []string{q}, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := receiptOf(t, it)
	if err := s.Requeue(ctx, it); err != nil {
		t.Fatal(err)
	}
	p := s.o.GlobalKeyPrefix
	if c.HExists(ctx, p+"unacked", r.tag).Val() || c.ZScore(ctx, p+"unacked_index", r.tag).Err() != redis.Nil {
		t.Error("requeue left the unacked entry")
	}
	raw := c.LIndex(ctx, p+q+"\x06\x166", -1).Val()
	if !strings.Contains(raw, `12345678901234567`) {
		t.Errorf("requeue changed a large number: %s", raw)
	}
	again, err := s.Get(ctx, []string{q}, 0)
	if err != nil {
		t.Fatal(err)
	}
	env := again.Envelope
	if string(env.Body) != "m1" || !env.Redelivered || env.Headers["redelivered"] != true || env.DeliveryTag != it.Envelope.DeliveryTag {
		t.Errorf("requeued message: body %s redelivered %v headers %v tag %s", env.Body, env.Redelivered, env.Headers, env.DeliveryTag)
	}
	_ = s.Ack(ctx, again)
	// Requeue of an entry that is gone does nothing.
	if err := s.Requeue(ctx, it); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Size(ctx, q); n != 1 {
		t.Errorf("size %d after a stale requeue, want 1", n)
	}
	flush(t, s)
}

// age moves a delivery's unacked_index score into the past.
// age moves the unacked_index score of r's delivery by back in time, as
// if it had been taken then (the receipt remembers the score as its own).
func age(t *testing.T, c *redis.Client, s *Store, r *receipt, by time.Duration) {
	t.Helper()
	score := nowScore(time.Now().Add(-by))
	r.mu.Lock()
	r.scores += " " + score
	r.mu.Unlock()
	if err := c.ZAdd(testCtx(t), s.k.unackedIndex, redis.Z{Score: mustFloat(t, score), Member: r.tag}).Err(); err != nil {
		t.Fatal(err)
	}
}

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRestoreVisible(t *testing.T) {
	s := openStore(t, isolated(t, url.Values{"visibility_timeout": {"60"}}))
	c := rawClient(t, s)
	cleanupKeys(t, c, s.o.GlobalKeyPrefix)
	ctx := testCtx(t)
	q := uniqueName(t, "q")
	p := s.o.GlobalKeyPrefix
	for i := range 3 {
		_ = s.Put(ctx, q, newEnv("m"+strconv.Itoa(i), 3))
	}
	items, err := s.GetBatch(ctx, []string{q}, 3, 0)
	if err != nil || len(items) != 3 {
		t.Fatal(len(items), err)
	}
	// Nothing is younger than the visibility timeout yet.
	if n, err := s.RestoreVisible(ctx); err != nil || n != 0 {
		t.Fatalf("RestoreVisible = %d, %v; want 0", n, err)
	}
	age(t, c, s, receiptOf(t, items[0]), 61*time.Second)
	age(t, c, s, receiptOf(t, items[1]), 59*time.Second)
	if n, err := s.RestoreVisible(ctx); err != nil || n != 1 {
		t.Fatalf("RestoreVisible = %d, %v; want 1", n, err)
	}
	if c.Exists(ctx, p+"unacked_mutex").Val() != 0 {
		t.Error("the mutex was not released")
	}
	// The restored message is at the front of its priority list, flagged.
	raw := c.LIndex(ctx, p+q+"\x06\x163", -1).Val()
	env, err := virtual.UnmarshalEnvelope([]byte(raw))
	if err != nil || string(env.Body) != "m0" || !env.Redelivered || env.Headers != nil && env.Headers["redelivered"] != true {
		t.Errorf("restored %s (%v)", raw, err)
	}
	if !strings.Contains(raw, `"redelivered":true}`) {
		t.Errorf("delivery_info.redelivered not set: %s", raw)
	}
	if c.HLen(ctx, p+"unacked").Val() != 2 || c.ZCard(ctx, p+"unacked_index").Val() != 2 || c.HLen(ctx, p+"unacked_queue").Val() != 2 {
		t.Error("restore did not remove exactly one entry")
	}
	// An ack of the restored delivery is harmless.
	_ = s.Ack(ctx, items[0])
	flush(t, s)
	if c.HLen(ctx, p+"unacked").Val() != 2 {
		t.Error("a stale ack removed another entry")
	}

	// The mutex held by someone else skips the round.
	age(t, c, s, receiptOf(t, items[1]), 120*time.Second)
	c.Set(ctx, p+"unacked_mutex", "someone", time.Minute)
	if n, _ := s.RestoreVisible(ctx); n != 0 {
		t.Error("restored while another consumer held the mutex")
	}
	if c.Get(ctx, p+"unacked_mutex").Val() != "someone" {
		t.Error("the other consumer's mutex was released")
	}
	c.Del(ctx, p+"unacked_mutex")
	// A lease extended after the tag was read is not restored.
	if err := s.ExtendLease(ctx, items[1], time.Hour); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.RestoreVisible(ctx); n != 0 {
		t.Error("restored a delivery whose lease was extended")
	}
	age(t, c, s, receiptOf(t, items[1]), 120*time.Second)
	if n, _ := s.RestoreVisible(ctx); n != 1 {
		t.Error("expired delivery not restored")
	}
	if err := s.ExtendLease(ctx, items[1], time.Hour); !errors.Is(err, driver.ErrPreconditionFailed) {
		t.Errorf("ExtendLease of a restored delivery: %v", err)
	}
}

func TestRestoreVisibleOfPythonEntries(t *testing.T) {
	s := openStore(t, isolated(t, url.Values{"visibility_timeout": {"60"}}))
	c := rawClient(t, s)
	cleanupKeys(t, c, s.o.GlobalKeyPrefix)
	ctx := testCtx(t)
	p := s.o.GlobalKeyPrefix
	qd, qt, qx := uniqueName(t, "direct"), uniqueName(t, "topic"), uniqueName(t, "other")
	ex := uniqueName(t, "ex")
	// Binding rows as Python kombu writes them.
	c.SAdd(ctx, p+"_kombu.binding."+ex, "rk.a"+Sep+Sep+qd, `logs.*.info`+Sep+`^logs\..*?[^\.]\.info$`+Sep+qt, "rk.b"+Sep+Sep+qx)
	entry := func(tag, rk string, pri int) {
		env := fmt.Sprintf(`{"body": "eA==", "content-encoding": "utf-8", "content-type": "text/plain", "headers": {}, "properties": {"delivery_mode": 2, "delivery_info": {"exchange": %q, "routing_key": %q}, "priority": %d, "body_encoding": "base64", "delivery_tag": %q}}`, ex, rk, pri, tag)
		c.HSet(ctx, p+"unacked", tag, "["+env+fmt.Sprintf(`, %q, %q]`, ex, rk))
		c.ZAdd(ctx, p+"unacked_index", redis.Z{Score: float64(time.Now().Add(-time.Hour).Unix()), Member: tag})
	}
	entry("t-direct", "rk.a", 0)
	entry("t-topic", "logs.x.y.info", 7)
	entry("t-nowhere", "unbound", 0)
	c.ZAdd(ctx, p+"unacked_index", redis.Z{Score: 1, Member: "t-dangling"})

	n, err := s.RestoreVisible(ctx)
	if err != nil || n != 2 {
		t.Fatalf("RestoreVisible = %d, %v; want 2", n, err)
	}
	if c.LLen(ctx, p+qd).Val() != 1 || c.LLen(ctx, p+qt+"\x06\x166").Val() != 1 || c.Exists(ctx, p+qx).Val() != 0 {
		t.Error("messages not restored to the queues their bindings give")
	}
	// The unresolvable entry is kept (not lost) with a fresh score.
	if !c.HExists(ctx, p+"unacked", "t-nowhere").Val() {
		t.Error("an unresolvable entry was dropped")
	}
	if sc := c.ZScore(ctx, p+"unacked_index", "t-nowhere").Val(); sc < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Error("an unresolvable entry was not parked")
	}
	if c.ZScore(ctx, p+"unacked_index", "t-dangling").Err() != redis.Nil {
		t.Error("a dangling index entry was not removed")
	}
}

func TestSharedDeliveryTagsDoNotCollide(t *testing.T) {
	s := openStore(t, isolated(t, nil))
	c := rawClient(t, s)
	cleanupKeys(t, c, s.o.GlobalKeyPrefix)
	ctx := testCtx(t)
	q1, q2 := uniqueName(t, "q1"), uniqueName(t, "q2")
	// Python kombu puts one envelope, tag included, into every queue it
	// routes to.
	env := newEnv("same", 0)
	env.DeliveryTag = virtual.NewDeliveryTag()
	_ = s.Put(ctx, q1, env)
	_ = s.Put(ctx, q2, env)
	a, err := s.Get(ctx, []string{q1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Get(ctx, []string{q2}, 0)
	if err != nil {
		t.Fatal(err)
	}
	ra, rb := receiptOf(t, a), receiptOf(t, b)
	if ra.tag == rb.tag || ra.tag != env.DeliveryTag || !strings.HasPrefix(rb.tag, env.DeliveryTag+".") {
		t.Fatalf("tags %q and %q", ra.tag, rb.tag)
	}
	_ = s.Ack(ctx, a)
	flush(t, s)
	p := s.o.GlobalKeyPrefix
	if !c.HExists(ctx, p+"unacked", rb.tag).Val() || c.HGet(ctx, p+"unacked_queue", rb.tag).Val() != q2 {
		t.Error("acking one copy unprotected the other")
	}
	_ = s.Ack(ctx, b)
	flush(t, s)
	if c.HLen(ctx, p+"unacked").Val() != 0 {
		t.Error("entries left")
	}
}

func TestBindingsTable(t *testing.T) {
	s := openStore(t, isolated(t, url.Values{"binding_cache_ttl": {"30"}}))
	c := rawClient(t, s)
	cleanupKeys(t, c, s.o.GlobalKeyPrefix)
	ctx := testCtx(t)
	p := s.o.GlobalKeyPrefix
	ex := uniqueName(t, "ex")
	rows := []virtual.StoredBinding{
		{Exchange: ex, RoutingKey: "rk", Queue: "qd"},
		{Exchange: ex, RoutingKey: "wirefmt.*.info", Pattern: `^wirefmt\..*?[^\.]\.info$`, Queue: "qt"},
		{Exchange: ex, RoutingKey: "", Queue: "qf"},
	}
	for _, b := range rows {
		if err := s.AddBinding(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	members := c.SMembers(ctx, p+"_kombu.binding."+ex).Val()
	want := map[string]bool{
		"rk\x06\x16\x06\x16qd": true,
		"wirefmt.*.info\x06\x16^wirefmt\\..*?[^\\.]\\.info$\x06\x16qt": true,
		"\x06\x16\x06\x16qf": true,
	}
	if len(members) != 3 {
		t.Fatalf("members %q", members)
	}
	for _, m := range members {
		if !want[m] {
			t.Errorf("unexpected member %q", m)
		}
	}
	got, err := s.Bindings(ctx, ex)
	if err != nil || len(got) != 3 {
		t.Fatalf("Bindings: %v %v", got, err)
	}
	// Cached: a row added by another process is not seen until the TTL...
	c.SAdd(ctx, p+"_kombu.binding."+ex, "x\x06\x16\x06\x16qx")
	if got, _ := s.Bindings(ctx, ex); len(got) != 3 {
		t.Errorf("cache not used: %d rows", len(got))
	}
	// ...but a change made in this process is seen at once.
	if err := s.RemoveBinding(ctx, rows[0]); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Bindings(ctx, ex); len(got) != 3 { // qt, qf, qx
		t.Errorf("after RemoveBinding: %v", got)
	}
	if c.SIsMember(ctx, p+"_kombu.binding."+ex, "rk\x06\x16\x06\x16qd").Val() {
		t.Error("SREM did not remove the exact member")
	}
	// Empty tables are never cached.
	ex2 := uniqueName(t, "ex2")
	if got, _ := s.Bindings(ctx, ex2); len(got) != 0 {
		t.Fatal(got)
	}
	c.SAdd(ctx, p+"_kombu.binding."+ex2, "k\x06\x16\x06\x16q")
	if got, _ := s.Bindings(ctx, ex2); len(got) != 1 {
		t.Errorf("a binding made elsewhere after an empty read is not seen: %v", got)
	}
}

func TestPurgeAndDelete(t *testing.T) {
	s := openStore(t, isolated(t, nil))
	c := rawClient(t, s)
	cleanupKeys(t, c, s.o.GlobalKeyPrefix)
	ctx := testCtx(t)
	q := uniqueName(t, "q")
	for i := range 10 {
		_ = s.Put(ctx, q, newEnv("x", uint8(i)))
	}
	if n, err := s.Purge(ctx, q); err != nil || n != 10 {
		t.Errorf("Purge = %d, %v", n, err)
	}
	_ = s.Put(ctx, q, newEnv("x", 9))
	if err := s.Delete(ctx, q); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Size(ctx, q); n != 0 {
		t.Errorf("size %d after Delete", n)
	}
}

func TestValidateName(t *testing.T) {
	o, err := ParseURL(&url.URL{Scheme: "redis", Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	k := newKeys(o)
	for _, tc := range []struct {
		kind, name string
		ok         bool
	}{
		{"queue", "tasks", true},
		{"queue", "a\x06\x16b", false},
		{"queue", "a\x06b", false},
		{"routing key", "rk\x16", false},
		{"exchange", "ex\x06\x163", false},
		{"queue", "unacked", false},
		{"queue", "unacked_index", false},
		{"queue", "unacked_mutex", false},
		{"queue", "unacked_queue", false},
		{"queue", "_kombu.binding.x", false},
		{"queue", "_kombu_go.poison.tasks", false}, // another queue's poison list
		{"exchange", "unacked", true},
		{"queue", "a*b?[c]", true}, // never used in a pattern
	} {
		err := k.validateName(tc.kind, tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("validateName(%q, %q) = %v", tc.kind, tc.name, err)
		}
		if err != nil && !errors.Is(err, driver.ErrInvalidArgument) {
			t.Errorf("error %v does not wrap ErrInvalidArgument", err)
		}
	}
}

func TestUnackedRecordEscapesLikePython(t *testing.T) {
	s := openStore(t, isolated(t, nil))
	c := rawClient(t, s)
	cleanupKeys(t, c, s.o.GlobalKeyPrefix)
	ctx := testCtx(t)
	p := s.o.GlobalKeyPrefix
	// json.dumps of each string, as printed by Python 3.11.
	cases := []struct{ in, py string }{
		{"é", `"\u00e9"`},
		{"a\"b\\c/d\x01\x7f", `"a\"b\\c/d\u0001\u007f"`},
		{"x😀y", `"x\ud83d\ude00y"`},
		{"\n\t\r\b\f", `"\n\t\r\b\f"`},
		{"日本", `"\u65e5\u672c"`},
		{"", `""`},
	}
	for i, tc := range cases {
		q := uniqueName(t, "q")
		env := newEnv("x", 0)
		env.Exchange, env.RoutingKey = tc.in, tc.in+"!"
		_ = s.Put(ctx, q, env)
		it, err := s.Get(ctx, []string{q}, 0)
		if err != nil {
			t.Fatal(err)
		}
		rec := c.HGet(ctx, p+"unacked", receiptOf(t, it).tag).Val()
		wantRK := tc.py[:len(tc.py)-1] + `!"`
		if want := ", " + tc.py + ", " + wantRK + "]"; !strings.HasSuffix(rec, want) {
			t.Errorf("case %d: record ends %q, want %q", i, rec[max(0, len(rec)-40):], want)
		}
		_ = s.Ack(ctx, it)
	}
	flush(t, s)
}

// TestTakeReadsTagAndRoutingFromAnyLayout checks the script's fast reading
// of the envelope tail against layouts it must handle, and against layouts
// that must fall back to a full decode.
func TestTakeReadsTagAndRoutingFromAnyLayout(t *testing.T) {
	s := openStore(t, isolated(t, nil))
	c := rawClient(t, s)
	cleanupKeys(t, c, s.o.GlobalKeyPrefix)
	ctx := testCtx(t)
	p := s.o.GlobalKeyPrefix
	big := strings.Repeat("QUJD", 2000)
	goEnv := newEnv("go", 0)
	goEnv.Exchange, goEnv.RoutingKey, goEnv.DeliveryTag = "gx", "g.rk", "tag-go"
	goRaw, _ := goEnv.Marshal()
	goEnv2 := goEnv.Clone()
	goEnv2.DeliveryTag, goEnv2.Redelivered = "tag-go-redelivered", true
	goRedelivered, _ := goEnv2.Marshal()
	sorted, _ := markRedelivered([]byte(strings.ReplaceAll(string(goRaw), "tag-go", "tag-sorted")))
	cases := []struct {
		raw, tag, ex, rk string
	}{
		{`{"body": "eA==", "content-encoding": "utf-8", "content-type": "text/plain", "headers": {}, "properties": {"delivery_mode": 2, "delivery_info": {"exchange": "px", "routing_key": "p.rk"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "tag-py"}}`, "tag-py", "px", "p.rk"},
		{string(goRaw), "tag-go", "gx", "g.rk"},
		{string(goRedelivered), "tag-go-redelivered", "gx", "g.rk"},
		{string(sorted), "tag-sorted", "gx", "g.rk"},
		// A header that looks like delivery_info comes before the real one.
		{`{"body": "eA==", "headers": {"delivery_info": {"exchange": "fake", "routing_key": "fake"}}, "properties": {"delivery_info": {"exchange": "real", "routing_key": "r"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "tag-hdr"}}`, "tag-hdr", "real", "r"},
		// Escapes in names: full decode.
		{`{"body": "eA==", "properties": {"delivery_info": {"exchange": "a\"b\u00e9", "routing_key": "c\\d"}, "body_encoding": "base64", "delivery_tag": "tag-esc"}}`, "tag-esc", "a\"bé", `c\d`},
		// A body larger than the tail that is read.
		{`{"body": "` + big + `", "properties": {"delivery_info": {"exchange": "bx", "routing_key": "b"}, "body_encoding": "base64", "delivery_tag": "tag-big"}}`, "tag-big", "bx", "b"},
		// delivery_info too far from the end: full decode.
		{`{"body": "eA==", "properties": {"delivery_info": {"exchange": "fx", "routing_key": "f"}, "x": "` + big + `", "body_encoding": "base64", "delivery_tag": "tag-far"}}`, "tag-far", "fx", "f"},
		// Trailing white space and a tag that is not last: full decode.
		{`{"body": "eA==", "properties": {"delivery_tag": "tag-ws", "delivery_info": {"exchange": "wx", "routing_key": "w"}, "body_encoding": "base64"}}  `, "tag-ws", "wx", "w"},
	}
	for i, tc := range cases {
		q := uniqueName(t, "q")
		c.LPush(ctx, p+q, tc.raw)
		it, err := s.Get(ctx, []string{q}, 0)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		r := receiptOf(t, it)
		if r.tag != tc.tag {
			t.Errorf("case %d: tag %q, want %q", i, r.tag, tc.tag)
		}
		rec := c.HGet(ctx, p+"unacked", r.tag).Val()
		env, ex, rk, err := parseUnackedRecord([]byte(rec))
		if err != nil || string(env) != strings.TrimSpace(tc.raw) || ex != tc.ex || rk != tc.rk {
			t.Errorf("case %d: record exchange %q routing key %q (%v), want %q %q", i, ex, rk, err, tc.ex, tc.rk)
		}
		_ = s.Ack(ctx, it)
	}
	flush(t, s)
	if n := c.HLen(ctx, p+"unacked").Val(); n != 0 {
		t.Errorf("%d entries left after the acks", n)
	}
}

func TestWriteJSONStringLikePython(t *testing.T) {
	for in, want := range map[string]string{
		"é": `"\u00e9"`, "a\"b\\c/d\x01\x7f": `"a\"b\\c/d\u0001\u007f"`, "x😀y": `"x\ud83d\ude00y"`,
		"\n\t\r\b\f": `"\n\t\r\b\f"`, "日本": `"\u65e5\u672c"`, "": `""`, "plain.rk": `"plain.rk"`,
	} {
		var b bytes.Buffer
		writeJSONString(&b, in)
		if b.String() != want {
			t.Errorf("%q: %s, want %s", in, b.String(), want)
		}
	}
}
