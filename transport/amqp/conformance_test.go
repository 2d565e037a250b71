package amqp

import (
	"testing"

	"github.com/kombu-go/kombu/kombu/drivertest"
)

// TestConformance runs the whole kombu conformance suite on the RabbitMQ
// of `make test`.
func TestConformance(t *testing.T) {
	drivertest.RunConformanceTests(t, drivertest.Harness{URL: serverURL(t)})
}
