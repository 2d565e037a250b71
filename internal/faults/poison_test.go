package faults

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/faulttest"
	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu"
	_ "github.com/kombu-go/kombu/transport/memory"
)

// poisonHeader marks the message the handler of the poison tests always
// fails on.
const poisonHeader = "x-fault-poison"

// poisonPolicy is short so that the poison test is quick: waits of 20,
// 40, 80, 160 ms and 5 deliveries in all.
var poisonPolicy = kombu.RedeliveryPolicy{
	InitialBackoff: 20 * time.Millisecond, Multiplier: 2, MaxBackoff: 200 * time.Millisecond, MaxDeliveries: 5,
}

// poisonRun is one poison test: a worker whose handler fails on one message
// and handles goods messages beside it.
type poisonRun struct {
	transport string
	url       string
	queue     kombu.Queue
	deadQueue kombu.Queue // where the poison message must end up
	deadVia   string      // "dead-letter exchange" or "poison queue"
	goods     int
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// run publishes the poison message first and the good ones after it, runs a
// worker (concurrency 4) until every good message was handled and the
// poison one was dead-lettered, and checks: every good message handled
// exactly once, the poison one handed to the handler exactly MaxDeliveries
// times with at least the policy's backoff between deliveries, then found
// in the dead queue with its failure headers; the CPU time of the run and
// of a quiet second after it are bounded (no hot loop).
//
// The poison tests do not call t.Parallel: Go runs them before the
// parallel fault tests, alone, so the process CPU time is theirs.
func (p poisonRun) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t.Cleanup(func() { deleteQueues(p.url, []kombu.Queue{p.queue, p.deadQueue}) })
	if err := declare(ctx, p.url, []kombu.Queue{p.queue, p.deadQueue}); err != nil {
		t.Fatal(err)
	}
	led := faulttest.NewLedger(p.goods)
	start := time.Now()
	cpu0 := cpuTime(t)

	var mu sync.Mutex
	var poisonAt []time.Time // each delivery of the poison message
	handler := kombu.HandlerFunc(func(hctx context.Context, m *kombu.Message) error {
		if m.Headers[poisonHeader] != nil {
			mu.Lock()
			poisonAt = append(poisonAt, time.Now())
			mu.Unlock()
			return errors.New("poison: this handler always fails on it")
		}
		seq, ok := led.Delivery(m.Headers, m.Body, m.Redelivered)
		aerr := m.Ack(hctx)
		if ok {
			led.Ack(seq, aerr)
		}
		return nil
	})
	conn, err := kombu.NewConnection(p.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	policy := poisonPolicy
	wk, err := kombu.NewWorker(conn, []kombu.Queue{p.queue}, handler, &kombu.WorkerOptions{
		Consumer:      kombu.ConsumerOptions{Concurrency: 4, PrefetchCount: 50, Redelivery: &policy},
		IntervalStart: workerIntervalStart, IntervalStep: workerIntervalStep, IntervalMax: workerIntervalMax,
		OnConnectionError: func(err error, _ time.Duration) { led.Error("consume: "+errClass(err), err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- wk.Run(ctx) }()

	if err := p.publish(ctx, led); err != nil {
		t.Fatal(err)
	}

	// Wait for every good message and the dead-lettered poison one.
	dead, err := p.waitDead(ctx, led)
	cpuRun := cpuTime(t) - cpu0
	elapsed := time.Since(start)
	if err != nil {
		res := led.Check()
		t.Fatalf("%v\n%s; poison deliveries %d", err, res, len(poisonAt))
	}
	// A quiet second after the work: a hot loop would show here.
	cpu1 := cpuTime(t)
	time.Sleep(time.Second)
	cpuIdle := cpuTime(t) - cpu1

	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	if err := wk.Shutdown(sctx); err != nil {
		t.Errorf("worker Shutdown: %v, want nil", err)
	}
	if err := <-runErr; err != nil {
		t.Errorf("worker Run after Shutdown: %v, want nil", err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer dcancel()
	if err := drain(dctx, p.url, []kombu.Queue{p.queue}, led); err != nil {
		t.Errorf("final drain: %v", err)
	}
	res := led.Check()

	mu.Lock()
	deliveries := append([]time.Time(nil), poisonAt...)
	mu.Unlock()
	shortest := time.Duration(-1)
	for i := 1; i < len(deliveries); i++ {
		if gap := deliveries[i].Sub(deliveries[i-1]); shortest < 0 || gap < shortest {
			shortest = gap
		}
	}
	perMsg := cpuRun / time.Duration(p.goods)
	note := fmt.Sprintf("poison: %d deliveries (limit %d), shortest gap %v, then to the %s; CPU %v (%v/msg, -race), idle 1 s after: %v",
		len(deliveries), policy.MaxDeliveries, shortest.Round(time.Millisecond), p.deadVia,
		cpuRun.Round(10*time.Millisecond), perMsg.Round(time.Microsecond), cpuIdle.Round(time.Millisecond))
	faulttest.Record(t, faulttest.Row{
		Test: fmt.Sprintf("Poison message beside %d good ones", p.goods), Transport: p.transport,
		Fault:  fmt.Sprintf("handler always fails on 1 message; redelivery backoff 20-200 ms, %d deliveries", policy.MaxDeliveries),
		Result: res, Elapsed: elapsed, Note: note,
	})

	if res.Lost != 0 || res.Published != p.goods || res.Delivered != p.goods {
		t.Errorf("good messages: published %d, handled %d, lost %d of %d (first lost %v)", res.Published, res.Delivered, res.Lost, p.goods, res.LostSeqs)
	}
	if res.Duplicated != 0 || res.Unexpected != 0 {
		t.Errorf("good messages handled more than once: %d; unexpected %d (%q)", res.Duplicated, res.Unexpected, res.UnexpectedBodies)
	}
	if len(deliveries) != policy.MaxDeliveries {
		t.Errorf("the poison message was handed to the handler %d times, want exactly MaxDeliveries=%d", len(deliveries), policy.MaxDeliveries)
	}
	// The first wait is InitialBackoff; allow timer slack.
	if min := policy.InitialBackoff * 3 / 4; shortest < min {
		t.Errorf("poison redelivered after %v, want at least the backoff %v (no hot loop)", shortest, min)
	}
	if got := dead.Headers[kombu.HeaderFailedDeliveries]; fmt.Sprint(got) != fmt.Sprint(policy.MaxDeliveries) {
		t.Errorf("dead-lettered copy: %s = %v, want %d", kombu.HeaderFailedDeliveries, got, policy.MaxDeliveries)
	}
	if got, _ := dead.Headers[kombu.HeaderLastError].(string); !strings.Contains(got, "always fails") {
		t.Errorf("dead-lettered copy: %s = %q, want the handler's error", kombu.HeaderLastError, got)
	}
	// Bounds far above what a sane run takes (about 100-300 µs of CPU per
	// message under -race), far below what a loop without backoff would
	// burn; and a quiet worker is near idle.
	if perMsg > 3*time.Millisecond {
		t.Errorf("CPU %v for %d messages: %v per message, want at most 3 ms", cpuRun, p.goods, perMsg)
	}
	if cpuIdle > 300*time.Millisecond {
		t.Errorf("CPU %v in a quiet second after the run, want at most 300 ms (a hot loop?)", cpuIdle)
	}
}

// publish sends the poison message, then the good ones from 4 publishers
// with the retry policy, publishing again whatever still failed.
func (p poisonRun) publish(ctx context.Context, led *faulttest.Ledger) error {
	conn, err := kombu.NewConnection(p.url, nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	prod, err := conn.Producer(ctx, nil)
	if err != nil {
		return err
	}
	opts := func(headers map[string]any) *kombu.PublishOptions {
		return &kombu.PublishOptions{
			RoutingKey: p.queue.Name, ContentType: "text/plain", ContentEncoding: "utf-8",
			Headers: headers, DeliveryMode: kombu.Persistent, Retry: true, RetryPolicy: retryPolicy,
		}
	}
	if err := prod.Publish(ctx, []byte("poison"), opts(map[string]any{poisonHeader: "1"})); err != nil {
		return fmt.Errorf("publish the poison message: %w", err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			prod, err := conn.Producer(ctx, nil)
			if err != nil {
				led.Error("producer: "+errClass(err), err)
				return
			}
			for {
				seq := int(next.Add(1) - 1)
				if seq >= p.goods {
					return
				}
				for ctx.Err() == nil {
					err := prod.Publish(ctx, led.Body(seq), opts(led.Headers(seq)))
					led.Publish(seq, err, classify)
					if err == nil {
						break
					}
					sleepCtx(ctx, 100*time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	if n := led.Published(); n != int64(p.goods) {
		return fmt.Errorf("published %d of %d good messages: %w", n, p.goods, ctx.Err())
	}
	return nil
}

// waitDead waits until every good message was handled and the poison
// message is in the dead queue, and returns it (acked).
func (p poisonRun) waitDead(ctx context.Context, led *faulttest.Ledger) (*kombu.Message, error) {
	conn, err := kombu.Dial(ctx, p.url, nil)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ch, err := conn.Channel(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := p.deadQueue.Declare(ctx, ch); err != nil {
		return nil, err
	}
	var dead *kombu.Message
	for {
		if dead == nil {
			m, err := p.deadQueue.Get(ctx, ch, false, nil)
			switch {
			case err == nil:
				if m.Headers[poisonHeader] == nil {
					return nil, fmt.Errorf("%s holds %q, not the poison message", p.deadQueue.Name, m.Body)
				}
				if err := m.Ack(ctx); err != nil {
					return nil, err
				}
				dead = m
			case !errors.Is(err, kombu.ErrEmpty):
				return nil, err
			}
		}
		if dead != nil && led.Missing() == 0 && led.Delivered() == int64(p.goods) {
			return dead, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("waiting: handled %d of %d good messages, poison dead-lettered %v: %w",
				led.Delivered(), p.goods, dead != nil, ctx.Err())
		}
		sleepCtx(ctx, 50*time.Millisecond)
	}
}

// TestPoisonMessageMemory: no dead-letter exchange, so the poison message
// goes to "<queue>.poison".
func TestPoisonMessageMemory(t *testing.T) {
	long(t)
	q := kombu.Queue{Name: unique("poison-mem"), Durable: true}
	poisonRun{transport: "memory", url: "memory://" + unique("poison"), queue: q,
		deadQueue: kombu.Queue{Name: q.Name + kombu.PoisonQueueSuffix, Durable: true}, deadVia: "poison queue",
		goods: 10000}.run(t)
}

// TestPoisonMessageRedis: redis has no dead-lettering of its own; the
// poison message goes to "<queue>.poison".
func TestPoisonMessageRedis(t *testing.T) {
	long(t)
	r := faulttest.StartRedis(t, faulttest.RedisOptions{AppendFsync: "always"})
	q := kombu.Queue{Name: unique("poison-redis"), Durable: true}
	poisonRun{transport: "redis", url: r.URL(redisOpts), queue: q,
		deadQueue: kombu.Queue{Name: q.Name + kombu.PoisonQueueSuffix, Durable: true}, deadVia: "poison queue",
		goods: 10000}.run(t)
}

// TestPoisonMessageAMQP: the queue has a dead-letter exchange (the default
// exchange, routing to a queue of the test), which takes the poison
// message.
func TestPoisonMessageAMQP(t *testing.T) {
	long(t)
	url := testenv.ServerURL(t, testenv.AMQPURL)
	dlq := kombu.Queue{Name: unique("poison-amqp-dlq"), Durable: true}
	q := kombu.Queue{Name: unique("poison-amqp"), Durable: true, Arguments: map[string]any{
		"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq.Name,
	}}
	poisonRun{transport: "amqp", url: url, queue: q, deadQueue: dlq, deadVia: "dead-letter exchange",
		goods: 10000}.run(t)
}
