package amqp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kombu-go/kombu/kombu/driver"
)

// ExchangeBinder is implemented by *Channel: exchange-to-exchange bindings.
type ExchangeBinder = driver.ExchangeBinder

var (
	_ driver.Channel        = (*Channel)(nil)
	_ driver.BatchPublisher = (*Channel)(nil)
	_ driver.ReturnNotifier = (*Channel)(nil)
	_ ExchangeBinder        = (*Channel)(nil)
)

// receiveWait is how long Receive blocks when nothing is ready.
const receiveWait = time.Second

// gen is one AMQP channel under a Channel. A channel exception kills it; the
// next operation opens another one (a new generation).
type gen struct {
	ch   *amqp.Channel
	base uint64 // driver delivery tag = base + AMQP delivery tag

	dead    chan struct{} // closed by watch when the AMQP channel closes
	err     *amqp.Error   // why; set before dead is closed (nil: closed by us)
	watched chan struct{} // closed when watch returns
	barrier chan chan struct{}

	// handed tracks which AMQP delivery tags were handed to the user, so a
	// multiple ack never covers a delivery still buffered (see Ack).
	firstGap uint64              // every tag below it was handed out
	handed   map[uint64]struct{} // handed-out tags >= firstGap

	// nacked: the broker refused a publish here. RabbitMQ 3.10 can go on
	// nacking every publish of a channel whose first one met a quorum
	// queue's leader election, so the channel is replaced once idle
	// (see replaceNacked).
	nacked   atomic.Bool
	inflight atomic.Int64 // publishes sent or being sent, confirm not yet waited for
}

func (g *gen) isDead() bool {
	select {
	case <-g.dead:
		return true
	default:
		return g.ch.IsClosed()
	}
}

// cause waits a little for watch to record why the channel closed.
func (g *gen) cause() error {
	select {
	case <-g.dead:
	case <-time.After(time.Second):
	}
	select {
	case <-g.dead:
		if g.err != nil {
			return g.err
		}
	default:
	}
	return amqp.ErrClosed
}

func (g *gen) markHanded(tag uint64) {
	if tag == g.firstGap {
		g.firstGap++
		for {
			if _, ok := g.handed[g.firstGap]; !ok {
				break
			}
			delete(g.handed, g.firstGap)
			g.firstGap++
		}
		return
	}
	g.handed[tag] = struct{}{}
}

type consumer struct {
	g         *gen                 // the generation it consumes on (set when started)
	d         <-chan amqp.Delivery // amqp091-go's delivery channel (set when started)
	tag       string               // the caller's
	wireTag   string               // the broker's: tag, or a fresh one after a restart
	queue     string
	noAck     bool
	args      driver.ConsumeArgs // to start it again when the prefetch count changes
	cancelled bool               // by Cancel (or Close): its end is not an error
	ended     bool               // d was closed and the end handled
}

// item is a delivery read from a consumer but not handed out yet, or the
// end of a consumer, for Receive.
type item struct {
	g     *gen
	d     amqp.Delivery
	cons  *consumer
	err   error
	noAck bool
}

// Channel is a driver.Channel over an amqp091-go channel that it reopens
// after channel exceptions. Safe for concurrent use.
type Channel struct {
	conn *Conn

	openMu sync.Mutex // serializes (re)opening
	mu     sync.Mutex // guards the fields below
	g      *gen
	closed bool

	nextBase  uint64
	prefetch  int
	paused    bool
	unacked   map[uint64]*gen // driver tag -> generation, deliveries to settle
	consumers map[string]*consumer
	returnFn  func(driver.Return)

	// mandatory publishes with confirms run one at a time so a basic.return
	// can be matched to its publish; mandWait receives it.
	mandMu   sync.Mutex
	mandWait *driver.Return
	mandGen  *gen

	window  chan struct{} // confirm window semaphore
	queue   []item        // deliveries read but not handed out, consumer ends; guarded by mu
	reading []*consumer   // consumers whose Go channels Receive reads; guarded by mu
	rr      int           // round-robin start in reading
	queued  chan struct{} // poked when consumers come and go
	settled chan struct{} // poked (non-blocking) by acks: room in the window
	resumed chan struct{} // poked by Flow(true)
	stop    chan struct{}
	wg      sync.WaitGroup

	retMu    sync.Mutex
	retQueue []driver.Return
	retPoke  chan struct{}
}

