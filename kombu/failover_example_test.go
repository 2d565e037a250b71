package kombu_test

import (
	"context"
	"fmt"

	"github.com/kombu-go/kombu/kombu"
)

// Failover: a ';'-separated URL list is tried in order (FailoverRoundRobin,
// the default) or in random order after the current one (FailoverShuffle);
// OnFailover hears each switch, with passwords masked.
func ExampleOptions_failover() {
	ctx := context.Background()
	conn, err := kombu.NewConnection("memory://primary;memory://standby", &kombu.Options{
		FailoverStrategy: kombu.FailoverRoundRobin,
		OnFailover: func(from, to string, err error) {
			fmt.Printf("failover %s -> %s (%v)\n", from, to, err)
		},
	})
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	if err := conn.Connect(ctx); err != nil {
		panic(err)
	}
	fmt.Println("on", conn.Info().Hostname)
	// A lost connection (or a Reconnect asking for failover) moves along
	// the list.
	if err := conn.Reconnect(ctx, true); err != nil {
		panic(err)
	}
	fmt.Println("on", conn.Info().Hostname)
	// Output:
	// on primary
	// failover memory://primary -> memory://standby (connection lost)
	// on standby
}
