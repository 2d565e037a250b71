package amqp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kombu-go/kombu/kombu/driver"
)

// resetProxy forwards TCP to the broker and can cut every connection.
type resetProxy struct {
	backend string
	mu      sync.Mutex
	conns   []net.Conn
	wg      sync.WaitGroup
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
	go func() { defer p.wg.Done(); _, _ = io.Copy(b, server); b.Close() }()
	go func() { defer p.wg.Done(); _, _ = io.Copy(server, b); server.Close() }()
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

	cn, err := Transport{}.OpenConnector(u)
	must(t, err)
	connector := cn.(*Connector)
	connector.Dial = proxy.dial

	var confirmed sync.Map
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
		cn, err := Transport{}.OpenConnector(mustURL(t, u))
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
