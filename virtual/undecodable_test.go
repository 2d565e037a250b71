package virtual_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport/memory"
	"github.com/kombu-go/kombu/virtual"
)

// garbageStore is a store that, like redis, can find bytes in a queue that
// are not a message: the memory store plus garbage injected per queue,
// returned first as undecodable items. It keeps what virtual quarantines,
// acks and requeues, to check that nothing is lost.
type garbageStore struct {
	*memory.Store

	mu          sync.Mutex
	garbage     map[string][][]byte
	quarantined map[string][][]byte
	acked       [][]byte
	// quarantineErr, when set, makes Quarantine fail.
	quarantineErr error
}

var errNotAMessage = errors.New("not a message")

func (s *garbageStore) inject(queue string, raw []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.garbage[queue] = append(s.garbage[queue], raw)
}

func (s *garbageStore) takeGarbage(queues []string, max int) []virtual.Item {
	s.mu.Lock()
	defer s.mu.Unlock()
	var items []virtual.Item
	for _, q := range queues {
		for len(s.garbage[q]) > 0 && len(items) < max {
			raw := s.garbage[q][0]
			s.garbage[q] = s.garbage[q][1:]
			items = append(items, virtual.UndecodableItem(q, raw, errNotAMessage, "garbage"))
		}
	}
	return items
}

func (s *garbageStore) Get(ctx context.Context, queues []string, wait time.Duration) (virtual.Item, error) {
	if items := s.takeGarbage(queues, 1); len(items) > 0 {
		return items[0], nil
	}
	return s.Store.Get(ctx, queues, wait)
}

func (s *garbageStore) GetBatch(ctx context.Context, queues []string, max int, wait time.Duration) ([]virtual.Item, error) {
	items := s.takeGarbage(queues, max)
	if len(items) == max {
		return items, nil
	}
	if len(items) > 0 {
		wait = 0
	}
	more, err := s.Store.GetBatch(ctx, queues, max-len(items), wait)
	if len(items) > 0 {
		return append(items, more...), nil
	}
	return more, err
}

func (s *garbageStore) Ack(ctx context.Context, it virtual.Item) error {
	if it.DecodeErr != nil {
		s.mu.Lock()
		s.acked = append(s.acked, it.Envelope.Body)
		s.mu.Unlock()
	}
	return nil
}

func (s *garbageStore) Requeue(ctx context.Context, it virtual.Item) error {
	if it.DecodeErr != nil {
		s.mu.Lock()
		s.garbage[it.Queue] = append([][]byte{it.Envelope.Body}, s.garbage[it.Queue]...)
		s.mu.Unlock()
		return nil
	}
	return s.Store.Put(ctx, it.Queue, it.Envelope.AsRedelivered())
}

func (s *garbageStore) Quarantine(ctx context.Context, it virtual.Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.quarantineErr != nil {
		return s.quarantineErr
	}
	s.quarantined[it.Queue] = append(s.quarantined[it.Queue], it.Envelope.Body)
	return nil
}

func (s *garbageStore) count(m map[string][][]byte, queue string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(m[queue])
}

var (
	_ virtual.Acker       = (*garbageStore)(nil)
	_ virtual.Quarantiner = (*garbageStore)(nil)
)

func openGarbage(t *testing.T) (*garbageStore, driver.Channel) {
	t.Helper()
	mem, err := memory.NewConnector(&memory.Options{Broker: "garbage-" + t.Name()}).DialStore(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := &garbageStore{Store: mem.(*memory.Store), garbage: map[string][][]byte{}, quarantined: map[string][][]byte{}}
	conn := virtual.NewConn(s)
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s, ch
}

func receiveOne(t *testing.T, ch driver.Channel) *driver.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for {
		ds, err := ch.Receive(ctx, 1)
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if len(ds) > 0 {
			return ds[0]
		}
	}
}

