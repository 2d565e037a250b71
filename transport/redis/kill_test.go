package redis

import (
	"context"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/faulttest"
)

// TestHelperProcessConsumer is not a test: it is the consumer process
// TestKilledConsumerLosesNothing kills (see faulttest.KilledConsumer).
func TestHelperProcessConsumer(t *testing.T) { faulttest.KilledConsumerProcess(t) }

// TestKilledConsumerLosesNothing is F8 for redis: a consumer process with
// prefetch 50 acks 2000 of 4000 messages, holds 50 more without acking,
// and is killed with SIGKILL. Every message it did not ack comes back after
// the visibility timeout (3 s), restored from the unacked hash: lost = 0,
// exactly the entries of the unacked hash at the kill come back redelivered,
// within the timeout plus the restore interval, and the hash is empty after
// the drain. Acks are written in batches behind the consumer: up to a
// prefetch window of the dead one's acks may be lost with it, and those
// messages come again.
func TestKilledConsumerLosesNothing(t *testing.T) {
	const vt = 3 * time.Second
	opts := isolated(t, url.Values{"visibility_timeout": {strconv.Itoa(int(vt / time.Second))}})
	prefix := opts.Get("global_keyprefix")
	s := openStore(t, opts)
	c := rawClient(t, s)
	cleanupKeys(t, c, prefix)
	unacked := func(ctx context.Context) (int, error) {
		n, err := c.HLen(ctx, prefix+"unacked").Result()
		return int(n), err
	}
	faulttest.KilledConsumer{
		Transport: "redis", URL: serverURL(t, opts).String(), Queue: uniqueName(t, "q"),
		Total: 4000, Acks: 2000, Hold: 50, Prefetch: 50,
		InFlight: unacked, MaxInFlight: 2 * 50, // the dead one's unwritten acks leave entries too
		LatestRedelivery: vt + 12*time.Second,
		AckedAgain:       50,
		Leftover:         unacked,
		Note:             "visibility timeout 3 s",
	}.Run(t)
}
