package workertest_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/faulttest"
	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/internal/workertest"
	"github.com/kombu-go/kombu/kombu"
	_ "github.com/kombu-go/kombu/transport/amqp"
	_ "github.com/kombu-go/kombu/transport/redis"
)

// TestMain prints the figures of the fault tests below as a table, which
// scripts/run-tests.sh adds to internal/faults' table.
func TestMain(m *testing.M) { faulttest.Main(m) }

// broker is a server that a fault test can kill and start again on the
// same address and data.
type broker struct {
	name     string
	url      string        // the worker's and publisher's URL
	downtime time.Duration // between the kill and the restart
	// transport is the URL scheme's transport, for the table of figures.
	transport string
	kill      func(t *testing.T)
	restart   func(t *testing.T)
	// inspect, when set, describes where messages are, for a failure,
	// and what became of the lost ones.
	inspect func(queue string, lost []string) string
}

// restartFigures is what a restart scenario measured.
type restartFigures struct {
	published, confirmed, handled, lost, duplicated, unexpected int
	restarts, reconsumes, connErrors                            int
	maxResume                                                   time.Duration // broker up -> a message handled again
}

func (f restartFigures) String() string {
	return fmt.Sprintf("published %d, confirmed %d, handled %d, lost %d, duplicated %d, unexpected %d, restarts %d, connection errors reported %d, consumers started %d, slowest resume %v",
		f.published, f.confirmed, f.handled, f.lost, f.duplicated, f.unexpected, f.restarts, f.connErrors, f.reconsumes, f.maxResume.Round(time.Millisecond))
}

// Reconnect intervals of the fault tests: the worker must be consuming
// again within resumeBound of the broker being back.
const (
	faultIntervalStart = 50 * time.Millisecond
	faultIntervalStep  = 100 * time.Millisecond
	faultIntervalMax   = 500 * time.Millisecond
)

// runRestarts runs a Worker on a durable queue while a publisher with a
// retry policy publishes total persistent messages, and kills and restarts
// the broker restarts times mid-stream. Every confirmed message must be
// handled (lost = 0), and the worker must resume by itself, each time
// within resumeBound of the broker being up again.
func runRestarts(t *testing.T, b broker, total, restarts int, resumeBound time.Duration) restartFigures {
	return runRestartsNoticed(t, b, total, restarts, resumeBound, true)
}

