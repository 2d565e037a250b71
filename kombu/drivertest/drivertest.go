// Package drivertest is the conformance suite that every kombu transport
// runs. It drives the user-facing API of package kombu (Connection,
// Producer, Consumer, Queue, Exchange, Message) against a live broker, so
// that the portable logic of package kombu is exercised together with the
// transport, and checks concrete values: which queue got which message, in
// what order, with which properties, how often.
//
// A transport's conformance_test.go points the suite at its broker:
//
//	func TestConformance(t *testing.T) {
//		drivertest.RunConformanceTests(t, drivertest.Harness{URL: "memory://conformance"})
//	}
//
// # What it covers
//
// Routing (direct, topic, fanout, headers, default, alternate and internal
// exchanges, several bindings, unbinding, exchange-to-exchange bindings,
// redeclare conflicts, passive declares), settlement (ack, reject,
// requeue, double and concurrent settling, settling after the channel
// closed or the connection reconnected, unknown delivery tags, recover,
// the order of messages handed back together by a close or Recover),
// prefetch, priorities, message properties and headers (gocloud-style
// weird strings, non-UTF-8 refused at Publish), bodies, serializers and
// compression, entity management (purge, delete, auto-delete, exclusive,
// server-named queues, SimpleQueue, SimpleBuffer), cancel and flow, close
// semantics, contexts, handler semantics, concurrency under -race, bad
// input (undecodable bodies, messages the transport itself cannot decode
// pushed with the broker's own client, refused content types, unknown serializers
// and compression, decompression bombs, invalid names), TTL and
// dead-lettering, pools, and the trace context headers an Observer adds.
//
// # Adapting to transports
//
// The suite reads the transport's driver.Features (or Harness.Features) and
// adapts: a case that needs a capability the transport declares it lacks is
// skipped with a message naming the feature (Features.Headers,
// Features.TTL, Features.Mandatory, Features.Priority,
// Features.QueueLimits, Features.DurableFanout); priority order follows
// Features.Priority and Features.PriorityLevels; without
// Features.ExchangeBinding, Leases, ListBindings or SharedState the suite checks that
// the operation is refused with ErrNotSupported, or skips only the
// cross-connection part. Fanout to a queue with no live consumer is only
// expected with Features.DurableFanout; otherwise every fanout test starts
// its consumers first and publishes probes until they are subscribed.
//
// # Test hygiene
//
// Every case calls t.Parallel, uses entity names derived from t.Name plus
// a random suffix (at most 200 bytes, only [A-Za-z0-9._-]), deletes the
// queues and exchanges it declared in t.Cleanup, and bounds every wait with
// a context: waits for a message use Harness.Timeout, and the only fixed
// waits check for a negative ("nothing more arrives within 300 ms") or
// let a short message TTL pass.
//
// # Invalid names
//
// Every transport checks each queue name, exchange name, routing key and
// consumer tag with driver.ValidateName before any I/O (at most 255 bytes,
// valid UTF-8) and returns its error, which wraps kombu.ErrInvalidArgument
// (Portability/InvalidNames). LongNames also accepts
// kombu.ErrPreconditionFailed for a broker that only refuses long names on
// the server side.
//
// # Messages with no content type
//
// A message from a foreign producer with no content type is
// application/data: always accepted, its body handed over as is. As in
// kombu, Message.Payload returns the bytes when the content encoding is
// binary and otherwise decodes the charset (UTF-8 when none is given), so
// a non-UTF-8 body with no encoding at all is a decode error.
package drivertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"

	// The suite checks every format Python kombu speaks.
	_ "github.com/kombu-go/kombu/kombu/codec/all"
)

// Harness says which broker the suite runs against.
type Harness struct {
	// URL is dialed by the tests; each test may open several connections
	// to it, and they must all see the same queues and exchanges.
	URL string
	// Options are the connection options (nil: defaults). Tests that need
	// a setting of their own (MaxDecompressedSize, ErrorHandler) copy them.
	Options *kombu.Options
	// Features overrides what the transport declares (nil:
	// Connection.Features).
	Features *driver.Features
	// Timeout bounds each wait for an asynchronous delivery; 0 means 10 s.
	Timeout time.Duration
	// PushUndecodable, when set, puts into queue, with the broker's own
	// client, messages that the transport cannot decode (list elements
	// that are not kombu envelopes on redis, ...) and returns how many.
	// The suite checks that each one reaches the decode error path and is
	// dead-lettered, never dropped. Transports whose queues cannot hold
	// such messages (memory) leave it nil.
	PushUndecodable func(ctx context.Context, queue string) (int, error)
}

