package faulttest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// backend is a TCP server for the proxy tests: it echoes what it reads
// (echo) or only records it, and counts the bytes it got.
type backend struct {
	ln   net.Listener
	echo bool
	mu   sync.Mutex
	got  bytes.Buffer
	wg   sync.WaitGroup
	cs   []net.Conn
}

func startBackend(t *testing.T, echo bool) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{ln: ln, echo: echo}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.cs = append(b.cs, c)
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						b.mu.Lock()
						b.got.Write(buf[:n])
						b.mu.Unlock()
						if b.echo {
							_, _ = c.Write(buf[:n])
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		b.mu.Lock()
		for _, c := range b.cs {
			_ = c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

func (b *backend) received() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.got.String()
}

func dialProxy(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// roundTrip writes msg and reads len(msg) bytes back within limit.
func roundTrip(c net.Conn, msg string, limit time.Duration) (string, error) {
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(limit))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return string(buf), err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE)
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestProxyPass(t *testing.T) {
	b := startBackend(t, true)
	p := StartProxy(t, b.ln.Addr().String())
	c := dialProxy(t, p)
	got, err := roundTrip(c, "hello", time.Second)
	if err != nil || got != "hello" {
		t.Fatalf("echo through the proxy: %q, %v", got, err)
	}
	if s := p.Stats(); s.Accepted != 1 || s.Resets != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestProxySetBackend: connections accepted after SetBackend go to the new
// backend; one opened before stays on the old.
func TestProxySetBackend(t *testing.T) {
	first, second := startBackend(t, true), startBackend(t, true)
	p := StartProxy(t, first.ln.Addr().String())
	before := dialProxy(t, p)
	if got, err := roundTrip(before, "one", time.Second); err != nil || got != "one" {
		t.Fatalf("through the first backend: %q, %v", got, err)
	}
	p.SetBackend(second.ln.Addr().String())
	after := dialProxy(t, p)
	if got, err := roundTrip(after, "two", time.Second); err != nil || got != "two" {
		t.Fatalf("through the second backend: %q, %v", got, err)
	}
	if got, err := roundTrip(before, "three", time.Second); err != nil || got != "three" {
		t.Fatalf("the older connection: %q, %v", got, err)
	}
	if a, b := first.received(), second.received(); a != "onethree" || b != "two" {
		t.Fatalf("first backend got %q, second %q; want %q and %q", a, b, "onethree", "two")
	}
}

func TestProxyResetAll(t *testing.T) {
	b := startBackend(t, true)
	p := StartProxy(t, b.ln.Addr().String())
	c := dialProxy(t, p)
	if _, err := roundTrip(c, "a", time.Second); err != nil {
		t.Fatal(err)
	}
	if err := p.Inject(Fault{Kind: ResetAll}, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// The open connection is reset at once.
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read on a reset connection: %v, want ECONNRESET", err)
	}
	// A connection made during the fault is reset too.
	// (The reset may even beat the end of the handshake.)
	c2, err := net.DialTimeout("tcp", p.Addr(), 2*time.Second)
	if err == nil {
		defer c2.Close()
		_, err = roundTrip(c2, "b", time.Second)
	}
	if !isReset(err) {
		t.Fatalf("a connection during reset-all: %v, want a reset", err)
	}
	// The fault ends by itself; new connections work again.
	waitFor(t, 2*time.Second, "heal", func() bool { return p.Current().Kind == Pass })
	c3 := dialProxy(t, p)
	if got, err := roundTrip(c3, "c", time.Second); err != nil || got != "c" {
		t.Fatalf("after the fault: %q, %v", got, err)
	}
	if s := p.Stats(); s.Resets < 2 || s.Faults != 1 {
		t.Fatalf("stats %+v, want ≥2 resets and 1 fault", s)
	}
}

func TestProxyBlackholeHoldsThenResumes(t *testing.T) {
	b := startBackend(t, true)
	p := StartProxy(t, b.ln.Addr().String())
	c := dialProxy(t, p)
	if err := p.Inject(Fault{Kind: Blackhole}, 400*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := roundTrip(c, "held", 150*time.Millisecond); !isTimeout(err) {
		t.Fatalf("read during a blackhole: %v, want a timeout", err)
	}
	if got := b.received(); got != "" {
		t.Fatalf("the backend got %q during a blackhole", got)
	}
	// The held bytes go through when the fault ends: nothing is dropped.
	buf := make([]byte, 4)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "held" {
		t.Fatalf("after the blackhole: %q, %v", buf, err)
	}
	if el := time.Since(start); el < 350*time.Millisecond {
		t.Fatalf("echo came back after %v, before the blackhole ended", el)
	}
}

func TestProxyHalfOpenForwardsOneWay(t *testing.T) {
	b := startBackend(t, true)
	p := StartProxy(t, b.ln.Addr().String())
	c := dialProxy(t, p)
	if err := p.Inject(Fault{Kind: HalfOpen}, 400*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(c, "ping", 150*time.Millisecond); !isTimeout(err) {
		t.Fatalf("read during half-open: %v, want a timeout", err)
	}
	// Client to server went through; the reply is held.
	waitFor(t, time.Second, "backend got the bytes", func() bool { return b.received() == "ping" })
	buf := make([]byte, 4)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("after half-open: %q, %v", buf, err)
	}
}

func TestProxyLatency(t *testing.T) {
	b := startBackend(t, true)
	p := StartProxy(t, b.ln.Addr().String())
	c := dialProxy(t, p)
	if err := p.Inject(Fault{Kind: Latency, Delay: 100 * time.Millisecond}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if got, err := roundTrip(c, "slow", 3*time.Second); err != nil || got != "slow" {
		t.Fatalf("echo with latency: %q, %v", got, err)
	}
	// Delayed once each way.
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Fatalf("round trip took %v with 100 ms each way", el)
	}
	p.Heal()
	start = time.Now()
	if _, err := roundTrip(c, "fast", time.Second); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 90*time.Millisecond {
		t.Fatalf("round trip after Heal took %v", el)
	}
}

func TestProxyCutAfterBytes(t *testing.T) {
	b := startBackend(t, false)
	p := StartProxy(t, b.ln.Addr().String())
	c := dialProxy(t, p)
	if _, err := c.Write([]byte("0123")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "first bytes", func() bool { return b.received() == "0123" })
	// The budget counts from the fault's start.
	if err := p.Inject(Fault{Kind: CutAfter, Bytes: 10}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("abcdefghijklmnopqrstuvwxyz")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after the cut: %v, want ECONNRESET", err)
	}
	waitFor(t, time.Second, "cut bytes", func() bool { return b.received() == "0123abcdefghij" })
	time.Sleep(50 * time.Millisecond)
	if got := b.received(); got != "0123abcdefghij" {
		t.Fatalf("backend got %q, want exactly 10 bytes after the fault began", got)
	}
}

func TestProxyFaultsAreBounded(t *testing.T) {
	b := startBackend(t, true)
	p := StartProxy(t, b.ln.Addr().String())
	for _, d := range []time.Duration{0, -time.Second, MaxFaultDuration + time.Second} {
		if err := p.Inject(Fault{Kind: Blackhole}, d); err == nil {
			t.Errorf("Inject with duration %v accepted", d)
		}
	}
	if err := p.Inject(Fault{Kind: Latency}, time.Second); err == nil {
		t.Error("latency without a delay accepted")
	}
	if err := p.Inject(Fault{Kind: FaultKind(99)}, time.Second); err == nil {
		t.Error("unknown fault kind accepted")
	}
	// A later fault is not healed by an earlier fault's timer.
	must(t, p.Inject(Fault{Kind: Blackhole}, 50*time.Millisecond))
	must(t, p.Inject(Fault{Kind: HalfOpen}, 400*time.Millisecond))
	time.Sleep(150 * time.Millisecond)
	if k := p.Current().Kind; k != HalfOpen {
		t.Fatalf("fault after the first timer: %v, want half-open", k)
	}
	waitFor(t, 2*time.Second, "heal", func() bool { return p.Current().Kind == Pass })
}

func TestProxyCloseStopsEverything(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	b := startBackend(t, true)
	p, err := NewProxy(b.ln.Addr().String())
	must(t, err)
	c, err := net.Dial("tcp", p.Addr())
	must(t, err)
	defer c.Close()
	if _, err := roundTrip(c, "x", time.Second); err != nil {
		t.Fatal(err)
	}
	must(t, p.Inject(Fault{Kind: Blackhole}, time.Minute))
	_, _ = c.Write([]byte("held"))
	p.Close()
	p.Close() // a no-op
	if err := p.Inject(Fault{Kind: Blackhole}, time.Second); err == nil {
		t.Error("Inject after Close accepted")
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("read after Close: %v, want the connection closed", err)
	}
	goleak.VerifyNone(t, ignore, goleak.IgnoreAnyFunction("net.(*netFD).accept"))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
