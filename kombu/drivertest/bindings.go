package drivertest

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kombu-go/kombu/kombu"
)

// listed formats bindings as sorted "exchange|routing key|queue" lines, so
// that a listing compares whatever order the transport returns.
func listed(bs []kombu.BindingInfo) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Exchange + "|" + b.RoutingKey + "|" + b.Queue
	}
	slices.Sort(out)
	return out
}

// expectListed lists what list returns and compares it with want.
func (e *env) expectListed(what string, list func() ([]kombu.BindingInfo, error), want ...string) []kombu.BindingInfo {
	e.t.Helper()
	bs, err := list()
	if err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
	slices.Sort(want)
	if got := listed(bs); !slices.Equal(got, want) {
		e.t.Errorf("%s:\n got  %s\n want %s", what, strings.Join(got, ", "), strings.Join(want, ", "))
	}
	return bs
}

// testListBindings binds a queue to a direct and a topic exchange and
// lists its bindings, on the connection that bound it and on another one,
// then unbinds. Without Features.ListBindings the listing must be refused
// with ErrNotSupported.
func testListBindings(e *env) {
	direct := e.declareExchange(kombu.NewExchange(e.name("direct"), kombu.Direct))
	topic := e.declareExchange(kombu.NewExchange(e.name("topic"), kombu.Topic))
	q := e.declareQueue(kombu.NewQueue(e.name("q"), direct, "k1"))
	other := e.declareQueue(kombu.NewQueue(e.name("other"), direct, "k2"))
	ctx, cancel := e.wait()
	defer cancel()
	if !e.s.features.ListBindings {
		_, qerr := q.ListBindings(ctx, e.ch)
		_, xerr := direct.ListBindings(ctx, e.ch)
		if !errors.Is(qerr, kombu.ErrNotSupported) || !errors.Is(xerr, kombu.ErrNotSupported) {
			e.t.Errorf("listing bindings without Features.ListBindings: queue %v, exchange %v; want ErrNotSupported", qerr, xerr)
		}
		return
	}
	for _, rk := range []string{"user.*", "#.audit"} {
		if err := q.BindTo(ctx, e.ch, topic, rk, nil); err != nil {
			e.t.Fatalf("bind to the topic exchange with %q: %v", rk, err)
		}
	}
	row := func(x kombu.Exchange, rk string, queue kombu.Queue) string {
		return x.Name + "|" + rk + "|" + queue.Name
	}
	second := e.channel(e.dial(nil))
	for _, ch := range []struct {
		name string
		ch   *kombu.Channel
	}{{"the binding connection", e.ch}, {"another connection", second}} {
		bs := e.expectListed("bindings of the queue on "+ch.name, func() ([]kombu.BindingInfo, error) { return q.ListBindings(ctx, ch.ch) },
			row(direct, "k1", q), row(topic, "user.*", q), row(topic, "#.audit", q))
		for _, b := range bs {
			if len(b.Args) != 0 {
				e.t.Errorf("binding %s|%s has arguments %v, made with none", b.Exchange, b.RoutingKey, b.Args)
			}
		}
		e.expectListed("bindings of the direct exchange on "+ch.name, func() ([]kombu.BindingInfo, error) { return direct.ListBindings(ctx, ch.ch) },
			row(direct, "k1", q), row(direct, "k2", other))
	}
	if err := q.UnbindFrom(ctx, e.ch, topic, "user.*", nil); err != nil {
		e.t.Fatalf("unbind: %v", err)
	}
	for _, ch := range []*kombu.Channel{e.ch, second} {
		e.expectListed("bindings of the queue after unbind", func() ([]kombu.BindingInfo, error) { return q.ListBindings(ctx, ch) },
			row(direct, "k1", q), row(topic, "#.audit", q))
		e.expectListed("bindings of the topic exchange after unbind", func() ([]kombu.BindingInfo, error) { return topic.ListBindings(ctx, ch) },
			row(topic, "#.audit", q))
	}
	e.expectListed("bindings of a queue that does not exist", func() ([]kombu.BindingInfo, error) {
		return kombu.NewQueue(e.name("missing"), kombu.DefaultExchange, "").ListBindings(ctx, e.ch)
	})
	if e.s.features.Headers {
		headers := e.declareExchange(kombu.NewExchange(e.name("headers"), kombu.Headers))
		args := map[string]any{"x-match": "all", "a": "1"}
		if err := q.BindTo(ctx, e.ch, headers, "", args); err != nil {
			e.t.Fatalf("bind to the headers exchange: %v", err)
		}
		bs := e.expectListed("bindings of the headers exchange", func() ([]kombu.BindingInfo, error) { return headers.ListBindings(ctx, e.ch) },
			row(headers, "", q))
		if len(bs) == 1 && fmt.Sprint(bs[0].Args) != fmt.Sprint(args) {
			e.t.Errorf("headers binding listed with arguments %v, want %v", bs[0].Args, args)
		}
	}
}
