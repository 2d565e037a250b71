package virtual

import (
	"context"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
)

// Store is the storage a non-AMQP transport implements; package virtual
// turns it into a full driver.Channel (exchanges, bindings, QoS, tags).
// It mirrors Python kombu's virtual channel primitives _put, _get, _purge,
// _size and _delete.
//
// A Store must be safe for concurrent use. Envelopes handed to Put are
// never modified afterwards by package virtual, so a store may keep the
// pointer (as memory does) instead of encoding it.
type Store interface {
	// Put appends env to queue, at env.Properties.Priority's level.
	Put(ctx context.Context, queue string, env *Envelope) error
	// Get takes the next envelope from the first of queues that has one,
	// in the order given (virtual rotates the order for fairness). It
	// waits up to wait for one to arrive, then returns driver.ErrEmpty.
	// A wait of 0 does not block.
	Get(ctx context.Context, queues []string, wait time.Duration) (Item, error)
	// Purge removes every ready message of queue and returns how many.
	Purge(ctx context.Context, queue string) (int, error)
	// Size returns the number of ready messages of queue.
	Size(ctx context.Context, queue string) (int, error)
	// Delete removes queue and its messages.
	Delete(ctx context.Context, queue string) error
	// Close releases the store's resources. It is idempotent.
	Close() error
}

// Item is one envelope taken from a store.
type Item struct {
	Queue    string
	Envelope *Envelope
	// Receipt is the store's handle for Acker methods (an SQS receipt
	// handle, a redis unacked key, a mongo _id). virtual never looks in it.
	Receipt any
	// DecodeErr is set on items made by UndecodableItem.
	DecodeErr error
}

// UndecodableItem is the item a store returns for bytes it took from
// queue but cannot decode as a message (err says why): it must never drop
// them. virtual delivers such an item with driver.Delivery.DecodeError
// set and the raw bytes as body, so that the consumer's decode error path
// reports it. A reject without requeue dead-letters it to the queue's
// x-dead-letter-exchange when the queue has one (body: the raw bytes,
// header x-kombu-decode-error: why), else hands it to the store's
// Quarantiner; so does a no-ack delivery. A requeue puts it back (Acker).
// An ack removes it for good: the consumer chose to. So a store that
// returns undecodable items implements Acker and Quarantiner.
func UndecodableItem(queue string, raw []byte, err error, receipt any) Item {
	return Item{Queue: queue, Envelope: &Envelope{Message: driver.Message{Body: raw}}, Receipt: receipt, DecodeErr: err}
}

// Quarantiner is implemented by stores that can return undecodable items
// (see UndecodableItem). Quarantine takes the item out of its queue and of
// the unacked state for good and keeps its raw bytes where an operator can
// find them (redis: a poison list next to the queue), as a dead-letter
// queue would.
type Quarantiner interface {
	Quarantine(ctx context.Context, it Item) error
}

// QueuedEnvelope is one element of a batch put.
type QueuedEnvelope struct {
	Queue    string
	Envelope *Envelope
}

// Acker is implemented by stores that keep unacked messages on the server
// (redis's unacked hash, SQS's in-flight messages, a mongo lease), so that a
// crashed consumer's messages come back. Get must record the item as
// unacked atomically with taking it. Without Acker, virtual keeps unacked
// items in process and puts them back with Put on requeue or close.
type Acker interface {
	// Ack forgets the unacked item for good (also used for a reject
	// without requeue).
	Ack(ctx context.Context, it Item) error
	// Requeue puts the unacked item back in its queue marked redelivered.
	Requeue(ctx context.Context, it Item) error
}

// BatchRequeuer requeues many unacked items in one round trip (SQS
// ChangeMessageVisibilityBatch, a redis script). virtual uses it on Close
// and Recover, with the items in delivery order: a store that keeps an
// order puts them back so that they are delivered again in that order
// (one that pushes to the front of a queue pushes the last one first).
type BatchRequeuer interface {
	RequeueBatch(ctx context.Context, items []Item) error
}

