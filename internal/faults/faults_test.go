package faults

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/faulttest"
	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu"
)

// long skips a fault test under -short (`make test-short` starts no
// servers, and these take 10-50 s each).
func long(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("a fault test: not with -short")
	}
}

func unique(kind string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "fault-" + kind + "-" + hex.EncodeToString(b[:])
}

// withQuery adds query options to a URL (each URL of a ';' list).
func withQuery(raw, query string) string {
	parts := strings.Split(raw, ";")
	for i, p := range parts {
		sep := "?"
		if strings.Contains(p, "?") {
			sep = "&"
		}
		parts[i] = p + sep + query
	}
	return strings.Join(parts, ";")
}

// viaProxy points raw at addr instead of its own host.
func viaProxy(t *testing.T, raw, addr string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = addr
	return u.String()
}

// redisOpts are the redis transport options of the fault tests: a 5 s
// visibility timeout, so deliveries lost with a connection come back soon,
// and unacked_mutex_expire 10 s instead of 300 s: a crash or a cut between
// the restore sweep's SET NX of unacked_mutex and its release leaves the
// mutex held, and no consumer restores anything until it expires
// (docs/reliability.md).
const redisOpts = "visibility_timeout=5&unacked_mutex_expire=10"

// killRestart crashes a server with SIGKILL, waits pause, starts it again
// and returns once it accepts connections.
func killRestart(name string, at float64, pause time.Duration, kill func() error, restart func(context.Context) error) fault {
	return fault{name: name, at: at, inject: func(ctx context.Context) error {
		if err := kill(); err != nil {
			return err
		}
		sleepCtx(ctx, pause)
		return restart(ctx)
	}}
}

// TestRabbitMQKilledTwice: the rabbitmq_fault node is crashed (SIGKILL) at
// a third and at two thirds of the publishes and started again 1 s later;
// durable queue, persistent messages, confirms, manual acks. Pass: lost 0,
// unexpected 0, deliveries resume within 30 s of the node accepting again.
func TestRabbitMQKilledTwice(t *testing.T) {
	long(t)
	node := faulttest.FaultRabbit(t)
	t.Parallel()
	q := kombu.Queue{Name: unique("rmq-kill"), Durable: true}
	t.Cleanup(func() { deleteQueues(node.URL, []kombu.Queue{q}) })
	restart := func(ctx context.Context) error {
		done := make(chan error, 1)
		go func() { done <- node.Restart(ctx) }()
		// The node accepts connections before the restart command returns.
		if err := faulttest.WaitAccepting(ctx, node.Addr()); err != nil {
			return err
		}
		go func() { <-done }()
		return nil
	}
	kill := func() error { return node.Kill(syscall.SIGKILL) }
	w := &workload{
		test: "RabbitMQ killed and restarted twice", transport: "amqp",
		faultDesc: "SIGKILL at 1/3 and 2/3, restart 1 s later",
		url:       node.URL, queues: []kombu.Queue{q},
		total: 4000, publishers: 2, consumers: 2, prefetch: 50,
		faults: []fault{
			killRestart("kill 1", 1.0/3, time.Second, kill, restart),
			killRestart("kill 2", 2.0/3, time.Second, kill, restart),
		},
		limit: 4 * time.Minute, resumeBound: 30 * time.Second,
	}
	o := w.run(t)
	w.check(t, o, "")
}

// TestRedisKilledTwice: a private redis-server with appendonly (fsync
// always) is crashed (SIGKILL) at a third and two thirds of the publishes
// and started again 0.5 s later on the same port and dir. Pass: lost 0,
// unexpected 0, deliveries resume within 10 s.
func TestRedisKilledTwice(t *testing.T) {
	long(t)
	t.Parallel()
	r := faulttest.StartRedis(t, faulttest.RedisOptions{AppendFsync: "always"})
	q := kombu.Queue{Name: unique("redis-kill"), Durable: true}
	w := &workload{
		test: "Redis (appendonly) killed and restarted twice", transport: "redis",
		faultDesc: "SIGKILL at 1/3 and 2/3, restart 0.5 s later",
		url:       r.URL(redisOpts), queues: []kombu.Queue{q},
		total: 4000, publishers: 2, consumers: 2, prefetch: 50,
		faults: []fault{
			killRestart("kill 1", 1.0/3, 500*time.Millisecond, r.Kill, r.Restart),
			killRestart("kill 2", 2.0/3, 500*time.Millisecond, r.Kill, r.Restart),
		},
		limit: 2 * time.Minute, resumeBound: 10 * time.Second, explain: redisState(r.Addr(), q.Name),
	}
	o := w.run(t)
	w.check(t, o, "")
}

