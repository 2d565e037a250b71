package redis

import (
	"context"
	"flag"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu/drivertest"
)

func TestMain(m *testing.M) {
	flag.Parse()
	// go-redis logs dial retries and pool events to stderr; the tests
	// provoke many on purpose (TLS refusals, unknown sentinel masters).
	if !testing.Verbose() {
		redis.SetLogger(quietLogger{})
	}
	os.Exit(m.Run())
}

// TestConformance runs the whole kombu conformance suite against the real
// redis-server that `make test` starts.
func TestConformance(t *testing.T) {
	drivertest.RunConformanceTests(t, drivertest.Harness{URL: testenv.ServerURL(t, testenv.RedisURL)})
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
