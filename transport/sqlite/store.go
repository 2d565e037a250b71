package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	_ "modernc.org/sqlite" // registers database/sql driver "sqlite"

	"github.com/kombu-go/kombu/internal/sqlstore"
)

// Store is the sqlite virtual.Store: the shared SQL store on one database
// file.
type Store struct {
	*sqlstore.Store
}

// Dial opens the database file (creating it), creates or completes the
// schema and returns the store.
func (c *Connector) Dial(ctx context.Context) (*Store, error) {
	o := c.o
	db, err := sql.Open("sqlite", o.dsn())
	if err != nil {
		return nil, wrap("open", err)
	}
	db.SetMaxOpenConns(o.MaxConnections)
	db.SetMaxIdleConns(o.MaxConnections)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, wrap("open "+o.Path, err)
	}
	tables := o.Tables()
	if err := sqlstore.Migrate(ctx, db, sqlstore.SQLite, tables); err != nil {
		_ = db.Close()
		return nil, wrap("schema", err)
	}
	w := acquireWaker(o.Path)
	s := &Store{}
	s.Store = sqlstore.New(sqlstore.Config{
		DB:                db,
		Engine:            sqlstore.SQLite,
		Tables:            tables,
		VisibilityTimeout: o.VisibilityTimeout,
		PollInterval:      o.PollingInterval,
		Waker:             w,
		Wrap:              wrap,
		OnClose:           db.Close,
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

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// Every store of this process on one file shares a Broadcast, so that a
// publish wakes this process's consumers at once; other processes' writes
// are found by polling (SQLite has no notifications between processes).
var wakers = struct {
	sync.Mutex
	m map[string]*fileWaker
}{m: map[string]*fileWaker{}}

type fileWaker struct {
	*sqlstore.Broadcast
	path string
	refs int
}

// storeWaker is one store's reference to its file's waker.
type storeWaker struct {
	*fileWaker
	once sync.Once
}

func acquireWaker(path string) *storeWaker {
	wakers.Lock()
	defer wakers.Unlock()
	w := wakers.m[path]
	if w == nil {
		w = &fileWaker{Broadcast: sqlstore.NewBroadcast(), path: path}
		wakers.m[path] = w
	}
	w.refs++
	return &storeWaker{fileWaker: w}
}

// Close releases the store's reference.
func (w *storeWaker) Close() error {
	w.once.Do(func() {
		wakers.Lock()
		defer wakers.Unlock()
		w.refs--
		if w.refs == 0 {
			delete(wakers.m, w.path)
		}
	})
	return nil
}
