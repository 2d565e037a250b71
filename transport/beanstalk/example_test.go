package beanstalk_test

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/transport/beanstalk"
)

// Typed Options instead of a URL: a Connector plugs into kombu without the
// registry. Nothing is dialled until the connection is used.
func ExampleNewConnector() {
	opts, err := beanstalk.ParseURL(&url.URL{Scheme: "beanstalk", Host: "127.0.0.1:11300", RawQuery: "ttr=600"})
	if err != nil {
		fmt.Println(err)
		return
	}
	opts.ConnectTimeout = 2 * time.Second
	conn := kombu.NewConnectionFromConnector(beanstalk.NewConnector(opts), nil)
	defer conn.Close()
	fmt.Println(conn.Info().Transport, opts.Addr, opts.TTR)
	// Output: beanstalk 127.0.0.1:11300 10m0s
}

// A countdown: the job becomes ready after the x-delay header's
// milliseconds, rounded up to whole seconds. (Compiled, not run: it needs a
// beanstalkd.)
func ExampleHeaderDelay() {
	ctx := context.Background()
	conn, err := kombu.Dial(ctx, "beanstalk://127.0.0.1:11300", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	q, err := conn.SimpleQueue(ctx, "reminders", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer q.Close()
	err = q.Put(ctx, "in ten seconds", &kombu.PublishOptions{Headers: map[string]any{beanstalk.HeaderDelay: 10_000}})
	fmt.Println(err)
}
