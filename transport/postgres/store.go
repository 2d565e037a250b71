package postgres

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/kombu-go/kombu/internal/sqlstore"
)

// Store is the postgres virtual.Store: the shared SQL store on a
// database/sql pool of pgx connections, woken by LISTEN/NOTIFY.
type Store struct {
	*sqlstore.Store
}

// Dial opens a pool, creates or completes the schema, and starts the
// LISTEN connection. Connection errors wrap driver.ErrConnectionLost.
func (c *Connector) Dial(ctx context.Context) (*Store, error) {
	o := c.o
	db := stdlib.OpenDB(*o.Config.Copy())
	db.SetMaxOpenConns(o.MaxConnections)
	db.SetMaxIdleConns(o.MaxConnections)
	db.SetConnMaxIdleTime(5 * time.Minute)
	// Claims, acks and requeues commit without waiting for the disk: a
	// server crash can only undo them, which redelivers a message (as an
	// expired lease does) and never loses one. Publishes wait (db).
	leaseCfg := o.Config.Copy()
	leaseCfg.RuntimeParams["synchronous_commit"] = "off"
	leaseDB := stdlib.OpenDB(*leaseCfg)
	leaseDB.SetMaxOpenConns(o.MaxConnections)
	leaseDB.SetMaxIdleConns(o.MaxConnections)
	leaseDB.SetConnMaxIdleTime(5 * time.Minute)
	closeDBs := func() error { return errors.Join(leaseDB.Close(), db.Close()) }
	tables := o.Tables()
	if err := sqlstore.Migrate(ctx, db, sqlstore.Postgres, tables); err != nil {
		_ = closeDBs()
		return nil, wrap("dial", err)
	}
	l := &listener{Broadcast: sqlstore.NewBroadcast(), cfg: o.Config, channel: tables.Message, stop: make(chan struct{})}
	if err := l.connect(ctx); err != nil {
		_ = closeDBs()
		return nil, wrap("listen", err)
	}
	l.wg.Add(1)
	go l.run()
	s := &Store{}
	s.Store = sqlstore.New(sqlstore.Config{
		DB:                db,
		LeaseDB:           leaseDB,
		Engine:            sqlstore.Postgres,
		Tables:            tables,
		VisibilityTimeout: o.VisibilityTimeout,
		PollInterval:      o.PollingInterval,
		Waker:             l,
		Wrap:              wrap,
		OnClose:           closeDBs,
		As: func(target any) bool {
			if p, ok := target.(**sql.DB); ok {
				*p = db
				return true
			}
			return false
		},
	})
	return s, nil
}

// listener holds the LISTEN connection: every committed insert into the
// message table (a statement trigger calls pg_notify) wakes the waiting
// consumers of this store; while it is down they poll.
type listener struct {
	*sqlstore.Broadcast
	cfg     *pgx.ConnConfig
	channel string

	mu   sync.Mutex
	conn *pgx.Conn
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
	ctx  context.Context
	quit context.CancelFunc
}

func (l *listener) connect(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, l.cfg.Copy())
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{l.channel}.Sanitize()); err != nil {
		_ = conn.Close(context.Background())
		return err
	}
	l.mu.Lock()
	l.conn = conn
	if l.ctx == nil {
		l.ctx, l.quit = context.WithCancel(context.Background())
	}
	l.mu.Unlock()
	l.SetLive(true)
	return nil
}

func (l *listener) run() {
	defer l.wg.Done()
	backoff := 50 * time.Millisecond
	for {
		l.mu.Lock()
		conn, ctx := l.conn, l.ctx
		l.mu.Unlock()
		if conn != nil {
			_, err := conn.WaitForNotification(ctx)
			if err == nil {
				backoff = 50 * time.Millisecond
				l.Signal()
				continue
			}
			l.SetLive(false) // waiters poll from now on
			_ = conn.Close(context.Background())
			l.mu.Lock()
			l.conn = nil
			l.mu.Unlock()
		}
		select {
		case <-l.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_ = l.connect(cctx) // on failure: poll, retry later
		cancel()
	}
}

// Close stops the listener and closes its connection.
func (l *listener) Close() error {
	l.once.Do(func() {
		close(l.stop)
		l.mu.Lock()
		l.quit()
		l.mu.Unlock()
		l.wg.Wait()
		l.mu.Lock()
		if l.conn != nil {
			_ = l.conn.Close(context.Background())
			l.conn = nil
		}
		l.mu.Unlock()
	})
	return nil
}
