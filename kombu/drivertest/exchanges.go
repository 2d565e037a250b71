package drivertest

import (
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

var exchangeCases = []testCase{
	{"Direct", testDirect},
	{"Topic", testTopic},
	{"Fanout", testFanout},
	{"FanoutWithoutConsumers", testFanoutDurable},
	{"Headers", testHeaders},
	{"HeadersInvalidXMatch", testHeadersInvalidXMatch},
	{"DefaultExchange", testDefaultExchange},
	{"SeveralBindings", testSeveralBindings},
	{"Unbind", testUnbind},
	{"RedeclareConflict", testRedeclareConflict},
	{"PassiveMissing", testPassiveMissing},
	{"MissingEntities", testMissingEntities},
	{"ExchangeToExchange", testExchangeToExchange},
	{"AlternateExchange", testAlternateExchange},
	{"InternalExchange", testInternalExchange},
	{"ListBindings", testListBindings},
}

// probeHeader marks the messages subscribe publishes to learn that fanout
// consumers are listening; the receive helpers skip them.
const probeHeader = "x-drivertest-probe"

func isProbe(m *kombu.Message) bool {
	_, ok := m.Headers[probeHeader]
	return ok
}

// subscribe makes sure the consumers of fanout-bound queues are listening
// before the test publishes, for transports whose fanout reaches only live
// subscribers (no Features.DurableFanout): every consumer receives until
// it sees a probe while probes are published every 100 ms.
func (e *env) subscribe(p *kombu.Producer, ex kombu.Exchange, consumers ...*kombu.Consumer) {
	e.t.Helper()
	if e.s.features.DurableFanout {
		return
	}
	ctx, cancel := e.wait()
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range consumers {
		wg.Go(func() {
			for {
				m, err := c.Receive(ctx)
				if err != nil {
					e.t.Errorf("fanout consumer not subscribed: %v", err)
					return
				}
				_ = m.Ack(ctx)
				if isProbe(m) {
					return
				}
				e.t.Errorf("unexpected message %q while subscribing", short(m.Body))
			}
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := p.Publish(ctx, "probe", &kombu.PublishOptions{Exchange: &ex, Headers: map[string]any{probeHeader: true}}); err != nil {
			cancel()
			<-done
			e.t.Fatalf("publish a probe: %v", err)
		}
		select {
		case <-done:
			if e.t.Failed() {
				e.t.FailNow()
			}
			return
		case <-tick.C:
		}
	}
}

// collect receives exactly len(want) messages from c (in any order),
// compares their bodies with want, and later expectNoneAll checks that no
// more arrive.
func (e *env) collect(c *kombu.Consumer, label string, want []string) {
	e.t.Helper()
	got := e.recvBodies(c, len(want))
	slices.Sort(got)
	w := slices.Clone(want)
	slices.Sort(w)
	if !slices.Equal(got, w) {
		e.t.Errorf("%s received %q, want %q", label, got, w)
	}
}

// expectNoneAll runs expectNone on every consumer at once.
func (e *env) expectNoneAll(cs ...*kombu.Consumer) {
	e.t.Helper()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() { e.expectNone(c) })
	}
	wg.Wait()
}

func testDirect(e *env) {
	ex := e.declareExchange(kombu.NewExchange(e.name("x"), kombu.Direct))
	qa := e.declareQueue(kombu.NewQueue(e.name("a"), ex, "a"))
	qb := e.declareQueue(kombu.NewQueue(e.name("b"), ex, "b"))
	ca := e.consumer(nil, []kombu.Queue{qa}, nil)
	cb := e.consumer(nil, []kombu.Queue{qb}, nil)
	p := e.producer(nil, &kombu.ProducerOptions{Exchange: ex})
	for _, rk := range []string{"a", "b", "c", "A", "a.b", "a ", "b"} {
		e.publish(p, "to "+rk, &kombu.PublishOptions{RoutingKey: rk})
	}
	e.collect(ca, "queue bound with key a", []string{"to a"})
	e.collect(cb, "queue bound with key b", []string{"to b", "to b"})
	e.expectNoneAll(ca, cb)
}

func testTopic(e *env) {
	ex := e.declareExchange(kombu.NewExchange(e.name("x"), kombu.Topic))
	keys := []string{"a", "a.b", "a.b.c", "a.b.x.c", "a.c", "x.b.y", "b.y", "z", "q.z", "a.b.z"}
	// AMQP topic semantics: * is exactly one word, # zero or more.
	bindings := []struct {
		pattern string
		want    []string
	}{
		{"a.*.c", []string{"a.b.c"}},
		{"a.#", []string{"a", "a.b", "a.b.c", "a.b.x.c", "a.c", "a.b.z"}},
		{"#", keys},
		{"#.z", []string{"z", "q.z", "a.b.z"}},
		{"*.b.*", []string{"a.b.c", "x.b.y", "a.b.z"}},
		{"a.#.c", []string{"a.b.c", "a.b.x.c", "a.c"}},
		{"a.b", []string{"a.b"}},
		{"*", []string{"a", "z"}},
	}
	consumers := make([]*kombu.Consumer, len(bindings))
	for i, b := range bindings {
		q := e.declareQueue(kombu.NewQueue(e.name("q"+string(rune('0'+i))), ex, b.pattern))
		consumers[i] = e.consumer(nil, []kombu.Queue{q}, nil)
	}
	p := e.producer(nil, &kombu.ProducerOptions{Exchange: ex})
	for _, k := range keys {
		e.publish(p, k, &kombu.PublishOptions{RoutingKey: k})
	}
	for i, b := range bindings {
		e.collect(consumers[i], "queue bound with "+b.pattern, b.want)
	}
	e.expectNoneAll(consumers...)
}

func testFanout(e *env) {
	ex := e.declareExchange(kombu.NewExchange(e.name("x"), kombu.Fanout))
	var consumers []*kombu.Consumer
	for i, rk := range []string{"x", "y", ""} {
		q := e.declareQueue(kombu.NewQueue(e.name("q"+string(rune('0'+i))), ex, rk))
		consumers = append(consumers, e.consumer(nil, []kombu.Queue{q}, nil))
	}
	p := e.producer(nil, &kombu.ProducerOptions{Exchange: ex})
	e.subscribe(p, ex, consumers...)
	e.publish(p, "one", &kombu.PublishOptions{RoutingKey: "k1"})
	e.publish(p, "two", &kombu.PublishOptions{RoutingKey: "unrelated.key"})
	for i, c := range consumers {
		e.collect(c, "fanout queue "+string(rune('0'+i)), []string{"one", "two"})
	}
	e.expectNoneAll(consumers...)
}

// testFanoutDurable publishes to a fanout exchange before any consumer
// exists: with Features.DurableFanout every bound queue keeps its copy.
func testFanoutDurable(e *env) {
	e.require(e.s.features.DurableFanout, "DurableFanout")
	ex := e.declareExchange(kombu.NewExchange(e.name("x"), kombu.Fanout))
	var queues []kombu.Queue
	for i := range 2 {
		queues = append(queues, e.declareQueue(kombu.NewQueue(e.name("q"+string(rune('0'+i))), ex, "")))
	}
	p := e.producer(nil, &kombu.ProducerOptions{Exchange: ex})
	e.publish(p, "early", &kombu.PublishOptions{RoutingKey: "any"})
	for _, q := range queues {
		e.eventuallyLen(q, 1)
	}
	var consumers []*kombu.Consumer
	for _, q := range queues {
		c := e.consumer(nil, []kombu.Queue{q}, nil)
		e.collect(c, "fanout queue "+q.Name, []string{"early"})
		consumers = append(consumers, c)
	}
	e.expectNoneAll(consumers...)
}

func testHeaders(e *env) {
	e.require(e.s.features.Headers, "Headers")
	ex := e.declareExchange(kombu.NewExchange(e.name("x"), kombu.Headers))
	bind := func(suffix string, args map[string]any) *kombu.Consumer {
		q := kombu.NewQueue(e.name(suffix), ex, "")
		q.BindingArguments = args
		return e.consumer(nil, []kombu.Queue{e.declareQueue(q)}, nil)
	}
	all := bind("all", map[string]any{"x-match": "all", "a": "1", "b": "x"})
	anyc := bind("any", map[string]any{"x-match": "any", "a": "1", "b": "x"})
	num := bind("num", map[string]any{"x-match": "all", "n": 5})
	p := e.producer(nil, &kombu.ProducerOptions{Exchange: ex})
	msgs := []struct {
		body    string
		headers map[string]any
	}{
		{"both", map[string]any{"a": "1", "b": "x"}},
		{"only-a", map[string]any{"a": "1"}},
		{"only-b", map[string]any{"b": "x", "c": "z"}},
		{"wrong-values", map[string]any{"a": "2", "b": "y"}},
		{"both-and-more", map[string]any{"a": "1", "b": "x", "extra": "e"}},
		{"n5", map[string]any{"n": 5}},
		{"n6", map[string]any{"n": 6}},
		{"none", nil},
	}
	for i, m := range msgs {
		// The routing key plays no part in a headers exchange.
		e.publish(p, m.body, &kombu.PublishOptions{RoutingKey: "rk" + string(rune('0'+i)), Headers: m.headers})
	}
	e.collect(all, "x-match all", []string{"both", "both-and-more"})
	e.collect(anyc, "x-match any", []string{"both", "only-a", "only-b", "both-and-more"})
	e.collect(num, "integer header", []string{"n5"})
	e.expectNoneAll(all, anyc, num)
}

func testHeadersInvalidXMatch(e *env) {
	e.require(e.s.features.Headers, "Headers")
	ex := e.declareExchange(kombu.NewExchange(e.name("x"), kombu.Headers))
	q := e.simpleQueue("q")
	ctx, cancel := e.wait()
	defer cancel()
	err := q.BindTo(ctx, e.channel(e.conn), ex, "", map[string]any{"x-match": "some", "a": "1"})
	if !errors.Is(err, kombu.ErrPreconditionFailed) {
		e.t.Errorf("bind with x-match \"some\": %v, want ErrPreconditionFailed", err)
	}
}

func testDefaultExchange(e *env) {
	q := e.simpleQueue("q")
	other := e.simpleQueue("other")
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	co := e.consumer(nil, []kombu.Queue{other}, nil)
	p := e.producer(nil, nil)
	e.sendTo(p, q.Name, "hello")
	e.sendTo(p, e.name("no-such-queue"), "lost")
	m := e.recv(c)
	if string(m.Body) != "hello" || m.Exchange != "" || m.RoutingKey != q.Name {
		e.t.Errorf("got body %q exchange %q routing key %q, want %q, \"\", %q", m.Body, m.Exchange, m.RoutingKey, "hello", q.Name)
	}
	e.ack(m)
	e.expectNoneAll(c, co)
}

func testSeveralBindings(e *env) {
	x := e.declareExchange(kombu.NewExchange(e.name("x"), kombu.Direct))
	tx := e.declareExchange(kombu.NewExchange(e.name("t"), kombu.Topic))
	q := kombu.NewQueue(e.name("q"), x, "k1")
	q.Bindings = []kombu.Binding{{Exchange: x, RoutingKey: "k2"}, {Exchange: tx, RoutingKey: "t.#"}}
	q = e.declareQueue(q)
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	p := e.producer(nil, &kombu.ProducerOptions{Exchange: x})
	for _, rk := range []string{"k1", "k2", "k3"} {
		e.publish(p, "x/"+rk, &kombu.PublishOptions{RoutingKey: rk})
	}
	for _, rk := range []string{"t.a", "u.a", "t"} {
		e.publish(p, "t/"+rk, &kombu.PublishOptions{RoutingKey: rk, Exchange: &tx})
	}
	e.collect(c, "queue with three bindings", []string{"x/k1", "x/k2", "t/t.a", "t/t"})
	e.expectNone(c)
}

func testUnbind(e *env) {
	x := e.declareExchange(kombu.NewExchange(e.name("x"), kombu.Direct))
	q := kombu.NewQueue(e.name("q"), x, "k1")
	q.Bindings = []kombu.Binding{{Exchange: x, RoutingKey: "k2"}}
	q = e.declareQueue(q)
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	p := e.producer(nil, &kombu.ProducerOptions{Exchange: x})
	e.publish(p, "before", &kombu.PublishOptions{RoutingKey: "k2"})
	e.collect(c, "bound queue", []string{"before"})
	ctx, cancel := e.wait()
	defer cancel()
	if err := q.UnbindFrom(ctx, e.ch, x, "k2", nil); err != nil {
		e.t.Fatalf("unbind: %v", err)
	}
	e.publish(p, "after-k2", &kombu.PublishOptions{RoutingKey: "k2"})
	e.publish(p, "after-k1", &kombu.PublishOptions{RoutingKey: "k1"})
	e.collect(c, "queue after unbinding k2", []string{"after-k1"})
	e.expectNone(c)
}

func testRedeclareConflict(e *env) {
	name := e.name("x")
	e.declareExchange(kombu.NewExchange(name, kombu.Direct))
	ctx, cancel := e.wait()
	defer cancel()
	// Same attributes: fine.
	if err := kombu.NewExchange(name, kombu.Direct).Declare(ctx, e.channel(e.conn)); err != nil {
		e.t.Errorf("redeclare with the same type: %v", err)
	}
	err := kombu.NewExchange(name, kombu.Fanout).Declare(ctx, e.channel(e.conn))
	if !errors.Is(err, kombu.ErrPreconditionFailed) {
		e.t.Errorf("redeclare direct exchange as fanout: %v, want ErrPreconditionFailed", err)
	}
	// The exchange is unchanged and still routes as direct.
	q := e.declareQueue(kombu.NewQueue(e.name("q"), kombu.NewExchange(name, kombu.Direct), "k"))
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	x := kombu.NewExchange(name, kombu.Direct)
	p := e.producer(nil, &kombu.ProducerOptions{Exchange: x})
	e.publish(p, "other", &kombu.PublishOptions{RoutingKey: "other"})
	e.publish(p, "k", &kombu.PublishOptions{RoutingKey: "k"})
	e.collect(c, "queue of the redeclared exchange", []string{"k"})
	e.expectNone(c)
}

func testPassiveMissing(e *env) {
	ctx, cancel := e.wait()
	defer cancel()
	x := kombu.Exchange{Name: e.name("missing-x"), Type: kombu.Direct, Passive: true}
	if err := x.Declare(ctx, e.channel(e.conn)); !errors.Is(err, kombu.ErrNotFound) {
		e.t.Errorf("passive declare of a missing exchange: %v, want ErrNotFound", err)
	}
	q := kombu.Queue{Name: e.name("missing-q"), Passive: true}
	if _, err := q.Declare(ctx, e.channel(e.conn)); !errors.Is(err, kombu.ErrNotFound) {
		e.t.Errorf("passive declare of a missing queue: %v, want ErrNotFound", err)
	}
	if _, err := q.Len(ctx, e.channel(e.conn)); !errors.Is(err, kombu.ErrNotFound) {
		e.t.Errorf("Len of a missing queue: %v, want ErrNotFound", err)
	}
	// Passive declares of existing entities succeed and create nothing.
	real := e.declareExchange(kombu.NewExchange(e.name("x"), kombu.Direct))
	real.Passive = true
	if err := real.Declare(ctx, e.ch); err != nil {
		e.t.Errorf("passive declare of an existing exchange: %v", err)
	}
	rq := e.simpleQueue("q")
	rq.Passive = true
	if _, err := rq.Declare(ctx, e.ch); err != nil {
		e.t.Errorf("passive declare of an existing queue: %v", err)
	}
	if _, err := q.Declare(ctx, e.channel(e.conn)); !errors.Is(err, kombu.ErrNotFound) {
		e.t.Errorf("a failed passive declare created queue %q: %v", q.Name, err)
	}
}

// testMissingEntities checks that operations on queues and exchanges that
// do not exist fail with ErrNotFound (AMQP 404) and create nothing.
func testMissingEntities(e *env) {
	ctx, cancel := e.wait()
	defer cancel()
	q := kombu.Queue{Name: e.name("missing-q"), NoDeclare: true}
	x := kombu.Exchange{Name: e.name("missing-x"), Type: kombu.Direct, NoDeclare: true}
	real := e.simpleQueue("q")
	realX := e.declareExchange(kombu.NewExchange(e.name("x"), kombu.Direct))
	check := func(what string, err error) {
		e.t.Helper()
		if !errors.Is(err, kombu.ErrNotFound) {
			e.t.Errorf("%s: %v, want ErrNotFound", what, err)
		}
	}
	_, err := q.Get(ctx, e.channel(e.conn), false, nil)
	check("get from a missing queue", err)
	_, err = q.Purge(ctx, e.channel(e.conn))
	check("purge of a missing queue", err)
	_, err = e.conn.Consumer(ctx, []kombu.Queue{q}, nil)
	check("consume from a missing queue", err)
	check("bind a missing queue", q.BindTo(ctx, e.channel(e.conn), realX, "k", nil))
	check("bind to a missing exchange", real.BindTo(ctx, e.channel(e.conn), x, "k", nil))
	if e.s.features.SharedState {
		// Without shared state a connection cannot know whether another
		// one declared the exchange; with it, publishing fails.
		p := e.producer(nil, &kombu.ProducerOptions{Exchange: x})
		check("publish to a missing exchange", p.Publish(ctx, "x", &kombu.PublishOptions{RoutingKey: "k"}))
	}
	if _, err := (kombu.Queue{Name: q.Name, Passive: true}).Declare(ctx, e.channel(e.conn)); !errors.Is(err, kombu.ErrNotFound) {
		e.t.Errorf("a failed operation created queue %q: %v", q.Name, err)
	}
	if err := (kombu.Exchange{Name: x.Name, Passive: true}).Declare(ctx, e.channel(e.conn)); !errors.Is(err, kombu.ErrNotFound) {
		e.t.Errorf("a failed operation created exchange %q: %v", x.Name, err)
	}
}

func testExchangeToExchange(e *env) {
	src := e.declareExchange(kombu.NewExchange(e.name("src"), kombu.Direct))
	dst := e.declareExchange(kombu.NewExchange(e.name("dst"), kombu.Topic))
	ctx, cancel := e.wait()
	defer cancel()
	err := dst.BindTo(ctx, e.ch, src, "k", nil)
	if !e.s.features.ExchangeBinding {
		if !errors.Is(err, kombu.ErrNotSupported) {
			e.t.Errorf("exchange binding on a transport without Features.ExchangeBinding: %v, want ErrNotSupported", err)
		}
		return
	}
	if err != nil {
		e.t.Fatalf("exchange bind: %v", err)
	}
	q := e.declareQueue(kombu.NewQueue(e.name("q"), dst, "#"))
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	p := e.producer(nil, &kombu.ProducerOptions{Exchange: src})
	e.publish(p, "k", &kombu.PublishOptions{RoutingKey: "k"})
	e.publish(p, "other", &kombu.PublishOptions{RoutingKey: "other"})
	e.collect(c, "queue behind an exchange binding", []string{"k"})
	if err := dst.UnbindFrom(ctx, e.ch, src, "k", nil); err != nil {
		e.t.Fatalf("exchange unbind: %v", err)
	}
	e.publish(p, "after unbind", &kombu.PublishOptions{RoutingKey: "k"})
	e.expectNone(c)
}

func testAlternateExchange(e *env) {
	ae := e.declareExchange(kombu.NewExchange(e.name("ae"), kombu.Topic))
	x := kombu.NewExchange(e.name("x"), kombu.Direct)
	x.Arguments = map[string]any{"alternate-exchange": ae.Name}
	x = e.declareExchange(x)
	q := e.declareQueue(kombu.NewQueue(e.name("q"), x, "k"))
	qa := e.declareQueue(kombu.NewQueue(e.name("unrouted"), ae, "#"))
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	ca := e.consumer(nil, []kombu.Queue{qa}, nil)
	p := e.producer(nil, &kombu.ProducerOptions{Exchange: x})
	e.publish(p, "routed", &kombu.PublishOptions{RoutingKey: "k"})
	e.publish(p, "unrouted", &kombu.PublishOptions{RoutingKey: "elsewhere"})
	e.collect(c, "bound queue", []string{"routed"})
	m := e.recv(ca)
	if string(m.Body) != "unrouted" || m.RoutingKey != "elsewhere" {
		e.t.Errorf("alternate exchange got %q with routing key %q, want \"unrouted\", \"elsewhere\"", m.Body, m.RoutingKey)
	}
	e.ack(m)
	e.expectNoneAll(c, ca)
}

// testInternalExchange checks that a client cannot publish to an internal
// exchange (RabbitMQ: 403 ACCESS_REFUSED); only other exchanges route to it.
func testInternalExchange(e *env) {
	x := kombu.NewExchange(e.name("internal"), kombu.Direct)
	x.Internal = true
	x = e.declareExchange(x)
	q := e.declareQueue(kombu.NewQueue(e.name("q"), x, "k"))
	c := e.consumer(nil, []kombu.Queue{q}, nil)
	// The producer has a channel of its own, which the refusal may close.
	p := e.producer(nil, &kombu.ProducerOptions{Exchange: x, NoDeclare: true})
	ctx, cancel := e.wait()
	defer cancel()
	if err := p.Publish(ctx, "direct to internal", &kombu.PublishOptions{RoutingKey: "k"}); !errors.Is(err, kombu.ErrAccessRefused) {
		e.t.Errorf("publish to an internal exchange: %v, want ErrAccessRefused", err)
	}
	e.expectNone(c)
}
