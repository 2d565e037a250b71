package couchdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/faulttest"
	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu/driver"
)

// privateServer is a pouchdb-server of the test's own, from the install
// scripts/services.d/couchdb.sh made, that the test kills and restarts.
type privateServer struct {
	t    *testing.T
	bin  string
	dir  string
	host string
	port int
	cmd  *exec.Cmd
}

func startPrivateServer(t *testing.T) *privateServer {
	t.Helper()
	serverURL(t) // the install exists where the shared server runs
	bin, _ := filepath.Abs("../../.cache/pouchdb-server/node_modules/pouchdb-server/bin/pouchdb-server")
	if _, err := os.Stat(bin); err != nil {
		if testenv.InCI() {
			t.Fatalf("no pouchdb-server install at %s: run scripts/services.sh up couchdb", bin)
		}
		t.Skipf("no pouchdb-server install at %s: run scripts/services.sh up couchdb", bin)
	}
	// An address of its own: see faulttest.PrivateLoopback.
	host, port, err := faulttest.PrivateLoopback()
	if err != nil {
		t.Fatal(err)
	}
	s := &privateServer{t: t, bin: bin, dir: t.TempDir(), host: host, port: port}
	s.start()
	t.Cleanup(func() {
		if s.cmd != nil {
			_ = s.cmd.Process.Kill()
			_ = s.cmd.Wait()
		}
	})
	return s
}

func (s *privateServer) url(query string) string {
	return fmt.Sprintf("couchdb://%s/restart?%s", net.JoinHostPort(s.host, strconv.Itoa(s.port)), query)
}

func (s *privateServer) start() {
	s.t.Helper()
	cmd := exec.Command("node", s.bin, "--host", s.host, "--port", strconv.Itoa(s.port),
		"--dir", filepath.Join(s.dir, "data"), "--config", filepath.Join(s.dir, "config.json"))
	cmd.Dir = s.dir
	if err := os.MkdirAll(filepath.Join(s.dir, "data"), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.cmd = cmd
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + net.JoinHostPort(s.host, strconv.Itoa(s.port)) + "/")
		if err == nil {
			resp.Body.Close()
			return
		}
	}
	s.t.Fatal("the private pouchdb-server did not answer within 30 s")
}

func (s *privateServer) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// TestServerKilledLosesNothing: pouchdb-server is killed with SIGKILL
// while a publisher and a consumer run on one store each, and started
// again on the same port and data. Every message whose Put returned nil is
// delivered (lost = 0); a message delivered twice is marked redelivered or
// follows a Put that failed (and was retried) or an ack that could not be
// written.
func TestServerKilledLosesNothing(t *testing.T) {
	const total = 300
	srv := startPrivateServer(t)
	raw := srv.url("visibility_timeout=2&polling_interval=0.2")
	pub, con := openStore(t, raw), openStore(t, raw)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	const q = "restart"
	ledger := faulttest.NewLedger(total)

	var killedAt, upAt, resumedAt atomic.Int64 // unix nanoseconds
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for ctx.Err() == nil {
			items, err := con.GetBatch(ctx, []string{q}, 10, 500*time.Millisecond)
			if err != nil && !errors.Is(err, driver.ErrEmpty) {
				ledger.Error("get", err)
				time.Sleep(100 * time.Millisecond) // the server is down
				continue
			}
			if len(items) > 0 && upAt.Load() != 0 && resumedAt.Load() == 0 {
				resumedAt.Store(time.Now().UnixNano())
			}
			for _, it := range items {
				seq, ok := ledger.Delivery(it.Envelope.Headers, it.Envelope.Body, it.Envelope.Redelivered)
				// A failed ack leaves the message to come back.
				if err := con.Ack(ctx, it); ok {
					ledger.Ack(seq, err)
				}
			}
			if ledger.Published() == total && ledger.Missing() == 0 && ledger.Acked() == ledger.Delivered() {
				return
			}
		}
	}()
	// The publisher runs on while the server is down: its Puts fail and
	// are retried, as an application's would be.
	go func() {
		for seq := range total {
			for ctx.Err() == nil {
				env := newEnv(string(ledger.Body(seq)), 0)
				env.Headers = ledger.Headers(seq)
				err := pub.Put(ctx, q, env)
				ledger.Publish(seq, err, nil)
				if err == nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}()
	for ledger.Published() < total/3 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	killedAt.Store(time.Now().UnixNano())
	srv.kill()
	time.Sleep(time.Second)
	srv.start()
	upAt.Store(time.Now().UnixNano())
	select {
	case <-consumed:
	case <-ctx.Done():
	}
	r := ledger.Check()
	var resume time.Duration
	if at := resumedAt.Load(); at != 0 {
		resume = time.Duration(at - upAt.Load())
	}
	faulttest.Record(t, faulttest.Row{Test: "pouchdb-server killed, restarted on its data", Transport: "couchdb",
		Fault:  fmt.Sprintf("SIGKILL of a private pouchdb-server mid-stream, up again %v later", time.Duration(upAt.Load()-killedAt.Load()).Round(100*time.Millisecond)),
		Result: r, Resume: resume, Elapsed: time.Since(start),
		Note: fmt.Sprintf("store-level Put retried, GetBatch + Ack; acked %d", r.Acked)})
	if !r.OK() || r.Unexplained != 0 {
		t.Errorf("lost %d %v, unexpected %d, duplicates neither redelivered nor after a failed Put %d",
			r.Lost, r.LostSeqs, r.Unexpected, r.Unexplained)
	}
	if r.Published != total || r.Acked != total {
		t.Errorf("published %d, acked %d, of %d", r.Published, r.Acked, total)
	}
}
