package otelkombu

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
)

// queueCheckTimeout bounds the passive declares of one collection.
const queueCheckTimeout = 5 * time.Second

// ObserveQueues reports the depth (ready messages) and consumer count of
// queues on conn as the gauges messaging.kombu.queue.messages and
// messaging.kombu.queue.consumers, read with a passive declare each time
// the meter collects. A queue that does not exist, or a transport that
// cannot count, reports nothing for it. Unregister the returned
// registration before closing conn.
func (o *Observer) ObserveQueues(conn *kombu.Connection, queues ...string) (metric.Registration, error) {
	depth, err := o.meter.Int64ObservableGauge(MetricQueueDepth, metric.WithUnit("{message}"),
		metric.WithDescription("Messages ready in the queue."))
	if err != nil {
		return nil, err
	}
	consumers, err := o.meter.Int64ObservableGauge(MetricQueueConsumers, metric.WithUnit("{consumer}"),
		metric.WithDescription("Consumers of the queue."))
	if err != nil {
		return nil, err
	}
	names := append([]string(nil), queues...)
	return o.meter.RegisterCallback(func(ctx context.Context, obs metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, queueCheckTimeout)
		defer cancel()
		infos, err := queueInfos(ctx, conn, names)
		transport := conn.TransportName()
		for _, info := range infos {
			set := metric.WithAttributes(semconv.MessagingSystemKey.String(System(transport)),
				attribute.String(AttrTransport, transport), semconv.MessagingDestinationName(info.Name))
			obs.ObserveInt64(depth, int64(info.Messages), set)
			obs.ObserveInt64(consumers, int64(info.Consumers), set)
		}
		return err
	}, depth, consumers)
}

// queueInfos declares each queue passively on a channel of its own (a
// passive declare of a missing queue closes an AMQP channel).
func queueInfos(ctx context.Context, conn *kombu.Connection, names []string) ([]driver.QueueInfo, error) {
	infos := make([]driver.QueueInfo, 0, len(names))
	var errs []error
	for _, name := range names {
		ch, err := conn.Channel(ctx)
		if err != nil {
			return infos, err
		}
		info, err := ch.Driver().QueueDeclare(ctx, driver.Queue{Name: name, Passive: true})
		_ = ch.Close()
		switch {
		case err == nil:
			info.Name = name
			infos = append(infos, info)
		case !errors.Is(err, kombu.ErrNotFound) && !errors.Is(err, kombu.ErrNotSupported):
			errs = append(errs, err)
		}
	}
	return infos, errors.Join(errs...)
}
