package drivertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

var redeliveryCases = []testCase{
	{"PoisonBesideGoodMessages", testPoisonBesideGood},
	{"PoisonWithPrefetchOne", testPoisonPrefetchOne},
	{"DeadLetterExchange", testRedeliveryDeadLetterExchange},
	{"MissingDeadLetterExchange", testRedeliveryMissingDeadLetterExchange},
	{"PoisonQueueDeclaredOtherwise", testPoisonQueueDeclaredOtherwise},
	{"BackoffSpacesDeliveries", testRedeliveryBackoff},
	{"CountSurvivesConsumerRestart", testRedeliveryCountSurvivesRestart},
	{"BadPolicyRefused", testRedeliveryBadPolicy},
}

// deliveryLog records, per body, the delivery counts and times a handler
// saw.
type deliveryLog struct {
	mu     sync.Mutex
	counts map[string][]int
	times  map[string][]time.Time
}

func newDeliveryLog() *deliveryLog {
	return &deliveryLog{counts: map[string][]int{}, times: map[string][]time.Time{}}
}

func (l *deliveryLog) add(m *kombu.Message) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := string(m.Body)
	l.counts[b] = append(l.counts[b], m.DeliveryCount())
	l.times[b] = append(l.times[b], time.Now())
	return len(l.counts[b])
}

func (l *deliveryLog) get(body string) ([]int, []time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.counts[body]...), append([]time.Time(nil), l.times[body]...)
}

// poisonQueue returns the queue the policy dead-letters q's messages to
// when q has no dead-letter exchange, remembered for cleanup.
func (e *env) poisonQueue(q kombu.Queue) kombu.Queue {
	p := kombu.Queue{Name: q.Name + kombu.PoisonQueueSuffix, Durable: true}
	e.remember(p)
	return p
}

// checkDeadLettered checks the headers the policy puts on a message it
// dead-lettered from queue after deliveries deliveries.
func (e *env) checkDeadLettered(d *kombu.Message, queue string, deliveries int, lastErr string) {
	e.t.Helper()
	if got := fmt.Sprint(d.Headers[kombu.HeaderFailedDeliveries]); got != fmt.Sprint(deliveries) {
		e.t.Errorf("%s = %s, want %d", kombu.HeaderFailedDeliveries, got, deliveries)
	}
	if got := d.Headers[kombu.HeaderLastError]; got != lastErr {
		e.t.Errorf("%s = %#v, want %q", kombu.HeaderLastError, got, lastErr)
	}
	if got := d.Headers[kombu.HeaderFailedQueue]; got != queue {
		e.t.Errorf("%s = %#v, want %q", kombu.HeaderFailedQueue, got, queue)
	}
	if n := d.DeliveryCount(); n != 1 || d.Redelivered {
		e.t.Errorf("dead-lettered copy has DeliveryCount %d, redelivered %t; want 1, false (it starts again)", n, d.Redelivered)
	}
}

