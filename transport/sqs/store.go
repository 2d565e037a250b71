package sqs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

// Extra properties (driver.Properties.Extra, kombu's publish keywords)
// that the transport reads when sending.
const (
	PropMessageGroupID         = "MessageGroupId"
	PropMessageDeduplicationID = "MessageDeduplicationId"
	PropDelaySeconds           = "DelaySeconds"
	// PropMessageAttributes is a map of SQS message attributes (string
	// values are String attributes, numbers Number ones). It is sent as
	// SQS MessageAttributes and left out of the envelope, as kombu 5.6
	// does with message_attributes (also accepted).
	PropMessageAttributes = "MessageAttributes"
	propKombuAttributes   = "message_attributes"
)

// headerDeliveryCount carries SQS's ApproximateReceiveCount minus one on
// every delivery: the broker counter kombu's redelivery policy reads.
const headerDeliveryCount = "x-delivery-count"

// quarantineSuffix names the queue that takes undecodable messages.
const quarantineSuffix = ".quarantine"

// defaultFIFOGroup is kombu's MessageGroupId when none is given.
const defaultFIFOGroup = "default"

// Store is the SQS virtual.Store: one per connection, over one SDK client.
type Store struct {
	opts     *Options
	client   *sqs.Client
	bindings *bindingTable

	urls   sync.Map // kombu queue name -> queue URL
	closed atomic.Bool
	// stop ends the waits of GetBatch callers when the store closes.
	stop       context.Context
	stopCancel context.CancelFunc

	// A ReceiveMessage is never cancelled: SQS (and the emulator) may
	// take messages for a request whose client went away, and they would
	// stay invisible for the whole visibility timeout. A caller that
	// stops waiting leaves the poll running; what it receives is kept
	// here for the next GetBatch of that queue, and made visible again
	// if nobody takes it within stashHold (or at Close).
	polls sync.WaitGroup
	// pollsMu orders polls.Add against Close's polls.Wait: a WaitGroup
	// may not gain a poll while it is being waited on.
	pollsMu sync.Mutex
	stash   *stash // shared by the process's stores of the same namespace
}

// stash holds messages taken by abandoned polls until a GetBatch of any
// store of the process on the same endpoint takes them, so they are not
// counted as received twice (receipt handles are not tied to a client).
type stash struct {
	mu    sync.Mutex
	items map[string][]stashed // kombu queue name -> items, oldest first
}

type stashed struct {
	it    virtual.Item
	owner *Store // whose poll took it; its Close gives it back
}

var stashes sync.Map // namespace -> *stash

// stashHold is how long messages of an abandoned poll wait for the next
// GetBatch before they are made visible again.
const stashHold = 2 * time.Second

// pollGrace is added to a poll's wait for its own deadline.
const pollGrace = 10 * time.Second

// receipt is an Item's Receipt: where the message is and its handle.
type receipt struct {
	url    string
	handle string
	count  int    // ApproximateReceiveCount
	task   string // the "task" header, for backoff_tasks
}

var errStoreClosed = fmt.Errorf("sqs: store closed: %w", driver.ErrClosed)

func newStore(o *Options, c *sqs.Client) *Store {
	st, _ := stashes.LoadOrStore(namespace(o), &stash{items: map[string][]stashed{}})
	s := &Store{opts: o, client: c, bindings: tableFor(o), stash: st.(*stash)}
	s.stop, s.stopCancel = context.WithCancel(context.Background())
	return s
}

// Client returns the SDK client beneath (also reachable through As).
func (s *Store) Client() *sqs.Client { return s.client }

// wrap turns SDK errors into kombu's: a missing queue is ErrNotFound, a
// request that never reached the server ErrConnectionLost, a closed store
// ErrClosed. Context errors are returned unwrapped.
func (s *Store) wrap(ctx context.Context, op, queue string, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return ctx.Err()
	}
	if s.closed.Load() {
		return errStoreClosed
	}
	var missing *types.QueueDoesNotExist
	if errors.As(err, &missing) {
		s.urls.Delete(queue)
		return fmt.Errorf("sqs: %s %q: %w: %v", op, queue, driver.ErrNotFound, err)
	}
	var op2 *net.OpError
	if errors.As(err, &op2) && op2.Op == "dial" {
		return fmt.Errorf("sqs: %s %q: %w: %v", op, queue, driver.ErrConnectionLost, err)
	}
	return fmt.Errorf("sqs: %s %q: %w", op, queue, err)
}

func isMissing(err error) bool {
	var missing *types.QueueDoesNotExist
	return errors.As(err, &missing) || errors.Is(err, driver.ErrNotFound)
}

func (s *Store) checkOpen() error {
	if s.closed.Load() {
		return errStoreClosed
	}
	return nil
}

