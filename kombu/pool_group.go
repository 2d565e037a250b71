package kombu

import (
	"errors"
	"fmt"
	"sync"
)

// Pools is the process-wide pool group (kombu.pools.connections and
// kombu.pools.producers), with kombu's default limit of 10 per pool.
//
//	producers := kombu.Pools.Producers(myConn)
//	p, err := producers.Acquire(ctx)
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer producers.Release(p)
//	if err := p.Publish(ctx, "hello", &kombu.PublishOptions{RoutingKey: "hello"}); err != nil {
//		log.Fatal(err)
//	}
var Pools = NewPoolGroup(defaultPoolLimit)

// PoolGroup holds one ConnectionPool and one ProducerPool per set of
// connection parameters, all with the group's limit (kombu's PoolGroup).
// It is safe for concurrent use.
//
// Connections are keyed by their URL list, passwords included (as kombu
// keys by transport, host, port, user, password and virtual host), so two
// Connection values made from the same URL share a pool, whose template is
// the first of them: connections that differ only in Options share it too.
// A Connection made by NewConnectionFromConnector has no URL to compare
// and gets pools of its own (shared with its clones).
type PoolGroup struct {
	mu        sync.Mutex
	limit     int
	conns     map[any]*ConnectionPool
	producers map[any]*ProducerPool
}

// NewPoolGroup returns an empty group whose pools hold at most limit
// resources each (limit <= 0 means 10).
func NewPoolGroup(limit int) *PoolGroup {
	if limit <= 0 {
		limit = defaultPoolLimit
	}
	return &PoolGroup{limit: limit, conns: map[any]*ConnectionPool{}, producers: map[any]*ProducerPool{}}
}

// poolKey is c's URL list, or for a Connection made without a URL the
// address of its connector slice, which clones share.
func poolKey(c *Connection) any {
	if c.byConnector {
		return &c.connectors[0]
	}
	return c.URIWithPassword()
}

// Connections returns the group's connection pool for c's parameters,
// creating it on first use (kombu's pools.connections[conn]). A pool
// closed by its user is replaced.
func (g *PoolGroup) Connections(c *Connection) *ConnectionPool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.connectionsLocked(poolKey(c), c)
}

func (g *PoolGroup) connectionsLocked(key any, c *Connection) *ConnectionPool {
	p := g.conns[key]
	if p == nil || p.res.isClosed() {
		p = c.Pool(g.limit)
		g.conns[key] = p
	}
	return p
}

// ConnectionsFor is Connections for a URL (or ';'-separated failover
// list); opts apply when the group has no pool for it yet.
func (g *PoolGroup) ConnectionsFor(rawURL string, opts *Options) (*ConnectionPool, error) {
	c, err := NewConnection(rawURL, opts)
	if err != nil {
		return nil, err
	}
	return g.Connections(c), nil
}

// Producers returns the group's producer pool for c's parameters, over the
// group's connection pool for them (kombu's pools.producers[conn]).
func (g *PoolGroup) Producers(c *Connection) *ProducerPool {
	g.mu.Lock()
	defer g.mu.Unlock()
	key := poolKey(c)
	conns := g.connectionsLocked(key, c)
	pp := g.producers[key]
	if pp == nil || pp.isClosed() || pp.conns != conns {
		pp = NewProducerPool(conns, nil)
		g.producers[key] = pp
	}
	return pp
}

// Limit returns the limit of the group's pools.
func (g *PoolGroup) Limit() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limit
}

// SetLimit changes the limit of every pool of the group, and of those it
// creates later (kombu's set_limit). limit must be at least 1. Lowering it
// below what is in use takes nothing away: see ConnectionPool.Resize.
func (g *PoolGroup) SetLimit(limit int) error {
	if limit < 1 {
		return &Error{Op: "pool.resize", Err: fmt.Errorf("%w: pool limit %d, want at least 1", ErrInvalidArgument, limit)}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.limit = limit
	for _, p := range g.conns {
		if err := p.Resize(limit); err != nil {
			return err
		}
	}
	return nil
}

// Reset closes every pool of the group and forgets them (kombu's reset):
// idle connections and producers are closed now, those in use when
// released, and the next Connections or Producers call creates a new pool.
func (g *PoolGroup) Reset() error {
	g.mu.Lock()
	conns, producers := g.conns, g.producers
	g.conns, g.producers = map[any]*ConnectionPool{}, map[any]*ProducerPool{}
	g.mu.Unlock()
	var errs []error
	for _, pp := range producers {
		errs = append(errs, pp.Close())
	}
	for _, p := range conns {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}
