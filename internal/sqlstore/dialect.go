// Package sqlstore is the virtual.Store that transport/postgres and
// transport/sqlite share: Python kombu's kombu_queue / kombu_message tables
// (plus a few columns and tables of our own), the lease claim, acks,
// requeues, bindings and quarantine, written once over database/sql. An
// engine package supplies the *sql.DB, its Dialect and, when the engine has
// one, a Waker that reports new messages (PostgreSQL LISTEN/NOTIFY).
//
// It imports no database driver, so that an importer of transport/sqlite
// does not compile pgx and an importer of transport/postgres does not
// compile modernc.org/sqlite.
package sqlstore

import (
	"fmt"
	"strconv"
	"strings"
)

// Engine tells the few SQL spellings apart.
type Engine int

// The engines this package knows.
const (
	Postgres Engine = iota
	SQLite
)

// Tables names the tables of one store. Queue and Message are Python
// kombu's queue_tablename and message_tablename; Binding and Quarantine are
// ours (Python kombu keeps bindings in process and drops nothing).
type Tables struct {
	Queue      string
	Message    string
	Binding    string
	Quarantine string
}

// DefaultTables are Python kombu's names and ours beside them.
func DefaultTables() Tables { return TablesFor("kombu_queue", "kombu_message") }

// TablesFor derives the tables of our own from the message table's name.
func TablesFor(queue, message string) Tables {
	return Tables{Queue: queue, Message: message, Binding: message + "_binding", Quarantine: message + "_quarantine"}
}

// ValidateTableName refuses names that are not plain SQL identifiers, so
// that they can be written into statements without quoting rules that
// differ between engines.
func ValidateTableName(option, name string) error {
	if name == "" || len(name) > 48 {
		return fmt.Errorf("option %s: table name %q must have 1 to 48 characters", option, name)
	}
	for i, c := range name {
		ok := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9'
		if !ok {
			return fmt.Errorf("option %s: table name %q may hold only letters, digits and '_' (not first)", option, name)
		}
	}
	return nil
}

// statements are the SQL texts of one store, built once from the dialect
// and table names.
type statements struct {
	putOne         string
	putBatch       string // PostgreSQL: one INSERT of arrays; "" elsewhere
	ensureQueue    string
	queueExists    string
	claim          string
	claimAcking    string // PostgreSQL: ack, then claim, in one statement; "" elsewhere
	claimPrecheck  bool   // look with readyCount before claiming (SQLite)
	readyCount     string // 1 when the queue has a ready row, else 0; no lock taken
	restoreExpired string
	ack            string // deletes many (id, version) pairs; arguments: Store.ackArgs
	requeueDelete  string
	requeueInsert  string
	extend         string
	purge          string
	size           string
	deleteMessages string
	deleteBindings string
	deleteQueue    string
	addBinding     string
	removeBinding  string
	bindings       string
	queueBindings  string
	quarantineDel  string
	quarantineIns  string
}

