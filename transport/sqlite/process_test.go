package sqlite

import (
	"testing"

	"github.com/kombu-go/kombu/internal/faulttest"
	"github.com/kombu-go/kombu/internal/sqltest"
)

// TestHelperProcess is the consumer process of TestConcurrentConsumers
// when started by it (sqltest.ChildMain); otherwise it does nothing.
func TestHelperProcess(t *testing.T) {
	if !sqltest.ChildMain() {
		t.Skip("helper process for TestConcurrentConsumers")
	}
}

// TestHelperProcessConsumer is not a test: it is the consumer process
// TestCrashedConsumer kills (see faulttest.KilledConsumer).
func TestHelperProcessConsumer(t *testing.T) { faulttest.KilledConsumerProcess(t) }

// TestCrashedConsumer: a consumer killed with SIGKILL while holding
// unacked messages loses none; they come back after the visibility timeout.
func TestCrashedConsumer(t *testing.T) {
	sqltest.CrashedConsumer(t, "sqlite", fileURL(t, "visibility_timeout=2"))
}

// TestConcurrentConsumers: four consumer processes on one queue ack every
// message exactly once.
func TestConcurrentConsumers(t *testing.T) {
	sqltest.ConcurrentConsumers(t, fileURL(t, ""), 1000)
}
