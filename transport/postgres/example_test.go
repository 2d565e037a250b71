package postgres_test

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/kombu-go/kombu/kombu"
	_ "github.com/kombu-go/kombu/transport/postgres"
)

// Python kombu's URL works as it is: both sides then share the queue.
// As hands out the *sql.DB beneath the connection (pgx's database/sql
// driver). It needs a server, so it is compiled, not run.
func Example() {
	ctx := context.Background()
	conn, err := kombu.Dial(ctx, "sqla+postgresql://app@127.0.0.1/app?visibility_timeout=600", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	queue, err := conn.SimpleQueue(ctx, "celery", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer queue.Close()
	_ = queue.Put(ctx, map[string]any{"task": "add", "args": []int{2, 3}}, nil)

	var db *sql.DB
	if conn.As(&db) {
		var ready int
		_ = db.QueryRow("SELECT count(*) FROM kombu_message WHERE visible").Scan(&ready)
		fmt.Println("ready rows:", ready)
	}
}