// predefined returns the predefined queue of name, matched by kombu name
// or by SQS name (kombu's keys are SQS names).
func (s *Store) predefined(name string) (PredefinedQueue, bool) {
	if pq, ok := s.opts.PredefinedQueues[name]; ok {
		return pq, true
	}
	pq, ok := s.opts.PredefinedQueues[QueueName(s.opts.QueueNamePrefix, name)]
	return pq, ok
}

// ValidateName implements virtual.NameValidator: with predefined_queues,
// no other queue can be used (kombu's UndefinedQueueException).
func (s *Store) ValidateName(kind, name string) error {
	if kind != "queue" || s.opts.PredefinedQueues == nil {
		return nil
	}
	if _, ok := s.predefined(name); !ok {
		return fmt.Errorf("%w: sqs: queue %q is not in predefined_queues", driver.ErrNotFound, name)
	}
	return nil
}

// queueURL returns the URL of kombu queue name, from predefined_queues,
// the cache or GetQueueUrl; create makes a missing queue (as kombu's
// _new_queue does on publish).
func (s *Store) queueURL(ctx context.Context, name string, create bool) (string, error) {
	if s.opts.PredefinedQueues != nil {
		if pq, ok := s.predefined(name); ok {
			return pq.URL, nil
		}
		return "", s.ValidateName("queue", name)
	}
	if u, ok := s.urls.Load(name); ok {
		return u.(string), nil
	}
	out, err := s.client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(QueueName(s.opts.QueueNamePrefix, name))})
	if err == nil {
		s.urls.Store(name, aws.ToString(out.QueueUrl))
		return aws.ToString(out.QueueUrl), nil
	}
	if !isMissing(err) || !create {
		return "", s.wrap(ctx, "GetQueueUrl", name, err)
	}
	return s.createQueue(ctx, name, nil)
}

// createQueue creates kombu queue name with the transport's attributes
// and the redrive policy of args (see the package documentation).
func (s *Store) createQueue(ctx context.Context, name string, args map[string]any) (string, error) {
	attrs := map[string]string{
		string(types.QueueAttributeNameVisibilityTimeout): strconv.Itoa(int(s.opts.VisibilityTimeout / time.Second)),
	}
	if isFIFO(name) {
		attrs[string(types.QueueAttributeNameFifoQueue)] = "true"
	}
	for k, v := range s.opts.CreationAttributes {
		attrs[k] = v
	}
	redrive, err := s.redrivePolicy(ctx, name, args)
	if err != nil {
		return "", err
	}
	if redrive != "" {
		attrs[string(types.QueueAttributeNameRedrivePolicy)] = redrive
	}
	out, err := s.client.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName:  aws.String(QueueName(s.opts.QueueNamePrefix, name)),
		Attributes: attrs,
	})
	if err != nil {
		var exists *types.QueueNameExists
		if !errors.As(err, &exists) {
			return "", s.wrap(ctx, "CreateQueue", name, err)
		}
		// Created earlier with other attributes (AWS): use it as it is,
		// as kombu does, but still apply the redrive policy asked for.
		u, gerr := s.client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(QueueName(s.opts.QueueNamePrefix, name))})
		if gerr != nil {
			return "", s.wrap(ctx, "GetQueueUrl", name, gerr)
		}
		out = &sqs.CreateQueueOutput{QueueUrl: u.QueueUrl}
		if redrive != "" {
			if _, err := s.client.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: u.QueueUrl,
				Attributes: map[string]string{string(types.QueueAttributeNameRedrivePolicy): redrive}}); err != nil {
				return "", s.wrap(ctx, "SetQueueAttributes", name, err)
			}
		}
	}
	u := aws.ToString(out.QueueUrl)
	s.urls.Store(name, u)
	return u, nil
}

// Queue arguments that set an SQS redrive policy (see the package
// documentation).
const (
	ArgDeadLetterQueue = "x-sqs-dead-letter-queue"
	ArgMaxReceiveCount = "x-sqs-max-receive-count"
)

// redrivePolicy builds the RedrivePolicy attribute from queue arguments;
// the dead-letter queue is created when missing.
func (s *Store) redrivePolicy(ctx context.Context, name string, args map[string]any) (string, error) {
	dlq, hasDLQ := args[ArgDeadLetterQueue]
	rawMax, hasMax := args[ArgMaxReceiveCount]
	if !hasDLQ && !hasMax {
		return "", nil
	}
	dlqName, ok := dlq.(string)
	if !ok || dlqName == "" || !hasMax {
		return "", fmt.Errorf("%w: sqs: queue %q: %s (a queue name) and %s (1..1000) go together", driver.ErrInvalidArgument, name, ArgDeadLetterQueue, ArgMaxReceiveCount)
	}
	maxCount, ok := driver.Int64(rawMax)
	if !ok || maxCount < 1 || maxCount > 1000 {
		return "", fmt.Errorf("%w: sqs: queue %q: %s must be an integer in 1..1000", driver.ErrInvalidArgument, name, ArgMaxReceiveCount)
	}
	if err := driver.ValidateName("queue", dlqName); err != nil {
		return "", err
	}
	if isFIFO(dlqName) != isFIFO(name) {
		return "", fmt.Errorf("%w: sqs: queue %q and its dead-letter queue %q must both be FIFO or both standard", driver.ErrInvalidArgument, name, dlqName)
	}
	u, err := s.queueURL(ctx, dlqName, true)
	if err != nil {
		return "", err
	}
	out, err := s.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(u),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		return "", s.wrap(ctx, "GetQueueAttributes", dlqName, err)
	}
	b, _ := json.Marshal(map[string]string{
		"deadLetterTargetArn": out.Attributes[string(types.QueueAttributeNameQueueArn)],
		"maxReceiveCount":     strconv.FormatInt(maxCount, 10),
	})
	return string(b), nil
}

