package redis

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Micro benchmarks of the store alone (no virtual), one message per op.

func BenchmarkMicroRawBRPOP(b *testing.B) {
	e := newBenchEnv(b, "m-raw")
	fillRaw(b, e, b.N)
	ctx := context.Background()
	defer reportCPU(b, e)()
	b.ResetTimer()
	for range b.N {
		must(b, e.raw.BRPop(ctx, time.Second, e.queue).Err())
	}
}

func BenchmarkMicroTrivialScript(b *testing.B) {
	e := newBenchEnv(b, "m-triv")
	s := redis.NewScript(`return redis.call('RPOP', KEYS[1])`)
	fillRaw(b, e, b.N)
	ctx := context.Background()
	defer reportCPU(b, e)()
	b.ResetTimer()
	for range b.N {
		must(b, s.Run(ctx, e.raw, []string{e.queue}).Err())
	}
}

func BenchmarkMicroStoreGetAck(b *testing.B) {
	e := newBenchEnv(b, "m-get")
	fillRaw(b, e, b.N)
	ctx := context.Background()
	defer reportCPU(b, e)()
	b.ResetTimer()
	for range b.N {
		it, err := e.store.Get(ctx, []string{e.queue}, 0)
		must(b, err)
		must(b, e.store.Ack(ctx, it))
	}
}

func BenchmarkMicroStorePut(b *testing.B) {
	e := newBenchEnv(b, "m-put")
	ctx := context.Background()
	env := newEnv(string(benchBody), 0)
	env.RoutingKey = e.queue
	defer reportCPU(b, e)()
	b.ResetTimer()
	for range b.N {
		must(b, e.store.Put(ctx, e.queue, env))
	}
}

func BenchmarkMicroLPushClients(b *testing.B) {
	e := newBenchEnv(b, "m-cl")
	ctx := context.Background()
	msg := e.envelopes(1)[0]
	b.Run("raw", func(b *testing.B) {
		for range b.N {
			must(b, e.raw.LPush(ctx, e.queue, msg).Err())
		}
	})
	b.Run("store-client", func(b *testing.B) {
		for range b.N {
			must(b, e.store.rdb.LPush(ctx, e.queue, msg).Err())
		}
	})
	b.Run("raw-again", func(b *testing.B) {
		for range b.N {
			must(b, e.raw.LPush(ctx, e.queue, msg).Err())
		}
	})
}

// BenchmarkMicroStoreBatch100 takes batches of 100 from a full queue and
// acks them (the acks ride with the next take).
func BenchmarkMicroStoreBatch100(b *testing.B) {
	e := newBenchEnv(b, "m-get100")
	fillRaw(b, e, b.N)
	ctx := context.Background()
	defer reportCPU(b, e)()
	b.ResetTimer()
	for got := 0; got < b.N; {
		items, err := e.store.GetBatch(ctx, []string{e.queue}, min(100, b.N-got), 0)
		must(b, err)
		must(b, e.store.AckBatch(ctx, items))
		got += len(items)
	}
	must(b, e.store.flushAcks(ctx))
}

// reportCPU starts measuring redis and client CPU; the returned function
// reports both per message.
func reportCPU(b *testing.B, e *benchEnv) func() {
	s0, c0 := cpuUsage(b, e)
	return func() {
		s1, c1 := cpuUsage(b, e)
		b.ReportMetric(float64((s1-s0).Microseconds())/float64(b.N), "srv-µs/msg")
		b.ReportMetric(float64((c1-c0).Microseconds())/float64(b.N), "cli-µs/msg")
	}
}
