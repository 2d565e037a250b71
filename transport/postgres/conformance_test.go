package postgres

import (
	"context"
	"testing"

	"github.com/kombu-go/kombu/kombu/drivertest"
	"github.com/kombu-go/kombu/virtual"
	"github.com/kombu-go/kombu/virtual/storetest"
)

// TestConformance runs the whole kombu conformance suite on the real
// PostgreSQL server that `make test` starts.
func TestConformance(t *testing.T) {
	raw := testURL(t)
	drivertest.RunConformanceTests(t, drivertest.Harness{URL: raw, PushUndecodable: pushGarbage(t, raw)})
}

// garbagePayloads are rows another client could write into kombu_message
// that are not kombu envelopes.
var garbagePayloads = []string{"not json", "", "[1, 2]", `{"body": 42}`, `{"body": "%%%not base64", "properties": {"body_encoding": "base64"}}`, "\u00ff\u00fe"}

// pushGarbage inserts garbagePayloads as ready rows of a queue with SQL.
func pushGarbage(t *testing.T, raw string) func(ctx context.Context, queue string) (int, error) {
	db := rawDB(t, raw)
	return func(ctx context.Context, queue string) (int, error) {
		if _, err := db.ExecContext(ctx, "INSERT INTO kombu_queue (id, name) SELECT nextval('queue_id_sequence'), $1::varchar WHERE NOT EXISTS (SELECT 1 FROM kombu_queue WHERE name = $1::varchar)", queue); err != nil {
			return 0, err
		}
		for _, p := range garbagePayloads {
			if _, err := db.ExecContext(ctx, "INSERT INTO kombu_message (id, visible, payload, version, queue_id) SELECT nextval('message_id_sequence'), true, $1, 1, id FROM kombu_queue WHERE name = $2", p, queue); err != nil {
				return 0, err
			}
		}
		return len(garbagePayloads), nil
	}
}

// TestStorePrimitives runs the store-level checks.
func TestStorePrimitives(t *testing.T) {
	raw := testURL(t)
	storetest.Run(t, func(t *testing.T) virtual.Store { return openStore(t, raw) })
}

func openStore(t testing.TB, raw string) *Store {
	t.Helper()
	c, err := Transport.OpenConnector(mustURL(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.(*Connector).Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