// DeclareQueue implements virtual.QueueStore.
func (s *Store) DeclareQueue(ctx context.Context, q driver.Queue) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if s.opts.PredefinedQueues != nil {
		_, err := s.queueURL(ctx, q.Name, false)
		return err
	}
	if _, ok := s.urls.Load(q.Name); ok && q.Args[ArgDeadLetterQueue] == nil {
		return nil
	}
	_, err := s.createQueue(ctx, q.Name, q.Args)
	return err
}

// QueueExists implements virtual.QueueStore: it asks SQS, so a queue
// deleted by another process is seen as gone.
func (s *Store) QueueExists(ctx context.Context, name string, _ []virtual.StoredBinding) (bool, error) {
	if err := s.checkOpen(); err != nil {
		return false, err
	}
	if s.opts.PredefinedQueues != nil {
		_, ok := s.predefined(name)
		return ok, nil
	}
	out, err := s.client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(QueueName(s.opts.QueueNamePrefix, name))})
	if isMissing(err) {
		s.urls.Delete(name)
		return false, nil
	}
	if err != nil {
		return false, s.wrap(ctx, "GetQueueUrl", name, err)
	}
	s.urls.Store(name, aws.ToString(out.QueueUrl))
	return true, nil
}

// encodeBody is the MessageBody of env: kombu's JSON envelope, in base64
// unless sqs_base64_encoding is off.
func (s *Store) encodeBody(env *virtual.Envelope) (string, error) {
	raw, err := env.Marshal()
	if err != nil {
		return "", err
	}
	if s.opts.Base64 {
		return base64.StdEncoding.EncodeToString(raw), nil
	}
	return string(raw), nil
}

// decodeBody undoes encodeBody as kombu does: the text is base64 when it
// decodes and encodes back to exactly itself, else it is used as is.
func decodeBody(body string) []byte {
	if len(body)%4 == 0 {
		if b, err := base64.StdEncoding.DecodeString(body); err == nil && base64.StdEncoding.EncodeToString(b) == body {
			return b
		}
	}
	return []byte(body)
}

// sendEntry is what one SendMessage(Batch) entry carries.
type sendEntry struct {
	body     string
	delay    int32
	group    *string
	dedup    *string
	attrs    map[string]types.MessageAttributeValue
	hasDelay bool
}

// entryFor builds the send parameters of env for kombu queue name.
func (s *Store) entryFor(name string, env *virtual.Envelope) (sendEntry, error) {
	var e sendEntry
	extra := env.Properties.Extra
	if len(extra) > 0 {
		if v, ok := extra[PropDelaySeconds]; ok {
			n, ok := driver.Int64(v)
			if f, isFloat := v.(float64); isFloat && f == math.Trunc(f) {
				n, ok = int64(f), true
			}
			if !ok || n < 0 || n > maxDelaySeconds {
				return e, fmt.Errorf("%w: sqs: property DelaySeconds must be an integer in 0..%d", driver.ErrInvalidArgument, maxDelaySeconds)
			}
			e.delay, e.hasDelay = int32(n), n > 0
		}
		attrs, err := messageAttributes(extra)
		if err != nil {
			return e, err
		}
		if attrs != nil {
			e.attrs = attrs
			// Left out of the envelope, as kombu 5.6 does.
			c := env.Clone()
			c.Properties.Extra = make(map[string]any, len(extra))
			for k, v := range extra {
				if k != PropMessageAttributes && k != propKombuAttributes {
					c.Properties.Extra[k] = v
				}
			}
			env = c
		}
	}
	if isFIFO(name) {
		if e.hasDelay {
			return e, fmt.Errorf("%w: sqs: FIFO queue %q takes no per-message DelaySeconds", driver.ErrInvalidArgument, name)
		}
		group, _ := extra[PropMessageGroupID].(string)
		if group == "" {
			group = defaultFIFOGroup
		}
		dedup, _ := extra[PropMessageDeduplicationID].(string)
		if dedup == "" {
			dedup = virtual.NewDeliveryTag()
		}
		e.group, e.dedup = aws.String(group), aws.String(dedup)
	}
	body, err := s.encodeBody(env)
	if err != nil {
		return e, err
	}
	if len(body) > MaxMessageSize {
		return e, fmt.Errorf("%w: sqs: message of %d bytes as sent (kombu's envelope, body %d bytes) is over SQS's limit of %d bytes",
			driver.ErrInvalidArgument, len(body), len(env.Body), MaxMessageSize)
	}
	e.body = body
	return e, nil
}

