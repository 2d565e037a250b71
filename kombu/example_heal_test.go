package kombu_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

// EnsureConnection waits for the broker as a policy allows; OnRetry sees
// each failure and the wait before the next try. FailoverShuffle spreads
// clients over the URLs of a list, and OnFailover reports each move.
func ExampleConnection_EnsureConnection() {
	ctx := context.Background()
	conn, err := kombu.NewConnection("memory://ensure-a;memory://ensure-b", &kombu.Options{
		FailoverStrategy: kombu.FailoverShuffle,
		OnFailover: func(from, to string, err error) {
			fmt.Printf("leaving %s for %s: %v\n", from, to, err)
		},
	})
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	err = conn.EnsureConnection(ctx, &kombu.RetryPolicy{
		MaxRetries: -1, IntervalStep: 500 * time.Millisecond, IntervalMax: 5 * time.Second,
		OnRetry: func(err error, wait time.Duration) {
			fmt.Println("broker unreachable, next try in", wait, err)
		},
	})
	fmt.Println(err, conn.Connected(), conn.Info().Hostname)
	// Output:
	// <nil> true ensure-a
}

// Ensure runs an operation again after a connection failure, once the
// connection is back, with the producer revived on the new connection.
// An error that means the message may already be at the broker
// (ErrUnconfirmed, ErrTimeout) is returned, never retried.
func ExampleConnection_Ensure() {
	ctx := context.Background()
	conn, _ := kombu.Dial(ctx, "memory://ensure", nil)
	defer conn.Close()
	ch, _ := conn.DefaultChannel(ctx)
	queue := kombu.NewQueue("orders", kombu.DefaultExchange, "orders")
	producer, _ := kombu.NewProducer(ctx, ch, &kombu.ProducerOptions{RoutingKey: "orders"})

	policy := &kombu.RetryPolicy{MaxRetries: 5, IntervalStart: 10 * time.Millisecond, IntervalStep: 10 * time.Millisecond,
		OnRetry: func(err error, wait time.Duration) { fmt.Println("retry in", wait, "after:", err) }}
	tries := 0
	err := conn.Ensure(ctx, policy, func(ctx context.Context) error {
		if tries++; tries == 1 {
			// As a publish on a connection the broker had closed.
			return fmt.Errorf("publish: %w", kombu.ErrConnectionLost)
		}
		return producer.Publish(ctx, "order 1", &kombu.PublishOptions{Declare: []kombu.Declarable{queue}})
	}, producer)
	fmt.Println(err, tries)

	err = conn.Ensure(ctx, policy, func(ctx context.Context) error {
		return fmt.Errorf("publish: %w", kombu.ErrUnconfirmed)
	})
	fmt.Println(errors.Is(err, kombu.ErrUnconfirmed), kombu.Recoverable(err))

	// The reconnect replaced the default channel; the producer moved to it.
	ch, _ = conn.DefaultChannel(ctx)
	fmt.Println(producer.Channel() == ch)
	msg, err := queue.Get(ctx, ch, true, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(msg.Payload())
	// Output:
	// retry in 10ms after: publish: connection lost
	// <nil> 2
	// true false
	// true
	// order 1 <nil>
}

// Autoretry wraps a function of a channel: each try gets the connection's
// current default channel.
func ExampleConnection_Autoretry() {
	ctx := context.Background()
	conn, _ := kombu.Dial(ctx, "memory://autoretry", nil)
	defer conn.Close()
	queue := kombu.NewQueue("jobs", kombu.DefaultExchange, "jobs")
	declare := conn.Autoretry(nil, func(ctx context.Context, ch *kombu.Channel) error {
		_, err := queue.Declare(ctx, ch)
		return err
	})
	fmt.Println(declare(ctx))
	// Output:
	// <nil>
}
