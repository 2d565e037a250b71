package amqp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu/driver"
)

// resetProxy forwards TCP to the broker and can cut every connection, or
// blackhole them (keep them open, forward nothing: a hung broker).
type resetProxy struct {
	backend   string
	mu        sync.Mutex
	conns     []net.Conn
	wg        sync.WaitGroup
	blackhole atomic.Bool
}

// pipe copies src to dst, dropping everything while blackholed.
func (p *resetProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.blackhole.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *resetProxy) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	var d net.Dialer
	b, err := d.DialContext(ctx, network, p.backend)
	if err != nil {
		return nil, err
	}
	client, server := net.Pipe()
	p.mu.Lock()
	p.conns = append(p.conns, b, server)
	p.mu.Unlock()
	p.wg.Add(2)
	go p.pipe(b, server)
	go p.pipe(server, b)
	return client, nil
}

func (p *resetProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestNoSilentLossOnReset publishes while the connection is cut. Every
// publish that returned nil must be in the queue afterwards (F5).
func TestNoSilentLossOnReset(t *testing.T) {
	t.Parallel()
	u := mustURL(t, serverURL(t))
	proxy := &resetProxy{backend: u.Host}
	t.Cleanup(func() { proxy.reset(); proxy.wg.Wait() })
	_, direct := setup(t)
	q := declareQueue(t, direct, driver.Queue{Durable: true})

	cn, err := Transport.OpenConnector(u)
	must(t, err)
	connector := cn.(*Connector)
	connector.Dial = proxy.dial

	var confirmed, notSentBodies sync.Map
	var nConfirmed, nFailed atomic.Int64
	ctx := tctx(t)
	for round := range 3 {
		conn, err := connector.Connect(ctx)
		must(t, err)
		ch, err := conn.Channel(ctx)
		must(t, err)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 200 {
					body := fmt.Sprintf("%d-%d-%d", round, g, i)
					err := ch.Publish(ctx, &driver.Publishing{RoutingKey: q, Message: driver.Message{Body: []byte(body)}})
					if err == nil {
						confirmed.Store(body, true)
						nConfirmed.Add(1)
						continue
					}
					nFailed.Add(1)
					if errors.Is(err, driver.ErrConnectionLost) {
						notSentBodies.Store(body, true)
					}
					if errors.Is(err, ErrUnconfirmed) && errors.Is(err, driver.ErrConnectionLost) {
						t.Errorf("an unconfirmed publish claims it surely did not happen: %v", err)
					}
					if errors.Is(err, driver.ErrConnectionLost) || errors.Is(err, ErrUnconfirmed) || errors.Is(err, driver.ErrClosed) {
						return
					}
					t.Errorf("unexpected publish error: %v", err)
					return
				}
			})
		}
		time.Sleep(50 * time.Millisecond)
		proxy.reset()
		wg.Wait()
		_ = conn.Close()
	}
	if nFailed.Load() == 0 {
		t.Log("no publish was cut by the resets (too fast?)")
	}
	// Drain the queue and check every confirmed message is there.
	seen := map[string]bool{}
	for {
		d, err := direct.Get(ctx, q, true)
		if isEmpty(err) {
			break
		}
		must(t, err)
		seen[string(d.Body)] = true
	}
	lost := 0
	confirmed.Range(func(k, _ any) bool {
		if !seen[k.(string)] {
			lost++
		}
		return true
	})
	notSentBodies.Range(func(k, _ any) bool {
		if seen[k.(string)] {
			t.Errorf("%s failed with ErrConnectionLost (surely not sent) but is in the queue", k)
		}
		return true
	})
	t.Logf("confirmed %d, failed %d, in queue %d", nConfirmed.Load(), nFailed.Load(), len(seen))
	if lost > 0 {
		t.Fatalf("%d confirmed messages lost", lost)
	}
}

// TestNoGoroutineLeak checks Close stops every goroutine the transport
// started (connection, channels, consumers). Not parallel: goleak sees
// the whole process.
func TestNoGoroutineLeak(t *testing.T) {
	u := serverURL(t)
	ignore := goleak.IgnoreCurrent()
	func() {
		cn, err := Transport.OpenConnector(mustURL(t, u))
		must(t, err)
		ctx := tctx(t)
		conn, err := cn.Connect(ctx)
		must(t, err)
		ch1, err := conn.Channel(ctx)
		must(t, err)
		ch2, err := conn.Channel(ctx)
		must(t, err)
		q := unique(t, "leak")
		_, err = ch1.QueueDeclare(ctx, driver.Queue{Name: q, AutoDelete: true})
		must(t, err)
		must(t, ch2.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "a"}))
		must(t, ch2.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "b"}))
		must(t, ch1.Publish(ctx, &driver.Publishing{RoutingKey: q, Message: driver.Message{Body: []byte("x")}}))
		ds, err := ch2.Receive(ctx, 1)
		must(t, err)
		if len(ds) == 1 {
			must(t, ch2.Ack(ctx, ds[0].Tag, false))
		}
		// A channel exception, so a second generation exists.
		_, _ = ch1.QueueDeclare(ctx, driver.Queue{Name: unique(t, "missing"), Passive: true})
		must(t, conn.(*Conn).Ping(ctx))
		must(t, ch1.Qos(ctx, 3))
		must(t, ch1.Close())
		must(t, conn.Close())
	}()
	goleak.VerifyNone(t, ignore)
}

