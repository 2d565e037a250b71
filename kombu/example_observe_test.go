package kombu_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/kombu-go/kombu/kombu"
	_ "github.com/kombu-go/kombu/transport/memory"
)

// countingObserver is a metrics backend of its own (expvar, StatsD, ...):
// any type with the three methods of kombu.Observer plugs in.
type countingObserver struct {
	mu     sync.Mutex
	counts map[string]int
}

func (o *countingObserver) inc(name string) {
	o.mu.Lock()
	o.counts[name]++
	o.mu.Unlock()
}

func (o *countingObserver) StartPublish(ctx context.Context, p *kombu.PublishInfo) (context.Context, func(error)) {
	return ctx, func(err error) {
		if err == nil {
			o.inc("published " + p.RoutingKey)
		}
	}
}

func (o *countingObserver) StartHandle(ctx context.Context, m *kombu.Message) (context.Context, func(error)) {
	start := time.Now()
	return ctx, func(err error) {
		_ = time.Since(start) // a histogram would take it
		o.inc("handled " + m.Queue)
	}
}

func (o *countingObserver) Observe(ctx context.Context, e kombu.Event) {
	o.inc(e.Kind.String())
}

// An Observer sees every publish, handler run and event: here a plain
// counter stands for a metrics backend other than OpenTelemetry.
func ExampleObserver() {
	ctx := context.Background()
	obs := &countingObserver{counts: map[string]int{}}
	conn, err := kombu.Dial(ctx, "memory://observer-example", &kombu.Options{Observer: obs})
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	q := kombu.NewQueue("jobs", kombu.DefaultExchange, "jobs")
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		panic(err)
	}
	for range 3 {
		if err := p.Publish(ctx, "job", &kombu.PublishOptions{RoutingKey: "jobs", Declare: []kombu.Declarable{q}}); err != nil {
			panic(err)
		}
	}
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, nil)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	cctx, stop := context.WithCancel(ctx)
	n := 0
	_ = c.Consume(cctx, kombu.HandlerFunc(func(ctx context.Context, m *kombu.Message) error {
		if n++; n == 3 {
			stop()
		}
		return nil
	}))
	for _, name := range []string{"connected", "published jobs", "delivered", "handled jobs", "acked"} {
		fmt.Println(name, obs.counts[name])
	}
	// Output:
	// connected 1
	// published jobs 3
	// delivered 3
	// handled jobs 3
	// acked 3
}

// Options.Logger gets the connection's lifecycle events as structured
// log records (connect, reconnect, failover, retry, consumer start and
// stop, channel errors), passwords masked; without a Logger kombu-go
// writes nothing.
func ExampleOptions_logger() {
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // steady output for the example
			}
			return a
		},
	}))
	conn, err := kombu.Dial(ctx, "memory://guest:secret@logger-example", &kombu.Options{Logger: logger})
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	if err := conn.Reconnect(ctx, false); err != nil {
		panic(err)
	}
	// Output:
	// level=INFO msg="kombu: connected" event=connected transport=memory url=memory://guest:**@logger-example
	// level=INFO msg="kombu: reconnected" event=reconnected transport=memory url=memory://guest:**@logger-example
}
