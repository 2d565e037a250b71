package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// ourColumns are the columns kombu-go adds to Python kombu's message table.
// Each is nullable or has a default, so Python's inserts, which do not name
// them, still work.
var ourColumns = []struct{ name, ddl string }{
	{"priority", "SMALLINT NOT NULL DEFAULT 0"},      // AMQP priority, higher first
	{"expires_at", "BIGINT"},                         // per-message TTL, unix ms
	{"lease_until", "BIGINT"},                        // unix ms; set only on kombu-go's claims
	{"delivery_count", "INTEGER NOT NULL DEFAULT 0"}, // > 1: redelivered
}

// Migrate creates the tables Python kombu creates (same columns, types and
// index names), then adds our columns, indexes, tables and (PostgreSQL)
// the notify triggers. It never drops or rewrites anything, so it is safe on
// a database Python kombu already uses, and cheap when nothing is missing:
// it first checks, and takes the schema lock only to change something.
func Migrate(ctx context.Context, db *sql.DB, e Engine, t Tables) error {
	ok, err := schemaComplete(ctx, db, e, t)
	if err != nil || ok {
		return err
	}
	tx, err := db.BeginTx(ctx, nil) // SQLite: BEGIN IMMEDIATE (see transport/sqlite), one migrator at a time
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if e == Postgres {
		// Several processes may start at once: one migrates, the others
		// wait and then find every IF NOT EXISTS satisfied.
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(7271304)"); err != nil {
			return err
		}
	}
	for _, stmt := range createStatements(e, t) {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("schema: %s: %w", firstLine(stmt), err)
		}
	}
	have, err := ColumnsOf(ctx, tx, e, t.Message)
	if err != nil {
		return err
	}
	for _, c := range ourColumns {
		if have[c.name] {
			continue
		}
		if _, err := tx.ExecContext(ctx, "ALTER TABLE "+t.Message+" ADD COLUMN "+c.name+" "+c.ddl); err != nil {
			return fmt.Errorf("schema: add column %s.%s: %w", t.Message, c.name, err)
		}
	}
	for _, stmt := range indexStatements(e, t) {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("schema: %s: %w", firstLine(stmt), err)
		}
	}
	return tx.Commit()
}

func firstLine(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return s
}

func createStatements(e Engine, t Tables) []string {
	if e == Postgres {
		return []string{
			"CREATE SEQUENCE IF NOT EXISTS queue_id_sequence",
			"CREATE SEQUENCE IF NOT EXISTS message_id_sequence",
			"CREATE TABLE IF NOT EXISTS " + t.Queue + " (id INTEGER NOT NULL, name VARCHAR(200), PRIMARY KEY (id), UNIQUE (name))",
			"CREATE TABLE IF NOT EXISTS " + t.Message + ` (id INTEGER NOT NULL, visible BOOLEAN, "timestamp" TIMESTAMP WITHOUT TIME ZONE, ` +
				`payload TEXT NOT NULL, version SMALLINT NOT NULL, queue_id INTEGER, PRIMARY KEY (id), ` +
				`CONSTRAINT "FK_kombu_message_queue" FOREIGN KEY (queue_id) REFERENCES ` + t.Queue + ` (id))`,
			"CREATE TABLE IF NOT EXISTS " + t.Binding + " (exchange VARCHAR(255) NOT NULL, routing_key VARCHAR(255) NOT NULL, " +
				"pattern TEXT NOT NULL, queue VARCHAR(255) NOT NULL, PRIMARY KEY (exchange, routing_key, pattern, queue))",
			"CREATE TABLE IF NOT EXISTS " + t.Quarantine + " (id BIGSERIAL PRIMARY KEY, queue VARCHAR(255) NOT NULL, " +
				"payload TEXT NOT NULL, reason TEXT NOT NULL, quarantined_at BIGINT NOT NULL)",
		}
	}
	return []string{
		"CREATE TABLE IF NOT EXISTS " + t.Queue + " (id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, name VARCHAR(200), UNIQUE (name))",
		"CREATE TABLE IF NOT EXISTS " + t.Message + ` (id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, visible BOOLEAN, timestamp DATETIME, ` +
			`payload TEXT NOT NULL, version SMALLINT NOT NULL, queue_id INTEGER, ` +
			`CONSTRAINT "FK_kombu_message_queue" FOREIGN KEY(queue_id) REFERENCES ` + t.Queue + ` (id))`,
		"CREATE TABLE IF NOT EXISTS " + t.Binding + " (exchange VARCHAR(255) NOT NULL, routing_key VARCHAR(255) NOT NULL, " +
			"pattern TEXT NOT NULL, queue VARCHAR(255) NOT NULL, PRIMARY KEY (exchange, routing_key, pattern, queue))",
		"CREATE TABLE IF NOT EXISTS " + t.Quarantine + " (id INTEGER PRIMARY KEY AUTOINCREMENT, queue VARCHAR(255) NOT NULL, " +
			"payload TEXT NOT NULL, reason TEXT NOT NULL, quarantined_at BIGINT NOT NULL)",
	}
}