// negativeWait is how long the suite waits to conclude that nothing more
// arrives.
const negativeWait = 300 * time.Millisecond

// maxNameLen is the longest entity name the suite generates.
const maxNameLen = 200

// suite is the state shared by every case of one run.
type suite struct {
	h         Harness
	features  driver.Features
	transport string
	userID    string
}

type testCase struct {
	name string
	fn   func(e *env)
}

type group struct {
	name  string
	cases []testCase
}

// RunConformanceTests runs the whole suite against h.
func RunConformanceTests(t *testing.T, h Harness) {
	t.Helper()
	if h.URL == "" {
		t.Fatal("drivertest: Harness.URL is empty")
	}
	if h.Timeout <= 0 {
		h.Timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.Timeout)
	defer cancel()
	conn, err := kombu.Dial(ctx, h.URL, h.Options)
	if err != nil {
		t.Fatalf("drivertest: dial %s: %v", h.URL, err)
	}
	s := &suite{h: h, transport: conn.TransportName(), userID: conn.Info().UserID}
	if h.Features != nil {
		s.features = *h.Features
	} else {
		s.features = conn.Features()
	}
	if err := conn.Close(); err != nil {
		t.Fatalf("drivertest: close the probe connection: %v", err)
	}
	groups := []group{
		{"ExchangeTypes", exchangeCases},
		{"Settlement", settlementCases},
		{"Prefetch", prefetchCases},
		{"Priority", priorityCases},
		{"Properties", propertyCases},
		{"Entities", entityCases},
		{"Cancel", cancelCases},
		{"Close", closeCases},
		{"Context", contextCases},
		{"Handlers", handlerCases},
		{"Redelivery", redeliveryCases},
		{"Concurrency", concurrencyCases},
		{"BadInput", badInputCases},
		{"Portability", portabilityCases},
		{"TTL", ttlCases},
		{"Pools", poolCases},
		{"Heal", healCases},
		{"Observability", observabilityCases},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) {
					c.fn(s.begin(t))
				})
			}
		})
	}
}

// env is one test's connection, names and cleanup.
type env struct {
	t    *testing.T
	s    *suite
	ctx  context.Context // bounds the whole test
	id   string          // unique prefix of the test's entity names
	conn *kombu.Connection
	ch   *kombu.Channel

	mu        sync.Mutex
	queues    []string
	exchanges []string
}

// begin marks t parallel and opens its first connection and channel.
func (s *suite) begin(t *testing.T) *env {
	t.Parallel()
	e := &env{t: t, s: s, id: uniqueID(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 6*s.h.Timeout)
	e.ctx = ctx
	// Cleanups run last-registered first: the entities are deleted after
	// every connection of the test is closed, and the context ends last.
	t.Cleanup(cancel)
	t.Cleanup(e.deleteEntities)
	e.conn = e.dial(nil)
	e.ch = e.channel(e.conn)
	return e
}

// uniqueID turns t.Name into an entity-name prefix with a random suffix.
func uniqueID(t *testing.T) string {
	name := t.Name()
	if i := strings.IndexByte(name, '/'); i >= 0 {
		name = name[i+1:] // drop the transport's top-level test name
	}
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('.')
		}
	}
	s := b.String()
	if len(s) > 120 {
		s = s[:120]
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	return "kombu-go." + s + "-" + hex.EncodeToString(rnd[:])
}

// name returns a unique entity name for this test.
func (e *env) name(suffix string) string {
	e.t.Helper()
	n := e.id + "." + suffix
	if len(n) > maxNameLen {
		e.t.Fatalf("drivertest: generated name %q is %d bytes long", n, len(n))
	}
	return n
}

// wait returns a context for one wait on the broker.
func (e *env) wait() (context.Context, context.CancelFunc) {
	return context.WithTimeout(e.ctx, e.s.h.Timeout)
}

// options returns a copy of the harness options.
func (e *env) options() kombu.Options {
	if e.s.h.Options != nil {
		return *e.s.h.Options
	}
	return kombu.Options{}
}

// dial opens another connection, closed at cleanup.
func (e *env) dial(opts *kombu.Options) *kombu.Connection {
	e.t.Helper()
	if opts == nil {
		opts = e.s.h.Options
	}
	ctx, cancel := e.wait()
	defer cancel()
	conn, err := kombu.Dial(ctx, e.s.h.URL, opts)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	e.t.Cleanup(func() {
		if err := conn.Close(); err != nil {
			e.t.Errorf("connection close: %v", err)
		}
	})
	return conn
}

