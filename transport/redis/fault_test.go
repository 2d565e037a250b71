package redis

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

// TestConcurrentSweepersRestoreOnce is F11's "10 consumers sweeping": each
// expired delivery comes back exactly once, and none that is younger than
// the visibility timeout does.
func TestConcurrentSweepersRestoreOnce(t *testing.T) {
	opts := isolated(t, url.Values{"visibility_timeout": {"60"}})
	s := openStore(t, opts)
	c := rawClient(t, s)
	cleanupKeys(t, c, s.o.GlobalKeyPrefix)
	ctx := testCtx(t)
	q := uniqueName(t, "q")
	const n, young = 200, 20
	var batch []virtual.QueuedEnvelope
	for i := range n {
		batch = append(batch, virtual.QueuedEnvelope{Queue: q, Envelope: newEnv(strconv.Itoa(i), 0)})
	}
	if err := s.PutBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	items, err := s.GetBatch(ctx, []string{q}, n, 0)
	if err != nil || len(items) != n {
		t.Fatalf("took %d: %v", len(items), err)
	}
	for _, it := range items[young:] {
		age(t, c, s, receiptOf(t, it), 61*time.Second)
	}
	var sweepers []*Store
	for range 10 {
		sweepers = append(sweepers, openStore(t, url.Values{"global_keyprefix": {s.o.GlobalKeyPrefix}, "visibility_timeout": {"60"}}))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for _, sw := range sweepers {
		wg.Go(func() {
			for range 5 {
				// Without the mutex every sweeper races for every entry:
				// the compare-and-swap alone must keep it exactly once.
				c.Del(ctx, s.k.unackedMutex)
				r, err := sw.RestoreVisible(ctx)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				total += r
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// The consuming store's own sweeper (started by its fetch) may have
	// restored some too: the queue length is what proves exactly once.
	if total > n-young {
		t.Errorf("restored %d times, want at most %d", total, n-young)
	}
	if size, _ := s.Size(ctx, q); size != n-young {
		t.Errorf("%d messages back in the queue, want %d", size, n-young)
	}
	if left := c.HLen(ctx, s.k.unacked).Val(); left != young {
		t.Errorf("%d unacked entries left, want the %d young ones", left, young)
	}
}

// TestFanoutGapIsNotDelivered is F18: pub/sub fanout is at-most-once, so
// what is published while nobody listens is gone.
func TestFanoutGapIsNotDelivered(t *testing.T) {
	opts := isolated(t, nil)
	s := openStore(t, opts)
	cleanupKeys(t, rawClient(t, s), s.o.GlobalKeyPrefix)
	ctx := testCtx(t)
	ex, q := uniqueName(t, "ex"), uniqueName(t, "q")
	pub := func(body string) {
		env := newEnv(body, 0)
		env.Exchange = ex
		if err := s.PutFanout(ctx, ex, "", env); err != nil {
			t.Fatal(err)
		}
	}
	must(t, s.BindFanout(ctx, ex, "", q))
	pub("before")
	must(t, s.UnbindFanout(ctx, ex, "", q))
	time.Sleep(50 * time.Millisecond) // let the PUNSUBSCRIBE land
	pub("during the gap")
	must(t, s.BindFanout(ctx, ex, "", q))
	pub("after")
	var got []string
	for {
		it, err := s.Get(ctx, []string{q}, 300*time.Millisecond)
		if errors.Is(err, driver.ErrEmpty) {
			break
		}
		must(t, err)
		got = append(got, string(it.Envelope.Body))
		must(t, s.Ack(ctx, it))
	}
	// "before" was dropped with the queue's buffer at the unbind.
	if strings.Join(got, ",") != "after" {
		t.Errorf("got %v, want only [after]", got)
	}
	flush(t, s)
}

// TestGlobalKeyPrefixOnEveryKey runs a bit of everything with a prefix and
// checks that no key or channel escapes it.
func TestGlobalKeyPrefixOnEveryKey(t *testing.T) {
	opts := isolated(t, url.Values{"visibility_timeout": {"1"}})
	prefix := opts.Get("global_keyprefix")
	conn := dialDriver(t, opts)
	ch := openChannel(t, conn)
	st := storeOf(t, conn)
	c := rawClient(t, st)
	cleanupKeys(t, c, prefix)
	ctx := testCtx(t)
	tag := randHex(6)
	ex, fx, q := "gkp-x-"+tag, "gkp-f-"+tag, "gkp-q-"+tag

	watch := c.PSubscribe(ctx, "*"+tag+"*")
	defer watch.Close()
	if _, err := watch.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	must(t, ch.ExchangeDeclare(ctx, driver.Exchange{Name: ex, Type: "direct"}))
	must(t, ch.ExchangeDeclare(ctx, driver.Exchange{Name: fx, Type: "fanout"}))
	_, err := ch.QueueDeclare(ctx, driver.Queue{Name: q})
	must(t, err)
	must(t, ch.QueueBind(ctx, driver.Binding{Queue: q, Exchange: ex, RoutingKey: "k"}))
	must(t, ch.QueueBind(ctx, driver.Binding{Queue: q, Exchange: fx}))
	must(t, ch.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "c"}))
	must(t, ch.Publish(ctx, &driver.Publishing{Exchange: ex, RoutingKey: "k", Message: driver.Message{Body: []byte("d"), Properties: driver.Properties{Priority: 9}}}))
	must(t, ch.Publish(ctx, &driver.Publishing{Exchange: fx, Message: driver.Message{Body: []byte("f")}}))
	ds := receiveN(t, ch, 2, 5*time.Second)
	msg, err := watch.ReceiveMessage(ctx)
	must(t, err)
	if !strings.HasPrefix(msg.Channel, prefix) {
		t.Errorf("PUBLISH channel %q lacks the prefix", msg.Channel)
	}
	// The deliveries are unacked: their records are under the prefix.
	if n := c.Exists(ctx, prefix+"unacked", prefix+"unacked_index", prefix+"unacked_queue").Val(); n != 3 {
		t.Errorf("%d of the 3 prefixed unacked keys exist", n)
	}
	// Let them expire and run the restore sweep, whose mutex is prefixed.
	time.Sleep(1100 * time.Millisecond)
	if _, err := st.RestoreVisible(ctx); err != nil {
		t.Fatal(err)
	}
	_ = ds
	var keys []string
	iter := c.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		if strings.Contains(k, tag) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		t.Fatal("no keys found")
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			t.Errorf("key %q lacks the global key prefix", k)
		}
	}
}

// TestLongHandlerExtendsLease is F11 with a real sweep: visibility timeout
// 2 s, a handler that holds a message 5 s. Extending the lease every
// second keeps another consumer from getting it; not extending it gets it
// redelivered, once.
func TestLongHandlerExtendsLease(t *testing.T) {
	opts := isolated(t, url.Values{"visibility_timeout": {"2"}})
	ctx := testCtx(t)
	for _, extend := range []bool{true, false} {
		t.Run("extend="+strconv.FormatBool(extend), func(t *testing.T) {
			t.Parallel()
			q := uniqueName(t, "q")
			slow := openChannel(t, dialDriver(t, opts))
			other := openChannel(t, dialDriver(t, opts))
			for _, ch := range []driver.Channel{slow, other} {
				_, err := ch.QueueDeclare(ctx, driver.Queue{Name: q})
				must(t, err)
			}
			must(t, slow.Publish(ctx, &driver.Publishing{RoutingKey: q, Message: driver.Message{Body: []byte("long")}}))
			must(t, slow.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "slow"}))
			d := receiveN(t, slow, 1, 5*time.Second)[0]
			must(t, other.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "other"}))
			got := make(chan *driver.Delivery, 4)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
					ds, _ := other.Receive(rctx, 1)
					cancel()
					for _, d := range ds {
						got <- d
						_ = other.Ack(ctx, d.Tag, false)
					}
				}
			})
			for range 5 {
				time.Sleep(time.Second)
				if extend {
					must(t, slow.(driver.LeaseExtender).ExtendLease(ctx, d.Tag, 2*time.Second))
				}
			}
			time.Sleep(500 * time.Millisecond)
			close(stop)
			wg.Wait()
			close(got)
			n := 0
			for d := range got {
				n++
				if !d.Redelivered {
					t.Error("the second delivery is not marked redelivered")
				}
			}
			switch {
			case extend && n != 0:
				t.Errorf("delivered %d more times although the lease was extended", n)
			case !extend && n != 1:
				t.Errorf("delivered %d more times after the lease expired, want 1", n)
			}
			err := slow.Ack(ctx, d.Tag, false)
			if extend && err != nil {
				t.Errorf("ack after the long handler: %v", err)
			}
		})
	}
}