func newChannel(c *Conn) *Channel {
	ch := &Channel{
		conn:      c,
		unacked:   make(map[uint64]*gen),
		consumers: make(map[string]*consumer),
		window:    make(chan struct{}, max(1, c.opts.ConfirmWindow)),
		queued:    make(chan struct{}, 1),
		settled:   make(chan struct{}, 1),
		resumed:   make(chan struct{}, 1),
		stop:      make(chan struct{}),
		retPoke:   make(chan struct{}, 1),
	}
	ch.wg.Add(1)
	go ch.dispatchReturns()
	return ch
}

func errClosed() error { return fmt.Errorf("amqp: channel: %w", driver.ErrClosed) }

// current returns the live generation, opening a new AMQP channel when the
// previous one died.
func (c *Channel) current(ctx context.Context) (*gen, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errClosed()
	}
	g := c.g
	c.mu.Unlock()
	if g != nil && !g.isDead() && !(g.nacked.Load() && c.replaceNacked(g)) {
		return g, nil
	}
	return c.reopen(ctx)
}

// replaceNacked closes a generation that had a publish nacked, so the next
// operation opens a fresh AMQP channel, unless something still depends on
// it: a running consumer, an unsettled delivery or a publish awaiting its
// confirm (closing would requeue or lose those). It reports whether it
// closed it.
func (c *Channel) replaceNacked(g *gen) bool {
	c.mu.Lock()
	busy := g.inflight.Load() > 0
	for _, cons := range c.consumers {
		busy = busy || cons.g == g
	}
	for _, tg := range c.unacked {
		busy = busy || tg == g
	}
	c.mu.Unlock()
	if busy {
		return false
	}
	_ = g.ch.Close()
	<-g.watched
	return true
}

func (c *Channel) reopen(ctx context.Context) (*gen, error) {
	c.openMu.Lock()
	defer c.openMu.Unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errClosed()
	}
	old := c.g
	if old != nil && !old.isDead() {
		c.mu.Unlock()
		return old, nil
	}
	c.mu.Unlock()
	if old != nil {
		c.retire(old)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.conn.isClosed() {
		return nil, mapErr(amqp.ErrClosed, c.conn.isClosed)
	}

	type result struct {
		g   *gen
		err error
	}
	res := make(chan result, 1)
	abandoned := make(chan struct{})
	// Counted in c.wg (while holding openMu, before Close can wait), so
	// the watch goroutine openGen starts is added while the count is > 0.
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		g, err := c.openGen()
		select {
		case res <- result{g, err}:
		case <-abandoned:
			if g != nil {
				_ = g.ch.Close()
				<-g.watched
			}
		}
	}()
	select {
	case r := <-res:
		if r.err != nil {
			return nil, r.err
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			_ = r.g.ch.Close()
			<-r.g.watched
			return nil, errClosed()
		}
		c.g = r.g
		c.mu.Unlock()
		return r.g, nil
	case <-ctx.Done():
		close(abandoned)
		return nil, ctx.Err()
	}
}

