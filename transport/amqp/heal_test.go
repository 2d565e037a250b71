package amqp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
)

// proxiedConnection is a kombu.Connection to the test broker through a
// resetProxy, with extra URL options.
func proxiedConnection(t *testing.T, opts *kombu.Options, kv ...string) (*kombu.Connection, *resetProxy) {
	t.Helper()
	u := mustURL(t, withQuery(t, serverURL(t), kv...))
	proxy := &resetProxy{backend: u.Host}
	cn, err := Transport.OpenConnector(u)
	must(t, err)
	cn.(*Connector).Dial = proxy.dial
	return kombu.NewConnectionFromConnector(cn, opts), proxy
}

// TestReconnectKeepsToCtxOnHungBroker: the broker hangs (the proxy
// forwards nothing); Reconnect with a 2 s ctx returns within it, although
// closing the old connection and dialing a new one both hang.
func TestReconnectKeepsToCtxOnHungBroker(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	directConn, direct := setup(t)
	q := declareQueue(t, direct, driver.Queue{})
	func() {
		conn, proxy := proxiedConnection(t, nil, "connect_timeout", "60", "heartbeat", "0")
		defer func() { proxy.reset(); proxy.wg.Wait() }()
		defer conn.Close()
		ctx := tctx(t)
		p, err := conn.Producer(ctx, &kombu.ProducerOptions{RoutingKey: q})
		must(t, err)
		must(t, p.Publish(ctx, "before", nil))

		proxy.blackhole.Store(true)
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		start := time.Now()
		err = conn.Reconnect(rctx, false)
		cancel()
		el := time.Since(start)
		if err == nil {
			t.Fatal("Reconnect to a hung broker returned nil")
		}
		if el > 2500*time.Millisecond {
			t.Fatalf("Reconnect with a 2 s ctx took %v", el)
		}
		if conn.Connected() {
			t.Fatal("Connected() after a failed Reconnect")
		}
		t.Logf("Reconnect gave up after %v: %v", el, err)

		proxy.blackhole.Store(false)
		proxy.reset() // the hung sockets end; the old connection's close finishes
		must(t, conn.Reconnect(ctx, false))
		must(t, p.Publish(ctx, "after", nil))
		must(t, conn.Close())
	}()
	if body := getBody(t, direct, q, time.Second) + getBody(t, direct, q, time.Second); body != "beforeafter" {
		t.Fatalf("queue held %q", body)
	}
	must(t, directConn.Close())
	goleak.VerifyNone(t, ignore)
}

// TestConnectionNoticesLossAndRedials: the connection is cut; Connected()
// turns false by itself (amqp091-go's close notification), and a publish
// without Retry and a new consumer work at once on a fresh connection
// (before, both failed with 504 until the application called Reconnect).
func TestConnectionNoticesLossAndRedials(t *testing.T) {
	t.Parallel()
	_, direct := setup(t)
	q := declareQueue(t, direct, driver.Queue{})
	conn, proxy := proxiedConnection(t, nil)
	t.Cleanup(func() { proxy.reset(); proxy.wg.Wait() })
	defer conn.Close()
	ctx := tctx(t)
	p, err := conn.Producer(ctx, &kombu.ProducerOptions{RoutingKey: q})
	must(t, err)
	must(t, p.Publish(ctx, "one", nil))

	proxy.reset()
	deadline := time.Now().Add(5 * time.Second)
	for conn.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("Connected() still true 5 s after the connection was cut")
		}
		time.Sleep(10 * time.Millisecond)
	}
	must(t, p.Publish(ctx, "two", nil))
	c, err := conn.Consumer(ctx, []kombu.Queue{kombu.NewQueue(q, kombu.DefaultExchange, q)}, &kombu.ConsumerOptions{NoDeclare: true})
	must(t, err)
	defer c.Close()
	for _, want := range []string{"one", "two"} {
		m, err := c.Receive(ctx)
		must(t, err)
		if body, _ := m.Payload(); body != want {
			t.Fatalf("got %v, want %s", body, want)
		}
		must(t, m.Ack(ctx))
	}
}

