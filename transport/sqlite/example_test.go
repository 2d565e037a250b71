package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/transport/sqlite"
)

// A durable queue in one file, with no server: what is put survives the
// process, and the *sql.DB beneath is at hand through As.
func ExampleNewConnector() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "kombu-sqlite-example")
	defer os.RemoveAll(dir)
	opts, err := sqlite.ParseURL(mustParse("sqlite:///" + filepath.Join(dir, "queue.db")))
	if err != nil {
		fmt.Println(err)
		return
	}
	conn := kombu.NewConnectionFromConnector(sqlite.NewConnector(opts), nil)
	defer conn.Close()

	queue, err := conn.SimpleQueue(ctx, "greetings", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer queue.Close()
	if err := queue.Put(ctx, "hello", nil); err != nil {
		fmt.Println(err)
		return
	}
	msg, err := queue.Get(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := msg.Payload()
	fmt.Println(conn.TransportName(), body, msg.Ack(ctx))
	// The ack's DELETE rides the connection's next claim, or goes on its
	// own a moment later; Close sends it at the latest.
	_ = queue.Close()
	_ = conn.Close()

	// Another connection on the file: the acked message is gone.
	again := kombu.NewConnectionFromConnector(sqlite.NewConnector(opts), nil)
	defer again.Close()
	var db *sql.DB
	if err := again.Connect(ctx); err == nil && again.As(&db) {
		var rows int
		_ = db.QueryRow("SELECT count(*) FROM kombu_message").Scan(&rows)
		fmt.Println("rows left after the ack:", rows)
	}
	// Output:
	// sqlite hello <nil>
	// rows left after the ack: 0
}

func mustParse(raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	return u
}