// openGen opens an AMQP channel and applies the channel's settings.
func (c *Channel) openGen() (*gen, error) {
	ach, err := c.conn.ac.Channel()
	if err != nil {
		return nil, c.setupErr(err)
	}
	c.mu.Lock()
	base := c.nextBase
	prefetch := c.prefetch
	c.mu.Unlock()
	g := &gen{
		ch:       ach,
		base:     base,
		dead:     make(chan struct{}),
		watched:  make(chan struct{}),
		barrier:  make(chan chan struct{}),
		firstGap: 1,
		handed:   make(map[uint64]struct{}),
	}
	closes := ach.NotifyClose(make(chan *amqp.Error, 1))
	returns := ach.NotifyReturn(make(chan amqp.Return)) // unbuffered: see watch
	c.wg.Add(1)
	go c.watch(g, closes, returns)
	fail := func(err error) (*gen, error) {
		_ = ach.Close()
		<-g.watched
		return nil, c.setupErr(err)
	}
	if c.conn.opts.ConfirmPublish {
		if err := ach.Confirm(false); err != nil {
			return fail(err)
		}
	}
	if prefetch > 0 {
		if err := ach.Qos(prefetch, 0, false); err != nil { // per consumer: see Qos
			return fail(err)
		}
	}
	return g, nil
}

// setupErr classifies a failure to open an AMQP channel or to apply its
// settings (confirm.select, basic.qos): nothing the caller asked for has
// happened yet, so a cut connection is ErrConnectionLost (see
// cutConnectionErr).
func (c *Channel) setupErr(err error) error {
	if lost := c.cutConnectionErr(err); lost != nil {
		return lost
	}
	return mapErr(err, c.conn.isClosed)
}

// cutConnectionErr returns err as ErrConnectionLost when the connection is
// gone and err is amqp091-go's own report of it, not a reply of the broker:
// a request waiting for its reply when the socket broke fails with a 501
// FRAME_ERROR ("EOF", "connection reset by peer") that mapErr cannot tell
// from a broker's. Only for requests whose repetition changes nothing
// (channel setup, declarations, bindings), since the broker may have acted
// on it. It returns nil otherwise.
func (c *Channel) cutConnectionErr(err error) error {
	var ae *amqp.Error
	if err == nil || errors.Is(err, driver.ErrConnectionLost) || (errors.As(err, &ae) && ae.Server) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || !c.conn.isClosed() {
		return nil
	}
	return fmt.Errorf("%w: %w", driver.ErrConnectionLost, err)
}

// doIdempotent is do for a request that has the same effect when repeated
// (a declaration, a binding): a connection cut under it is
// ErrConnectionLost, so that a retry policy (a publish's Declare list, a
// Worker's redeclare) carries on.
func (c *Channel) doIdempotent(ctx context.Context, fn func(ch *amqp.Channel) error) error {
	err := c.do(ctx, fn)
	if lost := c.cutConnectionErr(err); lost != nil {
		return lost
	}
	return err
}

// retire forgets a dead generation: its unacked deliveries went back to
// their queues, so their tags are no longer valid.
func (c *Channel) retire(g *gen) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bumpBase(g)
	for tag, tg := range c.unacked {
		if tg == g {
			delete(c.unacked, tag)
		}
	}
	// Its consumers died with it: free their tags (their forwarders still
	// report the loss to Receive).
	for tag, cons := range c.consumers {
		if cons.g == g {
			delete(c.consumers, tag)
		}
	}
	if c.g == g {
		c.g = nil
	}
	c.poke(c.settled)
}

// watch owns a generation's notification channels until amqp091-go closes
// them (it does when the AMQP channel closes).
func (c *Channel) watch(g *gen, closes chan *amqp.Error, returns chan amqp.Return) {
	defer c.wg.Done()
	defer close(g.watched)
	for closes != nil || returns != nil {
		select {
		case e, ok := <-closes:
			if !ok {
				closes = nil
				c.markDead(g, nil)
				continue
			}
			c.markDead(g, e)
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			c.handleReturn(g, r)
		case done := <-g.barrier:
			close(done)
		}
	}
}

// sync waits until watch has finished with every notification amqp091-go
// handed it so far.
func (g *gen) sync() {
	done := make(chan struct{})
	select {
	case g.barrier <- done:
		<-done
	case <-g.watched:
	}
}

func (c *Channel) markDead(g *gen, e *amqp.Error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-g.dead:
		return
	default:
	}
	g.err = e
	close(g.dead)
	c.bumpBase(g)
}

