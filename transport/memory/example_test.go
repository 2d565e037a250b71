package memory_test

import (
	"context"
	"fmt"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/transport/memory"
)

// A Connector built from typed Options plugs into kombu without a URL or
// the registry, as every transport's NewConnector does.
func ExampleNewConnector() {
	ctx := context.Background()
	conn := kombu.NewConnectionFromConnector(memory.NewConnector(&memory.Options{Broker: "example"}), nil)
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
	// Output: memory hello <nil>
}