// TestUndecodableMessageIsNeverDeleted is the rule every virtual transport
// follows for bytes in a queue that are not a message: delivered with
// DecodeError and the raw bytes (cut to RawBodyLimit), never deleted by a
// reject or a no-ack delivery: dead-lettered when the queue says so, else
// quarantined; a requeue or a closed channel puts it back.
func TestUndecodableMessageIsNeverDeleted(t *testing.T) {
	ctx := context.Background()
	huge := bytes.Repeat([]byte{0xff}, driver.RawBodyLimit+10)

	t.Run("reject", func(t *testing.T) {
		s, ch := openGarbage(t)
		declare(t, ch, driver.Queue{Name: "q"})
		s.inject("q", huge)
		consume(t, ch, "q", false)
		d := receiveOne(t, ch)
		if !errors.Is(d.DecodeError, errNotAMessage) || len(d.Body) != driver.RawBodyLimit || d.Queue != "q" {
			t.Fatalf("delivery: decode error %v, body %d bytes, queue %q", d.DecodeError, len(d.Body), d.Queue)
		}
		if err := ch.Reject(ctx, d.Tag, false); err != nil {
			t.Fatal(err)
		}
		if s.count(s.quarantined, "q") != 1 || !bytes.Equal(s.quarantined["q"][0], huge) {
			t.Errorf("the rejected garbage was not quarantined whole")
		}
	})
	t.Run("no-ack, quarantine fails", func(t *testing.T) {
		// The loss is not silent: the delivery's decode error says so.
		s, ch := openGarbage(t)
		s.quarantineErr = errors.New("disk full")
		declare(t, ch, driver.Queue{Name: "q"})
		s.inject("q", []byte("not json"))
		consume(t, ch, "q", true)
		d := receiveOne(t, ch)
		if !errors.Is(d.DecodeError, errNotAMessage) || !strings.Contains(d.DecodeError.Error(), "disk full") {
			t.Fatalf("decode error %v does not report the failed quarantine", d.DecodeError)
		}
	})
	t.Run("no-ack", func(t *testing.T) {
		s, ch := openGarbage(t)
		declare(t, ch, driver.Queue{Name: "q"})
		s.inject("q", []byte("not json"))
		consume(t, ch, "q", true)
		if d := receiveOne(t, ch); d.DecodeError == nil {
			t.Fatal("no DecodeError")
		}
		if s.count(s.quarantined, "q") != 1 || len(s.acked) != 0 {
			t.Errorf("no-ack garbage: %d quarantined, %d deleted; want 1, 0", s.count(s.quarantined, "q"), len(s.acked))
		}
	})
	t.Run("dead-letter", func(t *testing.T) {
		s, ch := openGarbage(t)
		declare(t, ch, driver.Queue{Name: "dlq"})
		if err := ch.ExchangeDeclare(ctx, driver.Exchange{Name: "dlx", Type: "fanout"}); err != nil {
			t.Fatal(err)
		}
		if err := ch.QueueBind(ctx, driver.Binding{Queue: "dlq", Exchange: "dlx"}); err != nil {
			t.Fatal(err)
		}
		declare(t, ch, driver.Queue{Name: "q", Args: map[string]any{"x-dead-letter-exchange": "dlx"}})
		s.inject("q", []byte("\x00garbage"))
		consume(t, ch, "q", false)
		d := receiveOne(t, ch)
		if err := ch.Reject(ctx, d.Tag, false); err != nil {
			t.Fatal(err)
		}
		dl, err := ch.Get(ctx, "dlq", true)
		if err != nil {
			t.Fatalf("dead-letter queue: %v", err)
		}
		if string(dl.Body) != "\x00garbage" || !strings.Contains(dl.Headers["x-kombu-decode-error"].(string), "not a message") || dl.Headers["x-first-death-queue"] != "q" {
			t.Errorf("dead-lettered %q with headers %v", dl.Body, dl.Headers)
		}
		if s.count(s.quarantined, "q") != 0 {
			t.Error("quarantined although dead-lettered")
		}
	})
	t.Run("requeue and close", func(t *testing.T) {
		s, ch := openGarbage(t)
		declare(t, ch, driver.Queue{Name: "q"})
		s.inject("q", []byte("[1, 2]"))
		consume(t, ch, "q", false)
		d := receiveOne(t, ch)
		if err := ch.Reject(ctx, d.Tag, true); err != nil {
			t.Fatal(err)
		}
		if d := receiveOne(t, ch); d.DecodeError == nil || string(d.Body) != "[1, 2]" {
			t.Fatalf("requeued garbage came back as %q, %v", d.Body, d.DecodeError)
		}
		if err := ch.Close(); err != nil {
			t.Fatal(err)
		}
		if s.count(s.garbage, "q") != 1 || len(s.acked) != 0 {
			t.Errorf("after close: %d back in the queue, %d deleted; want 1, 0", s.count(s.garbage, "q"), len(s.acked))
		}
	})
}

