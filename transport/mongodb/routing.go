package mongodb

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

// bindingLookup is a routing document's identity, as Python kombu upserts
// it: pattern is the topic regex or null.
func bindingLookup(b virtual.StoredBinding) bson.D {
	var pattern any // null for direct and fanout bindings
	if b.Pattern != "" {
		pattern = b.Pattern
	}
	return bson.D{
		{Key: "exchange", Value: b.Exchange},
		{Key: fQueue, Value: b.Queue},
		{Key: "routing_key", Value: b.RoutingKey},
		{Key: "pattern", Value: pattern},
	}
}

// AddBinding implements virtual.BindingStore: an upsert into the routing
// collection, which Python kombu reads when it routes. Upserts are not
// atomic on FerretDB, so two binders may leave two equal rows; Bindings
// counts them once.
func (s *Store) AddBinding(ctx context.Context, b virtual.StoredBinding) error {
	lookup := bindingLookup(b)
	doc := lookup
	if exp := s.queueExpiry(ctx, b.Queue); !exp.IsZero() {
		doc = append(append(bson.D(nil), lookup...), bson.E{Key: fExpireAt, Value: exp})
	}
	_, err := s.routing.UpdateOne(ctx, lookup, bson.D{{Key: "$set", Value: doc}}, options.UpdateOne().SetUpsert(true))
	return s.wrap(ctx, "bind", err)
}

// RemoveBinding implements virtual.BindingStore.
func (s *Store) RemoveBinding(ctx context.Context, b virtual.StoredBinding) error {
	_, err := s.routing.DeleteMany(ctx, bindingLookup(b))
	return s.wrap(ctx, "unbind", err)
}

// Bindings implements virtual.BindingStore: the exchange's routing rows,
// each once.
func (s *Store) Bindings(ctx context.Context, exchange string) ([]virtual.StoredBinding, error) {
	return s.findBindings(ctx, bson.D{{Key: "exchange", Value: exchange}})
}

// QueueBindings implements virtual.QueueBindingStore: the queue's routing
// rows, whatever the exchange, each once.
func (s *Store) QueueBindings(ctx context.Context, queue string) ([]virtual.StoredBinding, error) {
	return s.findBindings(ctx, bson.D{{Key: fQueue, Value: queue}})
}

// findBindings reads the routing rows that filter selects, each once,
// leaving out expired ones.
func (s *Store) findBindings(ctx context.Context, filter bson.D) ([]virtual.StoredBinding, error) {
	cur, err := s.routing.Find(ctx, filter)
	if err != nil {
		return nil, s.wrap(ctx, "bindings", err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	var out []virtual.StoredBinding
	seen := map[virtual.StoredBinding]bool{}
	for cur.Next(ctx) {
		var b virtual.StoredBinding
		b.Exchange, _ = cur.Current.Lookup("exchange").StringValueOK()
		b.Queue, _ = cur.Current.Lookup(fQueue).StringValueOK()
		b.RoutingKey, _ = cur.Current.Lookup("routing_key").StringValueOK()
		b.Pattern, _ = cur.Current.Lookup("pattern").StringValueOK()
		if b.Queue == "" || seen[b] {
			continue
		}
		if exp, ok := cur.Current.Lookup(fExpireAt).TimeOK(); ok && time.Now().After(exp) {
			continue // an expired row a TTL index would have removed
		}
		seen[b] = true
		out = append(out, b)
	}
	return out, s.wrap(ctx, "bindings", cur.Err())
}

// DeclareQueue implements virtual.QueueStore: the queue's document in the
// queues collection ({_id: name, options: {arguments}}, Python kombu's
// form with ttl=true), so that other processes see that it exists.
func (s *Store) DeclareQueue(ctx context.Context, q driver.Queue) error {
	args := bson.D{}
	for k, v := range q.Args {
		args = append(args, bson.E{Key: k, Value: v})
	}
	set := bson.D{{Key: "options", Value: bson.D{
		{Key: "durable", Value: q.Durable}, {Key: "auto_delete", Value: q.AutoDelete}, {Key: "arguments", Value: args},
	}}}
	if ms, ok := q.Args["x-expires"].(int64); ok && s.opts.TTL {
		set = append(set, bson.E{Key: fExpireAt, Value: time.Now().Add(time.Duration(ms) * time.Millisecond).UTC()})
	}
	filter := bson.D{{Key: fID, Value: q.Name}}
	update := bson.D{{Key: "$set", Value: set}}
	_, err := s.queues.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(true))
	if mongo.IsDuplicateKeyError(err) {
		// Another declarer inserted it between FerretDB's find and insert.
		_, err = s.queues.UpdateOne(ctx, filter, update)
	}
	return s.wrap(ctx, "declare queue", err)
}

// QueueExists implements virtual.QueueStore: a queue exists while its
// declaration, a routing row or a ready message of it is in the database
// (Python kombu declares queues without a trace unless ttl=true).
func (s *Store) QueueExists(ctx context.Context, name string, _ []virtual.StoredBinding) (bool, error) {
	for _, c := range []struct {
		coll   *mongo.Collection
		filter bson.D
	}{
		{s.queues, bson.D{{Key: fID, Value: name}}},
		{s.routing, bson.D{{Key: fQueue, Value: name}}},
		{s.messages, bson.D{{Key: fQueue, Value: name}}},
	} {
		err := c.coll.FindOne(ctx, c.filter, options.FindOne().SetProjection(bson.D{{Key: fID, Value: 1}})).Err()
		if err == nil {
			return true, nil
		}
		if err != mongo.ErrNoDocuments {
			return false, s.wrap(ctx, "queue exists", err)
		}
	}
	return false, nil
}

// queueExpiry is when the queue's x-expires runs out (zero without ttl or
// x-expires).
func (s *Store) queueExpiry(ctx context.Context, queue string) time.Time {
	if !s.opts.TTL {
		return time.Time{}
	}
	var doc struct {
		Options struct {
			Arguments bson.M `bson:"arguments"`
		} `bson:"options"`
	}
	if err := s.queues.FindOne(ctx, bson.D{{Key: fID, Value: queue}}).Decode(&doc); err != nil {
		return time.Time{}
	}
	switch ms := doc.Options.Arguments["x-expires"].(type) {
	case int64:
		return time.Now().Add(time.Duration(ms) * time.Millisecond).UTC()
	case int32:
		return time.Now().Add(time.Duration(ms) * time.Millisecond).UTC()
	}
	return time.Time{}
}

var _ virtual.QueueBindingStore = (*Store)(nil)
