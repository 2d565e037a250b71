package kombu_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

// A handler error redelivers the message after a backoff; after
// MaxDeliveries deliveries it goes to the queue's dead-letter exchange, or
// here, with none, to the durable queue "tasks.poison", with the last
// error and the count in headers. Other messages go on meanwhile.
func ExampleRedeliveryPolicy() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn, _ := kombu.Dial(ctx, "memory://redelivery", nil)
	defer conn.Close()
	tasks := kombu.NewQueue("tasks", kombu.DefaultExchange, "")

	producer, _ := conn.Producer(ctx, nil)
	for _, task := range []string{"charge-card", "send-email"} {
		_ = producer.Publish(ctx, task, &kombu.PublishOptions{RoutingKey: "tasks", Declare: []kombu.Declarable{tasks}})
	}

	consumer, _ := conn.Consumer(ctx, []kombu.Queue{tasks}, &kombu.ConsumerOptions{
		// nil means kombu.DefaultRedeliveryPolicy: 200 ms doubling to
		// 30 s, 20 deliveries.
		Redelivery: &kombu.RedeliveryPolicy{InitialBackoff: 10 * time.Millisecond, MaxDeliveries: 3},
	})
	defer consumer.Close()
	go consumer.Consume(ctx, kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
		var task string
		_ = m.Decode(&task)
		if task == "charge-card" {
			fmt.Printf("%s: delivery %d fails\n", task, m.DeliveryCount())
			return errors.New("card declined")
		}
		fmt.Printf("%s: done\n", task)
		return nil
	}))

	poison, _ := conn.Consumer(ctx, []kombu.Queue{{Name: "tasks" + kombu.PoisonQueueSuffix, Durable: true}}, nil)
	defer poison.Close()
	m, _ := poison.Receive(ctx)
	var task string
	_ = m.Decode(&task)
	fmt.Printf("poisoned %s after %v deliveries: %s\n", task, m.Headers[kombu.HeaderFailedDeliveries], m.Headers[kombu.HeaderLastError])
	_ = m.Ack(ctx)
	// Output:
	// charge-card: delivery 1 fails
	// send-email: done
	// charge-card: delivery 2 fails
	// charge-card: delivery 3 fails
	// poisoned charge-card after 3 deliveries: card declined
}