// messageAttributes converts the MessageAttributes property.
func messageAttributes(extra map[string]any) (map[string]types.MessageAttributeValue, error) {
	raw, ok := extra[PropMessageAttributes]
	if !ok {
		raw, ok = extra[propKombuAttributes]
	}
	if !ok || raw == nil {
		return nil, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: sqs: property MessageAttributes must be a map", driver.ErrInvalidArgument)
	}
	if len(m) > 10 {
		return nil, fmt.Errorf("%w: sqs: at most 10 message attributes, got %d", driver.ErrInvalidArgument, len(m))
	}
	out := make(map[string]types.MessageAttributeValue, len(m))
	for k, v := range m {
		switch x := v.(type) {
		case string:
			out[k] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(x)}
		case int64:
			out[k] = types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(strconv.FormatInt(x, 10))}
		case float64:
			out[k] = types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(strconv.FormatFloat(x, 'f', -1, 64))}
		default:
			return nil, fmt.Errorf("%w: sqs: message attribute %q must be a string or a number, got %T", driver.ErrInvalidArgument, k, v)
		}
	}
	return out, nil
}

// Put implements virtual.Store with SendMessage; a missing queue is
// created first, as Python kombu does.
func (s *Store) Put(ctx context.Context, queue string, env *virtual.Envelope) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	e, err := s.entryFor(queue, env)
	if err != nil {
		return err
	}
	u, err := s.queueURL(ctx, queue, true)
	if err != nil {
		return err
	}
	in := &sqs.SendMessageInput{QueueUrl: aws.String(u), MessageBody: aws.String(e.body),
		MessageGroupId: e.group, MessageDeduplicationId: e.dedup, MessageAttributes: e.attrs}
	if e.hasDelay {
		in.DelaySeconds = e.delay
	}
	_, err = s.client.SendMessage(ctx, in)
	return s.wrap(ctx, "SendMessage", queue, err)
}

// PutBatch implements virtual.BatchPutter: runs of envelopes for the same
// queue go in SendMessageBatch calls of up to 10.
func (s *Store) PutBatch(ctx context.Context, batch []virtual.QueuedEnvelope) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	done := 0
	for done < len(batch) {
		queue := batch[done].Queue
		end := done + 1
		for end < len(batch) && end-done < maxBatch && batch[end].Queue == queue {
			end++
		}
		n, err := s.sendBatch(ctx, queue, batch[done:end])
		if err != nil {
			return &driver.BatchError{Published: done + n, Err: err}
		}
		done = end
	}
	return nil
}

// sendBatch sends up to 10 envelopes to one queue and returns how many
// leading ones were stored.
func (s *Store) sendBatch(ctx context.Context, queue string, batch []virtual.QueuedEnvelope) (int, error) {
	if len(batch) == 1 {
		if err := s.Put(ctx, queue, batch[0].Envelope); err != nil {
			return 0, err
		}
		return 1, nil
	}
	entries := make([]types.SendMessageBatchRequestEntry, len(batch))
	for i, qe := range batch {
		e, err := s.entryFor(queue, qe.Envelope)
		if err != nil {
			return 0, err
		}
		entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(e.body),
			MessageGroupId: e.group, MessageDeduplicationId: e.dedup, MessageAttributes: e.attrs}
		if e.hasDelay {
			entries[i].DelaySeconds = e.delay
		}
	}
	u, err := s.queueURL(ctx, queue, true)
	if err != nil {
		return 0, err
	}
	out, err := s.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(u), Entries: entries})
	if err != nil {
		return 0, s.wrap(ctx, "SendMessageBatch", queue, err)
	}
	if len(out.Failed) == 0 {
		return len(batch), nil
	}
	first := len(batch)
	var msg string
	for _, f := range out.Failed {
		if i, _ := strconv.Atoi(aws.ToString(f.Id)); i < first {
			first, msg = i, aws.ToString(f.Code)+": "+aws.ToString(f.Message)
		}
	}
	return first, fmt.Errorf("sqs: SendMessageBatch %q: %d of %d entries failed, first: %s", queue, len(out.Failed), len(batch), msg)
}

// Get implements virtual.Store.
func (s *Store) Get(ctx context.Context, queues []string, wait time.Duration) (virtual.Item, error) {
	items, err := s.GetBatch(ctx, queues, 1, wait)
	if err != nil {
		return virtual.Item{}, err
	}
	return items[0], nil
}

