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