// bumpBase makes sure the next generation's delivery tags start above every
// tag of g. Deliveries of g still in buffers with tags we have not seen are
// dropped by Receive (their generation is dead), so a wide gap is enough.
// c.mu must be held.
func (c *Channel) bumpBase(g *gen) {
	hi := g.base + g.firstGap
	for t := range g.handed {
		hi = max(hi, g.base+t)
	}
	for tag, tg := range c.unacked {
		if tg == g {
			hi = max(hi, tag)
		}
	}
	if nb := hi + 1<<32; nb > c.nextBase {
		c.nextBase = nb
	}
}

func (c *Channel) handleReturn(g *gen, r amqp.Return) {
	headers := fromTable(r.Headers)
	if reason, refused := refusedHeaders(r.Headers, c.conn.refusedKey); refused {
		// A Return has no decode-error path: say why the headers are gone.
		headers = map[string]any{refusedName: reason}
	}
	ret := driver.Return{
		ReplyCode:  int(r.ReplyCode),
		ReplyText:  r.ReplyText,
		Exchange:   r.Exchange,
		RoutingKey: r.RoutingKey,
		Message: driver.Message{
			Body:            r.Body,
			ContentType:     r.ContentType,
			ContentEncoding: r.ContentEncoding,
			Headers:         headers,
			Properties: driver.Properties{
				DeliveryMode:  r.DeliveryMode,
				Priority:      r.Priority,
				CorrelationID: r.CorrelationId,
				ReplyTo:       r.ReplyTo,
				Expiration:    r.Expiration,
				MessageID:     r.MessageId,
				Timestamp:     r.Timestamp,
				Type:          r.Type,
				UserID:        r.UserId,
				AppID:         r.AppId,
			},
		},
	}
	c.mu.Lock()
	if c.mandWait != nil && c.mandGen == g && c.mandWait.ReplyCode == 0 {
		*c.mandWait = ret
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.retMu.Lock()
	c.retQueue = append(c.retQueue, ret)
	c.retMu.Unlock()
	c.poke(c.retPoke)
}

// dispatchReturns calls the NotifyReturn handler outside amqp091-go's reader
// goroutine, so a slow handler never stalls the connection.
func (c *Channel) dispatchReturns() {
	defer c.wg.Done()
	for {
		select {
		case <-c.retPoke:
		case <-c.stop:
			return
		}
		for {
			c.retMu.Lock()
			if len(c.retQueue) == 0 {
				c.retMu.Unlock()
				break
			}
			r := c.retQueue[0]
			c.retQueue = c.retQueue[1:]
			c.retMu.Unlock()
			c.mu.Lock()
			fn := c.returnFn
			c.mu.Unlock()
			if fn != nil {
				fn(r)
			}
		}
	}
}

func (c *Channel) poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// NotifyReturn sets the handler of unroutable mandatory messages that are
// not reported synchronously by Publish. It is called from a goroutine of
// the channel, one return at a time.
func (c *Channel) NotifyReturn(fn func(driver.Return)) {
	c.mu.Lock()
	c.returnFn = fn
	c.mu.Unlock()
}

// do runs an RPC on the live generation, honouring ctx, and maps its error.
// A channel exception kills the generation; the next call reopens.
func (c *Channel) do(ctx context.Context, fn func(ch *amqp.Channel) error) error {
	for attempt := 0; ; attempt++ {
		g, err := c.current(ctx)
		if err != nil {
			return err
		}
		err = c.conn.callCtx(ctx, func() error { return fn(g.ch) })
		if err == nil {
			return nil
		}
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return err
		}
		if attempt == 0 && notSent(err) && !c.conn.isClosed() {
			// The AMQP channel had just died and amqp091-go refused to
			// send: nothing happened, so try once on a fresh channel.
			continue
		}
		return mapErr(err, c.conn.isClosed)
	}
}

// notSent reports an error of amqp091-go refusing to send on a closed
// channel (the request never left).
func notSent(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae == amqp.ErrClosed
}

