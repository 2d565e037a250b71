package memory_test

import (
	"crypto/rand"
	"encoding/hex"
	"testing"

	"go.uber.org/goleak"

	"github.com/kombu-go/kombu/kombu/drivertest"
	_ "github.com/kombu-go/kombu/transport/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestConformance runs the whole suite on a private in-process broker.
func TestConformance(t *testing.T) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	drivertest.RunConformanceTests(t, drivertest.Harness{URL: "memory://conformance-" + hex.EncodeToString(b[:])})
}