// TestRedisRestarted20Times: 20 crashes (SIGKILL, then an immediate restart)
// in a row while 4 consumers each read a queue of their own. Pass: after
// every restart every consumer gets a message again within 10 s (0 stalled
// consumers), lost 0, unexpected 0.
func TestRedisRestarted20Times(t *testing.T) {
	long(t)
	t.Parallel()
	r := faulttest.StartRedis(t, faulttest.RedisOptions{AppendFsync: "always"})
	const restarts, consumers = 20, 4
	var queues []kombu.Queue
	for i := range consumers {
		queues = append(queues, kombu.Queue{Name: unique(fmt.Sprintf("redis-20x-%d", i)), Durable: true})
	}
	var faults []fault
	for i := range restarts {
		faults = append(faults, killRestart(fmt.Sprintf("restart %d", i+1), float64(i+1)/(restarts+1), 0, r.Kill, r.Restart))
	}
	w := &workload{
		test: "Redis restarted 20 times in a row", transport: "redis",
		faultDesc: "SIGKILL + immediate restart ×20",
		url:       r.URL(redisOpts), queues: queues, ownQueues: true,
		total: 4200, publishers: 2, consumers: consumers, prefetch: 20,
		faults: faults, limit: 2 * time.Minute, resumeBound: 10 * time.Second,
		explain: redisState(r.Addr(), queues[0].Name, queues[1].Name, queues[2].Name, queues[3].Name),
	}
	o := w.run(t)
	w.check(t, o, "")
}

// proxyFaults is the sequence of proxy faults of the proxy tests: each is
// injected, lasts its time, and heals.
func proxyFaults(p *faulttest.Proxy) []fault {
	steps := []struct {
		f faulttest.Fault
		d time.Duration
	}{
		{faulttest.Fault{Kind: faulttest.ResetAll}, time.Second},
		{faulttest.Fault{Kind: faulttest.Blackhole}, 3 * time.Second},
		{faulttest.Fault{Kind: faulttest.HalfOpen}, 3 * time.Second},
		{faulttest.Fault{Kind: faulttest.CutAfter, Bytes: 2048}, 2 * time.Second},
		{faulttest.Fault{Kind: faulttest.Latency, Delay: 100 * time.Millisecond}, 2 * time.Second},
		{faulttest.Fault{Kind: faulttest.ResetAll}, 500 * time.Millisecond},
	}
	var out []fault
	for i, s := range steps {
		out = append(out, fault{name: s.f.String(), at: float64(i+1) / float64(len(steps)+1), inject: func(ctx context.Context) error {
			if err := p.Inject(s.f, s.d); err != nil {
				return err
			}
			sleepCtx(ctx, s.d)
			return nil
		}})
	}
	return out
}

const proxyFaultDesc = "proxy: reset-all 1 s, blackhole 3 s, half-open 3 s, cut after 2 KiB 2 s, latency 100 ms 2 s, reset-all 0.5 s"

// TestProxyFaultsAMQP: publishers and consumers reach RabbitMQ through the
// fault proxy, which resets, stalls, half-opens, cuts and slows their
// connections in turn (heartbeat 1 s). A Publish that returned nil means
// the broker has the message: the final drain, over a direct connection,
// finds every one of them (lost 0).
func TestProxyFaultsAMQP(t *testing.T) {
	long(t)
	t.Parallel()
	direct := testenv.ServerURL(t, testenv.AMQPURL)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	p := faulttest.StartProxy(t, u.Host)
	q := kombu.Queue{Name: unique("amqp-proxy"), Durable: true}
	t.Cleanup(func() { deleteQueues(direct, []kombu.Queue{q}) })
	w := &workload{
		test: "TCP proxy faults during publish and consume", transport: "amqp", faultDesc: proxyFaultDesc,
		url:      withQuery(viaProxy(t, direct, p.Addr()), "heartbeat=1&confirm_timeout=5&connect_timeout=2"),
		drainURL: direct, queues: []kombu.Queue{q},
		total: 3000, publishers: 2, consumers: 2, prefetch: 50,
		faults: proxyFaults(p), limit: 3 * time.Minute, resumeBound: 20 * time.Second,
		publishTimeout: 10 * time.Second,
	}
	o := w.run(t)
	w.check(t, o, fmt.Sprintf("proxy resets %d", p.Stats().Resets))
}

// TestProxyFaultsRedis is TestProxyFaultsAMQP on a private redis-server,
// with a 2 s socket timeout.
func TestProxyFaultsRedis(t *testing.T) {
	long(t)
	t.Parallel()
	r := faulttest.StartRedis(t, faulttest.RedisOptions{AppendFsync: "always"})
	p := faulttest.StartProxy(t, r.Addr())
	q := kombu.Queue{Name: unique("redis-proxy"), Durable: true}
	w := &workload{
		test: "TCP proxy faults during publish and consume", transport: "redis", faultDesc: proxyFaultDesc,
		url:      viaProxy(t, r.URL(redisOpts+"&socket_timeout=2&socket_connect_timeout=2"), p.Addr()),
		drainURL: r.URL(redisOpts), queues: []kombu.Queue{q},
		total: 3000, publishers: 2, consumers: 2, prefetch: 50,
		faults: proxyFaults(p), limit: 2 * time.Minute, resumeBound: 20 * time.Second,
		publishTimeout: 10 * time.Second, explain: redisState(r.Addr(), q.Name),
	}
	o := w.run(t)
	w.check(t, o, fmt.Sprintf("proxy resets %d", p.Stats().Resets))
}

