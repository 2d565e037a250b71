package beanstalk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/beanstalkd/go-beanstalk"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

// commandTimeout bounds every command on top of its own wait, so that a
// server that stops answering fails the command instead of hanging it.
const commandTimeout = 30 * time.Second

// headerDeliveryCount carries beanstalkd's reserve count of a job less
// one on its redeliveries: the broker counter kombu's redelivery policy
// reads (Features.DeliveryCount). beanstalkd's binlog does not keep it
// across a server restart.
const headerDeliveryCount = "x-delivery-count"

// maxIdleConns is how many connections holding no job a store keeps open
// between commands.
const maxIdleConns = 4

// Store is the beanstalk virtual.Store. Queues are tubes; a message is a
// job whose body is kombu's JSON envelope.
//
// beanstalkd ties a reserved job to the connection that reserved it: only
// that connection may delete (ack), release (requeue), bury or touch it,
// and when it closes the job goes back to its tube at once. So the store
// keeps a set of connections; each Item remembers the one that reserved it.
// A connection blocks while it waits in reserve-with-timeout, and a
// settlement sent behind that wait would be late, so blocking reserves
// only run on connections that hold no job, and connections holding jobs
// only reserve without waiting.
type Store struct {
	opts        *Options
	reg         *registry
	mu          sync.Mutex
	closed      bool
	conns       []*conn
	maxJobSize  int       // the server's max-job-size
	serverStart time.Time // when the server started, from its uptime at the latest dial

	closeCtx    context.Context // cancelled by Close: interrupts waits
	closeCancel context.CancelFunc
}

// conn is one connection to beanstalkd.
type conn struct {
	mu sync.Mutex // held for each command: one at a time, never pipelined
	nc net.Conn
	bc *beanstalk.Conn

	// Guarded by Store.mu.
	busy     bool            // taken by a Put, Get or other command of the store
	watching map[string]bool // the tubes it watches (its last reserve's)
	held     int             // reserved jobs not settled yet
	broken   bool            // failed or interrupted: beanstalkd released its jobs
}

// receipt is an Item's handle on its reserved job.
type receipt struct {
	conn *conn
	id   uint64
	pri  uint32
	ttr  time.Duration // the job's time to run, as put
}

// Dial connects to beanstalkd and returns a Store.
func (c *Connector) Dial(ctx context.Context) (*Store, error) {
	s := &Store{opts: c.opts, reg: registryFor(c.opts.Addr)}
	s.closeCtx, s.closeCancel = context.WithCancel(context.Background())
	first, err := s.dial(ctx)
	if err != nil {
		s.closeCancel()
		return nil, err
	}
	s.conns = append(s.conns, first)
	return s, nil
}

// dial opens a connection and reads the server's stats: its max-job-size,
// and its uptime, which dates its start (see reserve).
func (s *Store) dial(ctx context.Context) (*conn, error) {
	d := net.Dialer{Timeout: s.opts.ConnectTimeout, KeepAlive: beanstalk.DefaultKeepAlivePeriod}
	nc, err := d.DialContext(ctx, "tcp", s.opts.Addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: beanstalk: dial %s: %w", driver.ErrConnectionLost, s.opts.Addr, err)
	}
	c := &conn{nc: nc, bc: beanstalk.NewConn(nc)}
	var stats map[string]string
	err = s.run(ctx, c, 0, func() error {
		var err error
		stats, err = c.bc.Stats()
		return err
	})
	if err != nil {
		nc.Close()
		return nil, wrap("stats", err)
	}
	maxJob, _ := strconv.Atoi(stats["max-job-size"])
	if maxJob <= 0 {
		maxJob = DefaultMaxJobSize
	}
	uptime, _ := strconv.Atoi(stats["uptime"])
	s.mu.Lock()
	s.maxJobSize = maxJob
	s.serverStart = time.Now().Add(-time.Duration(uptime) * time.Second)
	s.mu.Unlock()
	return c, nil
}

// acquire takes a connection no other command uses: one holding no job
// when empty is set (for a blocking reserve), else preferably one holding
// jobs (so that jobs gather on few connections). It dials a new one when
// none is free.
func (s *Store) acquire(ctx context.Context, empty bool) (*conn, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, driver.ErrClosed
	}
	var pick *conn
	for _, c := range s.conns {
		if c.busy || c.broken || (empty && c.held > 0) {
			continue
		}
		if pick == nil || c.held > pick.held {
			pick = c
		}
	}
	if pick != nil {
		pick.busy = true
		s.mu.Unlock()
		return pick, nil
	}
	s.mu.Unlock()
	c, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.busy = true
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.nc.Close()
		return nil, driver.ErrClosed
	}
	s.conns = append(s.conns, c)
	return c, nil
}