func declare(t *testing.T, ch driver.Channel, q driver.Queue) {
	t.Helper()
	if _, err := ch.QueueDeclare(context.Background(), q); err != nil {
		t.Fatal(err)
	}
}

func consume(t *testing.T, ch driver.Channel, queue string, noAck bool) {
	t.Helper()
	if err := ch.Consume(context.Background(), driver.ConsumeArgs{Queue: queue, ConsumerTag: "c-" + queue, NoAck: noAck}); err != nil {
		t.Fatal(err)
	}
}

// TestUndecodableMessageReachesOnDecodeError: through kombu, an
// undecodable delivery goes to the consumer's decode error path with its
// raw bytes (never to a handler), the default path reports it and rejects
// it (quarantined, not deleted), and the consumer goes on.
func TestUndecodableMessageReachesOnDecodeError(t *testing.T) {
	mem, err := memory.NewConnector(&memory.Options{Broker: "garbage-kombu-" + t.Name()}).DialStore(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := &garbageStore{Store: mem.(*memory.Store), garbage: map[string][][]byte{}, quarantined: map[string][][]byte{}}
	var mu sync.Mutex
	var reported []error
	conn := kombu.NewConnectionFromConnector(driverConnector{s}, &kombu.Options{
		ErrorHandler: func(err error) {
			mu.Lock()
			reported = append(reported, err)
			mu.Unlock()
		},
	})
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q := kombu.Queue{Name: "q"}
	s.inject("q", []byte("first garbage"))
	s.inject("q", []byte("second garbage"))

	var gotRaw []string
	c, err := conn.Consumer(ctx, []kombu.Queue{q}, &kombu.ConsumerOptions{OnDecodeError: func(m *kombu.Message, err error) {
		if !errors.Is(err, kombu.ErrDecode) || !errors.Is(err, errNotAMessage) {
			t.Errorf("OnDecodeError got %v", err)
		}
		gotRaw = append(gotRaw, string(m.Body))
		if err := m.Reject(ctx); err != nil {
			t.Error(err)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := conn.Producer(ctx, &kombu.ProducerOptions{RoutingKey: "q"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, "good", nil); err != nil {
		t.Fatal(err)
	}
	m, err := c.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var body string
	if err := m.Decode(&body); err != nil || body != "good" {
		t.Fatalf("after the garbage: %q, %v", body, err)
	}
	if strings.Join(gotRaw, "|") != "first garbage|second garbage" || s.count(s.quarantined, "q") != 2 {
		t.Errorf("OnDecodeError saw %q; %d quarantined", gotRaw, s.count(s.quarantined, "q"))
	}

	// Without OnDecodeError: reported with the raw bytes, and quarantined.
	s.inject("q", []byte("third garbage"))
	c2, err := conn.Consumer(ctx, []kombu.Queue{q}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, "good again", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 1 || !strings.Contains(reported[0].Error(), "third garbage") || !errors.Is(reported[0], kombu.ErrDecode) {
		t.Errorf("reported %v, want one decode error quoting the raw bytes", reported)
	}
	if s.count(s.quarantined, "q") != 3 {
		t.Errorf("%d quarantined, want 3", s.count(s.quarantined, "q"))
	}
}

// driverConnector dials a virtual.Conn over one store.
type driverConnector struct{ s virtual.Store }

func (c driverConnector) Connect(context.Context) (driver.Conn, error) {
	return virtual.NewConn(c.s), nil
}
