package faulttest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// FaultKind is what the proxy does to the traffic while a fault lasts (H2).
type FaultKind int

const (
	// Pass forwards everything (no fault).
	Pass FaultKind = iota
	// ResetAll resets every open connection at once (TCP RST) and resets
	// each new one as soon as it is accepted, until the fault ends.
	ResetAll
	// Blackhole forwards nothing in either direction and keeps the sockets
	// open: a hung broker or a partition. Bytes are held, not dropped, so
	// a connection that outlives the fault carries on where it stopped, as
	// TCP does when a partition heals.
	Blackhole
	// HalfOpen forwards client to server only; the server's replies
	// (confirms, deliveries, heartbeats) are held until the fault ends.
	HalfOpen
	// Latency delays every chunk, in both directions, by Fault.Delay.
	Latency
	// CutAfter resets each connection once Fault.Bytes more bytes (both
	// directions together) have gone through it since the fault began;
	// the chunk that crosses the limit is forwarded only up to it.
	CutAfter
)

func (k FaultKind) String() string {
	switch k {
	case Pass:
		return "pass"
	case ResetAll:
		return "reset-all"
	case Blackhole:
		return "blackhole"
	case HalfOpen:
		return "half-open"
	case Latency:
		return "latency"
	case CutAfter:
		return "cut-after"
	}
	return fmt.Sprintf("FaultKind(%d)", int(k))
}

// Fault is one fault of the proxy.
type Fault struct {
	Kind  FaultKind
	Delay time.Duration // Latency: added to every chunk
	Bytes int64         // CutAfter: bytes let through before the reset
}

func (f Fault) String() string {
	switch f.Kind {
	case Latency:
		return fmt.Sprintf("latency %v", f.Delay)
	case CutAfter:
		return fmt.Sprintf("cut after %d B", f.Bytes)
	}
	return f.Kind.String()
}

// MaxFaultDuration bounds every fault: the proxy always heals by itself.
const MaxFaultDuration = 2 * time.Minute

// ProxyStats counts what the proxy did.
type ProxyStats struct {
	Accepted int64 // client connections accepted
	Resets   int64 // connections reset by a fault (ResetAll, CutAfter)
	Faults   int64 // faults injected
}

// Proxy is a TCP proxy on 127.0.0.1 in front of one backend, with faults
// injected on demand.
type Proxy struct {
	ln net.Listener

	mu      sync.Mutex
	backend string
	fault   Fault
	gen     uint64        // bumps on every fault change, so a stale heal timer does nothing
	changed chan struct{} // closed and replaced on every fault change
	conns   map[*proxyConn]struct{}
	closed  bool
	healers []*time.Timer

	accepted, resets, faults atomic.Int64
	wg                       sync.WaitGroup
}

type proxyConn struct {
	client, server net.Conn
	done           chan struct{} // closed when the connection is torn down
	once           sync.Once
	budget         atomic.Int64 // CutAfter: bytes left (valid while cutting)
	cutGen         atomic.Uint64
}

// StartProxy listens on a free loopback port and forwards every connection
// to backend (host:port). The proxy is closed when the test ends.
func StartProxy(t testing.TB, backend string) *Proxy {
	t.Helper()
	p, err := NewProxy(backend)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// NewProxy is StartProxy without a test; call Close when done.
func NewProxy(backend string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faulttest: proxy listen: %w", err)
	}
	p := &Proxy{backend: backend, ln: ln, changed: make(chan struct{}), conns: map[*proxyConn]struct{}{}}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetBackend sends the connections accepted from now on to backend
// (host:port); those open stay where they are. A server that is killed
// and started again on another port stays behind the proxy's address.
func (p *Proxy) SetBackend(backend string) {
	p.mu.Lock()
	p.backend = backend
	p.mu.Unlock()
}

// Stats returns the counters.
func (p *Proxy) Stats() ProxyStats {
	return ProxyStats{Accepted: p.accepted.Load(), Resets: p.resets.Load(), Faults: p.faults.Load()}
}

// Current is the fault in force (Kind Pass when none).
func (p *Proxy) Current() Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fault
}

