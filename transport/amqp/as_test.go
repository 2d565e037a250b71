package amqp

import (
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kombu-go/kombu/kombu"
)

// Connection.As and Channel.As reach the amqp091-go connection and channel
// beneath kombu.
func TestEscapeHatchThroughKombu(t *testing.T) {
	ctx := tctx(t)
	conn, err := kombu.Dial(ctx, serverURL(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var ac *amqp.Connection
	if !conn.As(&ac) || ac == nil || ac.IsClosed() {
		t.Fatal("Connection.As(**amqp091.Connection) = false")
	}
	ch, err := conn.Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	q := unique(t, "as")
	if _, err := kombu.NewQueue(q, kombu.Exchange{}, q).Declare(ctx, ch); err != nil {
		t.Fatal(err)
	}
	var ach *amqp.Channel
	if !ch.As(&ach) || ach == nil {
		t.Fatal("Channel.As(**amqp091.Channel) = false")
	}
	st, err := ach.QueueDeclarePassive(q, false, false, false, false, nil)
	if err != nil || st.Name != q {
		t.Fatalf("the channel reached is not usable: %v %v", st, err)
	}
	_, _ = ach.QueueDelete(q, false, false, false)
	var wrong *amqp.Delivery
	if conn.As(&wrong) || ch.As(&wrong) {
		t.Fatal("As accepted a type amqp does not offer")
	}
}
