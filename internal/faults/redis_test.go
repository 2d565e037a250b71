package faults

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisState describes where a redis transport keeps messages: queue
// lengths, the unacked hash and index, and the restore mutex with its TTL.
func redisState(addr string, queues ...string) func(ctx context.Context) string {
	return func(ctx context.Context) string {
		c := redis.NewClient(&redis.Options{Addr: addr})
		defer c.Close()
		var b strings.Builder
		for _, q := range queues {
			fmt.Fprintf(&b, "LLEN %s=%d; ", q, c.LLen(ctx, q).Val())
		}
		fmt.Fprintf(&b, "HLEN unacked=%d; ZCARD unacked_index=%d; unacked_mutex=%q (ttl %v)",
			c.HLen(ctx, "unacked").Val(), c.ZCard(ctx, "unacked_index").Val(),
			c.Get(ctx, "unacked_mutex").Val(), c.PTTL(ctx, "unacked_mutex").Val())
		return b.String()
	}
}

func init() {
	// go-redis logs every failed dial of its pools; the faults make many.
	redis.SetLogger(quietLogger{})
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
