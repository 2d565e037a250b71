package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/virtual"
)

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// uniqueName returns a name unique to this test run.
func uniqueName(t testing.TB, kind string) string {
	t.Helper()
	n := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
	return "kgo." + n + "." + kind + "." + randHex(4)
}

// serverURL returns the test server's URL (the real redis, or miniredis: see
// testServer) with extra query options merged in.
func serverURL(t testing.TB, extra url.Values) *url.URL {
	t.Helper()
	raw := testServerURL(t)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("bad %s: %v", testenv.RedisURL, err)
	}
	q := u.Query()
	for k, vs := range extra {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u
}

// isolated returns options with a global_keyprefix unique to the test, so
// that its unacked hash, index and mutex are its own.
func isolated(t testing.TB, extra url.Values) url.Values {
	t.Helper()
	if extra == nil {
		extra = url.Values{}
	}
	if extra.Get("global_keyprefix") == "" {
		extra.Set("global_keyprefix", uniqueName(t, "gkp")+":")
	}
	return extra
}

// openStore dials a store on the test server and closes it at the end.
func openStore(t testing.TB, extra url.Values) *Store {
	t.Helper()
	o, err := ParseURL(serverURL(t, extra))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := NewConnector(o).Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// rawClient is a plain go-redis client on the same database, for looking
// at keys directly.
func rawClient(t testing.TB, s *Store) *redis.Client {
	t.Helper()
	o := *s.o
	o.Sentinel = false
	c := newClient(&o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// cleanupKeys deletes every key with the store's global key prefix (or
// the given names) at the end of the test.
func cleanupKeys(t testing.TB, c *redis.Client, prefix string, names ...string) {
	t.Helper()
	t.Cleanup(func() {
		ctx := context.Background()
		if prefix != "" {
			iter := c.Scan(ctx, 0, globEscape(prefix)+"*", 1000).Iterator()
			for iter.Next(ctx) {
				c.Del(ctx, iter.Val())
			}
		}
		for _, n := range names {
			c.Del(ctx, n)
		}
	})
}

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newEnv(body string, priority uint8) *virtual.Envelope {
	e := &virtual.Envelope{Exchange: "", RoutingKey: "rk"}
	e.Body = []byte(body)
	e.ContentType = "application/json"
	e.ContentEncoding = "utf-8"
	e.Properties.Priority = priority
	return e
}
