package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kombu-go/kombu/internal/faulttest"
	"github.com/kombu-go/kombu/internal/testenv"
)

// PostgresURL is the variable scripts/services.d/postgres.sh exports.
const PostgresURL = "KOMBU_TEST_POSTGRES_URL"

// childURLEnv hands a test database's URL to helper processes.
const childURLEnv = "KOMBU_TEST_POSTGRES_CHILD_URL"

var testDB struct {
	once sync.Once
	url  string
	err  error
	drop func()
}

// testURL returns the URL of a database of this test binary's own,
// created on first use and dropped by TestMain, so that runs never see each
// other's tables (other helpers use the same server).
func testURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv(childURLEnv); u != "" {
		return u
	}
	base := testenv.ServerURL(t, PostgresURL)
	testDB.once.Do(func() {
		name := fmt.Sprintf("kgo_test_%d_%08x", os.Getpid(), rand.Uint32())
		testDB.url, testDB.drop, testDB.err = createDatabase(base, name)
	})
	if testDB.err != nil {
		t.Fatalf("create test database: %v", testDB.err)
	}
	return testDB.url
}

// createDatabase creates database name on the server of base and returns
// its URL and a function that drops it.
func createDatabase(base, name string) (string, func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, err
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, base); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
			_ = c.Close(ctx)
		}
	}
	return u.String(), drop, nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	if testDB.drop != nil {
		testDB.drop()
	}
	faulttest.PrintTable()
	os.Exit(code)
}

// withOptions adds query options to a URL.
func withOptions(raw string, kv ...string) string {
	sep := "?"
	if strings.Contains(raw, "?") {
		sep = "&"
	}
	for i := 0; i+1 < len(kv); i += 2 {
		raw += sep + url.QueryEscape(kv[i]) + "=" + url.QueryEscape(kv[i+1])
		sep = "&"
	}
	return raw
}

// rawDB opens database/sql on the test database (for checks behind the
// transport's back).
func rawDB(t testing.TB, raw string) *sql.DB {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", o.Config.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func mustURL(t testing.TB, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
