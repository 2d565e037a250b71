package mongodb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/faulttest"
	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu"
)

// ferretdbEnv names the FerretDB binary; scripts/services.d/mongodb.sh
// exports it. Without it the binary is looked up where that script builds
// it: .cache/ferretdb/ferretdb-HASH at the repository's root, HASH the
// first 16 hex digits of the SHA-256 of scripts/ferretdb's go.mod, go.sum
// and main.go.
const ferretdbEnv = "KOMBU_TEST_FERRETDB"

func ferretdbBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv(ferretdbEnv); bin != "" {
		return bin
	}
	root, _ := filepath.Abs("../..")
	h := sha256.New()
	for _, name := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join(root, "scripts", "ferretdb", name))
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	bin := filepath.Join(root, ".cache", "ferretdb", "ferretdb-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(bin); err != nil {
		if testenv.InCI() {
			t.Fatalf("no FerretDB binary at %s (%s unset): run scripts/services.sh up mongodb", bin, ferretdbEnv)
		}
		t.Skipf("no FerretDB binary at %s (%s unset): run scripts/services.sh up mongodb", bin, ferretdbEnv)
	}
	return bin
}

// privateFerretDB is a FerretDB process of the test's own, on a data
// directory of its own, that the test kills and starts again. FerretDB's
// backend is SQLite inside the same process: killing FerretDB kills the
// backend mid-write, and the restart recovers the SQLite files (their
// journal) as a restarted mongod would its own. FerretDB (scripts/ferretdb)
// listens on 127.0.0.1 only, where another test could take its port while
// it is down (see faulttest.PrivateLoopback): so each start takes a free
// port, and the clients reach it through a proxy whose address never
// changes (faulttest.Proxy.SetBackend).
type privateFerretDB struct {
	t     *testing.T
	bin   string
	dir   string
	proxy *faulttest.Proxy
	cmd   *exec.Cmd
	exit  chan struct{} // closed when cmd has exited
}

func startPrivateFerretDB(t *testing.T) *privateFerretDB {
	t.Helper()
	serverURL(t) // the shared server is up, so its binary was built
	f := &privateFerretDB{t: t, bin: ferretdbBinary(t), dir: t.TempDir()}
	f.proxy = faulttest.StartProxy(t, "127.0.0.1:1") // a backend that refuses until the first start
	f.start()
	t.Cleanup(func() {
		if f.cmd != nil {
			f.kill()
		}
	})
	return f
}

// url is a mongodb:// URL of database db through the proxy.
func (f *privateFerretDB) url(db, query string) string {
	return "mongodb://" + f.proxy.Addr() + "/" + db + "?" + query
}

// start starts FerretDB on the data directory and returns once it accepts
// connections.
func (f *privateFerretDB) start() {
	f.t.Helper()
	for attempt := 0; attempt < 5; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			f.t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		logf, err := os.OpenFile(filepath.Join(f.dir, "ferretdb.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			f.t.Fatal(err)
		}
		cmd := exec.Command(f.bin, "-listen", addr, "-data", filepath.Join(f.dir, "data"), "-log-level", "error")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			f.t.Fatal(err)
		}
		logf.Close()
		exit := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exit) }()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		up := make(chan error, 1)
		go func() { up <- faulttest.WaitAccepting(ctx, addr) }()
		select {
		case err = <-up:
		case <-exit:
			err = errors.New("exited")
		}
		cancel()
		if err == nil {
			f.cmd, f.exit = cmd, exit
			f.proxy.SetBackend(addr)
			return
		}
		_ = cmd.Process.Kill()
		<-exit
		f.t.Logf("FerretDB did not start on %s (%v); trying another port", addr, err)
	}
	b, _ := os.ReadFile(filepath.Join(f.dir, "ferretdb.log"))
	f.t.Fatalf("the private FerretDB did not start; its log:\n%s", b)
}

// kill sends SIGKILL and waits for the process to be gone.
func (f *privateFerretDB) kill() {
	_ = f.cmd.Process.Signal(syscall.SIGKILL)
	<-f.exit
	f.cmd = nil
}

