package amqp_test

import (
	"context"
	"fmt"
	"net/url"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/transport/amqp"
)

// Typed Options instead of a URL: a Connector plugs into kombu without the
// registry. (Compiled, not run: it needs RabbitMQ.)
func ExampleNewConnector() {
	u, _ := url.Parse("amqp://guest:guest@localhost:5672//")
	opts, err := amqp.ParseURL(u)
	if err != nil {
		fmt.Println(err)
		return
	}
	opts.Heartbeat = 10 * time.Second
	conn := kombu.NewConnectionFromConnector(amqp.NewConnector(opts), nil)
	defer conn.Close()
	fmt.Println(conn.Info().Transport)
}

// The escape hatch: Connection.As and Channel.As reach the amqp091-go
// connection and channel beneath kombu, for what kombu does not wrap. They
// belong to kombu: do not close them. (Compiled, not run: it needs
// RabbitMQ.)
func ExampleConn_As() {
	ctx := context.Background()
	conn, err := kombu.Dial(ctx, "amqp://guest:guest@localhost:5672//", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	var raw *amqp091.Connection
	if conn.As(&raw) {
		fmt.Println(raw.Properties["product"])
	}
	ch, err := conn.Channel(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	var rawCh *amqp091.Channel
	if ch.As(&rawCh) {
		q, err := rawCh.QueueDeclarePassive("tasks", true, false, false, false, nil)
		fmt.Println(q.Messages, err)
	}
}
