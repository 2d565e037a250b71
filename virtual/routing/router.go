package routing

import (
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/kombu-go/kombu/kombu/driver"
)

// The exchange types the virtual transports route.
const (
	ExchangeDirect  = "direct"
	ExchangeTopic   = "topic"
	ExchangeFanout  = "fanout"
	ExchangeHeaders = "headers"
)

// ValidExchangeType reports whether t is an exchange type that Router
// routes: "direct", "topic", "fanout" or "headers" (case-sensitive, as in
// RabbitMQ).
func ValidExchangeType(t string) bool {
	switch t {
	case ExchangeDirect, ExchangeTopic, ExchangeFanout, ExchangeHeaders:
		return true
	}
	return false
}

// maxCachedTopics bounds a Router's cache of compiled topic binding keys.
// When a new key would exceed it, the cache starts over empty.
const maxCachedTopics = 10000

// Router computes the destination queues of a publish. It caches compiled
// topic binding keys, so one Router should be shared by everything that
// routes (the zero value is ready to use). It is safe for concurrent use.
type Router struct {
	cache atomic.Pointer[topicCache]
}

type topicCache struct {
	m sync.Map // binding key -> *Topic
	n atomic.Int64
}

// NewRouter returns an empty Router.
func NewRouter() *Router { return &Router{} }

// compiled returns the compiled form of a topic binding key, from the cache
// when possible.
func (r *Router) compiled(key string) *Topic {
	c := r.cache.Load()
	if c == nil {
		r.cache.CompareAndSwap(nil, &topicCache{})
		c = r.cache.Load()
	}
	if t, ok := c.m.Load(key); ok {
		return t.(*Topic)
	}
	t := CompileTopic(key)
	if prev, loaded := c.m.LoadOrStore(key, t); loaded {
		return prev.(*Topic)
	}
	if c.n.Add(1) > maxCachedTopics {
		// Start over rather than track recency: bindings are few and
		// stable in practice, so this only triggers on key churn. Routes
		// in flight keep using the old cache, which is then dropped.
		fresh := &topicCache{}
		fresh.m.Store(key, t)
		fresh.n.Store(1)
		r.cache.CompareAndSwap(c, fresh)
	}
	return t
}

// cachedTopics returns how many compiled keys the cache holds (for tests).
func (r *Router) cachedTopics() int64 {
	if c := r.cache.Load(); c != nil {
		return c.n.Load()
	}
	return 0
}

// Route returns the queues that a message published with routingKey and
// headers to an exchange of exchangeType with bindings goes to, each queue
// once, in the order of its first matching binding. It returns nil when no
// binding matches.
//
//   - direct: bindings whose RoutingKey equals routingKey.
//   - topic: bindings whose RoutingKey matches routingKey as an AMQP topic
//     binding key (see TopicMatch).
//   - fanout: every binding.
//   - headers: bindings whose Args match headers (see HeadersMatch); the
//     routing key is ignored.
//
// Binding.Exchange is not looked at: the caller passes the bindings of one
// exchange. The default exchange ("" name) is not a type and needs no
// Router: the routing key is the queue name. An unknown exchangeType
// returns an error wrapping driver.ErrInvalidArgument.
func (r *Router) Route(exchangeType string, bindings []driver.Binding, routingKey string, headers map[string]any) ([]string, error) {
	return r.RouteAppend(nil, exchangeType, bindings, routingKey, headers)
}

// RouteAppend is Route appending the queues to dst and returning the
// extended slice, so that a caller that reuses dst routes without
// allocating. Deduplication considers only the queues it appends, not what
// dst held before. On error dst is returned unchanged.
func (r *Router) RouteAppend(dst []string, exchangeType string, bindings []driver.Binding, routingKey string, headers map[string]any) ([]string, error) {
	a := appender{dst: dst, start: len(dst)}
	switch exchangeType {
	case ExchangeDirect:
		for i := range bindings {
			if bindings[i].RoutingKey == routingKey {
				a.add(bindings[i].Queue)
			}
		}
	case ExchangeTopic:
		for i := range bindings {
			if r.topicMatch(bindings[i].RoutingKey, routingKey) {
				a.add(bindings[i].Queue)
			}
		}
	case ExchangeFanout:
		for i := range bindings {
			a.add(bindings[i].Queue)
		}
	case ExchangeHeaders:
		for i := range bindings {
			if HeadersMatch(bindings[i].Args, headers) {
				a.add(bindings[i].Queue)
			}
		}
	default:
		return dst, fmt.Errorf("%w: unknown exchange type %q (want direct, topic, fanout or headers)",
			driver.ErrInvalidArgument, exchangeType)
	}
	return a.dst, nil
}

func (r *Router) topicMatch(bindingKey, routingKey string) bool {
	if strings.IndexByte(bindingKey, '*') < 0 && strings.IndexByte(bindingKey, '#') < 0 {
		// No wildcard character: plain equality, no cache lookup.
		return bindingKey == routingKey
	}
	return r.compiled(bindingKey).Match(routingKey)
}

// Deduplication of the queues RouteAppend appends works in three tiers,
// none of which allocates before the last:
//
//   - up to dedupScanMax queues, a scan of what was appended;
//   - up to dedupBloomMax, a 1024-bit Bloom filter (two hashes) kept on the
//     stack, so that only queues it reports as maybe-seen are scanned for;
//   - beyond, a map.
const (
	dedupScanMax  = 8
	dedupBloomMax = 64
)

var dedupSeed = maphash.MakeSeed()

// appender appends queue names to dst[start:] once each.
type appender struct {
	dst     []string
	start   int
	bloomOn bool                // set when the scan tier is left
	seen    map[string]struct{} // set when the Bloom tier is left
	bloom   [16]uint64
}

func (a *appender) add(q string) {
	if a.seen != nil {
		if _, dup := a.seen[q]; dup {
			return
		}
		a.seen[q] = struct{}{}
		a.dst = append(a.dst, q)
		return
	}
	n := len(a.dst) - a.start
	if !a.bloomOn {
		if a.scanFor(q) {
			return
		}
		a.dst = append(a.dst, q)
		if n+1 == dedupScanMax {
			a.bloomOn = true
			for _, have := range a.dst[a.start:] {
				a.mark(have)
			}
		}
		return
	}
	if a.mark(q) && a.scanFor(q) {
		return
	}
	a.dst = append(a.dst, q)
	if n+1 == dedupBloomMax {
		a.seen = make(map[string]struct{}, 2*dedupBloomMax)
		for _, have := range a.dst[a.start:] {
			a.seen[have] = struct{}{}
		}
	}
}

// scanFor reports whether q was appended already.
func (a *appender) scanFor(q string) bool {
	for _, have := range a.dst[a.start:] {
		if have == q {
			return true
		}
	}
	return false
}

// mark sets q's two bits in the Bloom filter and reports whether both were
// set already (q may have been appended).
func (a *appender) mark(q string) bool {
	h := maphash.String(dedupSeed, q)
	b1, b2 := h&1023, (h>>10)&1023
	w1, m1 := b1>>6, uint64(1)<<(b1&63)
	w2, m2 := b2>>6, uint64(1)<<(b2&63)
	maybe := a.bloom[w1]&m1 != 0 && a.bloom[w2]&m2 != 0
	a.bloom[w1] |= m1
	a.bloom[w2] |= m2
	return maybe
}
