package kombu_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport/memory"
	"github.com/kombu-go/kombu/virtual"
)

// delayingBroker is the memory transport, optionally declaring that the
// broker counts deliveries, and optionally with a store that requeues with
// a delay: it records each delay and puts the message back at once (a
// fake broker; the point is that the consumer does not wait).
type delayingBroker struct {
	inner           *memory.Connector
	countsAndDelays bool // Features.DeliveryCount
	delaying        bool // the store is a virtual.DelayedRequeuer

	mu     sync.Mutex
	delays []time.Duration
}

func (b *delayingBroker) Describe() driver.Description {
	d := memory.Description
	d.Features.DeliveryCount = b.countsAndDelays
	return d
}

func (b *delayingBroker) Connect(ctx context.Context) (driver.Conn, error) {
	return virtual.Connect(ctx, b)
}

func (b *delayingBroker) DialStore(ctx context.Context) (virtual.Store, error) {
	s, err := b.inner.DialStore(ctx)
	if err != nil || !b.delaying {
		return s, err
	}
	return &delayingStore{Store: s.(*memory.Store), b: b}, nil
}

func (b *delayingBroker) recorded() []time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]time.Duration(nil), b.delays...)
}

type delayingStore struct {
	*memory.Store
	b *delayingBroker
}

func (s *delayingStore) RequeueAfter(ctx context.Context, it virtual.Item, delay time.Duration) error {
	s.b.mu.Lock()
	s.b.delays = append(s.b.delays, delay)
	s.b.mu.Unlock()
	return s.Put(ctx, it.Queue, it.Envelope.AsRedelivered())
}

// failOnce consumes q on conn with policy: the first delivery fails, the
// second is acked and returned.
func failOnce(t *testing.T, conn *kombu.Connection, policy *kombu.RedeliveryPolicy) (first time.Time, second *kombu.Message, at time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q := kombu.NewQueue(uniqueName(t), kombu.DefaultExchange, "")
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, "fails once", &kombu.PublishOptions{RoutingKey: q.Name, Declare: []kombu.Declarable{q}}); err != nil {
		t.Fatal(err)
	}
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{Redelivery: policy})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *kombu.Message, 1)
	done := make(chan error, 1)
	n := 0
	go func() {
		done <- c.Consume(ctx, kombu.HandlerFunc(func(_ context.Context, m *kombu.Message) error {
			if n++; n == 1 {
				first = time.Now()
				return errors.New("handler fails")
			}
			at = time.Now()
			got <- m
			return nil
		}))
	}()
	select {
	case second = <-got:
	case <-ctx.Done():
		t.Fatal("the failed message did not come back within 5 s")
	}
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	return first, second, at
}

// Where the broker counts deliveries and can delay a requeue, a failed
// message goes back to it at once with the backoff as the delay: nothing
// waits in the consumer (the backoff here is an hour), and it is requeued,
// not republished.
func TestFailedMessageRequeuedWithBrokerDelay(t *testing.T) {
	b := &delayingBroker{inner: memory.NewConnector(&memory.Options{Broker: uniqueName(t)}), countsAndDelays: true, delaying: true}
	conn := kombu.NewConnectionFromConnector(b, nil)
	defer conn.Close()
	_, m, _ := failOnce(t, conn, &kombu.RedeliveryPolicy{InitialBackoff: time.Hour, MaxBackoff: time.Hour, MaxDeliveries: 3})
	if d := b.recorded(); len(d) != 1 || d[0] != time.Hour {
		t.Errorf("RequeueAfter delays %v, want [1h]", d)
	}
	if _, republished := m.Headers[kombu.HeaderDeliveryCount]; republished || !m.Redelivered {
		t.Errorf("second delivery: headers %v, redelivered %t; want a requeue (no %s), redelivered", m.Headers, m.Redelivered, kombu.HeaderDeliveryCount)
	}
}

// A broker that counts deliveries but whose channel cannot delay a
// requeue (driver.ErrNotSupported) gets the message back after the
// backoff, held in the consumer as before.
func TestDelayedRequeueNotSupportedHoldsInConsumer(t *testing.T) {
	b := &delayingBroker{inner: memory.NewConnector(&memory.Options{Broker: uniqueName(t)}), countsAndDelays: true}
	conn := kombu.NewConnectionFromConnector(b, nil)
	defer conn.Close()
	const backoff = 150 * time.Millisecond
	first, m, at := failOnce(t, conn, &kombu.RedeliveryPolicy{InitialBackoff: backoff, MaxDeliveries: 3})
	if gap := at.Sub(first); gap < backoff || !m.Redelivered {
		t.Errorf("second delivery %v after the first, redelivered %t; want at least %v, true", gap, m.Redelivered, backoff)
	}
}

// A broker that does not count deliveries keeps kombu's own count: the
// message is republished with it, and RequeueAfter is never used.
func TestDelayedRequeueUnusedWithoutBrokerCount(t *testing.T) {
	b := &delayingBroker{inner: memory.NewConnector(&memory.Options{Broker: uniqueName(t)}), delaying: true}
	conn := kombu.NewConnectionFromConnector(b, nil)
	defer conn.Close()
	_, m, _ := failOnce(t, conn, &kombu.RedeliveryPolicy{InitialBackoff: 10 * time.Millisecond, MaxDeliveries: 3})
	if d := b.recorded(); len(d) != 0 {
		t.Errorf("RequeueAfter used (%v) on a broker that does not count deliveries", d)
	}
	if m.DeliveryCount() != 2 || m.Headers[kombu.HeaderDeliveryCount] == nil {
		t.Errorf("second delivery: count %d, headers %v; want 2 from %s", m.DeliveryCount(), m.Headers, kombu.HeaderDeliveryCount)
	}
}
