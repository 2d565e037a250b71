package kombu_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/codec"
	_ "github.com/kombu-go/kombu/kombu/codec/msgpack" // the msgpack serializer of Example_serialization
	_ "github.com/kombu-go/kombu/transport/memory"
)

// The hello-world of kombu's guide: a SimpleQueue needs no exchange.
func Example_helloWorld() {
	ctx := context.Background()
	conn, err := kombu.Dial(ctx, "memory://hello", nil)
	if err != nil {
		panic(err)
	}
	defer conn.Close()

	queue, err := conn.SimpleQueue(ctx, "simple_queue", nil)
	if err != nil {
		panic(err)
	}
	defer queue.Close()
	if err := queue.Put(ctx, map[string]any{"hello": "world"}, nil); err != nil {
		panic(err)
	}

	getCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	msg, err := queue.Get(getCtx)
	if err != nil {
		panic(err)
	}
	var body map[string]string
	if err := msg.Decode(&body); err != nil {
		panic(err)
	}
	fmt.Println(body["hello"], msg.ContentType)
	fmt.Println(msg.Ack(ctx))
	// Output:
	// world application/json
	// <nil>
}

// Producers: an exchange, a queue bound to it, and a publish that
// declares the queue first and retries on connection failures.
func ExampleProducer_Publish() {
	ctx := context.Background()
	conn, _ := kombu.Dial(ctx, "memory://producers", nil)
	defer conn.Close()

	media := kombu.NewExchange("media", kombu.Direct)
	video := kombu.NewQueue("video", media, "video")

	producer, err := conn.Producer(ctx, &kombu.ProducerOptions{Exchange: media, Serializer: "json"})
	if err != nil {
		panic(err)
	}
	err = producer.Publish(ctx, map[string]any{"name": "/tmp/lolcat1.avi", "size": 1301013},
		&kombu.PublishOptions{
			RoutingKey:  "video",
			Declare:     []kombu.Declarable{video},
			Compression: "zlib",
			Retry:       true,
			RetryPolicy: &kombu.RetryPolicy{MaxRetries: 3, IntervalStart: 0, IntervalStep: 200 * time.Millisecond, IntervalMax: time.Second},
		})
	fmt.Println("published:", err)

	ch, _ := conn.Channel(ctx)
	n, _ := video.Len(ctx, ch)
	fmt.Println("queued:", n)
	// Output:
	// published: <nil>
	// queued: 1
}

// Consumers, kombu style: callbacks receive the decoded body, and
// Connection.DrainEvents dispatches.
func ExampleConsumer_callbacks() {
	ctx := context.Background()
	conn, _ := kombu.Dial(ctx, "memory://callbacks", nil)
	defer conn.Close()
	media := kombu.NewExchange("media", kombu.Direct)
	video := kombu.NewQueue("video", media, "video")

	processMedia := func(body any, m *kombu.Message) {
		fmt.Println("got", body.(map[string]any)["name"], "via", m.RoutingKey)
		_ = m.Ack(ctx)
	}
	ch, _ := conn.DefaultChannel(ctx)
	consumer, err := kombu.NewConsumer(ctx, ch, []kombu.Queue{video}, &kombu.ConsumerOptions{
		Callbacks: []kombu.Callback{processMedia},
		Accept:    []string{"json"},
	})
	if err != nil {
		panic(err)
	}
	defer consumer.Close()

	producer, _ := conn.Producer(ctx, &kombu.ProducerOptions{Exchange: media})
	_ = producer.Publish(ctx, map[string]any{"name": "cat.avi"}, &kombu.PublishOptions{RoutingKey: "video"})

	drainCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	fmt.Println(conn.DrainEvents(drainCtx))
	// Output:
	// got cat.avi via video
	// <nil>
}

// Consumers, Go style: a Handler runs for each message; returning nil acks.
func ExampleConsumer_Consume() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn, _ := kombu.Dial(ctx, "memory://handler", nil)
	defer conn.Close()
	tasks := kombu.NewQueue("tasks", kombu.DefaultExchange, "")

	producer, _ := conn.Producer(ctx, nil)
	for i := 1; i <= 3; i++ {
		_ = producer.Publish(ctx, map[string]int{"n": i}, &kombu.PublishOptions{RoutingKey: "tasks", Declare: []kombu.Declarable{tasks}})
	}

	consumer, _ := conn.Consumer(ctx, []kombu.Queue{tasks}, &kombu.ConsumerOptions{PrefetchCount: 10})
	sum := 0
	err := consumer.Consume(ctx, kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
		var task struct{ N int }
		if err := m.Decode(&task); err != nil {
			return err
		}
		sum += task.N
		if sum == 6 {
			cancel() // stop after the third task
		}
		return nil
	}))
	fmt.Println(sum, errors.Is(err, context.Canceled))
	// Output: 6 true
}

