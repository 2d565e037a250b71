package couchdb

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/faulttest"
)

// TestHelperProcessConsumer is not a test: it is the consumer process
// TestKilledConsumerLosesNothing kills (see faulttest.KilledConsumer).
func TestHelperProcessConsumer(t *testing.T) { faulttest.KilledConsumerProcess(t) }

// leasedIn counts the documents of queue under a lease.
func leasedIn(ctx context.Context, s *Store, queue string) (int, error) {
	n := 0
	err := s.scanQueue(ctx, queue, maxPage, func(_ string, doc map[string]json.RawMessage) bool {
		if leaseOf(doc) > 0 {
			n++
		}
		return true
	})
	return n, err
}

// TestKilledConsumerLosesNothing: a consumer process with prefetch 25 acks
// 200 of 400 messages, holds 25 more without acking, and is killed with
// SIGKILL. Every message it did not ack comes back once its lease has
// expired (visibility timeout 3 s): lost = 0, exactly the documents leased
// at the kill come back marked redelivered, none before a third of the
// lease, and no lease is left after the drain. Acks are written in batches
// behind the consumer: up to a prefetch window of the dead one's acks may
// be lost with it, and those messages come again.
func TestKilledConsumerLosesNothing(t *testing.T) {
	const vt = 3 * time.Second
	raw := freshDatabaseURL(t, "visibility_timeout=3&polling_interval=0.2")
	s := openStore(t, raw)
	const q = "killed"
	leased := func(ctx context.Context) (int, error) { return leasedIn(ctx, s, q) }
	faulttest.KilledConsumer{
		Transport: "couchdb", URL: raw, Queue: q,
		Total: 400, Acks: 200, Hold: 25, Prefetch: 25,
		InFlight: leased, MaxInFlight: 2 * 25, // the dead one's unwritten acks leave leases too
		EarliestRedelivery: vt / 3,
		AckedAgain:         25,
		Leftover:           leased,
		Note:               "visibility timeout 3 s",
	}.Run(t)
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
