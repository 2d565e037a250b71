package sqlite

import (
	"database/sql"
	"database/sql/driver"
	"testing"

	"github.com/kombu-go/kombu/internal/sqlstore"
	"github.com/kombu-go/kombu/internal/sqltest"
)

// TestDeferredAcks runs sqltest's checks of the acks that ride the next
// claim, on one file.
func TestDeferredAcks(t *testing.T) {
	sqltest.RunAckTests(t, sqltest.AckHarness{
		Engine: sqlstore.SQLite,
		Connector: func(t *testing.T) driver.Connector {
			o := mustOptions(t, fileURL(t, ""))
			db, err := sql.Open("sqlite", o.dsn())
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			return sqltest.DriverConnector(db.Driver(), o.dsn())
		},
	})
}
