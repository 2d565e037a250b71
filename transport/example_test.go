package transport_test

import (
	"fmt"
	"time"

	"github.com/kombu-go/kombu/transport"
)

func ExampleParseURLs() {
	us, err := transport.ParseURLs("amqp://guest:p%40ss%3Aw%2Frd%25@rabbit-a:5672//; amqp://guest:p%40ss%3Aw%2Frd%25@rabbit-b/prod")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, u := range us {
		pw, _ := u.User.Password()
		fmt.Printf("%s host=%s port=%d vhost=%q password-length=%d\n",
			transport.Redact(u), u.Hostname(), transport.Port(u, 5672), transport.VirtualHost(u), len(pw))
	}

	// Errors never repeat the password.
	_, err = transport.ParseURLs("amqp://guest:s3cr3t@rabbit-a:99999//")
	fmt.Println(err)
	// Output:
	// amqp://guest:**@rabbit-a:5672// host=rabbit-a port=5672 vhost="/" password-length=10
	// amqp://guest:**@rabbit-b/prod host=rabbit-b port=5672 vhost="prod" password-length=10
	// transport: invalid URL "amqp://guest:**@rabbit-a:99999//": port 99999 out of range 1..65535
}

func ExampleQuery() {
	u, err := transport.ParseURL("redis://localhost:6379/0?socket_timeout=2.5&priority_steps=[0,3,6,9]&ssl=yes&sokcet_keepalive=1")
	if err != nil {
		fmt.Println(err)
		return
	}
	q, err := transport.NewQuery(u)
	if err != nil {
		fmt.Println(err)
		return
	}
	q.SetTransport("redis")

	// Defaults first; options present in the URL override them.
	timeout := 5 * time.Second
	steps := []int{0}
	var ssl, keepalive bool
	maxConns := 10
	q.Duration("socket_timeout", &timeout)
	q.IntList("priority_steps", &steps)
	q.Bool("ssl", &ssl)
	q.Bool("socket_keepalive", &keepalive)
	q.IntRange("max_connections", &maxConns, 1, 10000)
	fmt.Println(timeout, steps, ssl, keepalive, maxConns)
	fmt.Println(q.Err())
	// Output:
	// 2.5s [0 3 6 9] true false 10
	// transport: unknown option "sokcet_keepalive" for redis (known: max_connections, priority_steps, socket_keepalive, socket_timeout, ssl)
}