// release gives back a connection taken by acquire, closing it when it
// failed or when enough idle ones are kept already.
func (s *Store) release(c *conn) {
	s.mu.Lock()
	c.busy = false
	drop := c.broken
	if !drop && c.held == 0 {
		idle := 0
		for _, o := range s.conns {
			if !o.busy && !o.broken && o.held == 0 {
				idle++
			}
		}
		drop = idle > maxIdleConns
	}
	if drop {
		s.forgetLocked(c)
	}
	s.mu.Unlock()
	if drop {
		c.nc.Close()
	}
}

// forgetLocked removes c from the store's connections; call with s.mu held.
func (s *Store) forgetLocked(c *conn) {
	for i, o := range s.conns {
		if o == c {
			s.conns = append(s.conns[:i], s.conns[i+1:]...)
			return
		}
	}
}

// run runs one command on c. wait is how long the command may block on
// the server by design (a reserve's timeout); only such a waiting command
// is interrupted by ctx and by Close (the socket deadline moves to the
// past), and it only runs on a connection that holds no job. Other
// commands are short and run to their end, bounded by commandTimeout:
// interrupting one would break a connection whose reserved jobs beanstalkd
// then hands to another consumer. A connection that fails is marked
// broken: its replies are out of step, and beanstalkd releases its jobs
// when it is closed.
func (s *Store) run(ctx context.Context, c *conn, wait time.Duration, cmd func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	broken := c.broken
	s.mu.Unlock()
	if broken {
		return errConnFailed
	}
	_ = c.nc.SetDeadline(time.Now().Add(wait + commandTimeout))
	var ctxFired, closeFired bool
	var err error
	if wait > 0 {
		done := make(chan struct{})
		var once sync.Once
		interrupt := func() {
			once.Do(func() {
				_ = c.nc.SetDeadline(time.Unix(1, 0))
				close(done)
			})
		}
		stopCtx := context.AfterFunc(ctx, interrupt)
		stopClose := context.AfterFunc(s.closeCtx, interrupt)
		err = cmd()
		ctxFired, closeFired = !stopCtx(), !stopClose()
		if ctxFired || closeFired {
			<-done // the next command's deadline must not be overwritten
		}
	} else {
		err = cmd()
	}
	if err == nil || isReply(err) {
		return err
	}
	s.breakConn(c)
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	switch {
	case ctxFired && ctx.Err() != nil:
		return ctx.Err()
	case closeFired || closed:
		return fmt.Errorf("%w: beanstalk: the store was closed during the command: %w", driver.ErrClosed, err)
	}
	return fmt.Errorf("%w: %w", errConnFailed, err)
}

// breakConn marks c failed and closes it unless a command holds it.
func (s *Store) breakConn(c *conn) {
	s.mu.Lock()
	c.broken = true
	if !c.busy {
		s.forgetLocked(c)
	}
	s.mu.Unlock()
	c.nc.Close()
}

// errConnFailed wraps the errors of commands whose connection failed (or
// had failed before): beanstalkd released every job it had reserved.
var errConnFailed = errors.New("beanstalk: the connection failed")

// protocolErrors are beanstalkd's error replies: the command was answered
// and the connection is still in step.
var protocolErrors = []error{
	beanstalk.ErrBadFormat, beanstalk.ErrBuried, beanstalk.ErrDeadline, beanstalk.ErrDraining,
	beanstalk.ErrInternal, beanstalk.ErrJobTooBig, beanstalk.ErrNoCRLF, beanstalk.ErrNotFound,
	beanstalk.ErrNotIgnored, beanstalk.ErrOOM, beanstalk.ErrTimeout, beanstalk.ErrUnknown,
}

// isReply reports whether err is an error reply of beanstalkd rather than a
// failure of the connection.
func isReply(err error) bool {
	for _, p := range protocolErrors {
		if errors.Is(err, p) {
			return true
		}
	}
	return false
}

