package mongodb_test

import (
	"context"
	"fmt"
	"net/url"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/transport/mongodb"
)

// ParseURL splits a URL into kombu's options and the URI the MongoDB
// driver dials, which keeps the driver's own options.
func ExampleParseURL() {
	u, _ := url.Parse("mongodb://user:secret@db.example:27017/jobs?authSource=admin&visibility_timeout=600&ttl=true")
	o, err := mongodb.ParseURL(u)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(o.Database, o.VisibilityTimeout, o.TTL, o.MessagesCollection)
	fmt.Println(o.URI)
	// Output:
	// jobs 10m0s true messages
	// mongodb://user:secret@db.example:27017/jobs?authSource=admin
}

// Typed Options instead of a URL: a Connector plugs into kombu without the
// registry. (Compiled, not run: it needs a server.)
func ExampleNewConnector() {
	u, _ := url.Parse("mongodb://localhost:27017/kombu_default")
	opts, err := mongodb.ParseURL(u)
	if err != nil {
		fmt.Println(err)
		return
	}
	opts.CalcQueueSize = false
	conn := kombu.NewConnectionFromConnector(mongodb.NewConnector(opts), nil)
	defer conn.Close()
	fmt.Println(conn.Info().Transport)
}

// The escape hatch: Connection.As reaches the MongoDB database beneath
// kombu. It belongs to the Connection. (Compiled, not run: it needs a
// server.)
func ExampleStore_As() {
	ctx := context.Background()
	conn, err := kombu.Dial(ctx, "mongodb://localhost:27017/kombu_default", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	var db *mongo.Database
	if conn.As(&db) {
		n, _ := db.Collection("messages").EstimatedDocumentCount(ctx)
		fmt.Println(n)
	}
}