// GetBatch implements virtual.BatchGetter. One queue is long polled (up
// to wait, at most wait_time_seconds, in whole seconds); several queues
// are short polled in the order given, round after round, polling_interval
// apart, until wait has passed. A queue that does not exist (yet) counts
// as empty.
func (s *Store) GetBatch(ctx context.Context, queues []string, max int, wait time.Duration) ([]virtual.Item, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if max <= 0 {
		max = 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.stop, cancel)()
	deadline := time.Now().Add(wait)
	var items []virtual.Item
	for {
		if items = s.unstash(queues, max); len(items) > 0 {
			return items, nil
		}
		longPolled := false
		for _, q := range queues {
			var w int32
			if len(queues) == 1 {
				w = s.waitSeconds(time.Until(deadline))
			}
			got, exists, err := s.receiveDetached(ctx, q, min(max-len(items), maxBatch), w)
			if err != nil {
				if len(items) > 0 {
					return items, nil
				}
				return nil, s.closedErr(err)
			}
			longPolled = longPolled || exists && w > 0
			items = append(items, got...)
			if len(items) >= max {
				return items, nil
			}
		}
		if len(items) > 0 {
			return items, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, driver.ErrEmpty
		}
		if longPolled {
			continue // woken early by another message (the emulator wakes every poll)
		}
		t := time.NewTimer(min(left, s.opts.PollingInterval))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, s.closedErr(ctx.Err())
		}
	}
}

// closedErr reports a poll cut short by Close as ErrClosed.
func (s *Store) closedErr(err error) error {
	if err != nil && s.closed.Load() {
		return errStoreClosed
	}
	return err
}

// waitSeconds is SQS's WaitTimeSeconds for a wait: rounded up, so that a
// wait just under a second still long polls, capped by wait_time_seconds.
func (s *Store) waitSeconds(wait time.Duration) int32 {
	if wait <= 0 {
		return 0
	}
	return int32(min(int64(math.Ceil(wait.Seconds())), int64(s.opts.WaitTimeSeconds)))
}

// receiveDetached runs receive without ctx's cancellation (see
// Store.polls) and returns when it is done or ctx is; in the latter case
// the poll's messages go to the stash.
func (s *Store) receiveDetached(ctx context.Context, queue string, n int, waitSeconds int32) ([]virtual.Item, bool, error) {
	type result struct {
		items  []virtual.Item
		exists bool
		err    error
	}
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	done := make(chan result, 1)
	var mu sync.Mutex
	abandoned := false
	s.pollsMu.Lock()
	if s.closed.Load() {
		s.pollsMu.Unlock()
		return nil, false, errStoreClosed
	}
	s.polls.Add(1)
	s.pollsMu.Unlock()
	go func() {
		defer s.polls.Done()
		pctx, cancel := context.WithTimeout(context.Background(), time.Duration(waitSeconds)*time.Second+pollGrace)
		items, exists, err := s.receive(pctx, queue, n, waitSeconds)
		cancel()
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			s.stashItems(queue, items)
			return
		}
		done <- result{items, exists, err}
	}()
	select {
	case r := <-done:
		return r.items, r.exists, r.err
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		select {
		case r := <-done:
			if len(r.items) > 0 {
				return r.items, r.exists, nil // taken: hand them over rather than stash them
			}
		default:
			abandoned = true
		}
		return nil, false, ctx.Err()
	}
}

// stashItems keeps the messages of an abandoned poll for the next
// GetBatch, and makes them visible again after stashHold if none took
// them. After Close they are made visible again at once.
func (s *Store) stashItems(queue string, items []virtual.Item) {
	if len(items) == 0 {
		return
	}
	st := s.stash
	st.mu.Lock()
	for _, it := range items {
		st.items[queue] = append(st.items[queue], stashed{it, s})
	}
	st.mu.Unlock()
	if s.closed.Load() {
		s.requeueStash(func(x stashed) bool { return x.owner == s })
		return
	}
	time.AfterFunc(stashHold, func() {
		s.requeueStash(func(x stashed) bool { return containsReceipt(items, x.it.Receipt) })
	})
}

// unstash takes up to max stashed items of queues.
func (s *Store) unstash(queues []string, max int) []virtual.Item {
	st := s.stash
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.items) == 0 {
		return nil
	}
	var out []virtual.Item
	for _, q := range queues {
		list := st.items[q]
		n := min(len(list), max-len(out))
		for _, x := range list[:n] {
			out = append(out, x.it)
		}
		if n == len(list) {
			delete(st.items, q)
		} else {
			st.items[q] = list[n:]
		}
		if len(out) == max {
			break
		}
	}
	return out
}

