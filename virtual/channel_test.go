package virtual_test

import (
	"context"
	"errors"
	"testing"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport/memory"
	"github.com/kombu-go/kombu/virtual"
)

func openChannel(t *testing.T) driver.Channel {
	t.Helper()
	store, err := memory.NewConnector(&memory.Options{Broker: "virtual-" + t.Name()}).DialStore(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	conn := virtual.NewConn(store)
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// As on RabbitMQ: amq.* exchanges cannot be created, but the predeclared
// ones may be redeclared with the same attributes; amq.* queue names are
// reserved for server-named queues.
func TestReservedAMQNames(t *testing.T) {
	ctx := context.Background()
	ch := openChannel(t)
	if err := ch.ExchangeDeclare(ctx, driver.Exchange{Name: "amq.direct", Type: "direct", Durable: true}); err != nil {
		t.Fatalf("redeclaring amq.direct as predeclared: %v", err)
	}
	if err := ch.ExchangeDeclare(ctx, driver.Exchange{Name: "amq.direct", Type: "fanout", Durable: true}); !errors.Is(err, driver.ErrPreconditionFailed) {
		t.Fatalf("amq.direct as fanout: %v, want ErrPreconditionFailed", err)
	}
	if err := ch.ExchangeDeclare(ctx, driver.Exchange{Name: "amq.mine", Type: "direct"}); !errors.Is(err, driver.ErrAccessRefused) {
		t.Fatalf("declaring amq.mine: %v, want ErrAccessRefused", err)
	}
	if _, err := ch.QueueDeclare(ctx, driver.Queue{Name: "amq.q"}); !errors.Is(err, driver.ErrAccessRefused) {
		t.Fatalf("declaring queue amq.q: %v, want ErrAccessRefused", err)
	}
	info, err := ch.QueueDeclare(ctx, driver.Queue{Exclusive: true})
	if err != nil || len(info.Name) < 9 || info.Name[:8] != "amq.gen-" {
		t.Fatalf("server-named queue: %+v, %v", info, err)
	}
}

// The driver channel applies the same rules as package kombu for callers
// of the driver: a done ctx does nothing, and limits are RabbitMQ's.
func TestDriverLevelRules(t *testing.T) {
	ctx := context.Background()
	ch := openChannel(t)
	if _, err := ch.QueueDeclare(ctx, driver.Queue{Name: "q"}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish(ctx, &driver.Publishing{RoutingKey: "q", Message: driver.Message{Body: []byte("kept")}}); err != nil {
		t.Fatal(err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := ch.Publish(done, &driver.Publishing{RoutingKey: "q"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with a done ctx: %v", err)
	}
	if err := ch.Consume(ctx, driver.ConsumeArgs{Queue: "q", ConsumerTag: "c"}); err != nil {
		t.Fatal(err)
	}
	if ds, err := ch.Receive(done, 10); !errors.Is(err, context.Canceled) || len(ds) != 0 {
		t.Errorf("Receive with a done ctx: %d deliveries, %v", len(ds), err)
	}
	if _, err := ch.QueueDeclare(done, driver.Queue{Name: "other"}); !errors.Is(err, context.Canceled) {
		t.Errorf("QueueDeclare with a done ctx: %v", err)
	}
	ds, err := ch.Receive(ctx, 10)
	if err != nil || len(ds) != 1 || string(ds[0].Body) != "kept" {
		t.Fatalf("Receive = %d deliveries, %v; want the one message", len(ds), err)
	}
	if err := ch.Ack(done, ds[0].Tag, false); !errors.Is(err, context.Canceled) {
		t.Errorf("Ack with a done ctx: %v", err)
	}
	if err := ch.Ack(ctx, ds[0].Tag, false); err != nil {
		t.Errorf("Ack after the refused one: %v", err)
	}
	for _, n := range []int{-1, driver.MaxPrefetchCount + 1} {
		if err := ch.Qos(ctx, n); !errors.Is(err, driver.ErrInvalidArgument) {
			t.Errorf("Qos(%d): %v", n, err)
		}
	}
	for _, args := range []map[string]any{
		{"x-message-ttl": int32(-1)},
		{"x-expires": driver.MaxExpiry.Milliseconds() + 1},
		{"x-max-priority": 256},
		{"x-max-length": 1.0},
	} {
		if _, err := ch.QueueDeclare(ctx, driver.Queue{Name: "bad", Args: args}); !errors.Is(err, driver.ErrInvalidArgument) {
			t.Errorf("QueueDeclare with %v: %v", args, err)
		}
	}
	// Integer widths do not matter, as on RabbitMQ.
	if _, err := ch.QueueDeclare(ctx, driver.Queue{Name: "ttl", Args: map[string]any{"x-message-ttl": int32(1000)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(ctx, driver.Queue{Name: "ttl", Args: map[string]any{"x-message-ttl": uint64(1000)}}); err != nil {
		t.Errorf("redeclare with another integer type: %v", err)
	}
	long := &driver.Publishing{RoutingKey: "q", Message: driver.Message{Properties: driver.Properties{Expiration: "315360000001"}}}
	if err := ch.Publish(ctx, long); !errors.Is(err, driver.ErrInvalidArgument) {
		t.Errorf("Publish with an expiration beyond MaxExpiry: %v", err)
	}
}
