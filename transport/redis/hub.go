package redis

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kombu-go/kombu/virtual"
)

// hub is what the stores of one process share per redis database and key
// prefix: the binding-table cache and a wake-up for local consumers.
type hub struct {
	mu     sync.Mutex
	tables map[string]cachedTable // by exchange
	gen    uint64                 // bumped by every invalidate

	waiters atomic.Int32
	wakeMu  sync.Mutex
	wake    chan struct{}
	// published counts local publishes and broadcasts, so that a consumer
	// whose last poll found nothing can tell whether polling again at once
	// could find anything published by this process.
	published atomic.Uint64
}

type cachedTable struct {
	rows    []virtual.StoredBinding
	fetched time.Time
}

var (
	hubsMu sync.Mutex
	hubs   = map[string]*hub{}

	// noLocalWake turns the in-process wake-up off, so that benchmarks can
	// measure consumers as if publishers were in other processes.
	noLocalWake atomic.Bool
)

func hubFor(o *Options) *hub {
	id := strings.Join(o.Addrs, ",") + "|" + o.MasterName + "|" + strconv.Itoa(o.DB) + "|" + o.GlobalKeyPrefix
	hubsMu.Lock()
	defer hubsMu.Unlock()
	h := hubs[id]
	if h == nil {
		h = &hub{tables: map[string]cachedTable{}, wake: make(chan struct{})}
		hubs[id] = h
	}
	return h
}

// table returns the cached binding table of exchange if it is younger than ttl.
func (h *hub) table(exchange string, ttl time.Duration) ([]virtual.StoredBinding, bool) {
	if ttl <= 0 {
		return nil, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.tables[exchange]
	if !ok || time.Since(t.fetched) >= ttl {
		return nil, false
	}
	return t.rows, true
}

// generation returns the invalidation counter to pass to setTable.
func (h *hub) generation() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gen
}

// setTable caches a table read at time at, unless a binding changed in this
// process since gen was taken (the read may predate the change). Empty
// tables are not cached: a publisher that finds no binding looks again next
// time, so a queue bound by another process after an unroutable publish is
// seen at once.
func (h *hub) setTable(exchange string, rows []virtual.StoredBinding, at time.Time, gen uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gen != gen {
		return
	}
	if len(rows) == 0 {
		delete(h.tables, exchange)
		return
	}
	h.tables[exchange] = cachedTable{rows: rows, fetched: at}
}

func (h *hub) invalidate(exchange string) {
	h.mu.Lock()
	delete(h.tables, exchange)
	h.gen++
	h.mu.Unlock()
}

// waitChan registers a waiter; the channel is closed by the next notify.
// The caller must call done() when it stops waiting.
func (h *hub) waitChan() (<-chan struct{}, func()) {
	h.waiters.Add(1)
	h.wakeMu.Lock()
	c := h.wake
	h.wakeMu.Unlock()
	return c, func() { h.waiters.Add(-1) }
}

// notify wakes local consumers waiting for messages; it costs one atomic
// load when nobody waits.
func (h *hub) notify() {
	if noLocalWake.Load() {
		return
	}
	h.published.Add(1)
	if h.waiters.Load() == 0 {
		return
	}
	h.wakeMu.Lock()
	close(h.wake)
	h.wake = make(chan struct{})
	h.wakeMu.Unlock()
}
