package couchdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kivik/kivik/v4"

	"github.com/kombu-go/kombu/internal/faulttest"
	"github.com/kombu-go/kombu/internal/testenv"
)

// serverURL is KOMBU_TEST_COUCHDB_URL (scripts/services.sh up couchdb):
// the tests skip without it, and fail in CI.
func serverURL(t testing.TB) string {
	t.Helper()
	return testenv.ServerURL(t, "KOMBU_TEST_COUCHDB_URL")
}

// TestMain destroys the test databases once every test is over.
// pouchdb-server 4.2.0 crashes (express-pouchdb routes/changes.js) when a
// database is destroyed while it still works on a _changes longpoll of
// it, and a client that gives up on its request does not stop that work:
// so databases go at the end, a second after the last store closed.
func TestMain(m *testing.M) {
	code := m.Run()
	faulttest.PrintTable()
	dbsMu.Lock()
	urls := dbs
	dbsMu.Unlock()
	if len(urls) > 0 {
		time.Sleep(time.Second)
	}
	for _, u := range urls {
		if err := destroyDatabase(u); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

var (
	dbsMu sync.Mutex
	dbs   []*url.URL
)

// freshDatabaseURL returns the server URL with a database of its own,
// destroyed at the end of the test binary (see TestMain), and the query
// appended.
func freshDatabaseURL(t testing.TB, query string) string {
	t.Helper()
	u, err := url.Parse(serverURL(t))
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	db := "kombu_test_" + strings.ToLower(strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if len(db) > 80 {
		db = db[:80]
	}
	db = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, db) + "_" + hex.EncodeToString(b[:])
	u.Path = "/" + db
	u.RawQuery = query
	dbsMu.Lock()
	dbs = append(dbs, u)
	dbsMu.Unlock()
	return u.String()
}

// rawDB opens the database of a couchdb:// URL with a plain kivik client,
// as another program would.
func rawDB(t testing.TB, raw string) *kivik.DB {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kivik.New("couch", o.Server)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.DB(o.Database)
}

func destroyDatabase(u *url.URL) error {
	o, err := ParseURL(u)
	if err != nil {
		return err
	}
	c, err := kivik.New("couch", o.Server)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.DestroyDB(ctx, o.Database); err != nil && kivik.HTTPStatus(err) != 404 {
		return fmt.Errorf("destroy database %s: %v", o.Database, err)
	}
	return nil
}

// openStore dials a Store on raw, closed when the test ends.
func openStore(t testing.TB, raw string) *Store {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := NewConnector(o).Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