// TestServerKilledLosesNothing: a private FerretDB is killed with SIGKILL
// while a publisher (a retry policy without a limit) and a consumer run,
// and started again on its data a second later. Every message whose
// publish returned nil is delivered and acked afterwards (lost = 0); a
// message delivered twice is flagged redelivered (its ack died with the
// server, its lease expired) or follows a publish attempt that failed (and
// was retried), and at most one (the insert in flight at the kill, which
// the MongoDB driver retries by itself) without either.
//
// FerretDB's SQLite backend lives in the FerretDB process, so the kill
// takes the backend down with it, as killing mongod would.
func TestServerKilledLosesNothing(t *testing.T) {
	const total = 400
	srv := startPrivateFerretDB(t)
	raw := srv.url("restart", "visibility_timeout=2")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	ledger := faulttest.NewLedger(total)
	q := kombu.NewQueue("restart", kombu.DefaultExchange, "restart")
	q.Durable = true

	pubConn, err := kombu.Dial(ctx, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pubConn.Close()
	ch, err := pubConn.DefaultChannel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Declare(ctx, ch); err != nil {
		t.Fatal(err)
	}
	p, err := pubConn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	published := make(chan struct{})
	go func() {
		defer close(published)
		for seq := range total {
			policy := &kombu.RetryPolicy{MaxRetries: -1, IntervalStep: 100 * time.Millisecond, IntervalMax: 500 * time.Millisecond,
				// A failed attempt may have stored the message all the same.
				OnRetry: func(err error, _ time.Duration) { ledger.Publish(seq, err, nil) }}
			// The policy retries a lost connection; a publish whose
			// outcome is unknown (ErrUnconfirmed) is not retried by
			// kombu, and the application publishes it again, as an
			// at-least-once publisher does.
			for attempt := 0; attempt < 5 && ctx.Err() == nil; attempt++ {
				pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
				err := p.Publish(pctx, ledger.Body(seq), &kombu.PublishOptions{RoutingKey: q.Name, ContentType: "application/data",
					Headers: ledger.Headers(seq), Retry: true, RetryPolicy: policy})
				pcancel()
				ledger.Publish(seq, err, nil)
				if err == nil {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			time.Sleep(3 * time.Millisecond)
		}
	}()

	var restartedAt, resumedAt atomic.Int64 // unix nanoseconds
	// The consumer is a kombu.Worker, which dials again and consumes
	// again by itself after a failure, as an application's would.
	conConn, err := kombu.NewConnection(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conConn.Close()
	worker, err := kombu.NewWorker(conConn, []kombu.Queue{q}, kombu.HandlerFunc(func(hctx context.Context, m *kombu.Message) error {
		if restartedAt.Load() != 0 && resumedAt.Load() == 0 {
			resumedAt.Store(time.Now().UnixNano())
		}
		seq, ok := ledger.Delivery(m.Headers, m.Body, m.Redelivered)
		err := m.Ack(hctx)
		if ok {
			ledger.Ack(seq, err)
		}
		return nil
	}), &kombu.WorkerOptions{
		Consumer:      kombu.ConsumerOptions{PrefetchCount: 10},
		IntervalStart: 100 * time.Millisecond, IntervalStep: 200 * time.Millisecond, IntervalMax: time.Second,
		OnConnectionError: func(err error, _ time.Duration) { ledger.Error("consume", err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	workerDone := make(chan error, 1)
	go func() { workerDone <- worker.Run(ctx) }()

	for ledger.Published() < total/3 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	killedAt := time.Now()
	srv.kill()
	time.Sleep(time.Second)
	srv.start()
	restartedAt.Store(time.Now().UnixNano())
	down := time.Since(killedAt)

	<-published
	// Every published message delivered, and every delivered one acked.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ledger.Missing() == 0 && ledger.Acked() == ledger.Delivered() {
			break
		}
	}
	time.Sleep(500 * time.Millisecond) // a duplicate would show up now
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	if err := worker.Shutdown(sctx); err != nil {
		t.Errorf("worker shutdown: %v", err)
	}
	scancel()
	if err := <-workerDone; err != nil {
		t.Errorf("worker Run: %v", err)
	}

	r := ledger.Check()
	var resume time.Duration
	if at := resumedAt.Load(); at != 0 {
		resume = time.Duration(at - restartedAt.Load())
	}
	faulttest.Record(t, faulttest.Row{Test: "FerretDB killed, restarted on its data", Transport: "mongodb",
		Fault:  fmt.Sprintf("SIGKILL of FerretDB (SQLite backend) mid-stream, up again %v later", down.Round(100*time.Millisecond)),
		Result: r, Resume: resume, Elapsed: time.Since(start),
		Note: fmt.Sprintf("private FerretDB; publisher retries, consumer a kombu.Worker; acked %d", r.Acked)})
	// The MongoDB driver retries a write cut by a network error once by
	// itself (retryable writes, on by default); MongoDB would recognise
	// the retry, FerretDB stores it again. So the insert in flight at the
	// kill may be stored twice with no error reaching the publisher: one
	// such duplicate per publisher is allowed.
	if !r.OK() || r.Unexplained > 1 {
		t.Errorf("lost %d %v, unexpected %d %q, duplicates neither redelivered nor after a failed publish %d",
			r.Lost, r.LostSeqs, r.Unexpected, r.UnexpectedBodies, r.Unexplained)
	}
	if r.Published != total {
		t.Errorf("%d of %d publishes returned nil: the publisher did not get through the restart (%s)", r.Published, total, r.ErrorTally())
	}
	if r.Acked < r.Published {
		t.Errorf("%d of %d published messages acked", r.Acked, r.Published)
	}
	if resume == 0 {
		t.Error("no delivery after the restart")
	}
}
