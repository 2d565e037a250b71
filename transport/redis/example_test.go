package redis_test

import (
	"context"
	"fmt"
	"net/url"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/transport/redis"
)

// Typed Options instead of a URL: a Connector plugs into kombu without the
// registry. (Compiled, not run: it needs a redis server.)
func ExampleNewConnector() {
	opts, err := redis.ParseURL(mustParse("redis://localhost:6379/0?visibility_timeout=600"))
	if err != nil {
		fmt.Println(err)
		return
	}
	opts.SocketTimeout = 5 * time.Second
	conn := kombu.NewConnectionFromConnector(redis.NewConnector(opts), nil)
	defer conn.Close()
	fmt.Println(conn.Info().Transport)
}

// The escape hatch: Connection.As reaches the go-redis client beneath
// kombu, for commands kombu does not wrap. The client belongs to the
// Connection: do not close it. (Compiled, not run: it needs a redis server.)
func ExampleStore_As() {
	ctx := context.Background()
	conn, err := kombu.Dial(ctx, "redis://localhost:6379/0", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	var client *goredis.Client
	if conn.As(&client) {
		fmt.Println(client.DBSize(ctx).Val())
	}
}

func mustParse(raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	return u
}
