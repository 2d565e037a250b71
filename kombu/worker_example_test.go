package kombu_test

import (
	"context"
	"fmt"
	"time"

	"github.com/kombu-go/kombu/kombu"
	_ "github.com/kombu-go/kombu/transport/memory"
)

// A worker (kombu's ConsumerProducerMixin): it consumes "tasks", answers
// each on "results" through its producer, and would reconnect, declare
// its queues again and go on after a lost connection, reporting to
// OnConnectionError. Shutdown lets the running handler finish, and Run
// returns nil: a stop, not a failure.
func ExampleWorker() {
	ctx := context.Background()
	conn, err := kombu.Dial(ctx, "memory://worker-example", nil)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	tasks := kombu.NewQueue("tasks", kombu.DefaultExchange, "tasks")
	results := kombu.NewQueue("results", kombu.DefaultExchange, "results")

	handler := kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
		var n int
		if err := m.Decode(&n); err != nil {
			return err
		}
		w, _ := kombu.WorkerFromContext(ctx)
		p, err := w.Producer(ctx)
		if err != nil {
			return err // the message is requeued
		}
		return p.Publish(ctx, n*n, &kombu.PublishOptions{RoutingKey: "results", Retry: true})
	})
	worker, err := kombu.NewWorker(conn, []kombu.Queue{tasks}, handler, &kombu.WorkerOptions{
		Consumer: kombu.ConsumerOptions{Concurrency: 4},
		Declare:  []kombu.Declarable{results},
		OnConnectionError: func(err error, next time.Duration) {
			fmt.Printf("broker unavailable (%v), retrying in %v\n", err, next)
		},
	})
	if err != nil {
		panic(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- worker.Run(ctx) }()

	client, err := conn.SimpleQueue(ctx, "results", nil)
	if err != nil {
		panic(err)
	}
	defer client.Close()
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		panic(err)
	}
	sum := 0
	for n := 1; n <= 3; n++ {
		if err := p.Publish(ctx, n, &kombu.PublishOptions{RoutingKey: "tasks", Declare: []kombu.Declarable{tasks}}); err != nil {
			panic(err)
		}
		getCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := client.Get(getCtx)
		cancel()
		if err != nil {
			panic(err)
		}
		var square int
		_ = m.Decode(&square)
		_ = m.Ack(ctx)
		sum += square
	}
	fmt.Println("sum of squares:", sum)

	shutdownCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fmt.Println("shutdown:", worker.Shutdown(shutdownCtx))
	fmt.Println("run:", <-stopped)
	// Output:
	// sum of squares: 14
	// shutdown: <nil>
	// run: <nil>
}
