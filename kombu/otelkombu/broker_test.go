package otelkombu_test

import (
	"testing"

	"github.com/kombu-go/kombu/internal/testenv"
	_ "github.com/kombu-go/kombu/transport/amqp"
	_ "github.com/kombu-go/kombu/transport/redis"
)

// The trace and the counts of runTrace on the real servers: the trace
// context travels in the message headers through the broker.
func TestTraceFromPublisherThroughHandlerOnRedis(t *testing.T) {
	runTrace(t, testenv.ServerURL(t, "KOMBU_TEST_REDIS_URL"), newTelemetry(t))
}

func TestTraceFromPublisherThroughHandlerOnRabbitMQ(t *testing.T) {
	runTrace(t, testenv.ServerURL(t, "KOMBU_TEST_AMQP_URL"), newTelemetry(t))
}
