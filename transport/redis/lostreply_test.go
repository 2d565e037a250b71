package redis

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
)

// dialKombu opens a kombu.Connection on u and closes it at the end.
func dialKombu(t testing.TB, u *url.URL, opts *kombu.Options) *kombu.Connection {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := kombu.Dial(ctx, u.String(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// proxiedConsumer is a queue holding one message, published directly, and
// a channel that declared it through a fault proxy.
type proxiedConsumer struct {
	ctx           context.Context
	prefix, queue string
	direct        *Store
	raw           *redis.Client
	proxy         *faultProxy
	conn          driver.Conn
	ch            driver.Channel
}

func newProxiedConsumer(t *testing.T, opts url.Values, body string) *proxiedConsumer {
	t.Helper()
	f := &proxiedConsumer{ctx: testCtx(t), prefix: opts.Get("global_keyprefix"), queue: uniqueName(t, "q")}
	f.direct = openStore(t, opts)
	f.raw = rawClient(t, f.direct)
	cleanupKeys(t, f.raw, f.prefix)
	// The script is loaded, so that the take is one EVALSHA.
	must(t, takeScript.Load(f.ctx, f.raw).Err())
	env := newEnv(body, 0)
	env.RoutingKey = f.queue
	must(t, f.direct.Put(f.ctx, f.queue, env))
	f.proxy = startFaultProxy(t)
	cn, err := Transport.OpenConnector(f.proxy.url(opts))
	must(t, err)
	f.conn, err = cn.Connect(f.ctx)
	must(t, err)
	t.Cleanup(func() { _ = f.conn.Close() })
	f.ch = openChannel(t, f.conn)
	_, err = f.ch.QueueDeclare(f.ctx, driver.Queue{Name: f.queue})
	must(t, err)
	return f
}

// TestLostPublishReplyIsNotSentAgain: the proxy lets the LPUSH reach redis
// and loses its reply. Publish must fail with an outcome-unknown error
// that kombu does not retry, even with a retry policy, and the queue must
// hold exactly one copy (go-redis's own retry used to send it again and
// return nil: two copies).
func TestLostPublishReplyIsNotSentAgain(t *testing.T) {
	opts := isolated(t, nil)
	prefix := opts.Get("global_keyprefix")
	direct := openStore(t, opts)
	c := rawClient(t, direct)
	cleanupKeys(t, c, prefix)
	proxy := startFaultProxy(t)
	conn := dialKombu(t, proxy.url(opts), nil)
	q := uniqueName(t, "q")
	rule := proxy.on(dropReply, 1, "lpush", q)

	ctx := testCtx(t)
	p, err := conn.Producer(ctx, &kombu.ProducerOptions{RoutingKey: q})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Publish(ctx, "once", &kombu.PublishOptions{Retry: true})
	if !errors.Is(err, kombu.ErrUnconfirmed) || errors.Is(err, kombu.ErrConnectionLost) {
		t.Errorf("Publish with a lost reply: %v; want ErrUnconfirmed, not ErrConnectionLost", err)
	}
	if proxy.hits(rule) != 1 {
		t.Fatalf("the proxy dropped %d replies, want 1", proxy.hits(rule))
	}
	if n := c.LLen(ctx, prefix+q).Val(); n != 1 {
		t.Errorf("the queue holds %d copies, want exactly 1", n)
	}
	// The connection recovers: the next publish goes through.
	if err := p.Publish(ctx, "next", nil); err != nil {
		t.Errorf("publish after the fault: %v", err)
	}
}

// TestLostTakeReplyIsRestoredPromptly: the take script ran (the message
// moved to unacked) but its reply was lost. With the default visibility
// timeout (an hour) the message must still come back within seconds,
// exactly once.
func TestLostTakeReplyIsRestoredPromptly(t *testing.T) {
	f := newProxiedConsumer(t, isolated(t, nil), "lost reply")
	ctx, c, prefix, q, ch, direct := f.ctx, f.raw, f.prefix, f.queue, f.ch, f.direct
	rule := f.proxy.on(dropReply, 1, "evalsha", q)
	must(t, ch.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "c"}))

	start := time.Now()
	var got []*driver.Delivery
	for len(got) == 0 && time.Since(start) < 5*time.Second {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		ds, err := ch.Receive(rctx, 1)
		cancel()
		if err != nil && !errors.Is(err, driver.ErrConnectionLost) && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Receive: %v", err)
		}
		got = append(got, ds...)
	}
	if f.proxy.hits(rule) != 1 {
		t.Fatalf("the proxy dropped %d take replies, want 1", f.proxy.hits(rule))
	}
	if len(got) != 1 || string(got[0].Body) != "lost reply" {
		t.Fatalf("after a lost take reply, got %d deliveries in %v; want the message back within 5 s", len(got), time.Since(start))
	}
	must(t, ch.Ack(ctx, got[0].Tag, false))
	flush(t, storeOf(t, f.conn))
	if n := c.HLen(ctx, prefix+"unacked").Val(); n != 0 {
		t.Errorf("%d unacked entries left after the ack; the lost take's entry must be gone", n)
	}
	if n, _ := direct.Size(ctx, q); n != 0 {
		t.Errorf("%d copies left in the queue after the ack", n)
	}
}