// wrap classifies a command's error: context errors and ErrClosed as they
// are, a failed connection as driver.ErrConnectionLost (kombu reconnects),
// replies with the operation named.
func wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, driver.ErrClosed),
		errors.Is(err, driver.ErrConnectionLost):
		return err
	case isReply(err):
		return fmt.Errorf("beanstalk %s: %w", op, err)
	}
	return fmt.Errorf("%w: beanstalk %s: %w", driver.ErrConnectionLost, op, err)
}

// ValidateName implements virtual.NameValidator: a queue is a tube, and
// beanstalkd's tube names are narrower than AMQP's queue names.
func (s *Store) ValidateName(kind, name string) error {
	if kind != "queue" {
		return nil
	}
	return checkTube(name)
}

// checkTube refuses a name beanstalkd or go-beanstalk would refuse. It
// runs before every command: go-beanstalk leaves a connection stuck for
// good after it refuses a tube name itself.
func checkTube(name string) error {
	bad := len(name) == 0 || len(name) >= 200 || name[0] == '-'
	for i := 0; i < len(name) && !bad; i++ {
		bad = !tubeByte(name[i])
	}
	if bad {
		return fmt.Errorf("%w: beanstalk: %q is not a tube name (1 to 199 bytes of A-Z a-z 0-9 and - + / ; . $ _ ( ), not starting with -)",
			driver.ErrInvalidArgument, name)
	}
	return nil
}

func tubeByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '-', '+', '/', ';', '.', '$', '_', '(', ')':
		return true
	}
	return false
}

// Put implements virtual.Store: one job in tube queue, with the message's
// priority, the delay its x-delay header asks for, and the store's TTR.
func (s *Store) Put(ctx context.Context, queue string, env *virtual.Envelope) error {
	if err := checkTube(queue); err != nil {
		return err
	}
	delay, err := jobDelay(env.Headers)
	if err != nil {
		return err
	}
	body, err := encodeJob(env)
	if err != nil {
		return err
	}
	s.mu.Lock()
	maxJob := s.maxJobSize
	s.mu.Unlock()
	if len(body) > maxJob {
		return fmt.Errorf("%w: beanstalk: the message is %d bytes as a job, more than the server's max-job-size %d (beanstalkd -z)",
			driver.ErrInvalidArgument, len(body), maxJob)
	}
	c, err := s.acquire(ctx, false)
	if err != nil {
		return err
	}
	defer s.release(c)
	tube := beanstalk.Tube{Conn: c.bc, Name: queue}
	err = s.run(ctx, c, 0, func() error {
		_, err := tube.Put(body, jobPriority(env), delay, s.opts.TTR)
		return err
	})
	switch {
	case errors.Is(err, beanstalk.ErrJobTooBig):
		return fmt.Errorf("%w: beanstalk: the message is %d bytes as a job, more than beanstalkd takes (its -z): %w",
			driver.ErrInvalidArgument, len(body), err)
	case err != nil && !isReply(err) && ctx.Err() == nil && !errors.Is(err, driver.ErrClosed):
		return fmt.Errorf("%w: beanstalk put: the connection failed before beanstalkd answered, the job may or may not be stored: %w",
			driver.ErrUnconfirmed, err)
	}
	return wrap("put", err)
}

// Get implements virtual.Store. beanstalkd's reserve waits whole seconds,
// so a wait is rounded up to the next second.
func (s *Store) Get(ctx context.Context, queues []string, wait time.Duration) (virtual.Item, error) {
	for _, q := range queues {
		if err := checkTube(q); err != nil {
			return virtual.Item{}, err
		}
	}
	if len(queues) == 0 {
		return virtual.Item{}, driver.ErrEmpty
	}
	c, err := s.acquire(ctx, false)
	if err != nil {
		return virtual.Item{}, err
	}
	s.mu.Lock()
	holding := c.held > 0
	s.mu.Unlock()
	first := wait
	if holding {
		first = 0 // it must not block the settlements of its jobs
	}
	// beanstalkd serves the oldest job of all watched tubes first; the
	// first queue (virtual rotates them) gets its turn alone first, so
	// that a full queue does not starve the others.
	var it virtual.Item
	if len(queues) > 1 {
		it, err = s.reserve(ctx, c, queues[:1], 0)
		if errors.Is(err, driver.ErrEmpty) && !errors.Is(err, beanstalk.ErrDeadline) {
			it, err = s.reserve(ctx, c, queues, first)
		}
	} else {
		it, err = s.reserve(ctx, c, queues, first)
	}
	s.release(c)
	again := errors.Is(err, beanstalk.ErrDeadline) || errors.Is(err, driver.ErrEmpty) && first < wait
	if !again {
		return it, err
	}
	// Empty on a connection holding jobs (or one of them is about to
	// time out): wait, or look again, on one that holds none.
	c, err = s.acquire(ctx, true)
	if err != nil {
		return virtual.Item{}, err
	}
	defer s.release(c)
	return s.reserve(ctx, c, queues, wait)
}

