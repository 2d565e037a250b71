package kombu

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
)

// Return is an unroutable mandatory message handed back by the broker.
type Return = driver.Return

// ProducerOptions configure a Producer. A nil *ProducerOptions means the
// default exchange, JSON and no compression.
type ProducerOptions struct {
	Exchange    Exchange // default: DefaultExchange (routing key = queue name)
	RoutingKey  string   // default routing key
	Serializer  string   // default: chosen by body type (json for values)
	Compression string   // e.g. "zlib", "bzip2", "zstd"; "" for none
	NoDeclare   bool     // do not declare Exchange before publishing
	// OnReturn receives unroutable mandatory messages. Without it, such a
	// publish returns an error wrapping ErrUnroutable.
	OnReturn func(Return)
}

// RetryPolicy says how Publish, Ensure, Autoretry and EnsureConnection
// retry after a connection failure (kombu's retry_policy). The n-th retry
// waits IntervalStart + n*IntervalStep, capped at IntervalMax.
type RetryPolicy struct {
	MaxRetries    int           // 0 means 3; negative means no limit (until ctx ends)
	IntervalStart time.Duration // default 0: retry at once the first time
	IntervalStep  time.Duration // default 200 ms
	IntervalMax   time.Duration // default 1 s
	// OnRetry, when set, is told about each failure before the wait.
	OnRetry func(err error, wait time.Duration)
}

// DefaultRetryPolicy is kombu's default retry policy.
var DefaultRetryPolicy = RetryPolicy{MaxRetries: 3, IntervalStep: 200 * time.Millisecond, IntervalMax: time.Second}

// PublishOptions are the per-message options of Publish. A nil
// *PublishOptions uses the producer's defaults.
type PublishOptions struct {
	RoutingKey  string    // default: the producer's
	Exchange    *Exchange // override the producer's exchange
	Serializer  string
	Compression string
	// ContentType marks the body as already serialized ([]byte or string).
	ContentType     string
	ContentEncoding string
	Headers         map[string]any
	Priority        uint8
	DeliveryMode    DeliveryMode  // default: the exchange's, else Persistent
	Expiration      time.Duration // message TTL; 0 means none
	Mandatory       bool
	// Declare lists entities to declare (once per connection) first.
	Declare []Declarable
	// Retry retries on connection failures with RetryPolicy (nil:
	// DefaultRetryPolicy), reconnecting (and failing over) in between.
	Retry       bool
	RetryPolicy *RetryPolicy

	CorrelationID string
	ReplyTo       string
	MessageID     string
	Timestamp     time.Time
	Type          string
	UserID        string
	AppID         string
	// Properties carries extra properties (e.g. SQS MessageGroupId).
	Properties map[string]any
}

// Producer publishes messages. It is safe for concurrent use.
type Producer struct {
	conn        *Connection
	opts        ProducerOptions
	ownsChannel bool

	mu sync.Mutex
	ch *Channel
}

