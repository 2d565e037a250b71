// Package virtual gives transports without AMQP semantics (today redis
// and memory) the whole AMQP model: exchanges of the four types,
// bindings, consumers, prefetch, delivery tags, requeue and the return of
// unacked messages on close.
//
// A transport implements Store: put, get, purge, size and delete on named
// queues (Python kombu's virtual channel primitives). NewTransport turns a
// Store into a driver.Transport. Optional interfaces add what a backend
// can do better: Acker (unacked state kept on the server, so a crashed
// consumer's messages come back), BatchPutter, BatchGetter and BatchAcker
// (several messages per round trip), LeaseExtender (visibility timeouts),
// DelayedRequeuer (a requeue held back by the server for a delay, which
// kombu's redelivery policy uses for its backoff),
// Fanouter (native broadcast), BindingStore (binding tables shared between
// processes, as kombu's redis transport does), QueueBindingStore (a
// queue's stored bindings on any exchange, for driver.BindingLister), QueueStore,
// NameValidator and Quarantiner.
//
// # Undecodable messages
//
// A store that finds bytes in a queue that are not a message returns them
// with UndecodableItem, never drops them. virtual delivers them with
// driver.Delivery.DecodeError (kombu hands them to the decode error path),
// and a reject without requeue or a no-ack delivery dead-letters them to
// the queue's x-dead-letter-exchange, or else hands them to the store's
// Quarantiner, which keeps them where an operator can find them.
//
// # Routing
//
// Routing happens in the publisher, as in Python kombu: the exchange type
// comes from the connection's own declarations (an exchange it never
// declared routes as direct), the bindings from the store when it is a
// BindingStore, else from the process. Topic exchanges match with AMQP's
// semantics (see package routing), not Python kombu's regular expressions.
// A mandatory message that matches no queue is returned as a
// *driver.ReturnError; an exchange's "alternate-exchange" argument is
// honoured; queues' "x-dead-letter-exchange", "x-message-ttl" and message
// expiration are applied.
//
// # Envelope
//
// Stores that persist bytes carry each message as Python kombu's JSON
// envelope (Envelope.Marshal, UnmarshalEnvelope), so Go and Python
// producers and consumers share queues. The memory store keeps *Envelope
// values and never encodes them.
package virtual