// reserve reserves one job of queues on c, waiting up to wait (rounded
// up to whole seconds), and asks for its tube, priority and reserve count.
func (s *Store) reserve(ctx context.Context, c *conn, queues []string, wait time.Duration) (virtual.Item, error) {
	secs := (wait + time.Second - 1) / time.Second * time.Second
	var id uint64
	var body []byte
	var stats map[string]string
	s.mu.Lock()
	c.watching = make(map[string]bool, len(queues))
	for _, q := range queues {
		c.watching[q] = true
	}
	s.mu.Unlock()
	err := s.run(ctx, c, secs, func() error {
		var err error
		id, body, err = beanstalk.NewTubeSet(c.bc, queues...).Reserve(secs)
		if err != nil {
			return err
		}
		stats, err = c.bc.StatsJob(id)
		return err
	})
	if errors.Is(err, beanstalk.ErrTimeout) {
		return virtual.Item{}, driver.ErrEmpty
	}
	if errors.Is(err, beanstalk.ErrDeadline) {
		return virtual.Item{}, fmt.Errorf("%w: beanstalk reserve: %w", driver.ErrEmpty, err)
	}
	if err != nil {
		return virtual.Item{}, wrap("reserve", err)
	}
	s.mu.Lock()
	c.held++
	s.mu.Unlock()
	pri, _ := strconv.ParseUint(stats["pri"], 10, 32)
	ttr, _ := strconv.Atoi(stats["ttr"])
	r := &receipt{conn: c, id: id, pri: uint32(pri), ttr: time.Duration(ttr) * time.Second}
	tube := stats["tube"]
	env, derr := virtual.UnmarshalEnvelope(body)
	if derr != nil {
		return virtual.UndecodableItem(tube, body, fmt.Errorf("beanstalk job %d of tube %q: %w", id, tube, derr), r), nil
	}
	env.Raw = nil
	if s.reservedBefore(stats) {
		env.Redelivered = true
	}
	if n, _ := strconv.Atoi(stats["reserves"]); n > 1 {
		// As SQS and RabbitMQ's quorum queues: only redeliveries carry
		// the broker's count, the reserves before this one.
		if env.Headers == nil {
			env.Headers = map[string]any{}
		}
		env.Headers[headerDeliveryCount] = int64(n - 1)
	}
	return virtual.Item{Queue: tube, Envelope: env, Receipt: r}, nil
}

// reservedBefore reports whether a job may have been delivered before:
// reserved before (released by a requeue, a closed connection or a TTR
// that ran out, or kicked back from the buried list), or put before the
// server last started. beanstalkd's binlog does not keep reserve counts,
// so after a restart a job held by a consumer then comes back counted
// once; it is flagged when its age reaches the server's uptime, as
// RabbitMQ flags what it recovers (a job put within the server's first
// second is flagged too).
func (s *Store) reservedBefore(stats map[string]string) bool {
	if n, _ := strconv.Atoi(stats["reserves"]); n > 1 {
		return true
	}
	age, err := strconv.Atoi(stats["age"])
	if err != nil {
		return false
	}
	s.mu.Lock()
	uptime := time.Since(s.serverStart)
	s.mu.Unlock()
	return time.Duration(age)*time.Second >= uptime.Truncate(time.Second)
}

// settle runs a command on the connection that reserved it's job and
// forgets the job there.
func (s *Store) settle(ctx context.Context, it virtual.Item, op string, cmd func(c *beanstalk.Conn, r *receipt) error) error {
	r, ok := it.Receipt.(*receipt)
	if !ok {
		return fmt.Errorf("beanstalk %s: the item has no beanstalk receipt", op)
	}
	err := s.run(ctx, r.conn, 0, func() error { return cmd(r.conn.bc, r) })
	s.mu.Lock()
	r.conn.held--
	s.mu.Unlock()
	switch {
	case errors.Is(err, errConnFailed):
		return fmt.Errorf("%w: beanstalk %s of job %d: the connection that reserved it failed, so beanstalkd put it back in its tube: %w",
			driver.ErrConnectionLost, op, r.id, err)
	case errors.Is(err, beanstalk.ErrNotFound):
		return fmt.Errorf("beanstalk %s of job %d: the job is no longer reserved here (its TTR of %v ran out and it went back to its tube): %w",
			op, r.id, s.opts.TTR, err)
	}
	return wrap(op, err)
}

