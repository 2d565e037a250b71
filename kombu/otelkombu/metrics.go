package otelkombu

import (
	"go.opentelemetry.io/otel/metric"

	"github.com/kombu-go/kombu/kombu"
)

// Metrics otelkombu records. Every one carries messaging.system,
// messaging.kombu.transport and messaging.destination.name (the queue, or
// the exchange a message was published to); durations also carry
// messaging.operation.name and, on failure, error.type.
const (
	// Semantic conventions.
	MetricSent              = "messaging.client.sent.messages"      // publishes the broker took (confirmed where it confirms)
	MetricConsumed          = "messaging.client.consumed.messages"  // deliveries that reached a consumer
	MetricOperationDuration = "messaging.client.operation.duration" // publish latency, seconds
	MetricProcessDuration   = "messaging.process.duration"          // handler duration, settlement included, seconds

	// kombu's own.
	MetricPublishErrors  = "messaging.kombu.publish.errors"        // publishes that failed (returned, lost, refused)
	MetricReturned       = "messaging.kombu.message.returned"      // unroutable mandatory publishes
	MetricAcked          = "messaging.kombu.message.acked"         // settlements: ack
	MetricRejected       = "messaging.kombu.message.rejected"      // reject without requeue
	MetricRequeued       = "messaging.kombu.message.requeued"      // requeue
	MetricRedelivered    = "messaging.kombu.message.redelivered"   // republished by the redelivery policy
	MetricDeadLettered   = "messaging.kombu.message.dead_lettered" // dead-lettered by the redelivery policy
	MetricDecodeErrors   = "messaging.kombu.message.decode_errors" // undecodable or refused content type
	MetricConnections    = "messaging.kombu.connection.connects"   // first connections
	MetricReconnects     = "messaging.kombu.connection.reconnects" // connections established again
	MetricConnectionLost = "messaging.kombu.connection.lost"       // connections found gone
	MetricFailovers      = "messaging.kombu.connection.failovers"  // moves to another URL of the list
	MetricRetries        = "messaging.kombu.connection.retries"    // Ensure retries
	MetricChannelErrors  = "messaging.kombu.channel.errors"        // consumers ended by the broker
	MetricQueueDepth     = "messaging.kombu.queue.messages"        // ready messages (ObserveQueues)
	MetricQueueConsumers = "messaging.kombu.queue.consumers"       // consumers (ObserveQueues)
)

type instruments struct {
	sent              metric.Int64Counter
	sendErrors        metric.Int64Counter
	operationDuration metric.Float64Histogram
	processDuration   metric.Float64Histogram
	events            [kombu.EventReturned + 1]metric.Int64Counter
}

// durationBuckets suit in-process brokers (microseconds) as well as
// remote ones (seconds), as the semantic conventions advise.
var durationBuckets = []float64{0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

func newInstruments(m metric.Meter) (*instruments, error) {
	in := &instruments{}
	var err error
	counter := func(name, desc string) metric.Int64Counter {
		if err != nil {
			return nil
		}
		var c metric.Int64Counter
		c, err = m.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit("{message}"))
		return c
	}
	in.sent = counter(MetricSent, "Messages the broker took from a publisher.")
	in.sendErrors = counter(MetricPublishErrors, "Publishes that failed.")
	in.events[kombu.EventDelivered] = counter(MetricConsumed, "Messages delivered to a consumer.")
	in.events[kombu.EventReturned] = counter(MetricReturned, "Unroutable mandatory messages returned by the broker.")
	in.events[kombu.EventAcked] = counter(MetricAcked, "Messages acked.")
	in.events[kombu.EventRejected] = counter(MetricRejected, "Messages rejected without requeue.")
	in.events[kombu.EventRequeued] = counter(MetricRequeued, "Messages requeued.")
	in.events[kombu.EventRedelivered] = counter(MetricRedelivered, "Messages republished by the redelivery policy.")
	in.events[kombu.EventDeadLettered] = counter(MetricDeadLettered, "Messages dead-lettered by the redelivery policy.")
	in.events[kombu.EventDecodeError] = counter(MetricDecodeErrors, "Messages that could not be decoded.")
	in.events[kombu.EventConnected] = counter(MetricConnections, "Connections established.")
	in.events[kombu.EventReconnected] = counter(MetricReconnects, "Connections established again after a loss.")
	in.events[kombu.EventConnectionLost] = counter(MetricConnectionLost, "Connections found lost.")
	in.events[kombu.EventFailover] = counter(MetricFailovers, "Moves to another URL of a failover list.")
	in.events[kombu.EventRetry] = counter(MetricRetries, "Retries after connection errors.")
	in.events[kombu.EventChannelError] = counter(MetricChannelErrors, "Consumers ended by the broker.")
	if err != nil {
		return nil, err
	}
	if in.operationDuration, err = m.Float64Histogram(MetricOperationDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of publish operations."), metric.WithExplicitBucketBoundaries(durationBuckets...)); err != nil {
		return nil, err
	}
	if in.processDuration, err = m.Float64Histogram(MetricProcessDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of handling a message, settlement included."), metric.WithExplicitBucketBoundaries(durationBuckets...)); err != nil {
		return nil, err
	}
	return in, nil
}
