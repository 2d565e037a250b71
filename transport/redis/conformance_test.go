package redis

import (
	"context"
	"flag"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/kombu-go/kombu/internal/faulttest"
	"github.com/kombu-go/kombu/kombu/drivertest"
)

func TestMain(m *testing.M) {
	flag.Parse()
	// go-redis logs dial retries and pool events to stderr; the tests
	// provoke many on purpose (TLS refusals, unknown sentinel masters).
	if !testing.Verbose() {
		redis.SetLogger(quietLogger{})
	}
	stop := startTestServer()
	code := m.Run()
	stop()
	reportSkips()
	faulttest.PrintTable()
	os.Exit(code)
}

// TestConformance runs the whole kombu conformance suite against the test
// server: the real redis-server that `make test` starts, or miniredis (see
// testServer).
func TestConformance(t *testing.T) {
	raw := testServerURL(t)
	logServer(t)
	drivertest.RunConformanceTests(t, drivertest.Harness{URL: raw, PushUndecodable: pushGarbage(t, raw)})
}

// pushGarbage LPUSHes every one of garbageKinds into a queue's lists with
// go-redis.
func pushGarbage(t *testing.T, raw string) func(ctx context.Context, queue string) (int, error) {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return func(ctx context.Context, queue string) (int, error) {
		kinds := garbageKinds()
		for name, v := range kinds {
			list := o.GlobalKeyPrefix + queue
			if strings.HasSuffix(name, "[9]") {
				list += Sep + "9"
			}
			if err := c.LPush(ctx, list, v).Err(); err != nil {
				return 0, err
			}
		}
		return len(kinds), nil
	}
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