// ownWatchers counts this store's connections that watch tube.
func (s *Store) ownWatchers(tube string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.conns {
		if c.watching[tube] && !c.broken {
			n++
		}
	}
	return n
}

// Ack implements virtual.Acker: delete.
func (s *Store) Ack(ctx context.Context, it virtual.Item) error {
	return s.settle(ctx, it, "delete", func(c *beanstalk.Conn, r *receipt) error { return c.Delete(r.id) })
}

// Requeue implements virtual.Acker: release at once, with the job's
// priority. beanstalkd counts the reserve, so the next delivery is marked
// redelivered.
func (s *Store) Requeue(ctx context.Context, it virtual.Item) error {
	err := s.settle(ctx, it, "release", func(c *beanstalk.Conn, r *receipt) error { return c.Release(r.id, r.pri, 0) })
	if errors.Is(err, errConnFailed) || errors.Is(err, beanstalk.ErrNotFound) {
		// beanstalkd put the job back by itself (its connection closed,
		// or its TTR ran out): what the requeue asked for.
		return nil
	}
	return err
}

// RequeueAfter implements virtual.DelayedRequeuer: release with the
// job's priority and delay rounded up to whole seconds (beanstalkd counts
// delays in seconds). The job waits in its tube's delayed list, so a
// consumer that stops meanwhile loses nothing.
func (s *Store) RequeueAfter(ctx context.Context, it virtual.Item, delay time.Duration) error {
	err := s.settle(ctx, it, "release", func(c *beanstalk.Conn, r *receipt) error {
		return c.Release(r.id, r.pri, wholeSeconds(max(delay, 0)))
	})
	if errors.Is(err, errConnFailed) || errors.Is(err, beanstalk.ErrNotFound) {
		// beanstalkd put the job back by itself, without the delay:
		// the consumer that gets it fails it again or handles it.
		return nil
	}
	return err
}

// Quarantine implements virtual.Quarantiner: an undecodable job is
// buried in its tube, as kombu 3.0 did; `kick` brings it back.
func (s *Store) Quarantine(ctx context.Context, it virtual.Item) error {
	return s.settle(ctx, it, "bury", func(c *beanstalk.Conn, r *receipt) error { return c.Bury(r.id, r.pri) })
}

// ExtendLease implements virtual.LeaseExtender with touch: the job's TTR
// starts again. beanstalkd extends by the TTR the job was put with and by
// nothing else, so a d longer than that TTR touches the job and returns an
// error wrapping driver.ErrInvalidArgument that says when the lease now
// ends; d <= 0 does nothing.
func (s *Store) ExtendLease(ctx context.Context, it virtual.Item, d time.Duration) error {
	r, ok := it.Receipt.(*receipt)
	if !ok {
		return errors.New("beanstalk touch: the item has no beanstalk receipt")
	}
	if d <= 0 {
		return nil
	}
	err := s.run(ctx, r.conn, 0, func() error { return r.conn.bc.Touch(r.id) })
	switch {
	case errors.Is(err, errConnFailed):
		return fmt.Errorf("%w: beanstalk touch of job %d: the connection that reserved it failed, so beanstalkd put it back in its tube: %w",
			driver.ErrConnectionLost, r.id, err)
	case err == nil && r.ttr > 0 && d > r.ttr:
		return fmt.Errorf("%w: beanstalk touch of job %d: its lease now ends in its TTR of %v, not in %v (beanstalkd extends by the TTR the job was put with; touch again before it ends)",
			driver.ErrInvalidArgument, r.id, r.ttr, d)
	}
	return wrap("touch", err)
}

// Size implements virtual.Store: the tube's ready and delayed jobs.
func (s *Store) Size(ctx context.Context, queue string) (int, error) {
	if err := checkTube(queue); err != nil {
		return 0, err
	}
	st, err := s.tubeStats(ctx, queue)
	if err != nil || st == nil {
		return 0, err
	}
	ready, _ := strconv.Atoi(st["current-jobs-ready"])
	delayed, _ := strconv.Atoi(st["current-jobs-delayed"])
	return ready + delayed, nil
}