// requeueStash makes the stashed items that pick selects visible again.
func (s *Store) requeueStash(pick func(stashed) bool) {
	st := s.stash
	st.mu.Lock()
	var out []virtual.Item
	for q, list := range st.items {
		keep := list[:0:0]
		for _, x := range list {
			if pick(x) {
				out = append(out, x.it)
			} else {
				keep = append(keep, x)
			}
		}
		if len(keep) == 0 {
			delete(st.items, q)
		} else {
			st.items[q] = keep
		}
	}
	st.mu.Unlock()
	if len(out) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), pollGrace)
	defer cancel()
	_ = s.changeVisibilityBatch(ctx, out, func(string, *receipt) int32 { return 0 })
}

func containsReceipt(items []virtual.Item, r any) bool {
	for _, it := range items {
		if it.Receipt == r {
			return true
		}
	}
	return false
}

var (
	receiveAttributes       = []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount}
	receiveAttributesLegacy = []types.QueueAttributeName{types.QueueAttributeName(types.MessageSystemAttributeNameApproximateReceiveCount)}
)

// receive takes up to n messages of one queue; exists is false for a
// queue that does not exist.
func (s *Store) receive(ctx context.Context, queue string, n int, waitSeconds int32) (items []virtual.Item, exists bool, err error) {
	u, err := s.queueURL(ctx, queue, false)
	if isMissing(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out, err := s.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(u),
		MaxNumberOfMessages:         int32(n),
		WaitTimeSeconds:             waitSeconds,
		MessageSystemAttributeNames: receiveAttributes,
		// The older name too: query-protocol servers (and emulators) know
		// only this one.
		AttributeNames:        receiveAttributesLegacy,
		MessageAttributeNames: []string{"All"},
	})
	if err != nil {
		if isMissing(err) {
			s.urls.Delete(queue)
			return nil, false, nil
		}
		return nil, true, s.wrap(ctx, "ReceiveMessage", queue, err)
	}
	items = make([]virtual.Item, 0, len(out.Messages))
	for i := range out.Messages {
		items = append(items, s.item(queue, u, &out.Messages[i]))
	}
	return items, true, nil
}

// item decodes one received message; bytes that are not a kombu envelope
// become an undecodable item, never dropped.
func (s *Store) item(queue, u string, m *types.Message) virtual.Item {
	count, _ := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	r := &receipt{url: u, handle: aws.ToString(m.ReceiptHandle), count: count}
	body := aws.ToString(m.Body)
	env, err := virtual.UnmarshalEnvelope(decodeBody(body))
	if err != nil {
		return virtual.UndecodableItem(queue, []byte(body), err, r)
	}
	r.task, _ = env.Headers["task"].(string)
	if count > 1 {
		// As RabbitMQ's quorum queues: only redeliveries carry the count.
		h := make(map[string]any, len(env.Headers)+1)
		for k, v := range env.Headers {
			h[k] = v
		}
		h[headerDeliveryCount] = int64(count - 1)
		env.Headers = h
		env.Redelivered = true
	}
	if len(m.MessageAttributes) > 0 {
		extra := make(map[string]any, len(env.Properties.Extra)+1)
		for k, v := range env.Properties.Extra {
			extra[k] = v
		}
		attrs := make(map[string]any, len(m.MessageAttributes))
		for k, v := range m.MessageAttributes {
			attrs[k] = aws.ToString(v.StringValue)
		}
		extra[PropMessageAttributes] = attrs
		env.Properties.Extra = extra
	}
	return virtual.Item{Queue: queue, Envelope: env, Receipt: r}
}

func receiptOf(it virtual.Item) (*receipt, error) {
	r, ok := it.Receipt.(*receipt)
	if !ok || r == nil {
		return nil, fmt.Errorf("%w: sqs: item of queue %q has no SQS receipt", driver.ErrInvalidArgument, it.Queue)
	}
	return r, nil
}

// Ack implements virtual.Acker with DeleteMessage.
func (s *Store) Ack(ctx context.Context, it virtual.Item) error {
	r, err := receiptOf(it)
	if err != nil {
		return err
	}
	if err := s.checkOpen(); err != nil {
		return err
	}
	_, err = s.client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(r.url), ReceiptHandle: aws.String(r.handle)})
	return s.wrap(ctx, "DeleteMessage", it.Queue, err)
}

// AckBatch implements virtual.BatchAcker with DeleteMessageBatch, 10
// handles per call.
func (s *Store) AckBatch(ctx context.Context, items []virtual.Item) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	return s.eachBatch(ctx, items, "DeleteMessageBatch", func(ctx context.Context, u string, rs []*receipt) ([]types.BatchResultErrorEntry, error) {
		entries := make([]types.DeleteMessageBatchRequestEntry, len(rs))
		for i, r := range rs {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r.handle)}
		}
		out, err := s.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(u), Entries: entries})
		if err != nil {
			return nil, err
		}
		return out.Failed, nil
	})
}