// rebind turns '?' placeholders into PostgreSQL's $1, $2, ...
func rebind(e Engine, q string) string {
	if e != Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func newStatements(e Engine, t Tables) *statements {
	m, q, b, qq := t.Message, t.Queue, t.Binding, t.Quarantine
	msgID, queueID := "", ""
	if e == Postgres {
		// Python's tables have no column default: SQLAlchemy calls the
		// sequences itself, so we do too.
		msgID, queueID = "nextval('message_id_sequence'), ", "nextval('queue_id_sequence'), "
	}
	idCol := func(s string) string {
		if s == "" {
			return ""
		}
		return "id, "
	}
	qid := "(SELECT id FROM " + q + " WHERE name = ?)"
	s := &statements{
		putOne: "INSERT INTO " + m + " (" + idCol(msgID) + "visible, payload, version, queue_id, priority, expires_at, delivery_count) " +
			"SELECT " + msgID + "TRUE, CAST(? AS TEXT), 1, id, CAST(? AS SMALLINT), CAST(? AS BIGINT), CAST(? AS INTEGER) FROM " + q + " WHERE name = ?",
		ensureQueue: "INSERT INTO " + q + " (" + idCol(queueID) + "name) SELECT " + queueID + "CAST(? AS VARCHAR(200)) WHERE NOT EXISTS (SELECT 1 FROM " + q +
			" WHERE name = ?) ON CONFLICT (name) DO NOTHING",
		queueExists: "SELECT count(*) FROM " + q + " WHERE name = ?",
		restoreExpired: "UPDATE " + m + " SET visible = TRUE, lease_until = NULL, version = version + 1 " +
			"WHERE visible = FALSE AND lease_until IS NOT NULL AND lease_until < ?",
		requeueDelete: "DELETE FROM " + m + " WHERE id = ? AND version = ? RETURNING queue_id, priority, expires_at, delivery_count",
		requeueInsert: "INSERT INTO " + m + " (" + idCol(msgID) + "visible, payload, version, queue_id, priority, expires_at, delivery_count) " +
			"VALUES (" + msgID + "TRUE, ?, 1, ?, ?, ?, ?)",
		extend:         "UPDATE " + m + " SET lease_until = ? WHERE id = ? AND version = ? AND visible = FALSE",
		purge:          "DELETE FROM " + m + " WHERE queue_id = " + qid + " AND visible = TRUE",
		size:           "SELECT count(*) FROM " + m + " WHERE queue_id = " + qid + " AND visible = TRUE",
		deleteMessages: "DELETE FROM " + m + " WHERE queue_id = " + qid,
		deleteBindings: "DELETE FROM " + b + " WHERE queue = ?",
		deleteQueue:    "DELETE FROM " + q + " WHERE name = ?",
		addBinding:     "INSERT INTO " + b + " (exchange, routing_key, pattern, queue) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
		removeBinding:  "DELETE FROM " + b + " WHERE exchange = ? AND routing_key = ? AND pattern = ? AND queue = ?",
		bindings:       "SELECT routing_key, pattern, queue FROM " + b + " WHERE exchange = ? ORDER BY routing_key, queue, pattern",
		queueBindings:  "SELECT exchange, routing_key, pattern FROM " + b + " WHERE queue = ? ORDER BY exchange, routing_key, pattern",
		quarantineDel:  "DELETE FROM " + m + " WHERE id = ? AND version = ? RETURNING payload",
		quarantineIns:  "INSERT INTO " + qq + " (queue, payload, reason, quarantined_at) VALUES (?, ?, ?, ?)",
	}
	// The claim: take the first ready rows of the queue (priority, then
	// insertion order), mark them invisible with a lease, bump version
	// (SQLAlchemy's version_id_col, so that a Python session holding an
	// old copy of the row fails its update instead of overwriting ours).
	set := "SET visible = FALSE, lease_until = ?, version = version + 1, delivery_count = delivery_count + 1"
	ret := " RETURNING id, version, payload, priority, expires_at, delivery_count"
	pick := "SELECT id FROM " + m + " WHERE queue_id = " + qid + " AND visible = TRUE ORDER BY priority DESC, id LIMIT ?"
	switch e {
	case Postgres:
		// A batch in one statement: arrays in, rows numbered by the
		// sequence in batch order (volatile target-list functions run
		// after the sort).
		s.putBatch = "INSERT INTO " + m + " (id, visible, payload, version, queue_id, priority, expires_at, delivery_count) " +
			"SELECT " + msgID + "TRUE, u.payload, 1, q.id, u.priority, u.expires_at, 0 " +
			"FROM unnest(?::text[], ?::text[], ?::smallint[], ?::bigint[]) WITH ORDINALITY AS u(queue, payload, priority, expires_at, ord) " +
			"JOIN " + q + " AS q ON q.name = u.queue ORDER BY u.ord"
		// SKIP LOCKED: concurrent consumers take disjoint rows and never
		// wait for each other. MATERIALIZED: the pick runs once. As a
		// subquery the planner may rerun it inside a nested loop (it does
		// when the table's statistics say it is nearly empty), and each
		// rerun skips the rows this statement already took and locks the
		// next ones: a claim of 2 took 3. The placeholders are numbered
		// here so that the arguments keep SQLite's order (lease, queue, n).
		// Placeholders are numbered here: claim's arguments keep SQLite's
		// order (lease, queue, n), claimAcking's put the ack arrays first.
		picked := func(queue, n string) string {
			return "picked AS MATERIALIZED (" + strings.Replace(strings.Replace(pick, "?", queue, 1), "?", n, 1) + " FOR UPDATE SKIP LOCKED) "
		}
		update := func(lease string) string {
			return "UPDATE " + m + " AS m " + strings.Replace(set, "?", lease, 1) + " FROM picked" +
				" WHERE m.id = picked.id" + strings.ReplaceAll(ret, " id,", " m.id,")
		}
		s.claim = "WITH " + picked("$2", "$3") + update("$1")
		// Acks: the version guard deletes only the claim acked, never
		// the row claimed again since its lease expired.
		s.ack = "DELETE FROM " + m + " AS d USING unnest(?::bigint[], ?::bigint[]) AS a(id, version)" +
			" WHERE d.id = a.id AND d.version = a.version"
		// Acked rows are invisible and the claim takes visible ones, so
		// the two parts never touch the same row.
		ackNumbered := strings.Replace(strings.Replace(s.ack, "?", "$1", 1), "?", "$2", 1)
		s.claimAcking = "WITH acked AS (" + ackNumbered + "), " + picked("$4", "$5") + update("$3")
	default:
		// SQLite has one writer at a time: the single UPDATE is atomic.
		s.claim = "UPDATE " + m + " " + set + " WHERE id IN (" + pick + ")" + ret
		// No arrays: the pairs come as one JSON text, so that the
		// statement is the same for any number of acks.
		s.ack = "DELETE FROM " + m + " WHERE (id, version) IN " +
			"(SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))"
		// A read first, so that polling an empty queue takes no write lock.
		s.claimPrecheck = true
	}
	s.readyCount = "SELECT count(*) FROM (SELECT 1 FROM " + m + " WHERE queue_id = " + qid + " AND visible = TRUE LIMIT 1) AS r"
	for _, p := range []*string{&s.putOne, &s.putBatch, &s.ensureQueue, &s.queueExists, &s.claim, &s.claimAcking, &s.readyCount, &s.restoreExpired, &s.ack,
		&s.requeueDelete, &s.requeueInsert, &s.extend, &s.purge, &s.size, &s.deleteMessages, &s.deleteBindings, &s.deleteQueue,
		&s.addBinding, &s.removeBinding, &s.bindings, &s.queueBindings, &s.quarantineDel, &s.quarantineIns} {
		*p = rebind(e, *p)
	}
	return s
}
