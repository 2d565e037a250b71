package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu"
)

// privateRedis is a redis-server of the test's own, on a free loopback
// port, with appendonly and fsync on every write, that the test may kill
// and start again (the shared server must never be restarted).
type privateRedis struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
}

func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if testenv.InCI() {
			t.Fatal("redis-server not installed")
		}
		t.Skip("redis-server not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &privateRedis{t: t, port: port, dir: t.TempDir()}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *privateRedis) url() string { return "redis://127.0.0.1:" + strconv.Itoa(r.port) + "/0" }

func (r *privateRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", r.dir, "--daemonize", "no")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(r.port), 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %d did not start: %v", r.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill stops the server with SIGKILL (no shutdown save) and waits for it.
func (r *privateRedis) kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// TestRedisRestartConnectionHeals: redis is killed and started again
// twice while publishers with a retry policy run. Connected() turns false
// once a call finds the server gone, every publish that returned nil is in
// the queue afterwards (lost = 0, counted by message id), nothing
// unexpected is, and Close leaves no goroutine behind.
func TestRedisRestartConnectionHeals(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	srv := startPrivateRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := kombu.Dial(ctx, srv.url(), nil)
	if err != nil {
		t.Fatal(err)
	}
	q := kombu.NewQueue("heal-"+randHex(4), kombu.DefaultExchange, "")
	var retries atomic.Int64
	policy := &kombu.RetryPolicy{MaxRetries: 100, IntervalStep: 50 * time.Millisecond, IntervalMax: 200 * time.Millisecond,
		OnRetry: func(error, time.Duration) { retries.Add(1) }}

	const publishers, perPublisher = 2, 400
	var mu sync.Mutex
	confirmed, failed := map[string]bool{}, map[string]bool{}
	var nConfirmed atomic.Int64
	var wg sync.WaitGroup
	for g := range publishers {
		p, err := conn.Producer(ctx, &kombu.ProducerOptions{RoutingKey: q.Name})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for i := range perPublisher {
				id := fmt.Sprintf("%d-%d", g, i)
				err := p.Publish(ctx, id, &kombu.PublishOptions{Retry: true, RetryPolicy: policy, MessageID: id,
					Declare: []kombu.Declarable{q}})
				mu.Lock()
				if err == nil {
					confirmed[id] = true
					nConfirmed.Add(1)
				} else {
					failed[id] = true
				}
				mu.Unlock()
				if ctx.Err() != nil {
					return
				}
			}
		})
	}
	sawDisconnected := false
	for restart, at := range []int64{150, 450} {
		for nConfirmed.Load() < at && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		srv.kill()
		// Down long enough for go-redis's own retries to give up, so
		// that calls fail and kombu's retry policy takes over.
		for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			sawDisconnected = sawDisconnected || !conn.Connected()
		}
		srv.start()
		t.Logf("restart %d done at %d confirmed", restart+1, nConfirmed.Load())
	}
	wg.Wait()
	if !sawDisconnected {
		t.Error("Connected() stayed true while redis was down and publishers failed")
	}

	check, err := kombu.Dial(ctx, srv.url(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := check.Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A new connection knows an empty redis queue only once it declares it.
	if _, err := q.Declare(ctx, ch); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for {
		m, err := q.Get(ctx, ch, true, nil)
		if errors.Is(err, kombu.ErrEmpty) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[m.Properties.MessageID]++
	}
	lost, unexpected, duplicated := 0, 0, 0
	for id := range confirmed {
		if seen[id] == 0 {
			lost++
		}
	}
	for id, n := range seen {
		if !confirmed[id] && !failed[id] {
			unexpected++
		}
		duplicated += n - 1
	}
	t.Logf("published %d: confirmed %d, failed %d; in queue %d; retries %d; lost %d, unexpected %d, duplicated %d",
		publishers*perPublisher, len(confirmed), len(failed), len(seen), retries.Load(), lost, unexpected, duplicated)
	if lost != 0 || unexpected != 0 {
		t.Fatalf("lost %d, unexpected %d", lost, unexpected)
	}
	if len(confirmed) < publishers*perPublisher/2 {
		t.Fatalf("only %d of %d publishes succeeded: the retry policy did not carry them across the restarts",
			len(confirmed), publishers*perPublisher)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	if err := check.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, ignore)
}