// BatchPutter puts many envelopes in one round trip. The batch need not be
// atomic; on error, return *driver.BatchError when a prefix went through.
type BatchPutter interface {
	PutBatch(ctx context.Context, batch []QueuedEnvelope) error
}

// BatchGetter takes up to max envelopes in one round trip, waiting up to
// wait for the first. It returns driver.ErrEmpty (or no items) when none.
type BatchGetter interface {
	GetBatch(ctx context.Context, queues []string, max int, wait time.Duration) ([]Item, error)
}

// BatchAcker acks many items in one round trip.
type BatchAcker interface {
	AckBatch(ctx context.Context, items []Item) error
}

// LeaseExtender extends an unacked item's visibility timeout.
type LeaseExtender interface {
	ExtendLease(ctx context.Context, it Item, d time.Duration) error
}

// DelayedRequeuer puts an unacked item back in its queue marked
// redelivered, to be delivered again only after delay (beanstalk release
// with a delay, SQS ChangeMessageVisibility). With it the Channel is a
// working driver.DelayedRequeuer.
type DelayedRequeuer interface {
	RequeueAfter(ctx context.Context, it Item, delay time.Duration) error
}

// Fanouter is implemented by stores with a native broadcast (redis
// PUBLISH/PSUBSCRIBE, a mongo capped collection). virtual sends fanout
// exchanges' messages through it instead of copying them to every bound
// queue, and tells it which queues listen to which exchange. A queue bound
// with BindFanout receives the broadcasts through Get.
type Fanouter interface {
	PutFanout(ctx context.Context, exchange, routingKey string, env *Envelope) error
	BindFanout(ctx context.Context, exchange, routingKey, queue string) error
	UnbindFanout(ctx context.Context, exchange, routingKey, queue string) error
}

// StoredBinding is one row of an exchange's binding table as kombu stores
// it: Pattern is the Python-kombu regex string for topic bindings
// (routing.KombuTopicPattern) and empty otherwise.
type StoredBinding struct {
	Exchange   string
	RoutingKey string
	Pattern    string
	Queue      string
}

// BindingStore is implemented by stores that share binding tables between
// processes (kombu redis `_kombu.binding.<exchange>` sets). virtual then
// reads the table from the store when routing, and writes to it on bind.
type BindingStore interface {
	AddBinding(ctx context.Context, b StoredBinding) error
	RemoveBinding(ctx context.Context, b StoredBinding) error
	Bindings(ctx context.Context, exchange string) ([]StoredBinding, error)
}

// QueueBindingStore is implemented by BindingStores that can find the
// stored bindings of one queue whatever the exchange (redis: a SCAN of the
// binding tables; SQL, mongodb, couchdb: a query), so that a listing of a
// queue's bindings (driver.BindingLister) shows the ones other processes
// made on exchanges this one never declared. Without it, only the tables
// of the exchanges this connection knows are read.
type QueueBindingStore interface {
	QueueBindings(ctx context.Context, queue string) ([]StoredBinding, error)
}

// QueueStore is implemented by stores that create queues on the server
// (SQS) or can tell whether one exists.
type QueueStore interface {
	DeclareQueue(ctx context.Context, q driver.Queue) error
	// QueueExists reports whether the queue exists in the store. bound
	// holds the binding rows the asking connection wrote for it (on a
	// BindingStore): a store whose queues exist only through what other
	// processes record (redis) counts the queue as existing while one of
	// them is still there, and as deleted once another process removed
	// them.
	QueueExists(ctx context.Context, name string, bound []StoredBinding) (bool, error)
}

// NameValidator is implemented by stores that cannot hold some names
// (redis: kombu's separator bytes). virtual calls it before declaring.
type NameValidator interface {
	ValidateName(kind, name string) error
}

// SharedStateStore is implemented by stores whose exchange and binding
// declarations are shared by every connection to the same store (memory,
// like Python kombu's process-global memory transport). Without it, each
// connection keeps its own exchange table, as Python kombu does.
type SharedStateStore interface {
	SharedState() *State
}
