package sqlite

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/kombu-go/kombu/kombu/drivertest"
	"github.com/kombu-go/kombu/virtual"
	"github.com/kombu-go/kombu/virtual/storetest"
)

// fileURL returns the URL of a new database file in a test directory.
func fileURL(t testing.TB, options string) string {
	t.Helper()
	u := "sqlite:///" + filepath.Join(t.TempDir(), "kombu.db")
	if options != "" {
		u += "?" + options
	}
	return u
}

// TestConformance runs the whole kombu conformance suite on one file.
func TestConformance(t *testing.T) {
	raw := fileURL(t, "")
	drivertest.RunConformanceTests(t, drivertest.Harness{URL: raw, PushUndecodable: pushGarbage(t, raw)})
}

// garbagePayloads are rows another client could write into kombu_message
// that are not kombu envelopes.
var garbagePayloads = []string{"not json", "", "[1, 2]", `{"body": 42}`, `{"body": "%%%not base64", "properties": {"body_encoding": "base64"}}`, "\u00ff\u00fe"}

func pushGarbage(t *testing.T, raw string) func(ctx context.Context, queue string) (int, error) {
	db := rawDB(t, raw)
	return func(ctx context.Context, queue string) (int, error) {
		if _, err := db.ExecContext(ctx, "INSERT OR IGNORE INTO kombu_queue (name) VALUES (?)", queue); err != nil {
			return 0, err
		}
		for _, p := range garbagePayloads {
			if _, err := db.ExecContext(ctx, "INSERT INTO kombu_message (visible, payload, version, queue_id) SELECT 1, ?, 1, id FROM kombu_queue WHERE name = ?", p, queue); err != nil {
				return 0, err
			}
		}
		return len(garbagePayloads), nil
	}
}

// TestStorePrimitives runs the store-level checks.
func TestStorePrimitives(t *testing.T) {
	raw := fileURL(t, "")
	storetest.Run(t, func(t *testing.T) virtual.Store { return openStore(t, raw) })
}

func openStore(t testing.TB, raw string) *Store {
	t.Helper()
	s, err := NewConnector(mustOptions(t, raw)).Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustOptions(t testing.TB, raw string) *Options {
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

// rawDB opens the file with database/sql, behind the transport's back (the
// store creates the schema first).
func rawDB(t testing.TB, raw string) *sql.DB {
	t.Helper()
	s := openStore(t, raw)
	return s.DB()
}
