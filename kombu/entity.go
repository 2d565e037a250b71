package kombu

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
)

// DeliveryMode says whether the broker writes a message to disk.
type DeliveryMode uint8

const (
	// Transient messages live in memory only (AMQP delivery_mode 1).
	Transient DeliveryMode = 1
	// Persistent messages survive a broker restart on durable queues
	// (AMQP delivery_mode 2). It is kombu's default.
	Persistent DeliveryMode = 2
)

// Exchange types.
const (
	Direct  = "direct"
	Topic   = "topic"
	Fanout  = "fanout"
	Headers = "headers"
)

// Exchange describes an AMQP exchange. Build it with NewExchange to get
// kombu's defaults (durable, persistent messages); the zero value of a
// struct literal is a non-durable direct exchange.
//
// Methods take the channel to act on; a nil channel means the channel the
// exchange was bound to with Bind, and ErrNotBound if none.
type Exchange struct {
	Name         string
	Type         string // Direct (default when empty), Topic, Fanout or Headers
	Durable      bool
	AutoDelete   bool
	Internal     bool
	Passive      bool // only check that it exists
	NoDeclare    bool // never declare it (it is owned elsewhere)
	DeliveryMode DeliveryMode
	Arguments    map[string]any

	channel *Channel
}

// DefaultExchange is AMQP's nameless direct exchange: the routing key is
// the queue name.
var DefaultExchange = Exchange{Name: "", Type: Direct, Durable: true}

// NewExchange returns an exchange with kombu's defaults: durable, and
// persistent delivery for messages published to it. typ "" means Direct.
func NewExchange(name, typ string) Exchange {
	if typ == "" {
		typ = Direct
	}
	return Exchange{Name: name, Type: typ, Durable: true, DeliveryMode: Persistent}
}

// Bind returns a copy of e bound to ch (kombu's exchange(channel)).
func (e Exchange) Bind(ch *Channel) Exchange {
	e.channel = ch
	return e
}

func (e *Exchange) typ() string {
	if e.Type == "" {
		return Direct
	}
	return e.Type
}

func (e *Exchange) driverExchange() driver.Exchange {
	return driver.Exchange{Name: e.Name, Type: e.typ(), Durable: e.Durable, AutoDelete: e.AutoDelete,
		Internal: e.Internal, Passive: e.Passive, Args: e.Arguments}
}

// cacheKey identifies the declaration for the per-connection declare
// cache. It is built on every publish that declares, so it avoids fmt.
func (e Exchange) cacheKey() string {
	var b strings.Builder
	e.writeKey(&b)
	return b.String()
}

func (e *Exchange) writeKey(b *strings.Builder) {
	b.WriteString("exchange\x00")
	b.WriteString(e.Name)
	b.WriteByte(0)
	b.WriteString(e.typ())
	b.WriteByte(0)
	writeFlags(b, e.Durable, e.AutoDelete, e.Internal, e.Passive)
	writeArgsKey(b, e.Arguments)
}

