package sqltest

import (
	"context"
	"database/sql/driver"
	"errors"
	"strings"
	"sync"
	"time"
)

// Statement is one thing a connection sent to the engine: a statement's
// text, or "BEGIN", "COMMIT", "ROLLBACK". Tx numbers the transaction it ran
// in (0: none).
type Statement struct {
	Query string
	Tx    int
	At    time.Time
}

// ErrInjected is what a statement StatementLog.FailWhen matches returns.
var ErrInjected = errors.New("sqltest: injected statement failure")

// StatementLog records what the connections of a wrapped driver.Connector
// send, and fails the statements it is told to: a database/sql driver
// around the real one, so that tests count round trips without the
// server's help.
type StatementLog struct {
	mu      sync.Mutex
	entries []Statement
	fail    func(query string) bool
	txs     int
}

// Wrap returns a connector whose connections log to l.
func (l *StatementLog) Wrap(c driver.Connector) driver.Connector { return &logConnector{c, l} }

// Take returns the statements logged since the last Take and forgets them.
func (l *StatementLog) Take() []Statement {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries
	l.entries = nil
	return e
}

// FailWhen makes every statement whose text f matches fail with
// ErrInjected (nil: none).
func (l *StatementLog) FailWhen(f func(query string) bool) {
	l.mu.Lock()
	l.fail = f
	l.mu.Unlock()
}

// record logs q and reports whether it must fail.
func (l *StatementLog) record(q string, tx int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, Statement{Query: q, Tx: tx, At: time.Now()})
	if l.fail != nil && l.fail(q) {
		return ErrInjected
	}
	return nil
}

func (l *StatementLog) newTx() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.txs++
	return l.txs
}

// DriverConnector is a driver.Connector opening dsn with drv.
func DriverConnector(drv driver.Driver, dsn string) driver.Connector { return dsnConnector{drv, dsn} }

type dsnConnector struct {
	drv driver.Driver
	dsn string
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.drv }

type logConnector struct {
	inner driver.Connector
	log   *StatementLog
}

func (c *logConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &logConn{inner: conn, log: c.log}, nil
}

func (c *logConnector) Driver() driver.Driver { return c.inner.Driver() }

// logConn forwards to the real connection what database/sql asks of it.
// database/sql uses one connection from one goroutine at a time, so tx
// needs no lock.
type logConn struct {
	inner driver.Conn
	log   *StatementLog
	tx    int
}

func (c *logConn) Prepare(q string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), q)
}

func (c *logConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	var st driver.Stmt
	var err error
	if p, ok := c.inner.(driver.ConnPrepareContext); ok {
		st, err = p.PrepareContext(ctx, q)
	} else {
		st, err = c.inner.Prepare(q)
	}
	if err != nil {
		return nil, err
	}
	return &logStmt{inner: st, conn: c, query: q}, nil
}

func (c *logConn) Close() error { return c.inner.Close() }

func (c *logConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *logConn) BeginTx(ctx context.Context, o driver.TxOptions) (driver.Tx, error) {
	id := c.log.newTx()
	if err := c.log.record("BEGIN", id); err != nil {
		return nil, err
	}
	var tx driver.Tx
	var err error
	if b, ok := c.inner.(driver.ConnBeginTx); ok {
		tx, err = b.BeginTx(ctx, o)
	} else {
		tx, err = c.inner.Begin() //nolint:staticcheck // the driver offers nothing else
	}
	if err != nil {
		return nil, err
	}
	c.tx = id
	return &logTx{inner: tx, conn: c}, nil
}

func (c *logConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := c.inner.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip // database/sql prepares it: logged by logStmt
	}
	if err := c.log.record(q, c.tx); err != nil {
		return nil, err
	}
	return e.ExecContext(ctx, q, args)
}

func (c *logConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	qu, ok := c.inner.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	if err := c.log.record(q, c.tx); err != nil {
		return nil, err
	}
	return qu.QueryContext(ctx, q, args)
}

// CheckNamedValue lets the real driver take the arguments it knows (pgx:
// slices for arrays).
func (c *logConn) CheckNamedValue(v *driver.NamedValue) error {
	if ch, ok := c.inner.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(v)
	}
	return driver.ErrSkip
}

func (c *logConn) ResetSession(ctx context.Context) error {
	if r, ok := c.inner.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *logConn) IsValid() bool {
	if v, ok := c.inner.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *logConn) Ping(ctx context.Context) error {
	if p, ok := c.inner.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

type logTx struct {
	inner driver.Tx
	conn  *logConn
}

func (t *logTx) Commit() error {
	id := t.conn.tx
	t.conn.tx = 0
	if err := t.conn.log.record("COMMIT", id); err != nil {
		_ = t.inner.Rollback()
		return err
	}
	return t.inner.Commit()
}

func (t *logTx) Rollback() error {
	id := t.conn.tx
	t.conn.tx = 0
	_ = t.conn.log.record("ROLLBACK", id) // never failed: the real rollback must run
	return t.inner.Rollback()
}

type logStmt struct {
	inner driver.Stmt
	conn  *logConn
	query string
}

func (s *logStmt) Close() error  { return s.inner.Close() }
func (s *logStmt) NumInput() int { return s.inner.NumInput() }

func (s *logStmt) Exec(args []driver.Value) (driver.Result, error) {
	if err := s.conn.log.record(s.query, s.conn.tx); err != nil {
		return nil, err
	}
	return s.inner.Exec(args) //nolint:staticcheck // fallback of drivers without the context form
}

func (s *logStmt) Query(args []driver.Value) (driver.Rows, error) {
	if err := s.conn.log.record(s.query, s.conn.tx); err != nil {
		return nil, err
	}
	return s.inner.Query(args) //nolint:staticcheck // fallback of drivers without the context form
}

func (s *logStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	e, ok := s.inner.(driver.StmtExecContext)
	if !ok {
		return s.Exec(values(args))
	}
	if err := s.conn.log.record(s.query, s.conn.tx); err != nil {
		return nil, err
	}
	return e.ExecContext(ctx, args)
}

func (s *logStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := s.inner.(driver.StmtQueryContext)
	if !ok {
		return s.Query(values(args))
	}
	if err := s.conn.log.record(s.query, s.conn.tx); err != nil {
		return nil, err
	}
	return q.QueryContext(ctx, args)
}

func values(args []driver.NamedValue) []driver.Value {
	v := make([]driver.Value, len(args))
	for i, a := range args {
		v[i] = a.Value
	}
	return v
}

// Contains reports whether the statement's text holds every word.
func (s Statement) Contains(words ...string) bool {
	for _, w := range words {
		if !strings.Contains(s.Query, w) {
			return false
		}
	}
	return true
}