// Inject starts fault f and returns at once; the proxy heals by itself
// after d, which must be in (0, MaxFaultDuration]. A new Inject replaces
// the fault in force.
func (p *Proxy) Inject(f Fault, d time.Duration) error {
	if d <= 0 || d > MaxFaultDuration {
		return fmt.Errorf("faulttest: fault duration %v outside (0, %v]", d, MaxFaultDuration)
	}
	switch {
	case f.Kind < Pass || f.Kind > CutAfter:
		return fmt.Errorf("faulttest: unknown fault kind %d", int(f.Kind))
	case f.Kind == Latency && f.Delay <= 0:
		return errors.New("faulttest: a latency fault needs Delay > 0")
	case f.Kind == CutAfter && f.Bytes < 0:
		return errors.New("faulttest: a cut-after fault needs Bytes >= 0")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("faulttest: proxy closed")
	}
	gen := p.setLocked(f)
	p.faults.Add(1)
	p.healers = append(p.healers, time.AfterFunc(d, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.gen == gen && !p.closed {
			p.setLocked(Fault{Kind: Pass})
		}
	}))
	return nil
}

// Heal ends the fault in force now.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setLocked(Fault{Kind: Pass})
}

func (p *Proxy) setLocked(f Fault) uint64 {
	p.fault = f
	p.gen++
	close(p.changed)
	p.changed = make(chan struct{})
	switch f.Kind {
	case ResetAll:
		for c := range p.conns {
			p.resetConn(c)
		}
	case CutAfter:
		for c := range p.conns {
			c.budget.Store(f.Bytes)
			c.cutGen.Store(p.gen)
		}
	}
	return p.gen
}

// Close stops the proxy: the listener, every connection, every timer.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for _, t := range p.healers {
		t.Stop()
	}
	_ = p.ln.Close()
	for c := range p.conns {
		c.teardown(false)
	}
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		p.mu.Lock()
		closed, resetting, backend := p.closed, p.fault.Kind == ResetAll, p.backend
		p.mu.Unlock()
		if closed || resetting {
			if resetting {
				p.resets.Add(1)
			}
			resetSocket(client)
			continue
		}
		server, err := net.DialTimeout("tcp", backend, 5*time.Second)
		if err != nil {
			resetSocket(client) // the backend is down: so is the proxy
			continue
		}
		c := &proxyConn{client: client, server: server, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.teardown(false)
			continue
		}
		if p.fault.Kind == CutAfter {
			c.budget.Store(p.fault.Bytes)
			c.cutGen.Store(p.gen)
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		var halves sync.WaitGroup
		halves.Add(2)
		p.wg.Add(3)
		go func() { defer p.wg.Done(); defer halves.Done(); p.pump(c, c.server, c.client, false) }()
		go func() { defer p.wg.Done(); defer halves.Done(); p.pump(c, c.client, c.server, true) }()
		go func() {
			defer p.wg.Done()
			halves.Wait()
			c.teardown(false)
			p.mu.Lock()
			delete(p.conns, c)
			p.mu.Unlock()
		}()
	}
}

// resetConn tears c down with RST on both sides. Called with p.mu held.
func (p *Proxy) resetConn(c *proxyConn) {
	select {
	case <-c.done:
		return
	default:
	}
	p.resets.Add(1)
	c.teardown(true)
}

func (c *proxyConn) teardown(reset bool) {
	c.once.Do(func() {
		close(c.done)
		if reset {
			resetSocket(c.client)
			resetSocket(c.server)
			return
		}
		_ = c.client.Close()
		_ = c.server.Close()
	})
}

// resetSocket closes a TCP socket with RST instead of FIN.
func resetSocket(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// pump copies src to dst under the fault in force. s2c is the server to
// client direction.
func (p *Proxy) pump(c *proxyConn, dst, src net.Conn, s2c bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.forward(c, dst, buf[:n], s2c) {
			return
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				// Pass the FIN on; the other direction may still carry data.
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
					return
				}
			}
			p.mu.Lock()
			p.resetConn(c)
			p.mu.Unlock()
			return
		}
	}
}

// forward writes chunk to dst once the fault in force lets it through; false
// when the connection is gone.
func (p *Proxy) forward(c *proxyConn, dst net.Conn, chunk []byte, s2c bool) bool {
	for {
		p.mu.Lock()
		f, gen, changed := p.fault, p.gen, p.changed
		p.mu.Unlock()
		held := f.Kind == Blackhole || (f.Kind == HalfOpen && s2c)
		if held {
			select {
			case <-changed:
				continue
			case <-c.done:
				return false
			}
		}
		if f.Kind == Latency {
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-c.done:
				t.Stop()
				return false
			}
		}
		if f.Kind == CutAfter && c.cutGen.Load() == gen {
			left := c.budget.Add(-int64(len(chunk))) + int64(len(chunk))
			if left < int64(len(chunk)) {
				if left > 0 {
					_, _ = dst.Write(chunk[:left])
				}
				p.mu.Lock()
				p.resetConn(c)
				p.mu.Unlock()
				return false
			}
		}
		if _, err := dst.Write(chunk); err != nil {
			return false
		}
		return true
	}
}