// NewProducer returns a producer that publishes on ch and declares its
// exchange (unless NoDeclare).
func NewProducer(ctx context.Context, ch *Channel, opts *ProducerOptions) (*Producer, error) {
	if ch == nil {
		return nil, &Error{Op: "producer.new", Err: ErrNotBound}
	}
	p := &Producer{conn: ch.conn, ch: ch}
	if opts != nil {
		p.opts = *opts
	}
	p.notifyReturns(ch)
	if !p.opts.NoDeclare && p.opts.Exchange.Name != "" {
		if err := ch.conn.MaybeDeclare(ctx, ch, p.opts.Exchange); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Producer opens a channel for a new Producer that owns it.
func (conn *Connection) Producer(ctx context.Context, opts *ProducerOptions) (*Producer, error) {
	ch, err := conn.Channel(ctx)
	if err != nil {
		return nil, err
	}
	p, err := NewProducer(ctx, ch, opts)
	if err != nil {
		_ = ch.Close()
		return nil, err
	}
	p.ownsChannel = true
	return p, nil
}

// Channel returns the channel the producer publishes on.
func (p *Producer) Channel() *Channel {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ch
}

// Close closes the producer's channel if the producer owns it.
func (p *Producer) Close() error {
	if !p.ownsChannel {
		return nil
	}
	return p.Channel().Close()
}

// Publish serializes body, compresses it if asked, and publishes it.
// Serialization and option errors are returned before any I/O, and a
// ctx that is already done returns its error with nothing published. With
// Mandatory, an unroutable message goes to OnReturn, or else Publish
// returns an error wrapping ErrUnroutable.
func (p *Producer) Publish(ctx context.Context, body any, opts *PublishOptions) error {
	var o PublishOptions
	if opts != nil {
		o = *opts
	}
	pub, err := p.build(body, &o)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if obs := p.conn.opts.Observer; obs != nil {
		var end func(error)
		ctx, end = p.startPublish(ctx, obs, pub)
		err := p.publish(ctx, pub, &o)
		end(err)
		return err
	}
	return p.publish(ctx, pub, &o)
}

func (p *Producer) publish(ctx context.Context, pub *driver.Publishing, o *PublishOptions) error {
	if !o.Retry {
		return p.publishOnce(ctx, pub, o)
	}
	return p.conn.Ensure(ctx, o.RetryPolicy, func(ctx context.Context) error { return p.publishOnce(ctx, pub, o) },
		p.revivers()...)
}

// startPublish tells obs about pub and takes the headers it added.
func (p *Producer) startPublish(ctx context.Context, obs Observer, pub *driver.Publishing) (context.Context, func(error)) {
	info := &PublishInfo{Transport: p.conn.TransportName(), Exchange: pub.Exchange, RoutingKey: pub.RoutingKey,
		MessageID: pub.Properties.MessageID, CorrelationID: pub.Properties.CorrelationID,
		BodySize: len(pub.Body), Headers: pub.Headers}
	ctx, end := obs.StartPublish(ctx, info)
	pub.Headers = info.Headers
	pub.Properties.CorrelationID = info.CorrelationID
	return ctx, end
}

func (p *Producer) exchangeFor(o *PublishOptions) Exchange {
	if o.Exchange != nil {
		return *o.Exchange
	}
	return p.opts.Exchange
}

// build turns body and options into a driver publishing, with no I/O.
func (p *Producer) build(body any, o *PublishOptions) (*driver.Publishing, error) {
	ex := p.exchangeFor(o)
	rk := o.RoutingKey
	if rk == "" {
		rk = p.opts.RoutingKey
	}
	serializer := o.Serializer
	if serializer == "" {
		serializer = p.opts.Serializer
	}
	copts := &p.conn.opts
	data, ct, ce, err := copts.Serializers.Encode(serializer, body, o.ContentType, o.ContentEncoding)
	if err != nil {
		return nil, &Error{Op: "producer.publish", Transport: p.conn.TransportName(), Name: ex.Name, Err: err}
	}
	if in, ok := body.([]byte); ok && len(in) > 0 && len(data) > 0 && &in[0] == &data[0] {
		// Raw bytes pass through the serializer; the transport may keep
		// the body, and the caller may reuse its buffer.
		data = append([]byte(nil), data...)
	}
	// One rule for header values on every transport; the copy also keeps
	// the caller's maps out of transports that hold on to the headers.
	headers, err := driver.NormalizeHeaders(o.Headers)
	if err != nil {
		return nil, &Error{Op: "producer.publish", Transport: p.conn.TransportName(), Name: ex.Name, Err: err}
	}
	compression := o.Compression
	if compression == "" {
		compression = p.opts.Compression
	}
	if compression != "" {
		out, header, err := copts.Compressors.Compress(compression, data)
		if err != nil {
			return nil, &Error{Op: "producer.publish", Transport: p.conn.TransportName(), Name: ex.Name, Err: err}
		}
		if headers == nil {
			headers = make(map[string]any, 1)
		}
		data, headers["compression"] = out, header
	}
	mode := o.DeliveryMode
	if mode == 0 {
		mode = ex.DeliveryMode
	}
	if mode == 0 {
		mode = Persistent
	}
	if mode != Transient && mode != Persistent {
		return nil, &Error{Op: "producer.publish", Transport: p.conn.TransportName(), Name: ex.Name,
			Err: fmt.Errorf("%w: delivery mode %d", ErrInvalidArgument, mode)}
	}
	pub := &driver.Publishing{Exchange: ex.Name, RoutingKey: rk, Mandatory: o.Mandatory, Message: driver.Message{
		Body: data, ContentType: ct, ContentEncoding: ce, Headers: headers,
		Properties: driver.Properties{
			DeliveryMode: uint8(mode), Priority: o.Priority, CorrelationID: o.CorrelationID, ReplyTo: o.ReplyTo,
			MessageID: o.MessageID, Timestamp: o.Timestamp, Type: o.Type, UserID: o.UserID, AppID: o.AppID,
			Extra: o.Properties,
		},
	}}
	if o.Expiration != 0 && (o.Expiration < time.Millisecond || o.Expiration > MaxExpiry) {
		return nil, &Error{Op: "producer.publish", Transport: p.conn.TransportName(), Name: ex.Name,
			Err: fmt.Errorf("%w: expiration %v out of range 1ms..%v", ErrInvalidArgument, o.Expiration, MaxExpiry)}
	}
	if o.Expiration > 0 {
		pub.Properties.Expiration = strconv.FormatInt(o.Expiration.Milliseconds(), 10)
	}
	return pub, nil
}

func (p *Producer) publishOnce(ctx context.Context, pub *driver.Publishing, o *PublishOptions) error {
	ch, err := p.declared(ctx, o)
	if err != nil {
		return err
	}
	err = ch.drv.Publish(ctx, pub)
	if p.returned(err) {
		return nil
	}
	if err != nil && errors.Is(err, ErrUnroutable) {
		p.conn.observe(ctx, Event{Kind: EventReturned, Exchange: pub.Exchange, RoutingKey: pub.RoutingKey, Err: err})
	}
	return ch.wrap("publish", pub.Exchange, err)
}

// declared returns the channel to publish on, after declaring the
// exchange and o.Declare (once per connection).
func (p *Producer) declared(ctx context.Context, o *PublishOptions) (*Channel, error) {
	ch, err := p.channel(ctx)
	if err != nil {
		return nil, err
	}
	ex := p.exchangeFor(o)
	if !p.opts.NoDeclare && ex.Name != "" && !ex.NoDeclare {
		if err := p.conn.MaybeDeclare(ctx, ch, ex); err != nil {
			return nil, err
		}
	}
	for _, d := range o.Declare {
		if err := p.conn.MaybeDeclare(ctx, ch, d); err != nil {
			return nil, err
		}
	}
	return ch, nil
}

// returned hands an unroutable message to OnReturn and reports whether it
// did.
func (p *Producer) returned(err error) bool {
	if err == nil || p.opts.OnReturn == nil {
		return false
	}
	var re *driver.ReturnError
	if !errors.As(err, &re) {
		return false
	}
	p.onReturn(re.Return)
	return true
}

// onReturn hands a returned message to OnReturn, telling the observer.
func (p *Producer) onReturn(r Return) {
	p.conn.observe(context.Background(), Event{Kind: EventReturned, Exchange: r.Exchange, RoutingKey: r.RoutingKey,
		Err: fmt.Errorf("%w: %d %s", ErrUnroutable, r.ReplyCode, r.ReplyText)})
	p.opts.OnReturn(r)
}

// PublishBatch publishes every body with the same options in as few round
// trips as the transport allows (one pipeline on redis, a window of
// confirms on AMQP, one lock on memory). Every body is serialized before
// any I/O. On failure the error wraps a *driver.BatchError telling how
// many leading messages were published; with Retry, only the rest is
// retried.
func (p *Producer) PublishBatch(ctx context.Context, bodies []any, opts *PublishOptions) error {
	var o PublishOptions
	if opts != nil {
		o = *opts
	}
	pubs := make([]*driver.Publishing, len(bodies))
	for i, body := range bodies {
		pub, err := p.build(body, &o)
		if err != nil {
			return err
		}
		pubs[i] = pub
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if obs := p.conn.opts.Observer; obs != nil {
		ends := make([]func(error), len(pubs))
		for i, pub := range pubs {
			// Each message gets its own context (its own span): the
			// batch's ctx stays the parent of all.
			_, ends[i] = p.startPublish(ctx, obs, pub)
		}
		var published int
		err := p.sendBatch(ctx, pubs, &o, &published)
		for i, end := range ends {
			if i < published {
				end(nil)
			} else {
				end(err)
			}
		}
		return err
	}
	return p.sendBatch(ctx, pubs, &o, new(int))
}

// sendBatch publishes pubs, counting in *done how many went through.
func (p *Producer) sendBatch(ctx context.Context, pubs []*driver.Publishing, o *PublishOptions, done *int) error {
	once := func(ctx context.Context) error {
		for *done < len(pubs) {
			ch, err := p.declared(ctx, o)
			if err != nil {
				return err
			}
			n, err := publishBatch(ctx, ch.drv, pubs[*done:])
			*done += n
			if err == nil {
				continue
			}
			if p.returned(err) {
				*done++ // the returned message counts as handled
				continue
			}
			return ch.wrap("publish", pubs[0].Exchange, &driver.BatchError{Published: *done, Err: err})
		}
		return nil
	}
	if !o.Retry {
		return once(ctx)
	}
	return p.conn.Ensure(ctx, o.RetryPolicy, once, p.revivers()...)
}

// publishBatch publishes pubs and returns how many went through before an
// error (the error unwrapped from its BatchError).
func publishBatch(ctx context.Context, ch driver.Channel, pubs []*driver.Publishing) (int, error) {
	bp, ok := ch.(driver.BatchPublisher)
	if !ok {
		for i, pub := range pubs {
			if err := ch.Publish(ctx, pub); err != nil {
				return i, err
			}
		}
		return len(pubs), nil
	}
	err := bp.PublishBatch(ctx, pubs)
	if err == nil {
		return len(pubs), nil
	}
	var be *driver.BatchError
	if errors.As(err, &be) {
		return be.Published, be.Err
	}
	return 0, err
}

// notifyReturns sends the returns a transport reports asynchronously
// (AMQP basic.return outside confirm mode) to OnReturn. A channel has one
// such handler: the last producer created on it wins.
func (p *Producer) notifyReturns(ch *Channel) {
	if rn, ok := ch.drv.(driver.ReturnNotifier); ok && p.opts.OnReturn != nil {
		rn.NotifyReturn(p.onReturn)
	}
}

// revivers is what a retried publish revives after a reconnect: a
// producer that owns its channel opens a new one by itself (channel), one
// on a channel it was given moves to the connection's default channel.
func (p *Producer) revivers() []Reviver {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ownsChannel {
		return nil
	}
	return []Reviver{p}
}

// channel returns a live channel, replacing one lost to a reconnect when
// the producer owns it.
func (p *Producer) channel(ctx context.Context) (*Channel, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.ch.isClosed() || !p.ownsChannel {
		return p.ch, nil
	}
	ch, err := p.conn.Channel(ctx)
	if err != nil {
		return nil, err
	}
	p.notifyReturns(ch)
	p.ch = ch
	return ch, nil
}