// TestClusterFailoverQuorumQueue: a quorum queue on the 3-node cluster;
// every client is given the nodes as a failover list starting with node 1,
// so all of them are on node 1 — which is crashed (SIGKILL) mid-stream and
// stays down while the clients fail over to the next node and go on. Pass:
// lost 0, unexpected 0, deliveries resume within 30 s.
func TestClusterFailoverQuorumQueue(t *testing.T) {
	long(t)
	c := faulttest.Cluster(t)
	t.Parallel()
	failover := c.FailoverURL(0)
	q := kombu.Queue{Name: unique("quorum"), Durable: true, Arguments: map[string]any{"x-queue-type": "quorum"}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := c.Nodes[0].Restart(ctx); err != nil {
			t.Errorf("restart node 1 after the test: %v", err)
		}
		deleteQueues(failover, []kombu.Queue{q})
	})

	// Where a client of this URL list lands: node 1, the one to kill.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	probe, err := kombu.Dial(ctx, failover, nil)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	info := probe.Info()
	_ = probe.Close()
	victim := c.NodeOf(fmt.Sprintf("%s:%d", info.Hostname, info.Port))
	if victim != 0 {
		t.Fatalf("a client of %s is on node %d, want node 1 first", info.URI, victim+1)
	}
	var leader string
	w := &workload{
		test: "3-node cluster, quorum queue, client's node killed", transport: "amqp",
		faultDesc: "SIGKILL of node 1 (the clients' node and the queue's leader) at 1/2; it stays down",
		url:       failover, queues: []kombu.Queue{q},
		// Workers with prefetch: transport/amqp sends basic.qos per
		// consumer (global=false), which quorum queues accept.
		total: 3000, publishers: 2, consumers: 2, prefetch: 50,
		faults: []fault{{name: "kill node 1", at: 0.5, inject: func(ctx context.Context) error {
			if out, err := c.Rabbitmqctl(ctx, "-q", "list_queues", "name", "leader", "--no-table-headers"); err == nil {
				for _, line := range strings.Split(out, "\n") {
					if f := strings.Fields(line); len(f) == 2 && f[0] == q.Name {
						leader = f[1]
					}
				}
			}
			return c.Nodes[victim].Kill(syscall.SIGKILL)
		}}},
		limit: 2 * time.Minute, resumeBound: 30 * time.Second,
	}
	o := w.run(t)
	note := "leader before the kill: node 1"
	if leader != c.Names[0] {
		note = "leader before the kill: " + leader
	}
	w.check(t, o, note)
}

// TestSentinelFailover: clients reach Redis through Sentinel; the primary is
// crashed (SIGKILL) mid-stream and the sentinels promote the replica. Pass:
// the clients follow the new primary and go on (deliveries resume within
// 20 s), unexpected 0. Replication is asynchronous, so writes acknowledged by
// the old primary that had not reached the replica are lost: the test
// reports how many, and does not fail on them.
func TestSentinelFailover(t *testing.T) {
	long(t)
	s := faulttest.Sentinels(t)
	t.Parallel()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := s.Revive(ctx); err != nil {
			t.Errorf("revive the old primary: %v", err)
		}
	})
	q := kombu.Queue{Name: unique("sentinel"), Durable: true}
	clientURL := withQuery(s.URL, redisOpts+"&socket_timeout=2&socket_connect_timeout=2")
	var oldPrimary, newPrimary string
	var promoted time.Duration
	w := &workload{
		test: "Redis Sentinel failover", transport: "redis (sentinel)",
		faultDesc: "SIGKILL of the primary at 1/2; the replica is promoted",
		url:       clientURL, queues: []kombu.Queue{q},
		total: 3000, publishers: 2, consumers: 2, prefetch: 50,
		faults: []fault{{name: "kill primary", at: 0.5, inject: func(ctx context.Context) error {
			var err error
			start := time.Now()
			if oldPrimary, err = s.KillPrimary(ctx); err != nil {
				return err
			}
			newPrimary, err = s.WaitNewPrimary(ctx, oldPrimary)
			promoted = time.Since(start)
			return err
		}}},
		limit: 3 * time.Minute, resumeBound: 20 * time.Second, allowLoss: true,
	}
	o := w.run(t)
	note := fmt.Sprintf("primary %s -> %s in %v; lost = acknowledged writes not yet replicated", oldPrimary, newPrimary, promoted.Round(100*time.Millisecond))
	w.check(t, o, note)
	if o.res.Lost > 0 {
		t.Logf("lost %d acknowledged messages in the failover (asynchronous replication; first seqs %v)", o.res.Lost, o.res.LostSeqs)
	}
}
