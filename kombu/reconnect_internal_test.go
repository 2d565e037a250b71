package kombu

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport/memory"
)

type countingConnector struct {
	dials atomic.Int32
	inner driver.Connector
}

func (c *countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	c.dials.Add(1)
	return c.inner.Connect(ctx)
}

// Goroutines that saw the same connection fail reconnect it once: a later
// one must not drop the connection another already re-established.
func TestStaleReconnectKeepsTheNewConnection(t *testing.T) {
	ctx := context.Background()
	cn := &countingConnector{inner: memory.NewConnector(&memory.Options{Broker: t.Name()})}
	c := NewConnectionFromConnector(cn, nil)
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	failedGen := c.generation()
	if err := c.reconnect(ctx, failedGen, true, false, nil); err != nil { // the first goroutine
		t.Fatal(err)
	}
	ch, err := c.Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.reconnect(ctx, failedGen, true, false, nil); err != nil { // a second, late one
		t.Fatal(err)
	}
	if n := cn.dials.Load(); n != 2 {
		t.Fatalf("%d dials, want 2 (one connect, one reconnect)", n)
	}
	if ch.isClosed() {
		t.Fatal("the late reconnect closed the new connection's channel")
	}
	if err := c.Reconnect(ctx, false); err != nil || cn.dials.Load() != 3 || !ch.isClosed() {
		t.Fatalf("an explicit Reconnect must always redial: err %v, dials %d", err, cn.dials.Load())
	}
}
