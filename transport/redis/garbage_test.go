package redis

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

// garbageKinds are values found in a kombu queue list that are not kombu
// envelopes, as another client (or a bug) could LPUSH them.
func garbageKinds() map[string][]byte {
	deep := `{"body": "", "headers": {"a": ` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}}`
	return map[string][]byte{
		"not JSON":                   []byte("not json at all"),
		"empty":                      {},
		"non-UTF-8 bytes":            {0xff, 0xfe, 0xfd, 0x00, 0x80},
		"JSON array":                 []byte(`[1, 2, 3]`),
		"JSON string":                []byte(`"a string"`),
		"JSON number":                []byte(`42`),
		"JSON null":                  []byte(`null`),
		"JSON true":                  []byte(`true`),
		"no body":                    []byte(`{"headers": {}, "properties": {"delivery_tag": "t1"}}`),
		"null body":                  []byte(`{"body": null, "properties": {}}`),
		"body a number":              []byte(`{"body": 12, "properties": {}}`),
		"body not base64":            []byte(`{"body": "***", "properties": {"body_encoding": "base64", "delivery_tag": "t2"}}`),
		"headers a string":           []byte(`{"body": "", "headers": "h", "properties": {}}`),
		"headers an array":           []byte(`{"body": "", "headers": [1], "properties": {}}`),
		"properties a string":        []byte(`{"body": "", "properties": "p"}`),
		"properties an array":        []byte(`{"body": "", "properties": []}`),
		"delivery_info a string":     []byte(`{"body": "", "properties": {"delivery_info": "di"}}`),
		"delivery_tag an object":     []byte(`{"body": "", "properties": {"delivery_tag": {}}}`),
		"content-type a number":      []byte(`{"body": "", "content-type": 5, "properties": {}}`),
		"redelivered a string":       []byte(`{"body": "", "redelivered": "yes", "properties": {}}`),
		"NaN priority":               []byte(`{"body": "", "properties": {"priority": NaN}}`),
		"deeply nested":              []byte(deep),
		"truncated":                  []byte(`{"body": "aGk=", "properties": {"body_enc`),
		"data after the envelope":    []byte(`{"body": "aGk=", "properties": {}} trailing`),
		"byte order mark":            append([]byte("\xef\xbb\xbf"), `{"body": "", "properties": {}}`...),
		"huge, not JSON":             bytes.Repeat([]byte("garbage "), 256<<10),
		"huge object without body":   []byte(`{"headers": {"pad": "` + strings.Repeat("x", 2<<20) + `"}}`),
		"in the priority 9 list [9]": []byte("not json, priority list"),
	}
}

