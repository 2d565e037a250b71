package redis

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
)

func TestFanoutOverPubSub(t *testing.T) {
	opts := isolated(t, nil)
	pub := openStore(t, opts)
	sub := openStore(t, url.Values{"global_keyprefix": {opts.Get("global_keyprefix")}})
	c := rawClient(t, pub)
	cleanupKeys(t, c, pub.o.GlobalKeyPrefix)
	ctx := testCtx(t)
	p := pub.o.GlobalKeyPrefix
	ex := uniqueName(t, "ex")
	q1, q2, q3 := uniqueName(t, "q1"), uniqueName(t, "q2"), uniqueName(t, "q3")

	// Watch the wire with a plain subscriber.
	watch := c.PSubscribe(ctx, globEscape(p)+"*")
	defer watch.Close()
	if _, err := watch.Receive(ctx); err != nil {
		t.Fatal(err)
	}

	for _, q := range []string{q1, q2} {
		if err := sub.BindFanout(ctx, ex, "", q); err != nil {
			t.Fatal(err)
		}
	}
	// A queue bound to an exchange whose name extends ex must not hear it.
	if err := sub.BindFanout(ctx, ex+"x", "", q3); err != nil {
		t.Fatal(err)
	}
	env := newEnv(`{"f": 1}`, 0)
	env.Exchange, env.RoutingKey = ex, ""
	if err := pub.PutFanout(ctx, ex, "", env); err != nil {
		t.Fatal(err)
	}
	msg, err := watch.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := p + "/0." + ex; msg.Channel != want {
		t.Errorf("PUBLISH channel %q, want %q", msg.Channel, want)
	}
	for _, q := range []string{q1, q2} {
		it, err := sub.Get(ctx, []string{q}, 2*time.Second)
		if err != nil {
			t.Fatalf("Get %s: %v", q, err)
		}
		if string(it.Envelope.Body) != `{"f": 1}` || it.Queue != q {
			t.Errorf("got %s from %s", it.Envelope.Body, it.Queue)
		}
		// Fanout deliveries are recorded as unacked, as kombu does.
		r := receiptOf(t, it)
		if !c.HExists(ctx, p+"unacked", r.tag).Val() {
			t.Error("fanout delivery not recorded")
		}
		_ = sub.Ack(ctx, it)
	}
	if _, err := sub.Get(ctx, []string{q3}, 100*time.Millisecond); !errors.Is(err, driver.ErrEmpty) {
		t.Errorf("q3 heard another exchange: %v", err)
	}

	// Routing keys go into the channel, and every queue bound to the
	// exchange hears every channel of it, whatever its binding key.
	if err := sub.BindFanout(ctx, ex, "a.#", q3); err != nil {
		t.Fatal(err)
	}
	env2 := newEnv("rk", 0)
	env2.Exchange, env2.RoutingKey = ex, "a.b"
	if err := pub.PutFanout(ctx, ex, "a.b", env2); err != nil {
		t.Fatal(err)
	}
	msg, _ = watch.ReceiveMessage(ctx)
	if want := p + "/0." + ex + "/a.b"; msg.Channel != want {
		t.Errorf("PUBLISH channel %q, want %q", msg.Channel, want)
	}
	for _, q := range []string{q1, q2, q3} {
		if it, err := sub.Get(ctx, []string{q}, 2*time.Second); err != nil || string(it.Envelope.Body) != "rk" {
			t.Errorf("%s: keyed broadcast: %v", q, err)
		} else {
			_ = sub.Ack(ctx, it)
		}
	}

	// Unbinding stops delivery.
	for _, q := range []string{q1, q2} {
		if err := sub.UnbindFanout(ctx, ex, "", q); err != nil {
			t.Fatal(err)
		}
	}
	_ = pub.PutFanout(ctx, ex, "", env)
	if _, err := sub.Get(ctx, []string{q1, q2}, 200*time.Millisecond); !errors.Is(err, driver.ErrEmpty) {
		t.Errorf("got a broadcast after unbinding: %v", err)
	}
	flush(t, sub)
}

func TestFanoutNamesAreChecked(t *testing.T) {
	for _, tc := range []struct {
		ex string
		ok bool
	}{
		{"logs", true},
		{"lo/gs", false},
		{"lo*gs", false},
		{"lo?gs", false},
		{"lo[g]s", false},
		{`lo\gs`, false},
		{"lo\x06gs", false},
	} {
		err := validateFanout(tc.ex)
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, driver.ErrInvalidArgument) {
			t.Errorf("validateFanout(%q) = %v", tc.ex, err)
		}
	}
	o, _ := ParseURL(&url.URL{Scheme: "redis", Host: "h", Path: "/3", RawQuery: "global_keyprefix=app[1]:"})
	k := newKeys(o)
	if got, want := strings.Join(k.fanoutPatterns("ex"), " "), `app\[1\]:/3.ex app\[1\]:/3.ex/*`; got != want {
		t.Errorf("patterns %q, want %q", got, want)
	}
	if got := k.fanoutChannel("ex", "a.b"); got != "app[1]:/3.ex/a.b" {
		t.Errorf("channel %q", got)
	}
	o, _ = ParseURL(&url.URL{Scheme: "redis", Host: "h", RawQuery: "fanout_prefix=false&fanout_patterns=false"})
	k = newKeys(o)
	if got := k.fanoutChannel("ex", "a.b"); got != "ex" {
		t.Errorf("kombu 3 style channel %q", got)
	}
	if got := strings.Join(k.fanoutPatterns("e*x"), " "); got != `e\*x` {
		t.Errorf("pattern %q", got)
	}
}