// runRestartsNoticed is runRestarts; with mustNotice false, outages short
// enough for the client library to ride out (go-redis retries a command
// for about a second) need not reach the worker.
func runRestartsNoticed(t *testing.T, b broker, total, restarts int, resumeBound time.Duration, mustNotice bool) restartFigures {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	q := kombu.NewQueue(fmt.Sprintf("worker-fault-%s-%d", b.name, time.Now().UnixNano()), kombu.DefaultExchange, "")
	q.RoutingKey = q.Name
	// Background errors (a failed requeue, a rejected undecodable
	// message) explain a loss: log them all.
	opts := &kombu.Options{ConnectTimeout: time.Second, ErrorHandler: func(err error) { t.Logf("background error: %v", err) }}

	wconn, err := kombu.NewConnection(b.url, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer wconn.Close()
	led := workertest.NewLedger()
	var connErrors, consumers, handleCalls atomic.Int32
	var readyAt atomic.Int64 // unix ns of the latest OnConsumeReady
	ready := make(chan struct{}, 1)
	h := kombu.HandlerFunc(func(_ context.Context, m *kombu.Message) error {
		handleCalls.Add(1)
		led.Handle(string(m.Body))
		return nil
	})
	w := workertest.New(t, wconn, []kombu.Queue{q}, h, &kombu.WorkerOptions{
		Consumer:      kombu.ConsumerOptions{Concurrency: 4},
		IntervalStart: faultIntervalStart, IntervalStep: faultIntervalStep, IntervalMax: faultIntervalMax,
		OnConnectionError: func(err error, next time.Duration) {
			connErrors.Add(1)
			t.Logf("conn error: %v (retry in %v)", err, next)
		},
		OnConsumeReady: func(*kombu.Consumer) {
			readyAt.Store(time.Now().UnixNano())
			if consumers.Add(1) == 1 {
				ready <- struct{}{}
			}
		},
	})
	stop := workertest.Run(t, w)
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not start consuming")
	}

	pconn, err := kombu.NewConnection(b.url, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer pconn.Close()
	var (
		mu        sync.Mutex
		confirmed []string
		published atomic.Int32
	)
	pubDone := make(chan error, 1)
	go func() { pubDone <- publishThroughFaults(ctx, pconn, q, total, &published, &mu, &confirmed) }()

	figures := restartFigures{restarts: restarts}
	for r := 1; r <= restarts; r++ {
		// Kill when the stream is well under way: r/(restarts+1) handled.
		waitHandled(t, led, total*r/(restarts+1), 2*time.Minute)
		consumersBefore := consumers.Load()
		b.kill(t)
		time.Sleep(b.downtime)
		b.restart(t)
		// The worker has resumed once it consumes on a new connection, or
		// handles a message (a consumer the client library kept alive):
		// not waiting for the publisher, which recovers on its own.
		up, before := time.Now(), handleCalls.Load()
		var resume time.Duration
		for {
			if consumers.Load() > consumersBefore {
				resume = max(0, time.Unix(0, readyAt.Load()).Sub(up))
				break
			}
			if handleCalls.Load() > before {
				resume = time.Since(up)
				break
			}
			if time.Since(up) > time.Minute {
				mu.Lock()
				n := len(confirmed)
				mu.Unlock()
				t.Fatalf("restart %d: within a minute of the broker being up the worker neither consumed again nor handled a message (publisher: %d confirmed)", r, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
		figures.maxResume = max(figures.maxResume, resume)
		if resume > resumeBound {
			t.Errorf("restart %d: the worker resumed %v after the broker was up, want within %v", r, resume, resumeBound)
		}
	}
	select {
	case err := <-pubDone:
		if err != nil {
			t.Fatalf("publisher: %v", err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("the publisher did not finish")
	}
	mu.Lock()
	ids := append([]string(nil), confirmed...)
	mu.Unlock()
	// In-flight messages of a killed connection come back (redelivery, or
	// the visibility timeout on redis): allow them time.
	led.WaitAll(ids, time.Minute)
	stop()
	figures.published, figures.confirmed = int(published.Load()), len(ids)
	figures.lost, figures.duplicated, figures.unexpected = led.Check(ids)
	figures.handled = led.Handled()
	figures.connErrors, figures.reconsumes = int(connErrors.Load()), int(consumers.Load())
	t.Logf("%s worker across %d kill -9 restarts: %s", b.name, restarts, figures)
	faulttest.Record(t, faulttest.Row{
		Test: fmt.Sprintf("One worker, %s killed and restarted %d times", b.name, restarts), Transport: b.transport,
		Fault: fmt.Sprintf("SIGKILL ×%d, restart %v later", restarts, b.downtime),
		Result: faulttest.Result{Total: total, Published: figures.confirmed, Delivered: figures.handled - figures.unexpected,
			Lost: figures.lost, Duplicated: figures.duplicated, Unexpected: figures.unexpected},
		Resume: figures.maxResume, Elapsed: time.Since(start),
		Note: fmt.Sprintf("connection errors reported %d, consumers started %d", figures.connErrors, figures.reconsumes),
	})
	if figures.lost != 0 || figures.unexpected != 0 {
		t.Errorf("lost %d %v, unexpected %d; want 0", figures.lost, led.Missing(ids), figures.unexpected)
		if b.inspect != nil {
			t.Logf("broker state: %s", b.inspect(q.Name, led.Missing(ids)))
		}
	}
	if figures.confirmed != total {
		t.Errorf("%d of %d messages confirmed", figures.confirmed, total)
	}
	if mustNotice && (figures.connErrors < restarts || figures.reconsumes < restarts+1) {
		t.Errorf("%d connection errors reported and %d consumers started for %d restarts: the losses went unnoticed", figures.connErrors, figures.reconsumes, restarts)
	}
	return figures
}

// publishThroughFaults publishes ids 0..total-1 with a retry policy; an
// error the policy does not retry (the broker may have the message) is
// retried here with the same id, so each id ends up confirmed, maybe
// twice in the queue (at least once, as the ledger allows).
func publishThroughFaults(ctx context.Context, conn *kombu.Connection, q kombu.Queue, total int, published *atomic.Int32, mu *sync.Mutex, confirmed *[]string) error {
	policy := &kombu.RetryPolicy{MaxRetries: -1, IntervalStep: 50 * time.Millisecond, IntervalMax: 500 * time.Millisecond}
	var p *kombu.Producer
	for i := 0; i < total; i++ {
		id := "m" + strconv.Itoa(i)
		for {
			if ctx.Err() != nil {
				return fmt.Errorf("message %s not confirmed: %w", id, ctx.Err())
			}
			var err error
			if p == nil {
				p, err = conn.Producer(ctx, nil)
			}
			if err == nil {
				published.Add(1)
				err = p.Publish(ctx, []byte(id), &kombu.PublishOptions{RoutingKey: q.Name, Declare: []kombu.Declarable{q},
					DeliveryMode: kombu.Persistent, Retry: true, RetryPolicy: policy})
			}
			if err == nil {
				break
			}
			if errors.Is(err, kombu.ErrInvalidArgument) {
				return err
			}
			// The connection is gone in a way the policy did not retry:
			// reconnect and publish the same id again.
			p = nil
			time.Sleep(50 * time.Millisecond)
			_ = conn.Reconnect(ctx, false)
		}
		mu.Lock()
		*confirmed = append(*confirmed, id)
		mu.Unlock()
	}
	return nil
}

func waitHandled(t *testing.T, l *workertest.Ledger, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := l.Handled()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d messages handled after %v", got, n, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// privateRedis starts a redis-server of the test's own (faulttest's:
// appendonly with an fsync per write, so that a kill -9 loses no
// acknowledged write, on an address of its own) and returns it as a broker
// that kill -9s it and starts it again on the same address and directory.
func privateRedis(t *testing.T) broker {
	r := faulttest.StartRedis(t, faulttest.RedisOptions{AppendFsync: "always"})
	host, port, _ := strings.Cut(r.Addr(), ":")
	kill := func(t *testing.T) {
		if err := r.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	restart := func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.Restart(ctx); err != nil {
			t.Fatal(err)
		}
	}
	inspect := func(queue string, lost []string) string {
		var b strings.Builder
		b.WriteString(aofHistory(r.Dir(), lost))
		for _, args := range [][]string{{"KEYS", "*"}, {"LLEN", queue}, {"HLEN", "unacked"}, {"ZCARD", "unacked_index"}, {"PTTL", "unacked_mutex"}, {"HGETALL", "unacked"}} {
			out, _ := exec.Command("redis-cli", append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
			fmt.Fprintf(&b, "\n%s: %s", strings.Join(args, " "), strings.TrimSpace(string(out)))
		}
		return b.String()
	}
	// visibility_timeout=2: what a killed connection held unacked is
	// restored within about 2 s. unacked_mutex_expire=5: a kill while a
	// restore sweep holds the mutex (persisted by the AOF) pauses restores
	// for 5 s, not kombu's default 300 s, longer than the test waits.
	// The outage outlasts go-redis's own retries, so the worker sees it.
	return broker{name: "redis", transport: "redis", url: r.URL("visibility_timeout=2&unacked_mutex_expire=5"), downtime: 2 * time.Second,
		kill: kill, restart: restart, inspect: inspect}
}

// Redis, with appendonly, killed with SIGKILL and restarted twice while a
// worker consumes and a publisher publishes: nothing confirmed is lost and
// the worker resumes by itself.
func TestWorkerSurvivesRedisRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a redis-server")
	}
	workertest.NoLeaks(t)
	b := privateRedis(t)
	runRestarts(t, b, 3000, 2, faultIntervalMax+3*time.Second)
}

// Twenty Redis restarts in a row, short ones: after each the worker
// handles messages again within the bound (no stalled consumer), and
// nothing confirmed is lost.
func TestWorkerSurvives20RedisRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a redis-server")
	}
	workertest.NoLeaks(t)
	b := privateRedis(t)
	b.downtime = 300 * time.Millisecond
	f := runRestartsNoticed(t, b, 4000, 20, faultIntervalMax+3*time.Second, false)
	if f.connErrors == 0 {
		t.Log("every outage was ridden out below the worker (go-redis retries)")
	}
}

// faultRabbit is the RabbitMQ node that fault tests may kill
// (scripts/services.sh starts it). faulttest.FaultRabbit holds the node's
// lock for the whole test: transport/amqp's crash tests and internal/faults
// kill and restart the same node, and go test runs those packages beside
// this one.
func faultRabbit(t *testing.T) broker {
	node := faulttest.FaultRabbit(t)
	kill := func(t *testing.T) {
		if err := node.Kill(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	restart := func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := node.Restart(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return broker{name: "rabbitmq", transport: "amqp", url: node.URL, downtime: 300 * time.Millisecond, kill: kill, restart: restart}
}

// RabbitMQ killed with SIGKILL and restarted twice mid-stream: the same
// guarantees on a durable queue with persistent, confirmed messages.
func TestWorkerSurvivesRabbitMQRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a RabbitMQ node")
	}
	workertest.NoLeaks(t)
	b := faultRabbit(t)
	runRestarts(t, b, 2000, 2, faultIntervalMax+5*time.Second)
}

// A worker's connection to RabbitMQ is reset (the broker keeps running):
// RabbitMQ deletes the worker's exclusive queue with the connection, and
// the worker declares it and its binding again, so that what is published
// afterwards reaches it (a mandatory publish would fail otherwise).
func TestWorkerRedeclaresExclusiveQueueOnRabbitMQ(t *testing.T) {
	workertest.NoLeaks(t)
	u, err := url.Parse(testenv.ServerURL(t, testenv.AMQPURL))
	if err != nil {
		t.Fatal(err)
	}
	proxy := faulttest.StartProxy(t, u.Host)
	viaProxy := *u
	viaProxy.Host = proxy.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := &kombu.Options{ConnectTimeout: 2 * time.Second}
	wconn, err := kombu.NewConnection(viaProxy.String(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer wconn.Close()
	pconn, err := kombu.Dial(ctx, u.String(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer pconn.Close()

	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	ex := kombu.Exchange{Name: "worker-excl-ex-" + suffix, Type: kombu.Direct, AutoDelete: true}
	q := kombu.Queue{Name: "worker-excl-" + suffix, Exchange: ex, RoutingKey: "job", Exclusive: true}
	led := workertest.NewLedger()
	ready := make(chan struct{}, 4)
	w := workertest.New(t, wconn, []kombu.Queue{q}, led.Handler(), &kombu.WorkerOptions{
		Consumer:      kombu.ConsumerOptions{Concurrency: 2},
		IntervalStart: faultIntervalStart, IntervalStep: faultIntervalStep, IntervalMax: faultIntervalMax,
		OnConnectionError: func(err error, next time.Duration) { t.Logf("conn error: %v (retry in %v)", err, next) },
		OnConsumeReady:    func(*kombu.Consumer) { ready <- struct{}{} },
	})
	stop := workertest.Run(t, w)
	p, err := pconn.Producer(ctx, &kombu.ProducerOptions{Exchange: ex, NoDeclare: true})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(prefix string) []string {
		ids := make([]string, 50)
		for i := range ids {
			ids[i] = prefix + strconv.Itoa(i)
			if err := p.Publish(ctx, []byte(ids[i]), &kombu.PublishOptions{RoutingKey: "job", Mandatory: true}); err != nil {
				t.Fatalf("publish %s: %v", ids[i], err)
			}
		}
		return ids
	}
	for round, prefix := range []string{"before-", "after-1-", "after-2-"} {
		select {
		case <-ready:
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: the worker is not consuming", round)
		}
		ids := publish(prefix)
		if !led.WaitAll(ids, 20*time.Second) {
			lost, _, _ := led.Check(ids)
			t.Fatalf("round %d: %d of %d messages not handled", round, lost, len(ids))
		}
		// Reset the open connections, then let the worker's reconnect through.
		if err := proxy.Inject(faulttest.Fault{Kind: faulttest.ResetAll}, time.Second); err != nil {
			t.Fatal(err)
		}
		proxy.Heal()
	}
	stop()
}