// TestGarbageInAQueueIsReportedAndPoisoned pushes every kind of garbage
// into a kombu queue with the broker's own client, then one good message.
// A kombu consumer with the default decode error path must report each
// one (ErrDecode, raw bytes quoted and cut), move each one to the queue's
// poison list (none lost, none left in the queue or in unacked), and go
// on to receive the good message.
func TestGarbageInAQueueIsReportedAndPoisoned(t *testing.T) {
	opts := isolated(t, nil)
	prefix := opts.Get("global_keyprefix")
	st := openStore(t, opts)
	c := rawClient(t, st)
	cleanupKeys(t, c, prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	q := uniqueName(t, "q")

	var mu sync.Mutex
	var reports []error
	conn := dialKombu(t, serverURL(t, opts), &kombu.Options{ErrorHandler: func(err error) {
		mu.Lock()
		reports = append(reports, err)
		mu.Unlock()
	}})
	cons, err := conn.Consumer(ctx, []kombu.Queue{{Name: q}}, &kombu.ConsumerOptions{PrefetchCount: 5})
	must(t, err)

	kinds := garbageKinds()
	var pushed [][]byte
	for name, raw := range kinds {
		list := prefix + q
		if strings.HasSuffix(name, "[9]") {
			list += Sep + "9"
		}
		must(t, c.LPush(ctx, list, raw).Err())
		pushed = append(pushed, raw)
	}
	p, err := conn.Producer(ctx, &kombu.ProducerOptions{RoutingKey: q})
	must(t, err)
	must(t, p.Publish(ctx, "good", nil))

	m, err := cons.Receive(ctx)
	if err != nil {
		t.Fatalf("the consumer did not survive the garbage: %v", err)
	}
	var body string
	if err := m.Decode(&body); err != nil || body != "good" {
		t.Fatalf("after the garbage: %q, %v", body, err)
	}
	must(t, m.Ack(ctx))
	must(t, cons.Close())

	mu.Lock()
	defer mu.Unlock()
	if len(reports) != len(kinds) {
		t.Errorf("%d reports for %d kinds of garbage", len(reports), len(kinds))
	}
	for _, r := range reports {
		if !errors.Is(r, kombu.ErrDecode) || len(r.Error()) > 4<<10 {
			t.Errorf("report (%d bytes) does not wrap ErrDecode or quotes too much: %.200s", len(r.Error()), r)
		}
	}
	poisoned, err := c.LRange(ctx, prefix+"_kombu_go.poison."+q, 0, -1).Result()
	must(t, err)
	if len(poisoned) != len(kinds) {
		t.Errorf("%d values in the poison list, want %d", len(poisoned), len(kinds))
	}
	want := make([]string, len(pushed))
	for i, raw := range pushed {
		want[i] = string(raw)
	}
	slices.Sort(want)
	slices.Sort(poisoned)
	if !slices.Equal(poisoned, want) {
		for name, raw := range kinds {
			if !slices.Contains(poisoned, string(raw)) {
				t.Errorf("%s: not in the poison list (lost or changed)", name)
			}
		}
	}
	must(t, conn.Close()) // sends the pending ack
	if n, _ := st.Size(ctx, q); n != 0 {
		t.Errorf("%d values left in the queue", n)
	}
	if n := c.HLen(ctx, prefix+"unacked").Val(); n != 0 {
		t.Errorf("%d entries left in unacked", n)
	}
}

// TestPoisonedDeliverySettling: what each settlement does to an
// undecodable delivery on redis. Requeue puts it back at the front of the
// very list it came from, reject (quarantine) moves it to the poison list
// whether it was recorded in unacked (a JSON object) or not (moved by the
// take), and ack deletes it.
func TestPoisonedDeliverySettling(t *testing.T) {
	s := openStore(t, isolated(t, nil))
	c := rawClient(t, s)
	cleanupKeys(t, c, s.o.GlobalKeyPrefix)
	ctx := testCtx(t)
	p := s.o.GlobalKeyPrefix
	q := uniqueName(t, "q")
	poison := p + "_kombu_go.poison." + q
	high := p + q + Sep + "6"
	for i, raw := range []string{"not json", `{"no": "body"}`} {
		c.LPush(ctx, high, raw)
		it, err := s.Get(ctx, []string{q}, 0)
		must(t, err)
		if it.DecodeErr == nil || string(it.Envelope.Body) != raw {
			t.Fatalf("%q taken as %q, %v", raw, it.Envelope.Body, it.DecodeErr)
		}
		must(t, s.Requeue(ctx, it))
		if got := c.LRange(ctx, high, 0, -1).Val(); len(got) != 1 || got[0] != raw || c.LLen(ctx, poison).Val() != int64(i) {
			t.Fatalf("%q after requeue: list %q, poison %d", raw, got, c.LLen(ctx, poison).Val())
		}
		it, err = s.Get(ctx, []string{q}, 0)
		must(t, err)
		must(t, s.Quarantine(ctx, it))
		flush(t, s)
		if got := c.LRange(ctx, poison, 0, 0).Val(); len(got) != 1 || got[0] != raw {
			t.Errorf("%q after quarantine: poison list head %q", raw, got)
		}
		if n := c.HLen(ctx, p+"unacked").Val(); n != 0 {
			t.Errorf("%q after quarantine: %d unacked entries", raw, n)
		}
	}
	// Ack of a poisoned delivery deletes it: the consumer chose to.
	c.LPush(ctx, p+q, "ack me")
	it, err := s.Get(ctx, []string{q}, 0)
	must(t, err)
	must(t, s.Ack(ctx, it))
	if got := c.LRange(ctx, poison, 0, -1).Val(); slices.Contains(got, "ack me") || len(got) != 2 {
		t.Errorf("poison list after the ack: %q", got)
	}
}

// TestGarbageBroadcastIsPoisoned: a PUBLISH on a fanout channel that is
// not a kombu envelope reaches the queue's consumer as undecodable and is
// kept in the poison list, instead of being counted and dropped.
func TestGarbageBroadcastIsPoisoned(t *testing.T) {
	s := openStore(t, isolated(t, nil))
	c := rawClient(t, s)
	cleanupKeys(t, c, s.o.GlobalKeyPrefix)
	ctx := testCtx(t)
	ex, q := uniqueName(t, "ex"), uniqueName(t, "q")
	must(t, s.BindFanout(ctx, ex, "", q))
	must(t, c.Publish(ctx, s.k.fanoutChannel(ex, ""), "broadcast garbage").Err())
	it, err := s.Get(ctx, []string{q}, 3*time.Second)
	must(t, err)
	if it.DecodeErr == nil || string(it.Envelope.Body) != "broadcast garbage" {
		t.Fatalf("got %q, %v", it.Envelope.Body, it.DecodeErr)
	}
	must(t, s.Quarantine(ctx, it))
	if got := c.LRange(ctx, s.k.poison(q), 0, -1).Val(); len(got) != 1 || got[0] != "broadcast garbage" {
		t.Errorf("poison list %q", got)
	}
	if n := s.FanoutDropped(); n != 0 {
		t.Errorf("%d broadcasts dropped", n)
	}
}
