package mongodb

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu"
)

// serverURL is the test server's URL (FerretDB started by
// scripts/services.sh): skipped outside CI when it is not up, failed in
// CI.
func serverURL(t testing.TB) string {
	t.Helper()
	return testenv.ServerURL(t, testenv.MongoDBURL)
}

// isolatedURL is the test server's URL on a database of the test's own,
// dropped at cleanup, with extra query options.
func isolatedURL(t testing.TB, query string) string {
	t.Helper()
	u, err := url.Parse(serverURL(t))
	if err != nil {
		t.Fatal(err)
	}
	db := fmt.Sprintf("t%08x", rand.Uint32())
	u.Path = "/" + db
	if query != "" {
		if u.RawQuery != "" {
			u.RawQuery += "&"
		}
		u.RawQuery += query
	}
	t.Cleanup(func() { dropDatabase(t, u.String(), db) })
	return u.String()
}

// rawClient connects the MongoDB driver to the test server directly, as
// another program (Python kombu) would.
func rawClient(t testing.TB, raw string) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(optionsOf(t, raw).URI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

func dropDatabase(t testing.TB, raw, db string) {
	c, err := mongo.Connect(options.Client().ApplyURI(strings.SplitN(raw, "?", 2)[0]))
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.Database(db).Drop(ctx)
	_ = c.Disconnect(ctx)
}

// openStore dials a Store on raw, closed at cleanup.
func openStore(t testing.TB, raw string) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := NewConnector(optionsOf(t, raw)).Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// optionsOf parses raw, failing the test when it is not valid.
func optionsOf(t testing.TB, raw string) *Options {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// collection is one of the test database's collections, through a driver
// of its own (as another program would see it).
func collection(t testing.TB, raw, name string) *mongo.Collection {
	t.Helper()
	return rawClient(t, raw).Database(optionsOf(t, raw).Database).Collection(name)
}

// consumerOn dials raw on a connection of its own and consumes queue with
// prefetch; both close at cleanup.
func consumerOn(t testing.TB, ctx context.Context, raw, queue string, prefetch int) *kombu.Consumer {
	t.Helper()
	conn, err := kombu.Dial(ctx, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kombu.NewConsumer(ctx, ch, []kombu.Queue{{Name: queue}}, &kombu.ConsumerOptions{PrefetchCount: prefetch})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