// tubeStats returns stats-tube, or nil for a tube that does not exist.
func (s *Store) tubeStats(ctx context.Context, queue string) (map[string]string, error) {
	c, err := s.acquire(ctx, false)
	if err != nil {
		return nil, err
	}
	defer s.release(c)
	var st map[string]string
	err = s.run(ctx, c, 0, func() error {
		var err error
		st, err = (&beanstalk.Tube{Conn: c.bc, Name: queue}).Stats()
		return err
	})
	if errors.Is(err, beanstalk.ErrNotFound) {
		return nil, nil
	}
	return st, wrap("stats-tube", err)
}

// Purge implements virtual.Store: it deletes the tube's ready and delayed
// jobs one by one (beanstalkd has no purge). Reserved jobs stay with their
// consumers, buried ones stay buried.
func (s *Store) Purge(ctx context.Context, queue string) (int, error) {
	if err := checkTube(queue); err != nil {
		return 0, err
	}
	return s.drain(ctx, queue, false)
}

// Delete implements virtual.Store: as Purge, and the buried jobs too.
// beanstalkd drops a tube by itself once it is empty and unused.
func (s *Store) Delete(ctx context.Context, queue string) error {
	if err := checkTube(queue); err != nil {
		return err
	}
	s.reg.forget(queue)
	_, err := s.drain(ctx, queue, true)
	return err
}

func (s *Store) drain(ctx context.Context, queue string, buried bool) (int, error) {
	c, err := s.acquire(ctx, false)
	if err != nil {
		return 0, err
	}
	defer s.release(c)
	tube := &beanstalk.Tube{Conn: c.bc, Name: queue}
	peeks := []func() (uint64, []byte, error){tube.PeekReady, tube.PeekDelayed}
	if buried {
		peeks = append(peeks, tube.PeekBuried)
	}
	n := 0
	for _, peek := range peeks {
		for {
			var deleted bool
			err := s.run(ctx, c, 0, func() error {
				id, _, err := peek()
				if err != nil {
					return err
				}
				err = c.bc.Delete(id)
				deleted = err == nil
				if errors.Is(err, beanstalk.ErrNotFound) {
					return nil // reserved by a consumer in between
				}
				return err
			})
			if errors.Is(err, beanstalk.ErrNotFound) {
				break
			}
			if err != nil {
				return n, wrap("purge", err)
			}
			if deleted {
				n++
			}
		}
	}
	return n, nil
}

// Ping implements driver.Pinger.
func (s *Store) Ping(ctx context.Context) error {
	c, err := s.acquire(ctx, false)
	if err != nil {
		return err
	}
	defer s.release(c)
	return wrap("stats", s.run(ctx, c, 0, func() error {
		_, err := c.bc.Stats()
		return err
	}))
}

// Close implements virtual.Store: every connection is closed, and
// beanstalkd puts the jobs they still hold back in their tubes.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	s.closeCancel()
	var errs []error
	for _, c := range conns {
		if err := c.nc.Close(); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Kick moves up to bound buried jobs of queue back to ready (or, when it
// has none buried, delayed jobs), as beanstalkd's kick does, and returns
// how many moved. Buried jobs are the undecodable ones the transport moved
// aside. Reach it with kombu.Connection.As (see the package doc).
func (s *Store) Kick(ctx context.Context, queue string, bound int) (int, error) {
	if err := checkTube(queue); err != nil {
		return 0, err
	}
	if bound <= 0 {
		return 0, fmt.Errorf("%w: beanstalk kick: bound %d, want at least 1", driver.ErrInvalidArgument, bound)
	}
	c, err := s.acquire(ctx, false)
	if err != nil {
		return 0, err
	}
	defer s.release(c)
	var n int
	err = s.run(ctx, c, 0, func() error {
		var err error
		n, err = (&beanstalk.Tube{Conn: c.bc, Name: queue}).Kick(bound)
		return err
	})
	return n, wrap("kick", err)
}

// As implements driver.Aser: a **Store target receives the store, for
// Kick. No go-beanstalk connection is handed out (see the package doc).
func (s *Store) As(target any) bool {
	if p, ok := target.(**Store); ok {
		*p = s
		return true
	}
	return false
}
