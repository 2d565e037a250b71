package virtual_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/kombu-go/kombu/kombu/driver"
)

// RequeueBatch settles the tags it knows and requeues them in tag order
// (given in any order), reports an unknown tag, and fails on a closed
// channel.
func TestChannelRequeueBatch(t *testing.T) {
	ctx := context.Background()
	ch := openChannel(t)
	if _, err := ch.QueueDeclare(ctx, driver.Queue{Name: "q"}); err != nil {
		t.Fatal(err)
	}
	var tags []uint64
	for i := range 3 {
		if err := ch.Publish(ctx, &driver.Publishing{RoutingKey: "q", Message: driver.Message{Body: []byte(fmt.Sprint("m", i))}}); err != nil {
			t.Fatal(err)
		}
		d, err := ch.Get(ctx, "q", false)
		if err != nil {
			t.Fatal(err)
		}
		tags = append(tags, d.Tag)
	}
	err := ch.(driver.BatchRequeuer).RequeueBatch(ctx, []uint64{tags[2], 999, tags[0], tags[1]})
	if !errors.Is(err, driver.ErrUnknownDeliveryTag) {
		t.Errorf("RequeueBatch with an unknown tag: %v, want ErrUnknownDeliveryTag", err)
	}
	for i := range 3 {
		d, err := ch.Get(ctx, "q", true)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprint("m", i); string(d.Body) != want || !d.Redelivered {
			t.Errorf("delivery %d after RequeueBatch: %q redelivered %t, want %q redelivered", i, d.Body, d.Redelivered, want)
		}
	}
	if err := ch.Ack(ctx, tags[0], false); !errors.Is(err, driver.ErrUnknownDeliveryTag) {
		t.Errorf("ack of a requeued tag: %v, want ErrUnknownDeliveryTag", err)
	}
	_ = ch.Close()
	if err := ch.(driver.BatchRequeuer).RequeueBatch(ctx, tags); !errors.Is(err, driver.ErrClosed) {
		t.Errorf("RequeueBatch on a closed channel: %v, want ErrClosed", err)
	}
}