// eachBatch groups items by queue URL into calls of up to 10 receipts.
func (s *Store) eachBatch(ctx context.Context, items []virtual.Item, op string,
	call func(ctx context.Context, u string, rs []*receipt) ([]types.BatchResultErrorEntry, error)) error {
	type group struct {
		queue string
		rs    []*receipt
	}
	var order []string
	groups := map[string]*group{}
	var errs []error
	for _, it := range items {
		r, err := receiptOf(it)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		g, ok := groups[r.url]
		if !ok {
			g = &group{queue: it.Queue}
			groups[r.url] = g
			order = append(order, r.url)
		}
		g.rs = append(g.rs, r)
	}
	for _, u := range order {
		g := groups[u]
		for start := 0; start < len(g.rs); start += maxBatch {
			chunk := g.rs[start:min(start+maxBatch, len(g.rs))]
			failed, err := call(ctx, u, chunk)
			if err != nil {
				errs = append(errs, s.wrap(ctx, op, g.queue, err))
				continue
			}
			for _, f := range failed {
				errs = append(errs, fmt.Errorf("sqs: %s %q: entry %s: %s: %s", op, g.queue, aws.ToString(f.Id), aws.ToString(f.Code), aws.ToString(f.Message)))
			}
		}
	}
	return errors.Join(errs...)
}

// requeueVisibility is the visibility a requeue sets: 0, or what the
// queue's backoff_policy says for the message's receive count.
func (s *Store) requeueVisibility(queue string, r *receipt) int32 {
	pq, ok := s.predefined(queue)
	if !ok || len(pq.BackoffPolicy) == 0 {
		return 0
	}
	if len(pq.BackoffTasks) > 0 {
		listed := false
		for _, t := range pq.BackoffTasks {
			listed = listed || t == r.task
		}
		if !listed {
			return 0
		}
	}
	return int32(pq.BackoffPolicy[r.count])
}

// Requeue implements virtual.Acker: ChangeMessageVisibility makes the
// message visible again (at once, or after the backoff_policy's delay).
// SQS keeps counting its receives.
func (s *Store) Requeue(ctx context.Context, it virtual.Item) error {
	r, err := receiptOf(it)
	if err != nil {
		return err
	}
	return s.changeVisibility(ctx, it.Queue, r, s.requeueVisibility(it.Queue, r))
}

func (s *Store) changeVisibility(ctx context.Context, queue string, r *receipt, secs int32) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	_, err := s.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(r.url),
		ReceiptHandle: aws.String(r.handle), VisibilityTimeout: secs})
	return s.wrap(ctx, "ChangeMessageVisibility", queue, err)
}

// RequeueAfter implements virtual.DelayedRequeuer: ChangeMessageVisibility
// to delay, rounded up to whole seconds and at most SQS's 12 hours, as
// kombu's backoff_policy requeues. The message stays in SQS, invisible,
// and SQS keeps counting its receives.
func (s *Store) RequeueAfter(ctx context.Context, it virtual.Item, delay time.Duration) error {
	r, err := receiptOf(it)
	if err != nil {
		return err
	}
	secs := math.Ceil(min(max(delay, 0), maxVisibilityTimeout).Seconds())
	return s.changeVisibility(ctx, it.Queue, r, int32(secs))
}

// RequeueBatch implements virtual.BatchRequeuer with
// ChangeMessageVisibilityBatch, 10 handles per call: what Close and
// Recover use, so unacked messages are visible again at once.
func (s *Store) RequeueBatch(ctx context.Context, items []virtual.Item) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	return s.changeVisibilityBatch(ctx, items, s.requeueVisibility)
}

// changeVisibilityBatch sets the visibility of items, as visibility says
// for each, in ChangeMessageVisibilityBatch calls of up to 10.
func (s *Store) changeVisibilityBatch(ctx context.Context, items []virtual.Item, visibility func(queue string, r *receipt) int32) error {
	byHandle := make(map[string]string, len(items)) // handle -> queue
	for _, it := range items {
		if r, ok := it.Receipt.(*receipt); ok && r != nil {
			byHandle[r.handle] = it.Queue
		}
	}
	return s.eachBatch(ctx, items, "ChangeMessageVisibilityBatch", func(ctx context.Context, u string, rs []*receipt) ([]types.BatchResultErrorEntry, error) {
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(rs))
		for i, r := range rs {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)),
				ReceiptHandle: aws.String(r.handle), VisibilityTimeout: visibility(byHandle[r.handle], r)}
		}
		out, err := s.client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(u), Entries: entries})
		if err != nil {
			return nil, err
		}
		return out.Failed, nil
	})
}