// TestPublishRetryAcrossResets (F5 with Retry): publishers with a retry
// policy run while the proxy cuts every connection several times. Each
// message is counted by id: every publish that returned nil is in the
// queue (lost = 0), nothing else is (unexpected = 0), and a failed
// publish is one whose outcome the transport could not know.
func TestPublishRetryAcrossResets(t *testing.T) {
	t.Parallel()
	_, direct := setup(t)
	q := declareQueue(t, direct, driver.Queue{Durable: true})
	var retries atomic.Int64
	conn, proxy := proxiedConnection(t, nil)
	t.Cleanup(func() { proxy.reset(); proxy.wg.Wait() })
	defer conn.Close()
	ctx := tctx(t)
	policy := &kombu.RetryPolicy{MaxRetries: 20, IntervalStep: 50 * time.Millisecond, IntervalMax: 200 * time.Millisecond,
		OnRetry: func(error, time.Duration) { retries.Add(1) }}

	const publishers, perPublisher, resets = 4, 300, 4
	var mu sync.Mutex
	confirmed, ambiguous := map[string]bool{}, map[string]bool{}
	var wg sync.WaitGroup
	for g := range publishers {
		p, err := conn.Producer(ctx, &kombu.ProducerOptions{RoutingKey: q})
		must(t, err)
		wg.Go(func() {
			for i := range perPublisher {
				id := fmt.Sprintf("%d-%d", g, i)
				err := p.Publish(ctx, id, &kombu.PublishOptions{Retry: true, RetryPolicy: policy, MessageID: id})
				mu.Lock()
				if err == nil {
					confirmed[id] = true
				} else {
					ambiguous[id] = true
				}
				mu.Unlock()
				// A cut during the login looks to amqp091-go like refused
				// credentials (it does not ask RabbitMQ for
				// authentication_failure_close), which is not retried.
				cutLogin := errors.Is(err, kombu.ErrAccessRefused) && errors.Is(err, amqp.ErrCredentials)
				if err != nil && !errors.Is(err, kombu.ErrUnconfirmed) && !errors.Is(err, kombu.ErrTimeout) && !cutLogin {
					t.Errorf("publish %s: %v (only outcome-unknown errors may remain after retries)", id, err)
				}
			}
		})
	}
	for range resets {
		time.Sleep(150 * time.Millisecond)
		proxy.reset()
	}
	wg.Wait()

	seen := map[string]int{}
	for {
		d, err := direct.Get(ctx, q, true)
		if isEmpty(err) {
			break
		}
		must(t, err)
		seen[d.Properties.MessageID]++
	}
	lost, unexpected, duplicated := 0, 0, 0
	for id := range confirmed {
		if seen[id] == 0 {
			lost++
		}
	}
	for id, n := range seen {
		if !confirmed[id] && !ambiguous[id] {
			unexpected++
		}
		duplicated += n - 1
	}
	t.Logf("published %d: confirmed %d, outcome unknown %d; in queue %d; retries %d; lost %d, unexpected %d, duplicated %d",
		publishers*perPublisher, len(confirmed), len(ambiguous), len(seen), retries.Load(), lost, unexpected, duplicated)
	if lost != 0 || unexpected != 0 {
		t.Fatalf("lost %d, unexpected %d", lost, unexpected)
	}
	if retries.Load() == 0 {
		t.Log("no publish was cut by the resets (too fast?)")
	}
}

// listenerProxy is a TCP proxy on a loopback port of its own, for URL
// lists: stop closes the listener and cuts every connection (a node that
// died).
type listenerProxy struct {
	ln      net.Listener
	backend string
	mu      sync.Mutex
	conns   []net.Conn
	wg      sync.WaitGroup
}

func startListenerProxy(t *testing.T, backend string) *listenerProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	p := &listenerProxy{ln: ln, backend: backend}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, b)
			p.mu.Unlock()
			p.wg.Go(func() { _, _ = io.Copy(b, c); b.Close() })
			p.wg.Go(func() { _, _ = io.Copy(c, b); c.Close() })
		}
	})
	t.Cleanup(p.stop)
	return p
}

