package postgres

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/faulttest"
	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu"
)

// privateCluster is a PostgreSQL cluster of the test's own, on an address
// of its own (faulttest.PrivateLoopback): the restart must not take the
// shared server away from tests of other packages running beside this one.
type privateCluster struct {
	dir, pgCtl, host string
	port             int
}

// pgBin finds a PostgreSQL server binary (Debian keeps them per version).
func pgBin(t *testing.T, name string) string {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(bins) == 0 {
		t.Fatalf("no %s under /usr/lib/postgresql (make test installs postgresql)", name)
	}
	sort.Strings(bins)
	return bins[len(bins)-1]
}

// asPostgres runs a server binary, as user postgres when the test runs as
// root (the server refuses root). Its output goes to a file: a server
// started by pg_ctl keeps whatever stdout it is given, and a pipe would
// keep this call waiting for it to exit.
func (c *privateCluster) asPostgres(t *testing.T, bin string, args ...string) error {
	t.Helper()
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "postgres", "--", bin}, args...)
		bin = "runuser"
	}
	out, err := os.Create(filepath.Join(c.dir, "cmd.log"))
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr, cmd.Dir = out, out, "/"
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(out.Name())
		return fmt.Errorf("%s %v: %w\n%s", bin, args, err, b)
	}
	return nil
}

func startPrivateCluster(t *testing.T) *privateCluster {
	t.Helper()
	testenv.ServerURL(t, PostgresURL) // where the shared server runs, the binaries are installed
	dir, err := os.MkdirTemp("", "kombu-pg-restart-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil { // the server runs as postgres
		t.Fatal(err)
	}
	host, port, err := faulttest.PrivateLoopback()
	if err != nil {
		t.Fatal(err)
	}
	c := &privateCluster{dir: dir, pgCtl: pgBin(t, "pg_ctl"), host: host, port: port}
	if err := c.asPostgres(t, pgBin(t, "initdb"), "-D", filepath.Join(dir, "data"), "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C.UTF-8"); err != nil {
		t.Fatal(err)
	}
	if err := c.ctl(t, "start"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.ctl(t, "stop") })
	return c
}

func (c *privateCluster) url() string {
	return fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", net.JoinHostPort(c.host, strconv.Itoa(c.port)))
}

// ctl runs pg_ctl start, stop or restart (same address, same data).
func (c *privateCluster) ctl(t *testing.T, action string) error {
	return c.asPostgres(t, c.pgCtl, "-D", filepath.Join(c.dir, "data"), "-l", filepath.Join(c.dir, "postgres.log"),
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=%s -c fsync=on", c.port, c.dir, c.host),
		"-m", "fast", "-w", "-t", "60", action)
}

// restartServer restarts the cluster and returns how long it took.
func (c *privateCluster) restartServer(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	if err := c.ctl(t, "restart"); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// TestServerRestartMidStream: PostgreSQL is restarted while a producer
// publishes (with retries) and a consumer consumes; every publish that
// returned nil is consumed afterwards (duplicates from retried publishes
// whose commit was not reported are allowed).
func TestServerRestartMidStream(t *testing.T) {
	testStart := time.Now()
	cluster := startPrivateCluster(t)
	raw := withOptions(cluster.url(), "visibility_timeout", "2")
	queue := fmt.Sprintf("restart.%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	prodConn := dialKombu(t, raw)
	sq, err := prodConn.SimpleQueue(ctx, queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	const total = 400
	var mu sync.Mutex
	confirmed := map[int]bool{}
	received := map[int]int{}
	var failed []error
	retry := &kombu.RetryPolicy{MaxRetries: -1, IntervalStep: 100 * time.Millisecond, IntervalMax: 500 * time.Millisecond}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the producer
		defer wg.Done()
		for i := range total {
			err := sq.Put(ctx, i, &kombu.PublishOptions{Retry: true, RetryPolicy: retry})
			mu.Lock()
			if err == nil {
				confirmed[i] = true
			} else {
				failed = append(failed, err)
			}
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	consume := func(ctx context.Context, conn *kombu.Connection) error {
		ch, err := conn.Channel(ctx)
		if err != nil {
			return err
		}
		q := kombu.NewQueue(queue, kombu.NewExchange(queue, kombu.Direct), queue)
		c, err := kombu.NewConsumer(ctx, ch, []kombu.Queue{q}, &kombu.ConsumerOptions{PrefetchCount: 10})
		if err != nil {
			return err
		}
		for {
			m, err := c.Receive(ctx)
			if err != nil {
				return err
			}
			var n int
			if err := m.Decode(&n); err != nil {
				return err
			}
			if err := m.Ack(ctx); err != nil {
				return err
			}
			mu.Lock()
			received[n]++
			mu.Unlock()
		}
	}
	consCtx, stopCons := context.WithCancel(ctx)
	consDone := make(chan error, 1)
	go func() { consDone <- consume(consCtx, dialKombu(t, raw)) }()
	time.Sleep(700 * time.Millisecond)
	took := cluster.restartServer(t)
	wg.Wait()
	stopCons()
	consErr := <-consDone
	// Whatever the first consumer did not ack (its connection died, or it
	// stopped) is taken by a fresh one, held rows after their lease.
	drainCtx, stopDrain := context.WithTimeout(ctx, 30*time.Second)
	defer stopDrain()
	go func() { _ = consume(drainCtx, dialKombu(t, raw)) }()
	for drainCtx.Err() == nil {
		mu.Lock()
		missing := 0
		for n := range confirmed {
			if received[n] == 0 {
				missing++
			}
		}
		mu.Unlock()
		if missing == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopDrain()
	mu.Lock()
	defer mu.Unlock()
	lost, dup := 0, 0
	for n := range confirmed {
		if received[n] == 0 {
			lost++
		}
	}
	for _, c := range received {
		if c > 1 {
			dup++
		}
	}
	t.Logf("restart took %v; %d of %d publishes confirmed (%d failed), lost %d, delivered twice %d; first consumer ended with %v",
		took.Round(time.Millisecond), len(confirmed), total, len(failed), lost, dup, consErr)
	faulttest.Record(t, faulttest.Row{
		Test: "PostgreSQL restarted mid-stream", Transport: "postgres", Fault: "pg_ctl restart (fast) of a private cluster",
		Result:  faulttest.Result{Total: total, Published: len(confirmed), Delivered: len(received), Lost: lost, Duplicated: dup},
		Elapsed: time.Since(testStart), Note: fmt.Sprintf("restart took %v", took.Round(time.Millisecond)),
	})
	if lost > 0 {
		t.Errorf("%d confirmed publishes lost across the restart", lost)
	}
	if len(confirmed) < total*9/10 {
		t.Errorf("only %d of %d publishes confirmed: the producer did not reconnect (errors: %v)", len(confirmed), total, failed)
	}
}

func dialKombu(t testing.TB, raw string) *kombu.Connection {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kombu.Dial(ctx, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}
