package amqp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

// On a quorum queue the redelivery policy counts with RabbitMQ's own
// x-delivery-count (requeue, no republish), so a count also survives a
// consumer that dies without settling; the dead-lettered copy carries the
// policy's headers and not the broker's counter.
func TestRedeliveryQuorumQueueUsesBrokerCount(t *testing.T) {
	const limit = 3
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kombu.Dial(ctx, serverURL(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	name := fmt.Sprintf("kombu-go.redelivery-quorum-%d", time.Now().UnixNano())
	q := kombu.NewQueue(name, kombu.DefaultExchange, "")
	q.Arguments = map[string]any{"x-queue-type": "quorum"}
	ch, err := conn.Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, n := range []string{name, name + kombu.PoisonQueueSuffix} {
			_, _ = (kombu.Queue{Name: n}).Delete(context.Background(), ch, false, false)
		}
	}()
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, "poison", &kombu.PublishOptions{RoutingKey: name, Declare: []kombu.Declarable{q}}); err != nil {
		t.Fatal(err)
	}
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{
		Redelivery: &kombu.RedeliveryPolicy{InitialBackoff: 10 * time.Millisecond, MaxDeliveries: limit},
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var counts []int
	var ownHeader []any
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- c.Consume(cctx, kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
			mu.Lock()
			counts = append(counts, m.DeliveryCount())
			ownHeader = append(ownHeader, m.Headers[kombu.HeaderDeliveryCount])
			mu.Unlock()
			return errors.New("quorum failure")
		}))
	}()
	pc, err := conn.Consumer(ctx, []kombu.Queue{{Name: name + kombu.PoisonQueueSuffix, Durable: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	d, err := pc.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = d.Ack(ctx)
	stop()
	<-done
	_ = c.Close()
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(counts) != "[1 2 3]" {
		t.Errorf("delivery counts %v, want [1 2 3]", counts)
	}
	for i, h := range ownHeader {
		if h != nil {
			t.Errorf("delivery %d carries %s=%v: the policy republished instead of letting the broker count", i+1, kombu.HeaderDeliveryCount, h)
		}
	}
	if got := fmt.Sprint(d.Headers[kombu.HeaderFailedDeliveries]); got != "3" {
		t.Errorf("%s = %s, want 3", kombu.HeaderFailedDeliveries, got)
	}
	if _, ok := d.Headers["x-delivery-count"]; ok {
		t.Errorf("dead-lettered copy keeps the broker's x-delivery-count: %v", d.Headers)
	}
	if d.Headers[kombu.HeaderLastError] != "quorum failure" {
		t.Errorf("%s = %#v", kombu.HeaderLastError, d.Headers[kombu.HeaderLastError])
	}
}
