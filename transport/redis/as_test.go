package redis

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/kombu-go/kombu/kombu"
)

// Connection.As and Channel.As reach the go-redis client beneath kombu.
func TestEscapeHatch(t *testing.T) {
	ctx := testCtx(t)
	conn, err := kombu.NewConnection(serverURL(t, nil).String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var before *redis.Client
	if conn.As(&before) {
		t.Fatal("As succeeded before the connection was made")
	}
	if err := conn.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	var rc *redis.Client
	if !conn.As(&rc) || rc == nil {
		t.Fatal("Connection.As(**redis.Client) = false")
	}
	if err := rc.Ping(ctx).Err(); err != nil {
		t.Fatalf("the client reached is not usable: %v", err)
	}
	ch, err := conn.Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var uc redis.UniversalClient
	if !ch.As(&uc) || uc == nil {
		t.Fatal("Channel.As(*redis.UniversalClient) = false")
	}
	var wrong *redis.ClusterClient
	if conn.As(&wrong) || ch.As(&wrong) || conn.As(nil) {
		t.Fatal("As accepted a type redis does not offer")
	}
}