// checkShortstr checks a message property that AMQP sends as a short
// string. Names (queues, exchanges, routing keys, consumer tags) go through
// driver.ValidateName instead, which also requires UTF-8: RabbitMQ closes
// the connection on a name that is not.
func checkShortstr(kind, s string) error {
	if len(s) > 255 {
		return fmt.Errorf("%w: %s longer than 255 bytes", driver.ErrInvalidArgument, kind)
	}
	return nil
}

// validateNames checks kind/name pairs with driver.ValidateName.
func validateNames(kindNames ...string) error {
	for i := 0; i+1 < len(kindNames); i += 2 {
		if err := driver.ValidateName(kindNames[i], kindNames[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// ExchangeDeclare declares e. The default exchange ("") always exists and
// is not declared. RabbitMQ refuses to create names starting with "amq."
// (driver.ErrAccessRefused) but accepts redeclaring its predeclared amq.*
// exchanges with their own attributes.
func (c *Channel) ExchangeDeclare(ctx context.Context, e driver.Exchange) error {
	if err := driver.ValidateName("exchange", e.Name); err != nil {
		return err
	}
	typ := e.Type
	if typ == "" {
		typ = amqp.ExchangeDirect
	}
	args, err := toTable(e.Args)
	if err != nil {
		return err
	}
	if e.Name == "" {
		if c.isClosed() {
			return errClosed()
		}
		return nil
	}
	return c.doIdempotent(ctx, func(ch *amqp.Channel) error {
		if e.Passive {
			return ch.ExchangeDeclarePassive(e.Name, typ, e.Durable, e.AutoDelete, e.Internal, false, args)
		}
		return ch.ExchangeDeclare(e.Name, typ, e.Durable, e.AutoDelete, e.Internal, false, args)
	})
}

// ExchangeDelete deletes an exchange. A missing exchange is not an error.
func (c *Channel) ExchangeDelete(ctx context.Context, name string, ifUnused bool) error {
	if err := driver.ValidateName("exchange", name); err != nil {
		return err
	}
	err := c.do(ctx, func(ch *amqp.Channel) error { return ch.ExchangeDelete(name, ifUnused, false) })
	if errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	return err
}

// ExchangeBind binds destination to source (RabbitMQ exchange-to-exchange
// binding).
func (c *Channel) ExchangeBind(ctx context.Context, destination, source, routingKey string, args map[string]any) error {
	if err := validateNames("exchange", destination, "exchange", source, "routing key", routingKey); err != nil {
		return err
	}
	t, err := toTable(args)
	if err != nil {
		return err
	}
	return c.doIdempotent(ctx, func(ch *amqp.Channel) error { return ch.ExchangeBind(destination, routingKey, source, false, t) })
}

// ExchangeUnbind removes an exchange-to-exchange binding.
func (c *Channel) ExchangeUnbind(ctx context.Context, destination, source, routingKey string, args map[string]any) error {
	if err := validateNames("exchange", destination, "exchange", source, "routing key", routingKey); err != nil {
		return err
	}
	t, err := toTable(args)
	if err != nil {
		return err
	}
	return c.doIdempotent(ctx, func(ch *amqp.Channel) error { return ch.ExchangeUnbind(destination, routingKey, source, false, t) })
}

// QueueDeclare declares q (or checks it exists, with q.Passive).
func (c *Channel) QueueDeclare(ctx context.Context, q driver.Queue) (driver.QueueInfo, error) {
	if err := driver.ValidateName("queue", q.Name); err != nil {
		return driver.QueueInfo{}, err
	}
	args, err := toTable(q.Args)
	if err != nil {
		return driver.QueueInfo{}, err
	}
	var info amqp.Queue
	err = c.doIdempotent(ctx, func(ch *amqp.Channel) error {
		var err error
		if q.Passive {
			info, err = ch.QueueDeclarePassive(q.Name, q.Durable, q.AutoDelete, q.Exclusive, false, args)
		} else {
			info, err = ch.QueueDeclare(q.Name, q.Durable, q.AutoDelete, q.Exclusive, false, args)
		}
		return err
	})
	if err != nil {
		return driver.QueueInfo{}, err
	}
	return driver.QueueInfo{Name: info.Name, Messages: info.Messages, Consumers: info.Consumers}, nil
}

// QueueBind binds a queue. Binding to the default exchange ("") is a no-op:
// every queue is bound to it by name already (and RabbitMQ refuses it).
func (c *Channel) QueueBind(ctx context.Context, b driver.Binding) error {
	return c.binding(ctx, b, func(ch *amqp.Channel, t amqp.Table) error {
		return ch.QueueBind(b.Queue, b.RoutingKey, b.Exchange, false, t)
	})
}

// QueueUnbind removes a binding.
func (c *Channel) QueueUnbind(ctx context.Context, b driver.Binding) error {
	return c.binding(ctx, b, func(ch *amqp.Channel, t amqp.Table) error {
		return ch.QueueUnbind(b.Queue, b.RoutingKey, b.Exchange, t)
	})
}

// binding checks b's names and arguments, then runs op unless b is on the
// default exchange, where every queue is bound already.
func (c *Channel) binding(ctx context.Context, b driver.Binding, op func(*amqp.Channel, amqp.Table) error) error {
	if err := validateNames("queue", b.Queue, "exchange", b.Exchange, "routing key", b.RoutingKey); err != nil {
		return err
	}
	t, err := toTable(b.Args)
	if err != nil {
		return err
	}
	if b.Exchange == "" {
		if c.isClosed() {
			return errClosed()
		}
		return nil
	}
	return c.doIdempotent(ctx, func(ch *amqp.Channel) error { return op(ch, t) })
}

// QueuePurge removes the ready messages of queue.
func (c *Channel) QueuePurge(ctx context.Context, queue string) (int, error) {
	if err := driver.ValidateName("queue", queue); err != nil {
		return 0, err
	}
	var n int
	err := c.do(ctx, func(ch *amqp.Channel) error {
		var err error
		n, err = ch.QueuePurge(queue, false)
		return err
	})
	return n, err
}

// QueueDelete deletes queue; a missing queue is not an error.
func (c *Channel) QueueDelete(ctx context.Context, queue string, ifUnused, ifEmpty bool) (int, error) {
	if err := driver.ValidateName("queue", queue); err != nil {
		return 0, err
	}
	var n int
	err := c.do(ctx, func(ch *amqp.Channel) error {
		var err error
		n, err = ch.QueueDelete(queue, ifUnused, ifEmpty, false)
		return err
	})
	if errors.Is(err, driver.ErrNotFound) {
		return 0, nil
	}
	return n, err
}

func (c *Channel) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Qos sets the prefetch count: basic.qos with global=false, the per
// consumer limit that Python kombu, py-amqp and RabbitMQ default to, and
// the only one quorum queues accept (a channel with a global limit cannot
// consume from them). RabbitMQ applies it to consumers started afterwards,
// so consumers already running on the channel are started again (cancel
// and consume under the same tag; deliveries read but not handed out go
// back to their queue, those handed out stay valid). Receive never hands
// out more unsettled deliveries than the count for the whole channel. It
// is re-applied when the channel is reopened.
func (c *Channel) Qos(ctx context.Context, prefetchCount int) error {
	if prefetchCount < 0 || prefetchCount > 65535 {
		return fmt.Errorf("%w: prefetch count %d out of range 0..65535", driver.ErrInvalidArgument, prefetchCount)
	}
	c.mu.Lock()
	changed := c.prefetch != prefetchCount
	c.prefetch = prefetchCount
	var running []driver.ConsumeArgs
	if changed {
		for _, cons := range c.consumers {
			if cons.d != nil && !cons.cancelled && !cons.ended && !cons.g.isDead() {
				running = append(running, cons.args)
			}
		}
	}
	c.mu.Unlock()
	err := c.doIdempotent(ctx, func(ch *amqp.Channel) error { return ch.Qos(prefetchCount, 0, false) })
	c.poke(c.settled)
	if err != nil {
		return err
	}
	for _, a := range running {
		if err := c.reconsume(ctx, a); err != nil {
			return err
		}
	}
	return nil
}

// reconsume starts a running consumer again so the broker applies the
// channel's new per-consumer prefetch count to it. A consumer that cannot
// be started again is reported to Receive as ended.
func (c *Channel) reconsume(ctx context.Context, a driver.ConsumeArgs) error {
	if err := c.Cancel(ctx, a.ConsumerTag); err != nil {
		return fmt.Errorf("amqp: restarting consumer %q for the new prefetch count: %w", a.ConsumerTag, err)
	}
	err := c.consume(ctx, a, uniqueTag())
	if err == nil {
		return nil
	}
	ce := &ConsumerError{ConsumerTag: a.ConsumerTag, Queue: a.Queue,
		Err: fmt.Errorf("restarting it for the new prefetch count: %w", err)}
	c.mu.Lock()
	if !c.closed {
		c.queue = append(c.queue, item{err: ce})
	}
	c.mu.Unlock()
	c.poke(c.queued)
	return fmt.Errorf("amqp: restarting consumer %q for the new prefetch count: %w", a.ConsumerTag, err)
}

// Flow pauses or resumes Receive. RabbitMQ does not implement a client's
// channel.flow, so the pause is local: deliveries wait in the channel's
// buffers (at most the prefetch window of them) until Flow(true).
func (c *Channel) Flow(ctx context.Context, active bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errClosed()
	}
	c.paused = !active
	if active {
		c.poke(c.resumed)
	}
	return nil
}

// Recover asks the broker to redeliver the channel's unacked messages.
// RabbitMQ implements only requeue=true; requeue=false is sent as true.
// Tags handed out before are no longer valid afterwards.
func (c *Channel) Recover(ctx context.Context, requeue bool) error {
	g, err := c.current(ctx)
	if err != nil {
		return err
	}
	err = c.conn.callCtx(ctx, func() error { return g.ch.Recover(true) })
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return err
		}
		return mapErr(err, c.conn.isClosed)
	}
	c.mu.Lock()
	for tag, tg := range c.unacked {
		if tg == g {
			delete(c.unacked, tag)
		}
	}
	c.mu.Unlock()
	c.poke(c.settled)
	return nil
}

// Close closes the AMQP channel (the broker requeues its unacked
// deliveries) and waits for the channel's goroutines. Idempotent.
func (c *Channel) Close() error {
	c.openMu.Lock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.openMu.Unlock()
		return nil
	}
	c.closed = true
	for _, cons := range c.consumers {
		cons.cancelled = true
	}
	c.consumers = map[string]*consumer{}
	g := c.g
	c.g = nil
	c.unacked = map[uint64]*gen{}
	c.queue = nil
	c.reading = nil
	close(c.stop)
	c.mu.Unlock()
	c.openMu.Unlock()
	c.conn.forget(c)

	var err error
	if g != nil && !g.ch.IsClosed() {
		done := make(chan error, 1)
		c.conn.goOrRun(func() { done <- g.ch.Close() })
		select {
		case err = <-done:
		case <-time.After(5 * time.Second):
			return fmt.Errorf("amqp: channel close: %w", driver.ErrTimeout)
		}
		if errors.Is(err, amqp.ErrClosed) {
			err = nil
		}
	}
	c.wg.Wait()
	if err != nil {
		return fmt.Errorf("amqp: channel close: %w", mapErr(err, c.conn.isClosed))
	}
	return nil
}

// As lets users reach the current *amqp091.Channel (it changes after a
// channel exception).
func (c *Channel) As(target any) bool {
	if p, ok := target.(**amqp.Channel); ok {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.g == nil {
			return false
		}
		*p = c.g.ch
		return true
	}
	return false
}

func uniqueTag() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "kombu-go." + hex.EncodeToString(b[:])
}

// sortedTags returns the tags of m at or below limit, ascending.
func sortedTags(m map[uint64]*gen, g *gen, limit uint64) []uint64 {
	var out []uint64
	for t, tg := range m {
		if tg == g && t <= limit {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