func writeFlags(b *strings.Builder, flags ...bool) {
	for _, f := range flags {
		if f {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
	}
}

func channelFor(ch, bound *Channel) (*Channel, error) {
	if ch != nil {
		return ch, nil
	}
	if bound != nil {
		return bound, nil
	}
	return nil, ErrNotBound
}

// Declare declares the exchange. The default exchange and exchanges with
// NoDeclare are never declared, as in kombu.
func (e Exchange) Declare(ctx context.Context, ch *Channel) error {
	ch, err := channelFor(ch, e.channel)
	if err != nil {
		return &Error{Op: "exchange.declare", Name: e.Name, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if e.Name == "" || e.NoDeclare {
		return nil
	}
	return ch.wrap("exchange.declare", e.Name, ch.drv.ExchangeDeclare(ctx, e.driverExchange()))
}

// Delete deletes the exchange; with ifUnused it fails while queues are bound.
func (e Exchange) Delete(ctx context.Context, ch *Channel, ifUnused bool) error {
	ch, err := channelFor(ch, e.channel)
	if err != nil {
		return &Error{Op: "exchange.delete", Name: e.Name, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ch.conn.forgetDeclared(e.cacheKey())
	return ch.wrap("exchange.delete", e.Name, ch.drv.ExchangeDelete(ctx, e.Name, ifUnused))
}

// ExchangeBinder is implemented by driver channels that support
// exchange-to-exchange bindings (RabbitMQ).
type ExchangeBinder = driver.ExchangeBinder

// BindTo binds this exchange (the destination) to source, so that messages
// source routes with routingKey reach e. Only some transports support it
// (ErrNotSupported otherwise).
func (e Exchange) BindTo(ctx context.Context, ch *Channel, source Exchange, routingKey string, args map[string]any) error {
	ch, err := channelFor(ch, e.channel)
	if err != nil {
		return &Error{Op: "exchange.bind", Name: e.Name, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	eb, ok := ch.drv.(ExchangeBinder)
	if !ok {
		return ch.wrap("exchange.bind", e.Name, ErrNotSupported)
	}
	return ch.wrap("exchange.bind", e.Name, eb.ExchangeBind(ctx, e.Name, source.Name, routingKey, args))
}

// UnbindFrom removes a binding made with BindTo.
func (e Exchange) UnbindFrom(ctx context.Context, ch *Channel, source Exchange, routingKey string, args map[string]any) error {
	ch, err := channelFor(ch, e.channel)
	if err != nil {
		return &Error{Op: "exchange.unbind", Name: e.Name, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	eb, ok := ch.drv.(ExchangeBinder)
	if !ok {
		return ch.wrap("exchange.unbind", e.Name, ErrNotSupported)
	}
	return ch.wrap("exchange.unbind", e.Name, eb.ExchangeUnbind(ctx, e.Name, source.Name, routingKey, args))
}

// Binding is one extra binding of a Queue (kombu's binding()).
type Binding struct {
	Exchange   Exchange
	RoutingKey string
	Arguments  map[string]any
}

// Queue describes a queue and how it is bound. Build it with NewQueue for
// kombu's defaults (durable); a struct literal's zero value is a
// non-durable queue.
type Queue struct {
	Name       string
	Exchange   Exchange // bound with RoutingKey when Exchange.Name is set
	RoutingKey string
	Bindings   []Binding // further bindings, each declared with its exchange
	Durable    bool
	Exclusive  bool // implies AutoDelete, as in kombu
	AutoDelete bool
	Passive    bool // only check that it exists
	NoDeclare  bool

	Arguments         map[string]any // queue x-arguments
	BindingArguments  map[string]any // arguments of the Exchange/RoutingKey binding
	ConsumerArguments map[string]any // basic.consume arguments, e.g. x-priority

	// These become x-arguments; they win over Arguments. Zero means
	// unset. Durations are whole milliseconds from 1 ms to MaxExpiry,
	// MaxPriority is at most 255, and nothing is negative: Declare refuses
	// anything else (and the same x-arguments given in Arguments) with an
	// error wrapping ErrInvalidArgument, before any I/O.
	MaxPriority    int           // x-max-priority
	MessageTTL     time.Duration // x-message-ttl (ms)
	Expires        time.Duration // x-expires (ms)
	MaxLength      int           // x-max-length
	MaxLengthBytes int           // x-max-length-bytes

	channel *Channel
}

// NewQueue returns a durable queue bound to exchange with routingKey.
// Pass DefaultExchange (or Exchange{}) for a queue with no binding.
func NewQueue(name string, exchange Exchange, routingKey string) Queue {
	return Queue{Name: name, Exchange: exchange, RoutingKey: routingKey, Durable: true}
}

// Bind returns a copy of q bound to ch (kombu's queue(channel)).
func (q Queue) Bind(ch *Channel) Queue {
	q.channel = ch
	return q
}

// QueueArguments returns the x-arguments q declares with. The integer
// fields are carried as int64: RabbitMQ takes 64-bit values, so a 30-day
// TTL is not cut down to 32 bits.
func (q *Queue) QueueArguments() map[string]any {
	if len(q.Arguments) == 0 && q.MaxPriority == 0 && q.MessageTTL == 0 && q.Expires == 0 && q.MaxLength == 0 && q.MaxLengthBytes == 0 {
		return nil
	}
	args := make(map[string]any, len(q.Arguments)+5)
	for k, v := range q.Arguments {
		args[k] = v
	}
	for _, f := range [...]struct {
		key string
		n   int64
	}{
		{"x-max-priority", int64(q.MaxPriority)},
		{"x-message-ttl", q.MessageTTL.Milliseconds()},
		{"x-expires", q.Expires.Milliseconds()},
		{"x-max-length", int64(q.MaxLength)},
		{"x-max-length-bytes", int64(q.MaxLengthBytes)},
	} {
		if f.n != 0 {
			args[f.key] = f.n
		}
	}
	return args
}

// driverQueue returns the declaration to send, or an error wrapping
// ErrInvalidArgument for an argument no broker accepts.
func (q *Queue) driverQueue() (driver.Queue, error) {
	for _, d := range [...]struct {
		field string
		v     time.Duration
	}{{"MessageTTL", q.MessageTTL}, {"Expires", q.Expires}} {
		if d.v != 0 && (d.v < time.Millisecond || d.v > MaxExpiry) {
			return driver.Queue{}, fmt.Errorf("%w: %s %v out of range 1ms..%v", ErrInvalidArgument, d.field, d.v, MaxExpiry)
		}
	}
	args, err := driver.NormalizeQueueArgs(q.QueueArguments())
	if err != nil {
		return driver.Queue{}, err
	}
	return driver.Queue{Name: q.Name, Durable: q.Durable, Exclusive: q.Exclusive,
		AutoDelete: q.AutoDelete || q.Exclusive, Passive: q.Passive, Args: args}, nil
}

func (q Queue) cacheKey() string {
	var b strings.Builder
	b.WriteString("queue\x00")
	b.WriteString(q.Name)
	b.WriteByte(0)
	writeFlags(&b, q.Durable, q.Exclusive, q.AutoDelete, q.Passive)
	writeArgsKey(&b, q.QueueArguments())
	q.Exchange.writeKey(&b)
	b.WriteByte(0)
	b.WriteString(q.RoutingKey)
	writeArgsKey(&b, q.BindingArguments)
	for i := range q.Bindings {
		bd := &q.Bindings[i]
		bd.Exchange.writeKey(&b)
		b.WriteByte(0)
		b.WriteString(bd.RoutingKey)
		writeArgsKey(&b, bd.Arguments)
	}
	return b.String()
}

// writeArgsKey appends arguments in a canonical order.
func writeArgsKey(b *strings.Builder, m map[string]any) {
	b.WriteByte(0)
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(b, "%s=%#v;", k, m[k])
	}
}

// QueueInfo is what a queue declaration reports.
type QueueInfo = driver.QueueInfo

// Declare declares the queue's exchanges, the queue and its bindings, in
// that order, as kombu's Queue.declare does. It returns the queue's
// counts; for a server-named queue (Name "") the name is in Name.
func (q Queue) Declare(ctx context.Context, ch *Channel) (QueueInfo, error) {
	ch, err := channelFor(ch, q.channel)
	if err != nil {
		return QueueInfo{}, &Error{Op: "queue.declare", Name: q.Name, Err: err}
	}
	if q.NoDeclare {
		return QueueInfo{Name: q.Name}, ctx.Err()
	}
	dq, err := q.driverQueue()
	if err != nil {
		return QueueInfo{}, &Error{Op: "queue.declare", Transport: ch.conn.TransportName(), Name: q.Name, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return QueueInfo{}, err
	}
	if err := q.Exchange.Declare(ctx, ch); err != nil {
		return QueueInfo{}, err
	}
	for _, b := range q.Bindings {
		if err := b.Exchange.Declare(ctx, ch); err != nil {
			return QueueInfo{}, err
		}
	}
	info, err := ch.drv.QueueDeclare(ctx, dq)
	if err != nil {
		return QueueInfo{}, ch.wrap("queue.declare", q.Name, err)
	}
	q.Name = info.Name
	if q.Exchange.Name != "" {
		if err := q.BindTo(ctx, ch, q.Exchange, q.RoutingKey, q.BindingArguments); err != nil {
			return info, err
		}
	}
	for _, b := range q.Bindings {
		if err := q.BindTo(ctx, ch, b.Exchange, b.RoutingKey, b.Arguments); err != nil {
			return info, err
		}
	}
	return info, nil
}

// BindTo binds the queue to exchange with routingKey.
func (q Queue) BindTo(ctx context.Context, ch *Channel, exchange Exchange, routingKey string, args map[string]any) error {
	ch, err := channelFor(ch, q.channel)
	if err != nil {
		return &Error{Op: "queue.bind", Name: q.Name, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return ch.wrap("queue.bind", q.Name, ch.drv.QueueBind(ctx, driver.Binding{Queue: q.Name, Exchange: exchange.Name, RoutingKey: routingKey, Args: args}))
}

// UnbindFrom removes the binding of the queue to exchange with routingKey.
func (q Queue) UnbindFrom(ctx context.Context, ch *Channel, exchange Exchange, routingKey string, args map[string]any) error {
	ch, err := channelFor(ch, q.channel)
	if err != nil {
		return &Error{Op: "queue.unbind", Name: q.Name, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ch.conn.forgetDeclared(q.cacheKey())
	return ch.wrap("queue.unbind", q.Name, ch.drv.QueueUnbind(ctx, driver.Binding{Queue: q.Name, Exchange: exchange.Name, RoutingKey: routingKey, Args: args}))
}

// Purge removes the queue's ready messages and returns how many.
func (q Queue) Purge(ctx context.Context, ch *Channel) (int, error) {
	ch, err := channelFor(ch, q.channel)
	if err != nil {
		return 0, &Error{Op: "queue.purge", Name: q.Name, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n, err := ch.drv.QueuePurge(ctx, q.Name)
	return n, ch.wrap("queue.purge", q.Name, err)
}

// Delete deletes the queue and returns how many messages it held. With
// ifUnused it fails while the queue has consumers, with ifEmpty while it
// has messages.
func (q Queue) Delete(ctx context.Context, ch *Channel, ifUnused, ifEmpty bool) (int, error) {
	ch, err := channelFor(ch, q.channel)
	if err != nil {
		return 0, &Error{Op: "queue.delete", Name: q.Name, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	ch.conn.forgetDeclared(q.cacheKey())
	n, err := ch.drv.QueueDelete(ctx, q.Name, ifUnused, ifEmpty)
	return n, ch.wrap("queue.delete", q.Name, err)
}

// Len returns the number of ready messages (a passive declare).
func (q Queue) Len(ctx context.Context, ch *Channel) (int, error) {
	ch, err := channelFor(ch, q.channel)
	if err != nil {
		return 0, &Error{Op: "queue.len", Name: q.Name, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	info, err := ch.drv.QueueDeclare(ctx, driver.Queue{Name: q.Name, Passive: true})
	return info.Messages, ch.wrap("queue.len", q.Name, err)
}

// Get fetches one message (basic.get), or returns an error wrapping
// ErrEmpty. Only content types in accept (nil: the connection's default
// accept list) are returned; others are rejected and reported as
// ErrContentDisallowed.
func (q Queue) Get(ctx context.Context, ch *Channel, noAck bool, accept []string) (*Message, error) {
	ch, err := channelFor(ch, q.channel)
	if err != nil {
		return nil, &Error{Op: "queue.get", Name: q.Name, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d, err := ch.drv.Get(ctx, q.Name, noAck)
	if err != nil {
		return nil, ch.wrap("queue.get", q.Name, err)
	}
	m := ch.newMessage(d, noAck)
	if err := m.prepare(ch.conn.acceptSet(accept)); err != nil {
		if !noAck {
			_ = m.Reject(ctx)
		}
		return nil, ch.wrap("queue.get", q.Name, err)
	}
	return m, nil
}

// Declarable is an entity that Producer and MaybeDeclare can declare.
type Declarable interface {
	declare(ctx context.Context, ch *Channel) error
	cacheKey() string
}

func (e Exchange) declare(ctx context.Context, ch *Channel) error { return e.Declare(ctx, ch) }
func (q Queue) declare(ctx context.Context, ch *Channel) error {
	_, err := q.Declare(ctx, ch)
	return err
}

var (
	_ Declarable = Exchange{}
	_ Declarable = Queue{}
)
