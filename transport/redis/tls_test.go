package redis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"github.com/kombu-go/kombu/internal/testpki"
	"net"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu/driver"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startTLSRedis starts a private redis-server that speaks only TLS.
func startTLSRedis(t *testing.T) (port int, dir string) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if testenv.InCI() {
			t.Fatal("redis-server is not installed (make test installs it)")
		}
		t.Skip("redis-server is not installed")
	}
	dir = testpki.New(t).Dir // ca.pem, server.pem, server.key
	port = freePort(t)
	cmd := exec.Command(bin, "--port", "0", "--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--tls-cert-file", filepath.Join(dir, "server.pem"), "--tls-key-file", filepath.Join(dir, "server.key"),
		"--tls-ca-cert-file", filepath.Join(dir, "ca.pem"), "--tls-auth-clients", "no",
		"--save", "", "--appendonly", "no", "--dir", dir)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 100*time.Millisecond)
		if err == nil {
			c.Close()
			return port, dir
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server --tls-port did not start: %s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dialTLS(t *testing.T, raw string) (*Store, error) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := NewConnector(o).Dial(ctx)
	if err == nil {
		t.Cleanup(func() { _ = s.Close() })
	}
	return s, err
}

func TestTLSVerifiesByDefault(t *testing.T) {
	port, dir := startTLSRedis(t)
	ca := url.QueryEscape(filepath.Join(dir, "ca.pem"))
	p := strconv.Itoa(port)

	// Default: verification on, and the test CA is unknown.
	_, err := dialTLS(t, "rediss://localhost:"+p+"/0")
	var unknown x509.UnknownAuthorityError
	if err == nil || !errors.As(err, &unknown) || !errors.Is(err, driver.ErrConnectionLost) {
		t.Errorf("default rediss:// with a self-signed server: %v, want an unknown-authority error", err)
	}
	// The host name is checked too.
	_, err = dialTLS(t, "rediss://127.0.0.1:"+p+"/0?ssl_ca_certs="+ca)
	var hostErr x509.HostnameError
	if err == nil || !errors.As(err, &hostErr) {
		t.Errorf("wrong host name: %v, want a host-name error", err)
	}
	for _, ok := range []string{
		"rediss://localhost:" + p + "/0?ssl_ca_certs=" + ca,
		"rediss://127.0.0.1:" + p + "/0?ssl_ca_certs=" + ca + "&ssl_check_hostname=false",
		"rediss://localhost:" + p + "/0?insecure=true",
		"rediss://127.0.0.1:" + p + "/0?ssl_cert_reqs=none",
	} {
		s, err := dialTLS(t, ok)
		if err != nil {
			t.Errorf("%s: %v", ok, err)
			continue
		}
		ctx := testCtx(t)
		q := uniqueName(t, "q")
		if err := s.Put(ctx, q, newEnv("tls", 0)); err != nil {
			t.Fatal(err)
		}
		it, err := s.Get(ctx, []string{q}, time.Second)
		if err != nil || string(it.Envelope.Body) != "tls" {
			t.Errorf("%s: round trip: %v", ok, err)
			continue
		}
		_ = s.Ack(ctx, it)
	}
	// ssl_check_hostname=false still checks the chain.
	if _, err := dialTLS(t, "rediss://127.0.0.1:"+p+"/0?ssl_check_hostname=false"); err == nil {
		t.Error("ssl_check_hostname=false accepted an unknown CA")
	}
}

func TestTLSMinimumVersion(t *testing.T) {
	pki := testpki.New(t)
	cert := pki.Server
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	_, err = dialTLS(t, "rediss://localhost:"+port+"/0?insecure=true")
	if err == nil || !strings.Contains(err.Error(), "version") {
		t.Errorf("a TLS 1.1 server was accepted: %v", err)
	}
}