// testPoisonBesideGood: one message whose handler always fails, among
// good ones. Every good one is handled once; the poison one is delivered
// exactly MaxDeliveries times, with its count rising, and then moved to
// the poison queue with the last error, while its queue ends empty.
func testPoisonBesideGood(e *env) {
	const limit, good = 4, 30
	conn, _ := e.dialLogged(nil)
	q := e.simpleQueue("q")
	poison := e.poisonQueue(q)
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "poison")
	for i := range good {
		e.sendTo(p, q.Name, fmt.Sprintf("good-%d", i))
	}
	c := e.consumer(conn, []kombu.Queue{q}, &kombu.ConsumerOptions{
		Concurrency: 2, PrefetchCount: 8,
		Redelivery: &kombu.RedeliveryPolicy{InitialBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, MaxDeliveries: limit},
	})
	log := newDeliveryLog()
	stop := e.consume(c, func(ctx context.Context, m *kombu.Message) error {
		n := log.add(m)
		if string(m.Body) == "poison" {
			return fmt.Errorf("poison failure %d", n)
		}
		return nil
	})
	pc := e.consumer(nil, []kombu.Queue{poison}, nil)
	d := e.recv(pc)
	e.ack(d)
	e.eventually("every good message to be handled", func() bool {
		for i := range good {
			if n, _ := log.get(fmt.Sprintf("good-%d", i)); len(n) == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(negativeWait) // room for a delivery too many
	stop()
	if string(d.Body) != "poison" {
		e.t.Fatalf("poison queue got %q, want \"poison\"", d.Body)
	}
	e.checkDeadLettered(d, q.Name, limit, fmt.Sprintf("poison failure %d", limit))
	counts, _ := log.get("poison")
	if fmt.Sprint(counts) != "[1 2 3 4]" {
		e.t.Errorf("poison message delivered with counts %v, want [1 2 3 4]", counts)
	}
	for i := range good {
		if n, _ := log.get(fmt.Sprintf("good-%d", i)); fmt.Sprint(n) != "[1]" {
			e.t.Errorf("good-%d delivered with counts %v, want [1]", i, n)
		}
	}
	e.eventuallyLen(q, 0)
	e.expectNone(pc)
}

// testPoisonPrefetchOne: a failing message waits out its backoff holding
// the only prefetch slot, which pauses the consumer but never stalls it:
// every good message is still handled once, and the failing one ends in
// the poison queue.
func testPoisonPrefetchOne(e *env) {
	const limit, good = 3, 10
	q := e.simpleQueue("q")
	poison := e.poisonQueue(q)
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "poison")
	for i := range good {
		e.sendTo(p, q.Name, fmt.Sprintf("good-%d", i))
	}
	c := e.consumer(nil, []kombu.Queue{q}, &kombu.ConsumerOptions{
		PrefetchCount: 1,
		Redelivery:    &kombu.RedeliveryPolicy{InitialBackoff: 10 * time.Millisecond, MaxDeliveries: limit},
	})
	log := newDeliveryLog()
	stop := e.consume(c, func(ctx context.Context, m *kombu.Message) error {
		log.add(m)
		if string(m.Body) == "poison" {
			return errors.New("poison")
		}
		return nil
	})
	d := e.recv(e.consumer(nil, []kombu.Queue{poison}, nil))
	e.ack(d)
	e.eventually("every good message to be handled", func() bool {
		n, _ := log.get(fmt.Sprintf("good-%d", good-1))
		return len(n) > 0
	})
	stop()
	if counts, _ := log.get("poison"); len(counts) != limit {
		e.t.Errorf("poison message delivered %d times, want %d", len(counts), limit)
	}
	for i := range good {
		if n, _ := log.get(fmt.Sprintf("good-%d", i)); len(n) != 1 {
			e.t.Errorf("good-%d handled %d times, want once", i, len(n))
		}
	}
	e.eventuallyLen(q, 0)
}

// testRedeliveryDeadLetterExchange: a queue with a dead-letter exchange
// gets the exhausted message there, routed with its original routing key,
// and a handler panic counts as a failure like an error.
func testRedeliveryDeadLetterExchange(e *env) {
	const limit = 2
	conn, _ := e.dialLogged(nil) // panics are reported there
	dlx := e.declareExchange(kombu.NewExchange(e.name("dlx"), kombu.Direct))
	q := kombu.NewQueue(e.name("q"), kombu.DefaultExchange, "")
	q.Arguments = map[string]any{"x-dead-letter-exchange": dlx.Name}
	q = e.declareQueue(q)
	// Published through the default exchange: the routing key is the
	// queue's name, which the dead-letter queue is bound with.
	dlq := e.declareQueue(kombu.NewQueue(e.name("dlq"), dlx, q.Name))
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "boom", "fine")
	c := e.consumer(conn, []kombu.Queue{q}, &kombu.ConsumerOptions{
		Redelivery: &kombu.RedeliveryPolicy{InitialBackoff: 10 * time.Millisecond, MaxDeliveries: limit},
	})
	log := newDeliveryLog()
	stop := e.consume(c, func(ctx context.Context, m *kombu.Message) error {
		log.add(m)
		if string(m.Body) == "boom" {
			panic("boom handler")
		}
		return nil
	})
	cd := e.consumer(nil, []kombu.Queue{dlq}, nil)
	d := e.recv(cd)
	e.ack(d)
	stop()
	if string(d.Body) != "boom" || d.RoutingKey != q.Name {
		e.t.Errorf("dead-lettered %q with routing key %q, want \"boom\", %q", d.Body, d.RoutingKey, q.Name)
	}
	e.checkDeadLettered(d, q.Name, limit, "handler panic: boom handler")
	if counts, _ := log.get("boom"); fmt.Sprint(counts) != "[1 2]" {
		e.t.Errorf("panicking message delivered with counts %v, want [1 2]", counts)
	}
	if counts, _ := log.get("fine"); fmt.Sprint(counts) != "[1]" {
		e.t.Errorf("good message delivered with counts %v, want [1]", counts)
	}
	e.eventuallyLen(q, 0)
	e.expectNone(cd)
}

