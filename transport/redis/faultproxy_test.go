package redis

import (
	"bytes"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// faultProxy is a TCP proxy on loopback between a client and the real
// redis, which misbehaves on purpose for the commands that match a rule:
// it loses their reply, holds it forever, or answers in redis's place.
// Commands are matched on the bytes of one read from the client (go-redis
// writes a small command in one write).
type faultProxy struct {
	t      testing.TB
	ln     net.Listener
	target string

	mu    sync.Mutex
	rules []*proxyRule
	conns []net.Conn
}

type proxyAction int

const (
	// dropReply forwards the command, throws its reply away and closes
	// the client's connection: the command ran, the client cannot know.
	dropReply proxyAction = iota
	// holdReply forwards the command and never answers (the client times
	// out), keeping the connection open.
	holdReply
	// answer does not forward the command and sends rule.reply instead.
	answer
)

type proxyRule struct {
	match  [][]byte // every one must be in the command
	action proxyAction
	reply  []byte
	times  int // how many commands it applies to; 0 is unlimited
	hits   int
}

// startFaultProxy listens on a free loopback port and forwards to the
// shared redis.
func startFaultProxy(t testing.TB) *faultProxy {
	t.Helper()
	target := serverURL(t, nil).Host
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{t: t, ln: ln, target: target}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// url is the server URL with the proxy's address and extra options.
func (p *faultProxy) url(extra url.Values) *url.URL {
	u := serverURL(p.t, extra)
	u.Host = p.ln.Addr().String()
	return u
}

// on adds a rule and returns it.
func (p *faultProxy) on(action proxyAction, times int, match ...string) *proxyRule {
	r := &proxyRule{action: action, times: times}
	for _, m := range match {
		r.match = append(r.match, []byte(m))
	}
	if action == answer {
		r.reply = []byte("-LOADING Redis is loading the dataset in memory\r\n")
	}
	p.mu.Lock()
	p.rules = append(p.rules, r)
	p.mu.Unlock()
	return r
}

// clear removes every rule.
func (p *faultProxy) clear() {
	p.mu.Lock()
	p.rules = nil
	p.mu.Unlock()
}

// hits returns how many commands r applied to.
func (p *faultProxy) hits(r *proxyRule) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return r.hits
}

func (p *faultProxy) ruleFor(cmd []byte) *proxyRule {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.rules {
		if r.times > 0 && r.hits >= r.times {
			continue
		}
		all := true
		for _, m := range r.match {
			if !bytes.Contains(cmd, m) {
				all = false
				break
			}
		}
		if all {
			r.hits++
			return r
		}
	}
	return nil
}

func (p *faultProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
}

func (p *faultProxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		go p.pipe(client, server)
	}
}

// pipe runs one client connection. Replies come back in command order
// (RESP2 without pipelining from these tests), so after a rule fires the
// next bytes from redis are the reply of the matched command.
func (p *faultProxy) pipe(client, server net.Conn) {
	var mu sync.Mutex
	var fate proxyAction = -1 // what to do with the next reply
	replied := make(chan struct{})
	go func() {
		defer close(replied)
		buf := make([]byte, 64<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 {
				mu.Lock()
				f := fate
				mu.Unlock()
				switch f {
				case dropReply:
					_ = client.Close()
					_ = server.Close()
					return
				case holdReply:
					continue // the connection stays open, silent
				}
				if _, werr := client.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				_ = client.Close()
				return
			}
		}
	}()
	buf := make([]byte, 1<<20)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			cmd := buf[:n]
			if r := p.ruleFor(cmd); r != nil {
				if r.action == answer {
					if _, werr := client.Write(r.reply); werr != nil {
						break
					}
					continue
				}
				mu.Lock()
				fate = r.action
				mu.Unlock()
			}
			if _, werr := server.Write(cmd); werr != nil {
				break
			}
		}
		if err != nil {
			if err != io.EOF {
				_ = client.Close()
			}
			break
		}
	}
	_ = server.Close()
	<-replied
}