// ExtendLease implements virtual.LeaseExtender: the message stays
// invisible for d from now (rounded up to whole seconds, at most 12 h).
func (s *Store) ExtendLease(ctx context.Context, it virtual.Item, d time.Duration) error {
	r, err := receiptOf(it)
	if err != nil {
		return err
	}
	if d <= 0 || d > maxVisibilityTimeout {
		return fmt.Errorf("%w: sqs: a lease must be 1 s .. 12 h, got %v", driver.ErrInvalidArgument, d)
	}
	return s.changeVisibility(ctx, it.Queue, r, int32(math.Ceil(d.Seconds())))
}

// Quarantine implements virtual.Quarantiner: the raw body goes, as it
// was received, to the queue "<queue>.quarantine" (SQS name translated as
// usual), and the original is deleted.
func (s *Store) Quarantine(ctx context.Context, it virtual.Item) error {
	r, err := receiptOf(it)
	if err != nil {
		return err
	}
	if err := s.checkOpen(); err != nil {
		return err
	}
	name := it.Queue + quarantineSuffix
	u, err := s.queueURL(ctx, name, true)
	if err != nil {
		return err
	}
	in := &sqs.SendMessageInput{QueueUrl: aws.String(u), MessageBody: aws.String(string(it.Envelope.Body))}
	if isFIFO(name) {
		in.MessageGroupId, in.MessageDeduplicationId = aws.String(defaultFIFOGroup), aws.String(virtual.NewDeliveryTag())
	}
	if _, err := s.client.SendMessage(ctx, in); err != nil {
		return s.wrap(ctx, "SendMessage", name, err)
	}
	return s.Ack(ctx, virtual.Item{Queue: it.Queue, Receipt: r})
}

// Purge implements virtual.Store: ready messages are received and deleted
// in batches of 10 until none is left, so that unacked messages stay (as
// AMQP's purge leaves them) and the count is exact. PurgeQueue would also
// drop in-flight messages and may run once a minute only.
func (s *Store) Purge(ctx context.Context, queue string) (int, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	u, err := s.queueURL(ctx, queue, false)
	if isMissing(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		out, err := s.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(u), MaxNumberOfMessages: maxBatch,
			VisibilityTimeout: 60})
		if err != nil {
			return n, s.wrap(ctx, "ReceiveMessage", queue, err)
		}
		if len(out.Messages) == 0 {
			return n, nil
		}
		items := make([]virtual.Item, len(out.Messages))
		for i, m := range out.Messages {
			items[i] = virtual.Item{Queue: queue, Receipt: &receipt{url: u, handle: aws.ToString(m.ReceiptHandle)}}
		}
		if err := s.AckBatch(ctx, items); err != nil {
			return n, err
		}
		n += len(items)
	}
}

// Size implements virtual.Store: ApproximateNumberOfMessages (exact on
// the emulator, approximate on AWS).
func (s *Store) Size(ctx context.Context, queue string) (int, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	u, err := s.queueURL(ctx, queue, false)
	if isMissing(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	out, err := s.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(u),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages}})
	if isMissing(err) {
		s.urls.Delete(queue)
		return 0, nil
	}
	if err != nil {
		return 0, s.wrap(ctx, "GetQueueAttributes", queue, err)
	}
	n, _ := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	return n, nil
}

// Delete implements virtual.Store with DeleteQueue. Predefined queues
// are never deleted, only purged.
func (s *Store) Delete(ctx context.Context, queue string) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if s.opts.PredefinedQueues != nil {
		_, err := s.Purge(ctx, queue)
		return err
	}
	u, err := s.queueURL(ctx, queue, false)
	if isMissing(err) {
		return nil
	}
	if err != nil {
		return err
	}
	s.urls.Delete(queue)
	s.bindings.dropQueue(queue)
	_, err = s.client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(u)})
	if isMissing(err) {
		return nil
	}
	return s.wrap(ctx, "DeleteQueue", queue, err)
}

// Ping implements driver.Pinger with one cheap call.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	for _, pq := range s.opts.PredefinedQueues {
		_, err := s.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(pq.URL),
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
		return s.wrap(ctx, "GetQueueAttributes", "", err)
	}
	_, err := s.client.ListQueues(ctx, &sqs.ListQueuesInput{MaxResults: aws.Int32(1)})
	return s.wrap(ctx, "ListQueues", "", err)
}

// Close implements virtual.Store: GetBatch callers return at once; polls
// still in flight (a second at most under Receive) are waited for, and
// every message they or earlier abandoned polls took is made visible
// again before Close returns.
func (s *Store) Close() error {
	s.pollsMu.Lock()
	first := s.closed.CompareAndSwap(false, true)
	s.pollsMu.Unlock()
	if !first {
		return nil
	}
	s.stopCancel()
	s.polls.Wait()
	s.requeueStash(func(x stashed) bool { return x.owner == s })
	return nil
}

// As implements driver.Aser: **sqs.Client gets the SDK client.
func (s *Store) As(target any) bool {
	if p, ok := target.(**sqs.Client); ok {
		*p = s.client
		return true
	}
	return false
}