// testRedeliveryMissingDeadLetterExchange: a dead-letter exchange that
// does not exist (RabbitMQ would drop the message) sends the exhausted
// message to the poison queue instead, and the consumer goes on.
func testRedeliveryMissingDeadLetterExchange(e *env) {
	q := kombu.NewQueue(e.name("q"), kombu.DefaultExchange, "")
	q.Arguments = map[string]any{"x-dead-letter-exchange": e.name("missing")}
	q = e.declareQueue(q)
	poison := e.poisonQueue(q)
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "lost-dlx")
	c := e.consumer(nil, []kombu.Queue{q}, &kombu.ConsumerOptions{
		Redelivery: &kombu.RedeliveryPolicy{InitialBackoff: -1, MaxDeliveries: 1},
	})
	after := make(chan struct{})
	stop := e.consume(c, func(ctx context.Context, m *kombu.Message) error {
		if string(m.Body) == "after" {
			close(after)
			return nil
		}
		return errors.New("nowhere to go")
	})
	d := e.recv(e.consumer(nil, []kombu.Queue{poison}, nil))
	e.ack(d)
	if string(d.Body) != "lost-dlx" {
		e.t.Errorf("poison queue got %q, want \"lost-dlx\"", d.Body)
	}
	e.checkDeadLettered(d, q.Name, 1, "nowhere to go")
	e.sendTo(p, q.Name, "after")
	e.waitFor(after, "a message after the dead-lettering (the consumer's channel survived)")
	stop()
	e.eventuallyLen(q, 0)
}

// testPoisonQueueDeclaredOtherwise: a poison queue that the application
// declared itself, with other attributes than the policy's, still takes
// the message.
func testPoisonQueueDeclaredOtherwise(e *env) {
	q := e.simpleQueue("q")
	poison := e.declareQueue(kombu.Queue{Name: q.Name + kombu.PoisonQueueSuffix, MaxLength: 1000})
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "to-poison")
	c := e.consumer(nil, []kombu.Queue{q}, &kombu.ConsumerOptions{
		Redelivery: &kombu.RedeliveryPolicy{MaxDeliveries: 1},
	})
	stop := e.consume(c, func(ctx context.Context, m *kombu.Message) error {
		return errors.New("fails once, for good")
	})
	d := e.recv(e.consumer(nil, []kombu.Queue{poison}, nil))
	e.ack(d)
	stop()
	if string(d.Body) != "to-poison" {
		e.t.Errorf("poison queue got %q, want \"to-poison\"", d.Body)
	}
	e.checkDeadLettered(d, q.Name, 1, "fails once, for good")
	e.eventuallyLen(q, 0)
}

// testRedeliveryBackoff: the waits between deliveries of a failing
// message follow the policy (100, 200, 400 ms), and a good message
// published during a wait is handled at once.
func testRedeliveryBackoff(e *env) {
	const limit = 4
	initial := 100 * time.Millisecond
	q := e.simpleQueue("q")
	e.poisonQueue(q)
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "slow-poison")
	c := e.consumer(nil, []kombu.Queue{q}, &kombu.ConsumerOptions{
		Redelivery: &kombu.RedeliveryPolicy{InitialBackoff: initial, Multiplier: 2, MaxBackoff: time.Second, MaxDeliveries: limit},
	})
	log := newDeliveryLog()
	firstFailed := make(chan struct{})
	var once sync.Once
	stop := e.consume(c, func(ctx context.Context, m *kombu.Message) error {
		log.add(m)
		if string(m.Body) == "slow-poison" {
			once.Do(func() { close(firstFailed) })
			return errors.New("always")
		}
		return nil
	})
	e.waitFor(firstFailed, "the first delivery")
	sent := time.Now()
	e.sendTo(p, q.Name, "quick")
	e.eventually("the poison message to be delivered 4 times", func() bool {
		n, _ := log.get("slow-poison")
		return len(n) == limit
	})
	stop()
	_, quick := log.get("quick")
	_, times := log.get("slow-poison")
	if len(quick) != 1 || !quick[0].Before(times[1]) {
		e.t.Errorf("good message handled at %v after its publish, poison redelivered at %v; want it once, before the redelivery", durations(sent, quick), durations(sent, times))
	}
	for i := 1; i < len(times); i++ {
		want := initial << (i - 1)
		if gap := times[i].Sub(times[i-1]); gap < want {
			e.t.Errorf("delivery %d came %v after delivery %d, want at least %v", i+1, gap, i, want)
		}
	}
}

