package postgres

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"testing"

	"github.com/kombu-go/kombu/internal/sqlstore"
	"github.com/kombu-go/kombu/internal/sqltest"
	"github.com/kombu-go/kombu/internal/testenv"
)

// TestPythonInterop: Python kombu's sqla+postgresql:// transport and this
// one share queues on one database, both ways (see sqltest.Interop). The
// database is new, so Python creates the tables and kombu-go completes
// them.
func TestPythonInterop(t *testing.T) {
	base := testenv.ServerURL(t, PostgresURL)
	raw, drop, err := createDatabase(base, fmt.Sprintf("kgo_interop_%d_%08x", os.Getpid(), rand.Uint32()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	u := mustURL(t, raw)
	py := url.URL{Scheme: "sqla+postgresql", User: u.User, Host: u.Host, Path: u.Path}
	sqltest.Interop(t, raw, py.String())
	// Python created the tables: kombu-go added its columns without
	// dropping Python's.
	cols, err := sqlstore.ColumnsOf(t.Context(), rawDB(t, raw), sqlstore.Postgres, "kombu_message")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"id", "visible", "timestamp", "payload", "version", "queue_id", "priority", "lease_until", "expires_at", "delivery_count"} {
		if !cols[c] {
			t.Errorf("kombu_message has no column %s: %v", c, cols)
		}
	}
}
