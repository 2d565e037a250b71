package otelkombu

import (
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// route is what every message of one transport and destination (an
// exchange, or a queue) shares: span names, the constant span attributes
// and the metric attribute sets, built once so that a message allocates
// none of them.
type route struct {
	system       string
	publishName  string               // "publish <destination>"
	processName  string               // "process <queue>"
	publishAttrs []attribute.KeyValue // constant attributes of a publish span
	processAttrs []attribute.KeyValue // constant attributes of a process span
	// Metric options, as slices: passed with ... they cost no allocation.
	counted        []metric.AddOption // event counters: system, transport, destination
	publishCounted []metric.AddOption // sent and publish errors: + operation name
	publishTimed   []metric.RecordOption
	processTimed   []metric.RecordOption
	// timedAttrs[op] are the attributes of op's duration; failedTimed[op]
	// adds error.type to them, built on the first failure of each type.
	timedAttrs  [2][]attribute.KeyValue
	failedTimed [2][numErrorTypes]atomic.Pointer[[]metric.RecordOption]
}

// Operations with a duration histogram.
const (
	opPublish = iota
	opProcess
)

func newRoute(transport, dest string) *route {
	system := System(transport)
	base := []attribute.KeyValue{
		semconv.MessagingSystemKey.String(system),
		attribute.String(AttrTransport, transport),
		semconv.MessagingDestinationName(dest),
	}
	r := &route{
		system:      system,
		publishName: spanName("publish", dest),
		processName: spanName("process", dest),
		publishAttrs: []attribute.KeyValue{
			base[0], semconv.MessagingOperationTypeSend, semconv.MessagingOperationName("publish"), base[2],
		},
		processAttrs: []attribute.KeyValue{
			base[0], semconv.MessagingOperationTypeProcess, semconv.MessagingOperationName("process"), base[2],
		},
		counted: []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(base...))},
	}
	if dest == "" {
		r.publishAttrs = append(r.publishAttrs, semconv.MessagingDestinationAnonymous(true))
	}
	r.timedAttrs[opPublish] = append(base[:3:3], semconv.MessagingOperationName("publish"))
	r.timedAttrs[opProcess] = append(base[:3:3], semconv.MessagingOperationName("process"))
	publishSet := metric.WithAttributeSet(attribute.NewSet(r.timedAttrs[opPublish]...))
	r.publishCounted = []metric.AddOption{publishSet}
	r.publishTimed = []metric.RecordOption{publishSet}
	r.processTimed = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(r.timedAttrs[opProcess]...))}
	return r
}

// spanName is "<operation> <destination>", or the operation alone for
// an anonymous destination, as the semantic conventions name spans.
func spanName(op, dest string) string {
	if dest == "" {
		return op
	}
	return op + " " + dest
}

// timed returns the attribute options of a duration of op ending in err.
func (r *route) timed(op int, err error) []metric.RecordOption {
	if err == nil {
		if op == opPublish {
			return r.publishTimed
		}
		return r.processTimed
	}
	kind := errorType(err)
	slot := &r.failedTimed[op][kind]
	if opts := slot.Load(); opts != nil {
		return *opts
	}
	kv := append(r.timedAttrs[op][:len(r.timedAttrs[op]):len(r.timedAttrs[op])], errorTypeAttrs[kind])
	opts := []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
	slot.Store(&opts)
	return opts
}

// maxRoutes bounds the cache: a program publishing to ever new names
// (reply queues named per request) builds their route per message
// instead of growing it without end.
const maxRoutes = 1024

type routeKey struct{ transport, dest string }

// routeCache maps (transport, destination) to its route. Reads are one
// atomic load and a map lookup, with no lock and no allocation; a new
// route copies the map.
type routeCache struct {
	mu     sync.Mutex
	routes atomic.Pointer[map[routeKey]*route]
}

func (c *routeCache) get(transport, dest string) *route {
	k := routeKey{transport, dest}
	if m := c.routes.Load(); m != nil {
		if r, ok := (*m)[k]; ok {
			return r
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.routes.Load()
	if old != nil {
		if r, ok := (*old)[k]; ok {
			return r
		}
		if len(*old) >= maxRoutes {
			return newRoute(transport, dest)
		}
	}
	r := newRoute(transport, dest)
	m := make(map[routeKey]*route, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	m[k] = r
	c.routes.Store(&m)
	return r
}

func lenOf(m *map[routeKey]*route) int {
	if m == nil {
		return 0
	}
	return len(*m)
}
