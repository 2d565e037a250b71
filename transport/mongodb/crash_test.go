package mongodb

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/kombu-go/kombu/internal/faulttest"
)

// TestHelperProcessConsumer is not a test: it is the consumer process
// TestKilledConsumerLosesNothing kills (see faulttest.KilledConsumer).
func TestHelperProcessConsumer(t *testing.T) { faulttest.KilledConsumerProcess(t) }

// TestKilledConsumerLosesNothing: a consumer process with prefetch 40 acks
// 100 of 300 messages, holds 40 more without acking and is killed with
// SIGKILL. Its leases expire after the visibility timeout (2 s) and a new
// consumer gets every message it did not ack, marked redelivered: lost = 0,
// no duplicate but the redeliveries, exactly the leased messages come back,
// and no lease is left after the drain. (Python kombu deletes a message
// when it is received: there the 40 would be lost.)
func TestKilledConsumerLosesNothing(t *testing.T) {
	raw := isolatedURL(t, "visibility_timeout=2")
	_, q := interopNames()
	leases := collection(t, raw, "messages.unacked")
	leased := func(ctx context.Context) (int, error) {
		n, err := leases.CountDocuments(ctx, bson.D{{Key: "queue", Value: q}})
		return int(n), err
	}
	faulttest.KilledConsumer{
		Transport: "mongodb", URL: raw, Queue: q,
		Total: 300, Acks: 100, Hold: 40, Prefetch: 40,
		// The prefetch window, or a little more: the virtual consumer may
		// hold a lease it has not handed up yet.
		InFlight: leased, MaxInFlight: 2 * 40,
		EarliestRedelivery: time.Second, // half the lease: no sooner
		LatestRedelivery:   2*time.Second + 30*time.Second,
		Leftover:           leased,
		Note:               "visibility timeout 2 s",
	}.Run(t)
}
