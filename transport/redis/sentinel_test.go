package redis

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu/driver"
)

func sentinelURL(t *testing.T, extra url.Values) *url.URL {
	t.Helper()
	u, err := url.Parse(testenv.ServerURL(t, testenv.RedisSentinelURL))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for k, vs := range extra {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u
}

// TestSentinel talks to the master that the real redis-sentinel reports
// (the same server as KOMBU_TEST_REDIS_URL under `make test`).
func TestSentinel(t *testing.T) {
	opts := isolated(t, nil)
	cn, err := Transport.OpenConnector(sentinelURL(t, opts))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	conn, err := cn.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch := openChannel(t, conn)
	q := uniqueName(t, "q")
	if _, err := ch.QueueDeclare(ctx, driver.Queue{Name: q}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish(ctx, &driver.Publishing{RoutingKey: q, Message: driver.Message{Body: []byte("via sentinel")}}); err != nil {
		t.Fatal(err)
	}
	// The message is in the master, where a direct connection sees it.
	direct := openStore(t, url.Values{"global_keyprefix": {opts.Get("global_keyprefix")}})
	cleanupKeys(t, rawClient(t, direct), opts.Get("global_keyprefix"))
	if n, err := direct.Size(ctx, q); err != nil || n != 1 {
		t.Errorf("direct connection sees %d messages (%v)", n, err)
	}
	d, err := ch.Get(ctx, q, false)
	if err != nil || string(d.Body) != "via sentinel" {
		t.Fatalf("Get: %v", err)
	}
	if err := ch.Ack(ctx, d.Tag, false); err != nil {
		t.Fatal(err)
	}
}

func TestSentinelUnknownMaster(t *testing.T) {
	cn, err := Transport.OpenConnector(sentinelURL(t, url.Values{"master_name": {"no-such-master"}}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if conn, err := cn.Connect(ctx); err == nil {
		conn.Close()
		t.Fatal("connected to a master the sentinel does not know")
	}
}