func (e *env) channel(conn *kombu.Connection) *kombu.Channel {
	e.t.Helper()
	ctx, cancel := e.wait()
	defer cancel()
	ch, err := conn.Channel(ctx)
	if err != nil {
		e.t.Fatalf("channel: %v", err)
	}
	return ch
}

// remember records entity names to delete at cleanup.
func (e *env) remember(q kombu.Queue) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if q.Name != "" {
		e.queues = append(e.queues, q.Name)
	}
	if q.Exchange.Name != "" {
		e.exchanges = append(e.exchanges, q.Exchange.Name)
	}
	for _, b := range q.Bindings {
		if b.Exchange.Name != "" {
			e.exchanges = append(e.exchanges, b.Exchange.Name)
		}
	}
}

func (e *env) rememberExchange(name string) {
	e.mu.Lock()
	e.exchanges = append(e.exchanges, name)
	e.mu.Unlock()
}

// deleteEntities deletes what the test declared, on a fresh connection.
func (e *env) deleteEntities() {
	e.mu.Lock()
	queues, exchanges := e.queues, e.exchanges
	e.mu.Unlock()
	if len(queues) == 0 && len(exchanges) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.s.h.Timeout)
	defer cancel()
	conn, err := kombu.Dial(ctx, e.s.h.URL, e.s.h.Options)
	if err != nil {
		e.t.Errorf("cleanup: dial: %v", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel(ctx)
	if err != nil {
		e.t.Errorf("cleanup: channel: %v", err)
		return
	}
	seen := map[string]bool{}
	for _, q := range queues {
		if seen["q"+q] {
			continue
		}
		seen["q"+q] = true
		if _, err := (kombu.Queue{Name: q}).Delete(ctx, ch, false, false); err != nil {
			e.t.Errorf("cleanup: delete queue %q: %v", q, err)
		}
	}
	for _, x := range exchanges {
		if seen["x"+x] || strings.HasPrefix(x, "amq.") {
			continue
		}
		seen["x"+x] = true
		if err := (kombu.Exchange{Name: x}).Delete(ctx, ch, false); err != nil {
			e.t.Errorf("cleanup: delete exchange %q: %v", x, err)
		}
	}
}

// declareQueue declares q on the test's channel and returns it.
func (e *env) declareQueue(q kombu.Queue) kombu.Queue {
	e.t.Helper()
	e.remember(q)
	ctx, cancel := e.wait()
	defer cancel()
	if _, err := q.Declare(ctx, e.ch); err != nil {
		e.t.Fatalf("declare queue %q: %v", q.Name, err)
	}
	return q
}

// declareExchange declares x on the test's channel and returns it.
func (e *env) declareExchange(x kombu.Exchange) kombu.Exchange {
	e.t.Helper()
	e.rememberExchange(x.Name)
	ctx, cancel := e.wait()
	defer cancel()
	if err := x.Declare(ctx, e.ch); err != nil {
		e.t.Fatalf("declare exchange %q: %v", x.Name, err)
	}
	return x
}

// simpleQueue declares a durable queue with no exchange of its own
// (reached through the default exchange).
func (e *env) simpleQueue(suffix string) kombu.Queue {
	e.t.Helper()
	return e.declareQueue(kombu.NewQueue(e.name(suffix), kombu.DefaultExchange, ""))
}

// producer opens a producer on conn (nil: the test's connection).
func (e *env) producer(conn *kombu.Connection, opts *kombu.ProducerOptions) *kombu.Producer {
	e.t.Helper()
	if conn == nil {
		conn = e.conn
	}
	if opts != nil && opts.Exchange.Name != "" {
		e.rememberExchange(opts.Exchange.Name)
	}
	ctx, cancel := e.wait()
	defer cancel()
	p, err := conn.Producer(ctx, opts)
	if err != nil {
		e.t.Fatalf("producer: %v", err)
	}
	e.t.Cleanup(func() { _ = p.Close() })
	return p
}

// publish publishes body and fails the test on error.
func (e *env) publish(p *kombu.Producer, body any, opts *kombu.PublishOptions) {
	e.t.Helper()
	ctx, cancel := e.wait()
	defer cancel()
	if err := p.Publish(ctx, body, opts); err != nil {
		e.t.Fatalf("publish %v: %v", short(body), err)
	}
}

// sendTo publishes text bodies to queue through the default exchange.
func (e *env) sendTo(p *kombu.Producer, queue string, bodies ...string) {
	e.t.Helper()
	for _, b := range bodies {
		e.publish(p, b, &kombu.PublishOptions{RoutingKey: queue})
	}
}

// consumer opens a consumer on conn (nil: a new channel of the test's
// connection), closed at cleanup.
func (e *env) consumer(conn *kombu.Connection, queues []kombu.Queue, opts *kombu.ConsumerOptions) *kombu.Consumer {
	e.t.Helper()
	if conn == nil {
		conn = e.conn
	}
	for _, q := range queues {
		e.remember(q)
	}
	ctx, cancel := e.wait()
	defer cancel()
	c, err := conn.Consumer(ctx, queues, opts)
	if err != nil {
		e.t.Fatalf("consumer: %v", err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

// recv receives one message within Harness.Timeout. Fanout probes (see
// subscribe) are acked and skipped.
func (e *env) recv(c *kombu.Consumer) *kombu.Message {
	e.t.Helper()
	ctx, cancel := e.wait()
	defer cancel()
	for {
		m, err := c.Receive(ctx)
		if err != nil {
			e.t.Fatalf("receive: %v", err)
		}
		if !isProbe(m) {
			return m
		}
		_ = m.Ack(ctx)
	}
}

// recvAck receives one message, acks it and returns its body.
func (e *env) recvAck(c *kombu.Consumer) string {
	e.t.Helper()
	m := e.recv(c)
	e.ack(m)
	return string(m.Body)
}

// recvBodies receives n messages, acking them, and returns their bodies.
func (e *env) recvBodies(c *kombu.Consumer, n int) []string {
	e.t.Helper()
	out := make([]string, 0, n)
	for range n {
		out = append(out, e.recvAck(c))
	}
	return out
}

func (e *env) ack(m *kombu.Message) {
	e.t.Helper()
	ctx, cancel := e.wait()
	defer cancel()
	if err := m.Ack(ctx); err != nil {
		e.t.Fatalf("ack: %v", err)
	}
}

// expectNone checks that nothing arrives on c within negativeWait.
func (e *env) expectNone(c *kombu.Consumer) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, negativeWait)
	defer cancel()
	m, err := c.Receive(ctx)
	for err == nil && isProbe(m) {
		_ = m.Ack(ctx)
		m, err = c.Receive(ctx)
	}
	if err == nil {
		e.t.Errorf("unexpected message %q from queue %q (redelivered %t)", short(m.Body), m.Queue, m.Redelivered)
		_ = m.Ack(e.ctx)
		return
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		e.t.Errorf("receive while expecting nothing: %v, want context.DeadlineExceeded", err)
	}
}

// queueLen returns q's ready-message count.
func (e *env) queueLen(q kombu.Queue) int {
	e.t.Helper()
	ctx, cancel := e.wait()
	defer cancel()
	n, err := q.Len(ctx, e.ch)
	if err != nil {
		e.t.Fatalf("len of %q: %v", q.Name, err)
	}
	return n
}

// eventuallyLen waits until q holds want ready messages, for transports
// whose counts lag a little behind.
func (e *env) eventuallyLen(q kombu.Queue, want int) {
	e.t.Helper()
	deadline := time.Now().Add(e.s.h.Timeout)
	for {
		n := e.queueLen(q)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Errorf("queue %q holds %d ready messages, want %d", q.Name, n, want)
			return
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-e.ctx.Done():
			e.t.Fatalf("queue %q holds %d ready messages, want %d: %v", q.Name, n, want, e.ctx.Err())
		}
	}
}

// require skips the test when the transport declares it lacks a feature.
func (e *env) require(has bool, feature string) {
	e.t.Helper()
	if !has {
		e.t.Skipf("transport %q lacks Features.%s", e.s.transport, feature)
	}
}

// waitFor waits for a signal on ch within Harness.Timeout.
func (e *env) waitFor(ch <-chan struct{}, what string) {
	e.t.Helper()
	ctx, cancel := e.wait()
	defer cancel()
	select {
	case <-ch:
	case <-ctx.Done():
		e.t.Fatalf("timed out waiting for %s", what)
	}
}

// eventually polls cond until it holds or Harness.Timeout passes.
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(e.s.h.Timeout)
	for !cond() {
		if time.Now().After(deadline) || e.ctx.Err() != nil {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// isInvalidName reports whether err is how a transport refuses a name.
func isInvalidName(err error) bool {
	return errors.Is(err, kombu.ErrInvalidArgument) || errors.Is(err, kombu.ErrPreconditionFailed)
}

// short formats a body for messages, truncated.
func short(v any) string {
	var s string
	switch x := v.(type) {
	case []byte:
		s = string(x)
	case string:
		s = x
	default:
		return "(value)"
	}
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