// Topic exchanges match words as RabbitMQ does: * is one word, # is zero
// or more.
func ExampleExchange_topic() {
	ctx := context.Background()
	conn, _ := kombu.Dial(ctx, "memory://topic", nil)
	defer conn.Close()
	ch, _ := conn.Channel(ctx)

	logs := kombu.NewExchange("logs", kombu.Topic)
	errorsQ := kombu.NewQueue("errors", logs, "*.error")
	all := kombu.NewQueue("all", logs, "app.#")
	for _, q := range []kombu.Queue{errorsQ, all} {
		_, _ = q.Declare(ctx, ch)
	}
	producer, _ := kombu.NewProducer(ctx, ch, &kombu.ProducerOptions{Exchange: logs})
	for _, key := range []string{"app.error", "app", "app.web.error", "db.error"} {
		_ = producer.Publish(ctx, key, &kombu.PublishOptions{RoutingKey: key})
	}
	for _, q := range []kombu.Queue{errorsQ, all} {
		var got []string
		for {
			m, err := q.Get(ctx, ch, true, nil)
			if err != nil {
				break
			}
			got = append(got, string(m.Body))
		}
		fmt.Println(q.Name, got)
	}
	// Output:
	// errors [app.error db.error]
	// all [app.error app app.web.error]
}

// Pools: producers on a bounded pool of connections.
func ExampleProducerPool() {
	ctx := context.Background()
	conn, _ := kombu.NewConnection("memory://pools", nil)
	pool := conn.Pool(2)
	defer pool.Close()
	producers := kombu.NewProducerPool(pool, nil)

	q := kombu.NewQueue("pooled", kombu.DefaultExchange, "")
	for i := 0; i < 5; i++ {
		p, err := producers.Acquire(ctx)
		if err != nil {
			panic(err)
		}
		_ = p.Publish(ctx, i, &kombu.PublishOptions{RoutingKey: "pooled", Declare: []kombu.Declarable{q}})
		producers.Release(p)
	}
	c, _ := pool.Acquire(ctx)
	ch, _ := c.Channel(ctx)
	n, _ := q.Len(ctx, ch)
	pool.Release(c)
	fmt.Println(n)
	_, err := pool.TryAcquire()
	fmt.Println(err)
	// Output:
	// 5
	// <nil>
}

// Serialization: choose a serializer per producer or per message, or
// register your own. json and raw are built in; msgpack and yaml are
// linked by importing codec/msgpack and codec/yaml (see the imports).
func Example_serialization() {
	ctx := context.Background()
	codec.Default.Register(codec.Serializer{
		Name: "upper", ContentType: "application/x-upper", ContentEncoding: "utf-8",
		Marshal:   func(v any) ([]byte, error) { return []byte(strings.ToUpper(fmt.Sprint(v))), nil },
		Unmarshal: func(b []byte, v any) error { *(v.(*any)) = strings.ToLower(string(b)); return nil },
	})
	conn, _ := kombu.Dial(ctx, "memory://serialization", nil)
	defer conn.Close()
	sq, _ := conn.SimpleQueue(ctx, "ser", nil)
	_ = sq.Put(ctx, map[string]any{"a": 1}, &kombu.PublishOptions{Serializer: "msgpack"})
	_ = sq.Put(ctx, "some text", nil)
	_ = sq.Put(ctx, []byte{0xff, 0x00}, nil)
	_ = sq.Put(ctx, "Hello", &kombu.PublishOptions{Serializer: "upper"})

	c, _ := conn.Consumer(ctx, []kombu.Queue{sq.Queue()}, &kombu.ConsumerOptions{
		Accept: []string{"msgpack", "text/plain", "upper"}, NoDeclare: true})
	for i := 0; i < 4; i++ {
		m, _ := c.Receive(ctx)
		v, err := m.Payload()
		fmt.Printf("%s %v %v\n", m.ContentType, v, err)
		_ = m.Ack(ctx)
	}
	// Output:
	// application/x-msgpack map[a:1] <nil>
	// text/plain some text <nil>
	// application/data [255 0] <nil>
	// application/x-upper hello <nil>
}