// TestConsumeFailuresAreConnectionLost: while consuming, a LOADING reply
// (redis restarting and reading its dataset) and a reply that never comes
// (socket timeout) are connection failures: Receive returns an error
// wrapping ErrConnectionLost, and once redis answers again the message is
// delivered, not hidden in unacked.
func TestConsumeFailuresAreConnectionLost(t *testing.T) {
	for _, tc := range []struct {
		name   string
		action proxyAction
	}{
		{"LOADING", answer},
		{"timeout", holdReply},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newProxiedConsumer(t, isolated(t, url.Values{"socket_timeout": {"0.5"}}), "after the fault")
			ctx, q, ch, proxy := f.ctx, f.queue, f.ch, f.proxy
			proxy.on(tc.action, 0, "evalsha", q)
			must(t, ch.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "c"}))

			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			ds, err := ch.Receive(rctx, 1)
			cancel()
			if len(ds) != 0 || !errors.Is(err, driver.ErrConnectionLost) {
				t.Fatalf("Receive during the fault: %d deliveries, %v; want an error wrapping ErrConnectionLost", len(ds), err)
			}
			proxy.clear()
			got := receiveN(t, ch, 1, 5*time.Second)
			if string(got[0].Body) != "after the fault" {
				t.Errorf("got %q", got[0].Body)
			}
			must(t, ch.Ack(ctx, got[0].Tag, false))
		})
	}
}

// TestTakeRefusesAScoreInUse: a take's score identifies what it moved (the
// undo of a lost take restores every entry with that score), so a take
// never records under a score another consumer's entry already has.
func TestTakeRefusesAScoreInUse(t *testing.T) {
	s := openStore(t, isolated(t, nil))
	c := rawClient(t, s)
	cleanupKeys(t, c, s.o.GlobalKeyPrefix)
	ctx := testCtx(t)
	q := uniqueName(t, "q")
	must(t, s.Put(ctx, q, newEnv("mine", 0)))
	// Another consumer's delivery holds the score this store uses next.
	next := time.Now().Add(time.Hour).UnixMicro() &^ 1
	s.lastScore.Store(next - 2)
	taken := strconv.FormatFloat(float64(next)/1e6, 'f', 6, 64)
	p := s.o.GlobalKeyPrefix
	c.HSet(ctx, p+"unacked", "foreign", `[{"body": ""}, "", "elsewhere"]`)
	c.ZAdd(ctx, p+"unacked_index", redis.Z{Score: float64(next) / 1e6, Member: "foreign"})

	it, err := s.Get(ctx, []string{q}, 0)
	must(t, err)
	if own := receiptOf(t, it).own(); own == taken {
		t.Fatalf("the take recorded under the score %s that another entry has", own)
	}
	n, err := s.undoTake(ctx, receiptOf(t, it).own())
	if err != nil || n != 1 {
		t.Fatalf("undo of the take's score restored %d entries (%v), want its own 1", n, err)
	}
	if got := c.ZScore(ctx, p+"unacked_index", "foreign").Val(); got != float64(next)/1e6 {
		t.Errorf("the other consumer's entry moved: score %v", got)
	}
}
