package kombu

import (
	"context"
	"errors"
	"sync"
)

// SimpleQueue is kombu's simple interface: a queue you Put into and Get
// from, with no exchanges to think about. It owns a channel of its
// connection. Messages returned by Get must be acked (or rejected).
type SimpleQueue struct {
	queue    Queue
	ch       *Channel
	producer *Producer
	noAck    bool
	accept   []string // content types Get decodes

	mu       sync.Mutex
	consumer *Consumer // started on the first blocking Get
	closed   bool
}

// SimpleQueueOptions configure SimpleQueue. nil means a durable queue of
// the given name on a direct exchange of the same name, JSON messages.
type SimpleQueueOptions struct {
	Queue       *Queue // overrides the default queue declaration
	Serializer  string // used by Put
	Compression string
	NoAck       bool
	// Accept lists the serializer names or content types Get decodes;
	// other messages are rejected (see ConsumerOptions.Accept). nil means
	// the connection's Options.Accept plus Serializer, so that a
	// SimpleQueue always accepts what it puts.
	Accept []string
}

// SimpleQueue declares the named queue and returns a SimpleQueue on it.
func (c *Connection) SimpleQueue(ctx context.Context, name string, opts *SimpleQueueOptions) (*SimpleQueue, error) {
	var o SimpleQueueOptions
	if opts != nil {
		o = *opts
	}
	q := NewQueue(name, NewExchange(name, Direct), name)
	if o.Queue != nil {
		q = *o.Queue
	}
	return c.newSimple(ctx, q, o, Persistent)
}

// SimpleBuffer is a SimpleQueue for transient messages: the queue is not
// durable, deleted when unused, messages are not persisted and not acked.
func (c *Connection) SimpleBuffer(ctx context.Context, name string, opts *SimpleQueueOptions) (*SimpleQueue, error) {
	var o SimpleQueueOptions
	if opts != nil {
		o = *opts
	}
	ex := Exchange{Name: name, Type: Direct, AutoDelete: true, DeliveryMode: Transient}
	q := Queue{Name: name, Exchange: ex, RoutingKey: name, AutoDelete: true}
	if o.Queue != nil {
		q = *o.Queue
	}
	o.NoAck = true
	return c.newSimple(ctx, q, o, Transient)
}

func (c *Connection) newSimple(ctx context.Context, q Queue, o SimpleQueueOptions, mode DeliveryMode) (*SimpleQueue, error) {
	ch, err := c.Channel(ctx)
	if err != nil {
		return nil, err
	}
	info, err := q.Declare(ctx, ch)
	if err != nil {
		_ = ch.Close()
		return nil, err
	}
	q.Name = info.Name
	ex := q.Exchange
	if ex.DeliveryMode == 0 {
		ex.DeliveryMode = mode
	}
	p, err := NewProducer(ctx, ch, &ProducerOptions{Exchange: ex, RoutingKey: q.RoutingKey,
		Serializer: o.Serializer, Compression: o.Compression, NoDeclare: true})
	if err != nil {
		_ = ch.Close()
		return nil, err
	}
	if ex.Name == "" {
		p.opts.RoutingKey = q.Name
	}
	accept := o.Accept
	if accept == nil && o.Serializer != "" {
		accept = append(append([]string(nil), c.opts.Accept...), o.Serializer)
	}
	return &SimpleQueue{queue: q, ch: ch, producer: p, noAck: o.NoAck, accept: accept}, nil
}

// Queue returns the queue declaration.
func (s *SimpleQueue) Queue() Queue { return s.queue }

// Put publishes body to the queue.
func (s *SimpleQueue) Put(ctx context.Context, body any, opts *PublishOptions) error {
	if s.isClosed() {
		return &Error{Op: "simple_queue.put", Transport: s.ch.conn.TransportName(), Name: s.queue.Name, Err: ErrClosed}
	}
	return s.producer.Publish(ctx, body, opts)
}

// GetNowait returns the next message, or an error wrapping ErrEmpty.
func (s *SimpleQueue) GetNowait(ctx context.Context) (*Message, error) {
	if s.isClosed() {
		return nil, &Error{Op: "simple_queue.get", Transport: s.ch.conn.TransportName(), Name: s.queue.Name, Err: ErrClosed}
	}
	return s.queue.Get(ctx, s.ch, s.noAck, s.accept)
}

// Get returns the next message, waiting until one arrives or ctx is done
// (then ctx's error, e.g. context.DeadlineExceeded).
func (s *SimpleQueue) Get(ctx context.Context) (*Message, error) {
	m, err := s.GetNowait(ctx)
	if err == nil || !errors.Is(err, ErrEmpty) {
		return m, err
	}
	c, err := s.consumerFor(ctx)
	if err != nil {
		return nil, err
	}
	return c.Receive(ctx)
}

func (s *SimpleQueue) consumerFor(ctx context.Context) (*Consumer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, &Error{Op: "simple_queue.get", Transport: s.ch.conn.TransportName(), Name: s.queue.Name, Err: ErrClosed}
	}
	if s.consumer == nil {
		// Prefetch 1 so that a waiting Get holds at most one message.
		c, err := NewConsumer(ctx, s.ch, []Queue{s.queue}, &ConsumerOptions{PrefetchCount: 1, NoAck: s.noAck, NoDeclare: true, Accept: s.accept})
		if err != nil {
			return nil, err
		}
		s.consumer = c
	}
	return s.consumer, nil
}

// Len returns the number of ready messages.
func (s *SimpleQueue) Len(ctx context.Context) (int, error) {
	return s.queue.Len(ctx, s.ch)
}

// Clear purges the queue and returns how many messages it removed.
func (s *SimpleQueue) Clear(ctx context.Context) (int, error) {
	return s.queue.Purge(ctx, s.ch)
}

func (s *SimpleQueue) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close closes the SimpleQueue's channel; unacked messages return to the
// queue. It is idempotent.
func (s *SimpleQueue) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	return s.ch.Close()
}
