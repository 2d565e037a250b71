//go:build unix

package kombu_test

import (
	"context"
	"errors"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A consumer whose only message always fails idles between deliveries
// instead of burning a core (it did, at ~100 %, before the policy).
func TestFailingHandlerCPUBounded(t *testing.T) {
	ctx, conn := dialMemory(t, nil)
	q := kombu.NewQueue("cpu", kombu.DefaultExchange, "")
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, "poison", &kombu.PublishOptions{RoutingKey: q.Name, Declare: []kombu.Declarable{q}}); err != nil {
		t.Fatal(err)
	}
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{
		Redelivery: &kombu.RedeliveryPolicy{InitialBackoff: 20 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, MaxDeliveries: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var deliveries atomic.Int64
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- c.Consume(cctx, kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
			deliveries.Add(1)
			return errors.New("always fails")
		}))
	}()
	const window = time.Second
	startCPU, start := cpuTime(t), time.Now()
	time.Sleep(window)
	used, wall := cpuTime(t)-startCPU, time.Since(start)
	n := deliveries.Load()
	cancel()
	<-done
	// Every 20 ms at most: about 50 deliveries, each a republish and an
	// ack, far below a core even under -race.
	if n > int64(wall/(20*time.Millisecond))+1 || n < 5 {
		t.Errorf("%d deliveries in %v, want one per 20 ms backoff at most (and some)", n, wall)
	}
	if used > wall/4 {
		t.Errorf("CPU %v in %v (%d deliveries): the failing message spins", used, wall, n)
	}
	t.Logf("%d deliveries, CPU %v in %v", n, used, wall)
}
