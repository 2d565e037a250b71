package couchdb_test

import (
	"context"
	"fmt"
	"net/url"

	"github.com/go-kivik/kivik/v4"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/transport/couchdb"
)

// Typed Options from a URL: a Connector plugs into kombu without the
// registry. Nothing is dialed until the connection is first used.
func ExampleNewConnector() {
	u, _ := url.Parse("couchdbs://kombu:secret@couch.example:6984/jobs?visibility_timeout=600")
	opts, err := couchdb.ParseURL(u)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(opts.Server, opts.Database, opts.VisibilityTimeout)
	conn := kombu.NewConnectionFromConnector(couchdb.NewConnector(opts), nil)
	defer conn.Close()
	fmt.Println(conn.Info().Transport)
	// Output:
	// https://couch.example:6984 jobs 10m0s
	// couchdb
}

// The escape hatch: Connection.As reaches the kivik database beneath
// kombu. It belongs to the Connection: do not close it. (Compiled, not
// run: it needs a server.)
func ExampleStore_As() {
	ctx := context.Background()
	conn, err := kombu.Dial(ctx, "couchdb://localhost:5984/kombu_default", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	var db *kivik.DB
	if conn.As(&db) {
		stats, err := db.Stats(ctx)
		fmt.Println(stats, err)
	}
}
