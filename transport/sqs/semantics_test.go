package sqs

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

// emulator dials the fauxqs emulator with extra URL options and returns
// the connection and a unique queue name.
func emulator(t *testing.T, extra string) (*kombu.Connection, string) {
	t.Helper()
	raw := testenv.ServerURL(t, testURLVar) + extra
	conn := dialInterop(t, raw)
	return conn, fmt.Sprintf("sem.%s.%08x", strings.ReplaceAll(t.Name(), "/", "."), rand.Uint32())
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// A requeue is ChangeMessageVisibility 0: the message comes back at once,
// and its delivery count is SQS's receive count.
func TestRequeueCountsReceives(t *testing.T) {
	conn, name := emulator(t, "")
	ctx := ctxT(t, 20*time.Second)
	sq, err := conn.SimpleQueue(ctx, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sq.Put(ctx, "again", nil); err != nil {
		t.Fatal(err)
	}
	for want := 1; want <= 3; want++ {
		m, err := sq.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.DeliveryCount() != want || m.Redelivered != (want > 1) {
			t.Fatalf("delivery %d: count %d, redelivered %v", want, m.DeliveryCount(), m.Redelivered)
		}
		if want < 3 {
			err = m.Requeue(ctx)
		} else {
			err = m.Ack(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// callCounter counts SQS API calls by action (X-Amz-Target).
type callCounter struct {
	mu    sync.Mutex
	calls map[string]int
	next  http.RoundTripper
}

func (c *callCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	action := r.Header.Get("X-Amz-Target")
	action = action[strings.LastIndexByte(action, '.')+1:]
	c.mu.Lock()
	c.calls[action]++
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

func (c *callCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = map[string]int{}
	return out
}

// countedChannel opens a virtual channel over a store whose SDK client
// counts its calls.
func countedChannel(t *testing.T, extra string) (driver.Channel, *Store, *callCounter) {
	t.Helper()
	o := testOptions(t, testenv.ServerURL(t, testURLVar)+extra)
	cc := &callCounter{calls: map[string]int{}, next: http.DefaultTransport}
	client := sqs.New(sqs.Options{Region: o.Region, BaseEndpoint: aws.String(o.EndpointURL),
		Credentials: credentials.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretAccessKey, ""),
		HTTPClient:  &http.Client{Transport: cc}})
	s := newStore(o, client)
	conn := virtual.NewConn(s)
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ch, s, cc
}

func publishings(q string, n int) []*driver.Publishing {
	ps := make([]*driver.Publishing, n)
	for i := range ps {
		ps[i] = &driver.Publishing{RoutingKey: q, Message: driver.Message{Body: []byte(strconv.Itoa(i)), ContentType: "text/plain"}}
	}
	return ps
}

// receiveN receives exactly n deliveries (or fails after 10 s).
func receiveN(t *testing.T, ch driver.Channel, n int) []*driver.Delivery {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	var out []*driver.Delivery
	for len(out) < n {
		ds, err := ch.Receive(ctx, n-len(out))
		if err != nil {
			t.Fatalf("receive after %d of %d: %v", len(out), n, err)
		}
		out = append(out, ds...)
	}
	return out
}

// Several messages at hand go 10 per call: 25 published in one batch are
// 3 SendMessageBatch calls, received 10 at a time, acked with 3
// DeleteMessageBatch calls; 25 unacked at Close are 3
// ChangeMessageVisibilityBatch calls, and visible again at once.
func TestBatchesOfTen(t *testing.T) {
	ch, _, cc := countedChannel(t, "")
	ctx := ctxT(t, 30*time.Second)
	q := fmt.Sprintf("batch.%08x", rand.Uint32())
	if _, err := ch.QueueDeclare(ctx, driver.Queue{Name: q}); err != nil {
		t.Fatal(err)
	}
	cc.take()
	if err := ch.(driver.BatchPublisher).PublishBatch(ctx, publishings(q, 25)); err != nil {
		t.Fatal(err)
	}
	if got := cc.take(); got["SendMessageBatch"] != 3 || got["SendMessage"] != 0 {
		t.Errorf("publishing 25: %v, want 3 SendMessageBatch", got)
	}
	_ = ch.Qos(ctx, 0)
	if err := ch.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "c"}); err != nil {
		t.Fatal(err)
	}
	ds := receiveN(t, ch, 25)
	if got := cc.take(); got["ReceiveMessage"] > 4 {
		t.Errorf("receiving 25: %v, want 3-4 ReceiveMessage", got)
	}
	if err := ch.Ack(ctx, ds[len(ds)-1].Tag, true); err != nil {
		t.Fatal(err)
	}
	if got := cc.take(); got["DeleteMessageBatch"] != 3 || got["DeleteMessage"] != 0 {
		t.Errorf("acking 25 at once: %v, want 3 DeleteMessageBatch", got)
	}

	if err := ch.(driver.BatchPublisher).PublishBatch(ctx, publishings(q, 25)); err != nil {
		t.Fatal(err)
	}
	receiveN(t, ch, 25)
	cc.take()
	start := time.Now()
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if got := cc.take(); got["ChangeMessageVisibilityBatch"] != 3 || got["ChangeMessageVisibility"] != 0 {
		t.Errorf("closing with 25 unacked: %v, want 3 ChangeMessageVisibilityBatch", got)
	}
	// Visible again at once, not after the 30 min visibility timeout.
	ch2, _, _ := countedChannel(t, "")
	if err := ch2.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "c2"}); err != nil {
		t.Fatal(err)
	}
	back := receiveN(t, ch2, 25)
	for _, d := range back {
		if !d.Redelivered {
			t.Errorf("message %s back after Close not marked redelivered", d.Body)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("messages back %v after Close", d)
	}
	_ = ch2.Ack(ctx, 0, true)
}

// ExtendLease keeps a message from coming back after the queue's
// visibility timeout (1 s here) while its handler runs.
func TestLeaseExtension(t *testing.T) {
	ch, _, cc := countedChannel(t, "&visibility_timeout=1")
	ctx := ctxT(t, 30*time.Second)
	q := fmt.Sprintf("lease.%08x", rand.Uint32())
	if _, err := ch.QueueDeclare(ctx, driver.Queue{Name: q}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish(ctx, publishings(q, 1)[0]); err != nil {
		t.Fatal(err)
	}
	if err := ch.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "c"}); err != nil {
		t.Fatal(err)
	}
	d := receiveN(t, ch, 1)[0]
	cc.take()
	if err := ch.(driver.LeaseExtender).ExtendLease(ctx, d.Tag, 4*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := cc.take(); got["ChangeMessageVisibility"] != 1 {
		t.Errorf("extend lease: %v", got)
	}
	other, _, _ := countedChannel(t, "")
	if err := other.Consume(ctx, driver.ConsumeArgs{Queue: q, ConsumerTag: "other"}); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 2500*time.Millisecond)
	defer cancel()
	for rctx.Err() == nil {
		if ds, _ := other.Receive(rctx, 1); len(ds) > 0 {
			t.Fatalf("message delivered again %s while its lease was extended", ds[0].Body)
		}
	}
	if err := ch.Ack(ctx, d.Tag, false); err != nil {
		t.Fatal(err)
	}
	if err := ch.(driver.LeaseExtender).ExtendLease(ctx, d.Tag, 0); err == nil {
		t.Error("extending the lease of an acked delivery succeeded")
	}
}

// Queue arguments set SQS's redrive policy: after 2 receives, SQS itself
// moves the message to the dead-letter queue.
func TestRedrivePolicyFromQueueArguments(t *testing.T) {
	conn, name := emulator(t, "")
	ctx := ctxT(t, 30*time.Second)
	ch, err := conn.Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dlqName := name + ".dlq"
	q := kombu.NewQueue(name, kombu.DefaultExchange, name)
	q.Arguments = map[string]any{ArgDeadLetterQueue: dlqName, ArgMaxReceiveCount: 2}
	if _, err := q.Declare(ctx, ch); err != nil {
		t.Fatal(err)
	}
	bad := kombu.NewQueue(name+".bad", kombu.DefaultExchange, name)
	bad.Arguments = map[string]any{ArgMaxReceiveCount: 2}
	if _, err := bad.Declare(ctx, ch); !errors.Is(err, kombu.ErrInvalidArgument) {
		t.Errorf("max receive count without a dead-letter queue: %v, want ErrInvalidArgument", err)
	}
	sq, err := conn.SimpleQueue(ctx, name, &kombu.SimpleQueueOptions{Queue: &q})
	if err != nil {
		t.Fatal(err)
	}
	if err := sq.Put(ctx, "doomed", nil); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		m, err := sq.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Requeue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// SQS moves it on the receive that would be the third.
	short, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	if m, err := sq.Get(short); err == nil {
		t.Fatalf("a third delivery of %s from the source queue", m.Body)
	}
	dlq, err := conn.SimpleQueue(ctx, dlqName, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := dlq.Get(ctx)
	if err != nil {
		t.Fatalf("dead-letter queue: %v", err)
	}
	if p, _ := m.Payload(); p != "doomed" {
		t.Errorf("dead-letter queue holds %v", p)
	}
	_ = m.Ack(ctx)
	if n, _ := sq.Len(ctx); n != 0 {
		t.Errorf("source queue holds %d", n)
	}
}

// kombu's backoff_policy on a predefined queue: a requeue of a message
// received once keeps it invisible for the policy's 2 s instead of 0.
func TestBackoffPolicy(t *testing.T) {
	raw := testenv.ServerURL(t, testURLVar)
	s := openStore(t, raw)
	ctx := ctxT(t, 30*time.Second)
	name := fmt.Sprintf("backoff-%08x", rand.Uint32())
	u, err := s.createQueue(ctx, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Delete(context.Background(), name) })
	pq := fmt.Sprintf(`{%q: {"url": %q, "backoff_policy": {"1": 2}, "backoff_tasks": ["tasks.slow"]}}`, name, u)
	conn := dialInterop(t, raw+"&predefined_queues="+url.QueryEscape(pq))
	sq, err := conn.SimpleQueue(ctx, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.SimpleQueue(ctx, "not-predefined", nil); !errors.Is(err, kombu.ErrNotFound) {
		t.Errorf("a queue missing from predefined_queues: %v, want ErrNotFound", err)
	}
	if err := sq.Put(ctx, "slow", &kombu.PublishOptions{Headers: map[string]any{"task": "tasks.slow"}}); err != nil {
		t.Fatal(err)
	}
	if err := sq.Put(ctx, "fast", &kombu.PublishOptions{Headers: map[string]any{"task": "tasks.other"}}); err != nil {
		t.Fatal(err)
	}
	var requeuedAt time.Time
	for range 2 {
		m, err := sq.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		requeuedAt = time.Now()
		if err := m.Requeue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	m, err := sq.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := m.Payload(); p != "fast" || time.Since(requeuedAt) > time.Second {
		t.Errorf("first back: %v after %v; want the task without a backoff, at once", p, time.Since(requeuedAt))
	}
	_ = m.Ack(ctx)
	m, err = sq.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := m.Payload(); p != "slow" || time.Since(requeuedAt) < 1500*time.Millisecond || m.DeliveryCount() != 2 {
		t.Errorf("then: %v after %v, count %d; want the backed-off task after about 2 s, count 2", p, time.Since(requeuedAt), m.DeliveryCount())
	}
	_ = m.Ack(ctx)
}

// A message too big for SQS is refused before any call, clearly.
func TestOversizedMessageRefused(t *testing.T) {
	conn, name := emulator(t, "")
	ctx := ctxT(t, 20*time.Second)
	sq, err := conn.SimpleQueue(ctx, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = sq.Put(ctx, make([]byte, 600<<10), nil)
	if !errors.Is(err, kombu.ErrInvalidArgument) || !strings.Contains(err.Error(), "over SQS's limit") {
		t.Errorf("600 KiB body: %v, want ErrInvalidArgument naming SQS's limit", err)
	}
	if err := sq.Put(ctx, make([]byte, Description.Features.MaxBodySize), nil); err != nil {
		t.Errorf("a body of Features.MaxBodySize: %v", err)
	}
}

// Errors never show the secret key.
func TestSecretNotInErrors(t *testing.T) {
	ctx := ctxT(t, 20*time.Second)
	conn, err := kombu.Dial(ctx, "sqs://AKIDTEST:TopSecretKey42@127.0.0.1:1?is_secure=false", nil)
	if err == nil {
		_, err = conn.SimpleQueue(ctx, "q", nil)
		_ = conn.Close()
	}
	if err == nil || strings.Contains(err.Error(), "TopSecretKey42") {
		t.Errorf("error %v", err)
	}
	if _, err := kombu.Dial(ctx, "sqs://AKIDTEST:TopSecretKey42@?bogus=1", nil); err == nil || strings.Contains(err.Error(), "TopSecretKey42") {
		t.Errorf("error %v", err)
	}
}

// A long poll whose caller gives up is not cancelled (SQS could hand its
// messages to a request nobody reads, hiding them for the whole
// visibility timeout): a message it takes goes to the next Get of the
// process, or is visible again within 2 s.
func TestAbandonedPollLosesNothing(t *testing.T) {
	s := openStore(t, testenv.ServerURL(t, testURLVar))
	ctx := ctxT(t, 30*time.Second)
	q := fmt.Sprintf("abandon.%08x", rand.Uint32())
	if err := s.DeclareQueue(ctx, driver.Queue{Name: q}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Delete(context.Background(), q) })
	env := &virtual.Envelope{Message: driver.Message{Body: []byte("m"), ContentType: "text/plain"}, RoutingKey: q}
	for round := range 2 {
		gctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() {
			_, err := s.Get(gctx, []string{q}, 5*time.Second)
			errc <- err
		}()
		time.Sleep(200 * time.Millisecond) // the long poll is on the server
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled get: %v", err)
		}
		if err := s.Put(ctx, q, env); err != nil { // wakes the abandoned poll, which takes it
			t.Fatal(err)
		}
		if round == 1 {
			time.Sleep(stashHold + time.Second) // nobody asks: back in the queue
		}
		it, err := s.Get(ctx, []string{q}, 5*time.Second)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		r := it.Receipt.(*receipt)
		// Usually the stash hands it over uncounted (1); a Get whose own
		// poll started before the stash filled sees it after stashHold (2).
		if string(it.Envelope.Body) != "m" || r.count > 2 {
			t.Errorf("round %d: %q received %d times", round, it.Envelope.Body, r.count)
		}
		t.Logf("round %d: received %d times", round, r.count)
		if err := s.Ack(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
}