// indexStatements: Python's three indexes (named as SQLAlchemy names them
// for the default table), then ours: the claim order over ready rows only,
// the expired-lease sweep, bindings by queue.
func indexStatements(e Engine, t Tables) []string {
	m := t.Message
	ts := "timestamp"
	if e == Postgres {
		ts = `"timestamp"`
	}
	s := []string{
		"CREATE INDEX IF NOT EXISTS ix_" + m + "_visible ON " + m + " (visible)",
		"CREATE INDEX IF NOT EXISTS ix_" + m + "_timestamp ON " + m + " (" + ts + ")",
		"CREATE INDEX IF NOT EXISTS ix_" + m + "_timestamp_id ON " + m + " (" + ts + ", id)",
		"CREATE INDEX IF NOT EXISTS ix_" + m + "_ready ON " + m + " (queue_id, priority DESC, id) WHERE visible = TRUE",
		"CREATE INDEX IF NOT EXISTS ix_" + m + "_lease ON " + m + " (lease_until) WHERE lease_until IS NOT NULL",
		"CREATE INDEX IF NOT EXISTS ix_" + t.Binding + "_queue ON " + t.Binding + " (queue)",
	}
	if e == Postgres {
		// A statement trigger for inserts (one notification per batch,
		// Python's publishes included) and a row trigger for rows made
		// visible again (expired leases, Python-side updates). Claims set
		// visible to false and notify nobody.
		s = append(s,
			"CREATE OR REPLACE FUNCTION kombu_notify_ready() RETURNS trigger LANGUAGE plpgsql AS "+
				"$$ BEGIN PERFORM pg_notify(TG_TABLE_NAME, ''); RETURN NULL; END $$",
			"CREATE OR REPLACE TRIGGER "+m+"_notify_insert AFTER INSERT ON "+m+
				" FOR EACH STATEMENT EXECUTE FUNCTION kombu_notify_ready()",
			"CREATE OR REPLACE TRIGGER "+m+"_notify_visible AFTER UPDATE OF visible ON "+m+
				" FOR EACH ROW WHEN (NEW.visible AND NOT OLD.visible) EXECUTE FUNCTION kombu_notify_ready()",
		)
	}
	return s
}

// Querier is a *sql.DB or *sql.Tx.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// ColumnsOf returns the (lower-case) column names of table.
func ColumnsOf(ctx context.Context, db Querier, e Engine, table string) (map[string]bool, error) {
	q := "SELECT name FROM pragma_table_info(?)"
	if e == Postgres {
		q = "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1"
	}
	rows, err := db.QueryContext(ctx, q, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		have[strings.ToLower(n)] = true
	}
	return have, rows.Err()
}

// schemaComplete reports whether everything Migrate would create exists.
func schemaComplete(ctx context.Context, db *sql.DB, e Engine, t Tables) (bool, error) {
	have, err := ColumnsOf(ctx, db, e, t.Message)
	if err != nil {
		return false, err
	}
	for _, c := range ourColumns {
		if !have[c.name] {
			return false, nil
		}
	}
	var q string
	var args []any
	if e == Postgres {
		q = "SELECT (SELECT count(*) FROM pg_trigger WHERE tgname = $1) + (SELECT count(*) FROM pg_class WHERE relname IN ($2, $3, $4))"
		args = []any{t.Message + "_notify_visible", t.Binding, t.Quarantine, "ix_" + t.Message + "_ready"}
	} else {
		q = "SELECT count(*) FROM sqlite_master WHERE name IN (?, ?, ?)"
		args = []any{t.Binding, t.Quarantine, "ix_" + t.Message + "_ready"}
	}
	var n int
	if err := db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return false, err
	}
	want := 3
	if e == Postgres {
		want = 4
	}
	return n >= want, nil
}