// The task-queue example of kombu's guide: a worker consumes from queues
// of three priorities; the client sends tasks by name.
func Example_taskQueue() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn, _ := kombu.Dial(ctx, "memory://tasks", nil)
	defer conn.Close()

	taskExchange := kombu.NewExchange("tasks", kombu.Direct)
	taskQueues := []kombu.Queue{
		kombu.NewQueue("hipri", taskExchange, "hipri"),
		kombu.NewQueue("midpri", taskExchange, "midpri"),
		kombu.NewQueue("lopri", taskExchange, "lopri"),
	}

	// Client: send_as_task.
	type task struct {
		Fun    string         `json:"fun"`
		Args   []any          `json:"args"`
		Kwargs map[string]any `json:"kwargs"`
	}
	producer, _ := conn.Producer(ctx, &kombu.ProducerOptions{Exchange: taskExchange})
	sendAsTask := func(fun string, args []any, priority string) {
		_ = producer.Publish(ctx, task{Fun: fun, Args: args, Kwargs: map[string]any{}},
			&kombu.PublishOptions{RoutingKey: priority, Declare: []kombu.Declarable{taskQueues[0], taskQueues[1], taskQueues[2]}})
	}
	sendAsTask("hello_task", []any{"Kombu"}, "midpri")
	sendAsTask("hello_task", []any{"Go"}, "hipri")

	// Worker.
	registry := map[string]func(args []any) string{
		"hello_task": func(args []any) string { return fmt.Sprintf("Hello %v", args[0]) },
	}
	worker, _ := conn.Consumer(ctx, taskQueues, &kombu.ConsumerOptions{PrefetchCount: 1})
	var results []string
	_ = worker.Consume(ctx, kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
		var t task
		if err := m.Decode(&t); err != nil {
			return err
		}
		results = append(results, registry[t.Fun](t.Args))
		if len(results) == 2 {
			cancel()
		}
		return nil
	}))
	sort.Strings(results)
	fmt.Println(strings.Join(results, ", "))
	// Output: Hello Go, Hello Kombu
}

// Unroutable mandatory messages go to OnReturn.
func ExampleProducerOptions_onReturn() {
	ctx := context.Background()
	conn, _ := kombu.Dial(ctx, "memory://returns", nil)
	defer conn.Close()
	ex := kombu.NewExchange("orders", kombu.Direct)
	producer, _ := conn.Producer(ctx, &kombu.ProducerOptions{
		Exchange: ex,
		OnReturn: func(r kombu.Return) { fmt.Println("returned:", r.ReplyText, r.RoutingKey) },
	})
	err := producer.Publish(ctx, "lost?", &kombu.PublishOptions{RoutingKey: "nobody", Mandatory: true})
	fmt.Println(err)
	// Output:
	// returned: NO_ROUTE nobody
	// <nil>
}

// URLs: failover lists, masked passwords and the transport's defaults.
func ExampleConnection_Info() {
	conn, err := kombu.NewConnection("memory://primary;memory://backup", nil)
	if err != nil {
		panic(err)
	}
	info := conn.Info()
	fmt.Println(info.Transport, info.Hostname, info.Alternates)

	_, err = kombu.NewConnection("nosuch://user:s3cret@host/", nil)
	fmt.Println(errors.Is(err, kombu.ErrInvalidURL), strings.Contains(err.Error(), "s3cret"))
	// Output:
	// memory primary [memory://backup]
	// true false
}

// OnDecodeError sees every message that cannot be decoded or whose content
// type is not accepted. Whatever the callback leaves unsettled is rejected
// without requeue when it returns (dead-lettered where the queue has a
// dead-letter exchange), so bad messages never fill the prefetch window:
// here the good message behind two bad ones still arrives.
func ExampleConsumerOptions_onDecodeError() {
	ctx := context.Background()
	conn, _ := kombu.Dial(ctx, "memory://decode-errors", nil)
	defer conn.Close()
	orders := kombu.NewQueue("orders", kombu.DefaultExchange, "")

	producer, _ := conn.Producer(ctx, &kombu.ProducerOptions{RoutingKey: "orders"})
	_ = conn.MaybeDeclare(ctx, nil, orders)
	_ = producer.Publish(ctx, "a: 1\n", &kombu.PublishOptions{ContentType: "application/x-yaml"})
	_ = producer.Publish(ctx, []byte{0x81, 0xa1, 'a', 1}, &kombu.PublishOptions{ContentType: "application/x-msgpack"})
	_ = producer.Publish(ctx, map[string]int{"order": 42}, nil)

	consumer, _ := conn.Consumer(ctx, []kombu.Queue{orders}, &kombu.ConsumerOptions{
		PrefetchCount: 1,
		Accept:        []string{"json"},
		OnDecodeError: func(m *kombu.Message, err error) {
			// Log it, count it, or move it somewhere; an explicit
			// m.Reject or m.Requeue here would win over the default.
			fmt.Println("refused:", m.ContentType, errors.Is(err, kombu.ErrContentDisallowed))
		},
	})
	defer consumer.Close()

	recvCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	m, err := consumer.Receive(recvCtx)
	if err != nil {
		panic(err)
	}
	fmt.Println("received:", string(m.Body))
	_ = m.Ack(ctx)

	ch, _ := conn.Channel(ctx)
	n, _ := orders.Len(ctx, ch)
	fmt.Println("left in the queue:", n)
	// Output:
	// refused: application/x-yaml true
	// refused: application/x-msgpack true
	// received: {"order":42}
	// left in the queue: 0
}