func (p *listenerProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *listenerProxy) stop() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// TestFailoverToTheNextURL: two URLs reach the broker through two proxies;
// the one in use dies; a publish under Ensure fails over to the other,
// OnFailover names the move, and both messages are in the queue.
func TestFailoverToTheNextURL(t *testing.T) {
	t.Parallel()
	u := mustURL(t, serverURL(t))
	_, direct := setup(t)
	q := declareQueue(t, direct, driver.Queue{})
	a, b := startListenerProxy(t, u.Host), startListenerProxy(t, u.Host)
	at := func(port int) string {
		v := *u
		v.Host = fmt.Sprintf("127.0.0.1:%d", port)
		return v.String()
	}
	var moves []string
	var mu sync.Mutex
	conn, err := kombu.NewConnection(at(a.port())+";"+at(b.port()), &kombu.Options{
		OnFailover: func(from, to string, err error) {
			mu.Lock()
			moves = append(moves, fmt.Sprintf("%s -> %s", from, to))
			mu.Unlock()
		}})
	must(t, err)
	defer conn.Close()
	ctx := tctx(t)
	p, err := conn.Producer(ctx, &kombu.ProducerOptions{RoutingKey: q})
	must(t, err)
	policy := &kombu.RetryPolicy{MaxRetries: 5, IntervalStep: 100 * time.Millisecond}
	must(t, p.Publish(ctx, "via a", &kombu.PublishOptions{Retry: true, RetryPolicy: policy}))
	a.stop()
	// A publish racing the cut would be ErrUnconfirmed (never retried):
	// publish once the loss is noticed.
	for deadline := time.Now().Add(5 * time.Second); conn.Connected(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the cut connection is still Connected after 5 s")
		}
	}
	must(t, p.Publish(ctx, "via b", &kombu.PublishOptions{Retry: true, RetryPolicy: policy}))
	if got := conn.Info().Port; got != b.port() {
		t.Fatalf("connected through port %d, want %d", got, b.port())
	}
	mu.Lock()
	first := ""
	if len(moves) > 0 {
		first = moves[0]
	}
	mu.Unlock()
	if want := fmt.Sprintf("127.0.0.1:%d/", a.port()); !strings.Contains(first, want) || !strings.Contains(first, fmt.Sprintf(":%d", b.port())) {
		t.Fatalf("failover moves %q, want one from port %d to %d", moves, a.port(), b.port())
	}
	if body := getBody(t, direct, q, time.Second) + getBody(t, direct, q, time.Second); body != "via avia b" {
		t.Fatalf("queue held %q", body)
	}
}

// A request that amqp091-go fails with its own 501 FRAME_ERROR because the
// connection broke while it waited for the reply (as a reset during a
// reconnecting publisher's channel.open does) is, for the setup of a
// channel, a lost connection that is safe to retry; on a live connection
// the same error is not reclassified.
func TestChannelSetupFailureOnBrokenConnectionIsConnectionLost(t *testing.T) {
	conn, ch := setup(t)
	cut := &amqp.Error{Code: amqp.FrameError, Reason: "EOF"}
	if err := ch.setupErr(cut); errors.Is(err, kombu.ErrConnectionLost) {
		t.Fatalf("live connection: setupErr = %v, want it unclassified", err)
	}
	must(t, conn.ac.Close())
	err := ch.setupErr(cut)
	if !errors.Is(err, kombu.ErrConnectionLost) || !kombu.Recoverable(err) {
		t.Fatalf("closed connection: setupErr = %v, want ErrConnectionLost (recoverable)", err)
	}
	if !strings.Contains(err.Error(), "EOF") {
		t.Fatalf("setupErr = %v, want the cause kept", err)
	}
	// A broker's own reply (here a connection exception) is an answer, not
	// a cut: it stays what it is even though the connection is closed.
	refused := &amqp.Error{Code: amqp.NotAllowed, Reason: "NOT_ALLOWED", Server: true}
	if err := ch.setupErr(refused); errors.Is(err, kombu.ErrConnectionLost) {
		t.Fatalf("broker reply: setupErr = %v, want it not reclassified", err)
	}
	// Declarations are repeated safely: do on a dead connection is a
	// recoverable loss too.
	_, err = ch.QueueDeclare(tctx(t), driver.Queue{Name: unique(t, "cut")})
	if !errors.Is(err, kombu.ErrConnectionLost) {
		t.Fatalf("QueueDeclare on a closed connection: %v, want ErrConnectionLost", err)
	}
}
