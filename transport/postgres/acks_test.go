package postgres

import (
	"database/sql/driver"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/kombu-go/kombu/internal/sqlstore"
	"github.com/kombu-go/kombu/internal/sqltest"
)

// TestDeferredAcks runs sqltest's checks of the acks that ride the next
// claim, on the real server.
func TestDeferredAcks(t *testing.T) {
	raw := testURL(t)
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