func durations(since time.Time, ts []time.Time) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i, t := range ts {
		out[i] = t.Sub(since)
	}
	return out
}

// testRedeliveryCountSurvivesRestart: a consumer fails a message once and
// shuts down during the backoff, without waiting it out; a consumer on
// another connection sees the count go on from there and dead-letters at
// the limit. A consumer that holds the message for the backoff gives it
// back at once; on a transport that delays the requeue in the broker
// (driver.DelayedRequeuer) the message comes back after the backoff.
func testRedeliveryCountSurvivesRestart(e *env) {
	const limit = 3
	const backoff = 3 * time.Second
	q := e.simpleQueue("q")
	poison := e.poisonQueue(q)
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "restarted")

	conn1, _ := e.dialLogged(nil)
	c1 := e.consumer(conn1, []kombu.Queue{q}, &kombu.ConsumerOptions{
		Redelivery: &kombu.RedeliveryPolicy{InitialBackoff: backoff, MaxDeliveries: limit},
	})
	log := newDeliveryLog()
	failedOnce := make(chan struct{})
	ctx1, cancel1 := context.WithCancel(e.ctx)
	defer cancel1()
	errc := make(chan error, 1)
	go func() {
		errc <- c1.Consume(ctx1, kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
			if log.add(m) == 1 {
				close(failedOnce)
			}
			return errors.New("first consumer fails")
		}))
	}()
	e.waitFor(failedOnce, "the first delivery")
	ctx, cancel := e.wait()
	defer cancel()
	// Shutdown does not wait out the backoff.
	began := time.Now()
	if err := c1.Shutdown(ctx); err != nil {
		e.t.Fatalf("shutdown: %v", err)
	}
	if took := time.Since(began); took >= backoff {
		e.t.Errorf("Shutdown took %v, waiting out the backoff of %v", took, backoff)
	}
	if err := <-errc; !errors.Is(err, kombu.ErrConsumerStopped) {
		e.t.Errorf("Consume after Shutdown returned %v, want ErrConsumerStopped", err)
	}

	conn2, _ := e.dialLogged(nil)
	c2 := e.consumer(conn2, []kombu.Queue{q}, &kombu.ConsumerOptions{
		Redelivery: &kombu.RedeliveryPolicy{InitialBackoff: 10 * time.Millisecond, MaxDeliveries: limit},
	})
	stop := e.consume(c2, func(ctx context.Context, m *kombu.Message) error {
		n := log.add(m)
		return fmt.Errorf("failure %d", n)
	})
	d := e.recv(e.consumer(nil, []kombu.Queue{poison}, nil))
	e.ack(d)
	stop()
	if counts, _ := log.get("restarted"); fmt.Sprint(counts) != "[1 2 3]" {
		e.t.Errorf("delivery counts across the restart %v, want [1 2 3]", counts)
	}
	e.checkDeadLettered(d, q.Name, limit, fmt.Sprintf("failure %d", limit))
	e.eventuallyLen(q, 0)
}

// testRedeliveryBadPolicy: a policy no consumer can follow is refused
// before any I/O.
func testRedeliveryBadPolicy(e *env) {
	q := e.simpleQueue("q")
	ctx, cancel := e.wait()
	defer cancel()
	for _, p := range []kombu.RedeliveryPolicy{{Multiplier: 0.5}, {MaxBackoff: -time.Second}} {
		c, err := e.conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{Redelivery: &p})
		if err == nil {
			_ = c.Close()
		}
		if !errors.Is(err, kombu.ErrInvalidArgument) || !strings.Contains(err.Error(), "RedeliveryPolicy") {
			e.t.Errorf("policy %+v: %v, want ErrInvalidArgument naming RedeliveryPolicy", p, err)
		}
	}
}
