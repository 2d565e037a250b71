package routing_test

import (
	"fmt"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual/routing"
)

func Example() {
	bindings := []driver.Binding{
		{Queue: "errors", Exchange: "logs", RoutingKey: "*.error"},
		{Queue: "app", Exchange: "logs", RoutingKey: "app.#"},
		{Queue: "everything", Exchange: "logs", RoutingKey: "#"},
		{Queue: "app", Exchange: "logs", RoutingKey: "app.*"},
	}
	r := routing.NewRouter()
	for _, key := range []string{"app.error", "app", "db.pool.error"} {
		queues, err := r.Route("topic", bindings, key, nil)
		if err != nil {
			panic(err)
		}
		fmt.Println(key, "->", queues)
	}

	// AMQP semantics, unlike Python kombu's regex: '*' is one word and
	// "x.#" matches "x".
	fmt.Println(routing.TopicMatch("a.*.c", "a.b.b.c"), routing.TopicMatch("a.#", "a"))
	// The pattern kombu stores for the binding in redis.
	fmt.Println(routing.KombuTopicPattern("*.error"))
	// Output:
	// app.error -> [errors app everything]
	// app -> [app everything]
	// db.pool.error -> [everything]
	// false true
	// ^.*?[^\.]\.error$
}

func ExampleHeadersMatch() {
	binding := map[string]any{"x-match": "any", "format": "pdf", "type": "report"}
	fmt.Println(routing.HeadersMatch(binding, map[string]any{"format": []byte("pdf")}))
	fmt.Println(routing.HeadersMatch(binding, map[string]any{"format": "zip"}))
	// Output:
	// true
	// false
}
