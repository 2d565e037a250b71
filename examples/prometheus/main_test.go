package main

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

// Three messages published and handled; a scrape shows the counts under
// Prometheus names.
func Example() {
	ctx := context.Background()
	conn, metrics, stop, err := setup(ctx, "memory://prometheus-example-test", "jobs")
	if err != nil {
		panic(err)
	}
	defer stop()
	jobs := kombu.NewQueue("jobs", kombu.DefaultExchange, "jobs")
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		panic(err)
	}
	for range 3 {
		if err := p.Publish(ctx, "job", &kombu.PublishOptions{RoutingKey: "jobs", Declare: []kombu.Declarable{jobs}}); err != nil {
			panic(err)
		}
	}
	c, err := conn.Consumer(ctx, []kombu.Queue{jobs}, nil)
	if err != nil {
		panic(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n := 0
	_ = c.Consume(cctx, kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
		if n++; n == 3 {
			cancel()
		}
		return nil
	}))
	_ = c.Close()

	srv := httptest.NewServer(metrics)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		for _, name := range []string{"messaging_client_sent_messages_total", "messaging_kombu_message_acked_total",
			"messaging_process_duration_seconds_count", "messaging_kombu_queue_messages"} {
			if strings.HasPrefix(line, name+"{") {
				fmt.Println(name, line[strings.LastIndexByte(line, ' ')+1:])
			}
		}
	}
	// Output:
	// messaging_client_sent_messages_total 3
	// messaging_kombu_message_acked_total 3
	// messaging_kombu_queue_messages 0
	// messaging_process_duration_seconds_count 3
}
