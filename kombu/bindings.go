package kombu

import (
	"context"

	"github.com/kombu-go/kombu/kombu/driver"
)

// BindingLister is implemented by driver channels that can list bindings
// (every virtual transport; not AMQP 0-9-1, which has no method for it).
type BindingLister = driver.BindingLister

// BindingInfo is one binding as a transport lists it: Queue bound to
// Exchange with RoutingKey, and the binding's arguments where the
// transport keeps them (nil for one known only from a table another
// process wrote).
type BindingInfo = driver.Binding

// ListBindings lists the queue's bindings, whatever the exchange, as the
// transport knows them (Features.ListBindings); other transports return
// ErrNotSupported. A queue that does not exist has none. The implicit
// binding to the default exchange is not listed.
func (q Queue) ListBindings(ctx context.Context, ch *Channel) ([]BindingInfo, error) {
	return listBindings(ctx, ch, q.channel, "queue.bindings", q.Name, BindingLister.QueueBindings)
}

// ListBindings lists the queues bound to the exchange, as Queue.ListBindings
// does for a queue.
func (e Exchange) ListBindings(ctx context.Context, ch *Channel) ([]BindingInfo, error) {
	return listBindings(ctx, ch, e.channel, "exchange.bindings", e.Name, BindingLister.ExchangeBindings)
}

func listBindings(ctx context.Context, ch, bound *Channel, op, name string,
	list func(BindingLister, context.Context, string) ([]BindingInfo, error)) ([]BindingInfo, error) {
	ch, err := channelFor(ch, bound)
	if err != nil {
		return nil, &Error{Op: op, Name: name, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	bl, ok := ch.drv.(BindingLister)
	if !ok {
		return nil, ch.wrap(op, name, ErrNotSupported)
	}
	bs, err := list(bl, ctx, name)
	if err != nil {
		return nil, ch.wrap(op, name, err)
	}
	return bs, nil
}
