package postgres

import (
	"database/sql/driver"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/kombu-go/kombu/internal/sqlstore"
	"github.com/kombu-go/kombu/internal/sqltest"
	"github.com/kombu-go/kombu/internal/testenv"
)

// TestDeferredAcks runs sqltest's checks of the acks that ride the next
// claim, on the real server, in a database of its own (its tables and
// triggers stay out of the conformance suite's way).
func TestDeferredAcks(t *testing.T) {
	base := testenv.ServerURL(t, PostgresURL)
	raw, drop, err := createDatabase(base, fmt.Sprintf("kgo_acks_%d_%08x", os.Getpid(), rand.Uint32()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	sqltest.RunAckTests(t, sqltest.AckHarness{
		Engine: sqlstore.Postgres,
		Connector: func(t *testing.T) driver.Connector {
			o, err := ParseURL(mustURL(t, raw))
			if err != nil {
				t.Fatal(err)
			}
			return stdlib.GetConnector(*o.Config)
		},
	})
}