// TestHungBrokerDetected blackholes the connection (F6): with heartbeat=1
// the transport notices within a few seconds, and Receive and Publish
// return errors instead of hanging.
func TestHungBrokerDetected(t *testing.T) {
	t.Parallel()
	u := mustURL(t, withQuery(t, serverURL(t), "heartbeat", "1", "confirm_timeout", "30"))
	proxy := &resetProxy{backend: u.Host}
	t.Cleanup(func() { proxy.reset(); proxy.wg.Wait() })
	_, direct := setup(t)
	q := declareQueue(t, direct, driver.Queue{})
	cn, err := Transport.OpenConnector(u)
	must(t, err)
	cn.(*Connector).Dial = proxy.dial
	ctx := tctx(t)
	conn, err := cn.Connect(ctx)
	must(t, err)
	defer conn.Close()
	ch, err := conn.Channel(ctx)
	must(t, err)
	must(t, ch.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "hb"}))

	proxy.blackhole.Store(true)
	start := time.Now()
	pubErr := make(chan error, 1)
	go func() {
		pubErr <- ch.Publish(ctx, &driver.Publishing{RoutingKey: q, Message: driver.Message{Body: []byte("x")}})
	}()
	var rerr error
	for time.Since(start) < 15*time.Second {
		if _, rerr = ch.Receive(ctx, 1); rerr != nil {
			break
		}
	}
	if !errors.Is(rerr, driver.ErrClosed) {
		t.Fatalf("receive on a hung broker: %v", rerr)
	}
	if el := time.Since(start); el > 6*time.Second {
		t.Errorf("dead connection noticed after %v (heartbeat 1 s)", el)
	}
	select {
	case err := <-pubErr:
		if err == nil {
			t.Fatal("publish on a hung broker returned nil")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("publish hangs on a hung broker")
	}
	t.Logf("detected after %v", time.Since(start))
}

// TestConnectTimeout: a server that accepts TCP but never speaks AMQP.
func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	cn, err := Transport.OpenConnector(mustURL(t, fmt.Sprintf("amqp://%s/?connect_timeout=0.5", ln.Addr())))
	must(t, err)
	start := time.Now()
	_, err = cn.Connect(context.Background())
	if !errors.Is(err, driver.ErrConnectionLost) {
		t.Fatalf("connect to a silent server: %v", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("connect_timeout 0.5 s took %v", el)
	}
	// The caller's ctx bounds it too.
	cn, _ = Transport.OpenConnector(mustURL(t, fmt.Sprintf("amqp://%s/?connect_timeout=60", ln.Addr())))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err = cn.Connect(ctx); err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("ctx deadline: %v after %v", err, time.Since(start))
	}
}

// rabbitmqctl runs the test node's rabbitmqctl (KOMBU_TEST_RABBITMQCTL,
// set by scripts/services.sh) or skips.
func rabbitmqctl(t *testing.T, args ...string) string {
	t.Helper()
	ctl := testenv.ServerURL(t, testenv.RabbitMQCtl) // fails in CI when unset
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, ctl, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqctl %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestOversizedMessage (B6): with max_message_size lowered to 1 MiB, a
// 2 MiB publish is refused by the broker, Publish reports it (never nil),
// and the channel keeps working. Not parallel: it changes a broker-wide
// setting for the channels opened meanwhile, and restores it.
func TestOversizedMessage(t *testing.T) {
	serverURL(t)
	old := rabbitmqctl(t, "eval", "application:get_env(rabbit, max_message_size).")
	rabbitmqctl(t, "eval", "application:set_env(rabbit, max_message_size, 1048576).")
	t.Cleanup(func() {
		if v, ok := strings.CutPrefix(old, "{ok,"); ok {
			rabbitmqctl(t, "eval", "application:set_env(rabbit, max_message_size, "+strings.TrimSuffix(v, "}")+").")
		} else {
			rabbitmqctl(t, "eval", "application:unset_env(rabbit, max_message_size).")
		}
	})
	_, ch := setup(t)
	ctx := tctx(t)
	q := declareQueue(t, ch, driver.Queue{})
	big := make([]byte, 2<<20)
	err := ch.Publish(ctx, &driver.Publishing{RoutingKey: q, Message: driver.Message{Body: big}})
	if err == nil {
		t.Fatal("a 2 MiB publish above max_message_size returned nil")
	}
	if !errors.Is(err, driver.ErrPreconditionFailed) {
		t.Errorf("oversized publish: %v, want ErrPreconditionFailed", err)
	}
	// A batch with one oversized message in the middle: the prefix is
	// reported as published, never the oversized one.
	ps := []*driver.Publishing{
		{RoutingKey: q, Message: driver.Message{Body: []byte("a")}},
		{RoutingKey: q, Message: driver.Message{Body: big}},
		{RoutingKey: q, Message: driver.Message{Body: []byte("c")}},
	}
	err = ch.PublishBatch(ctx, ps)
	var be *driver.BatchError
	if !errors.As(err, &be) || be.Published > 1 {
		t.Fatalf("batch with an oversized message: %v", err)
	}
	pub(t, ch, "", q, "small")
	var bodies []string
	for {
		d, err := ch.Get(ctx, q, true)
		if isEmpty(err) {
			break
		}
		must(t, err)
		bodies = append(bodies, string(d.Body))
	}
	if !slices.Contains(bodies, "small") || slices.ContainsFunc(bodies, func(b string) bool { return len(b) > 1<<20 }) {
		t.Fatalf("queue holds %q", bodies)
	}
}
