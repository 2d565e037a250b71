package amqp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/kombu-go/kombu/internal/testpki"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu/driver"
)

// TLS is tested through a TLS-terminating proxy written here, in front of
// the plain-TCP RabbitMQ of `make test`: the client side is the real
// amqps code path (handshake, chain and host-name checks, client
// certificates), the broker side the real AMQP conversation.

// tlsProxy accepts TLS on 127.0.0.1 and forwards to backend.
type tlsProxy struct {
	ln         net.Listener
	wg         sync.WaitGroup
	mu         sync.Mutex
	conns      []net.Conn
	clientCert chan *x509.Certificate
}

func startTLSProxy(t *testing.T, cfg *tls.Config, backend string) *tlsProxy {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	must(t, err)
	p := &tlsProxy{ln: ln, clientCert: make(chan *x509.Certificate, 16)}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.track(c)
			p.wg.Go(func() { p.serve(c.(*tls.Conn), backend) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *tlsProxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

func (p *tlsProxy) serve(c *tls.Conn, backend string) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := c.Handshake(); err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	if pc := c.ConnectionState().PeerCertificates; len(pc) > 0 {
		select {
		case p.clientCert <- pc[0]:
		default:
		}
	}
	b, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	p.track(b)
	defer b.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
	<-done
}

func (p *tlsProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func connectURL(t *testing.T, s string) (driver.Conn, error) {
	t.Helper()
	cn, err := Transport.OpenConnector(mustURL(t, s))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := cn.Connect(ctx)
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

func TestTLS(t *testing.T) {
	t.Parallel()
	backend := mustURL(t, serverURL(t)).Host
	pki := testpki.New(t)
	proxy := startTLSProxy(t, &tls.Config{
		Certificates: []tls.Certificate{pki.Server},
		ClientAuth:   tls.VerifyClientCertIfGiven, ClientCAs: pki.CAPool,
	}, backend)
	port := proxy.port()

	roundTrip := func(t *testing.T, c driver.Conn) {
		ch, err := c.Channel(tctx(t))
		must(t, err)
		q := declareQueue(t, ch.(*Channel), driver.Queue{})
		pub(t, ch.(*Channel), "", q, "over tls")
		if g := getBody(t, ch.(*Channel), q, time.Second); g != "over tls" {
			t.Fatalf("got %q", g)
		}
	}

	t.Run("verified", func(t *testing.T) {
		c, err := connectURL(t, fmt.Sprintf("amqps://guest:guest@localhost:%d//?ssl_ca_certs=%s", port, pki.CAFile))
		must(t, err)
		roundTrip(t, c)
	})
	t.Run("unknown-authority", func(t *testing.T) {
		_, err := connectURL(t, fmt.Sprintf("amqps://guest:guest@localhost:%d//", port))
		var ua x509.UnknownAuthorityError
		if !errors.As(err, &ua) {
			t.Fatalf("want an unknown-authority error, got %v", err)
		}
		if errors.Is(err, driver.ErrConnectionLost) {
			t.Fatalf("a certificate failure is not a lost connection: %v", err)
		}
	})
	t.Run("host-name-mismatch", func(t *testing.T) {
		// The certificate names localhost, not 127.0.0.1.
		_, err := connectURL(t, fmt.Sprintf("amqps://guest:guest@127.0.0.1:%d//?ssl_ca_certs=%s", port, pki.CAFile))
		var he x509.HostnameError
		if !errors.As(err, &he) {
			t.Fatalf("want a host-name error, got %v", err)
		}
		c, err := connectURL(t, fmt.Sprintf("amqps://guest:guest@127.0.0.1:%d//?ssl_ca_certs=%s&ssl_server_hostname=localhost", port, pki.CAFile))
		must(t, err)
		roundTrip(t, c)
	})
	t.Run("insecure", func(t *testing.T) {
		c, err := connectURL(t, fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d//?ssl=true&insecure=true", port))
		must(t, err)
		roundTrip(t, c)
	})
	t.Run("client-certificate", func(t *testing.T) {
		for len(proxy.clientCert) > 0 {
			<-proxy.clientCert
		}
		c, err := connectURL(t, fmt.Sprintf("amqps://guest:guest@localhost:%d//?ssl_ca_certs=%s&ssl_certfile=%s&ssl_keyfile=%s",
			port, pki.CAFile, pki.ClientCertFile, pki.ClientKeyFile))
		must(t, err)
		select {
		case cert := <-proxy.clientCert:
			if cert.Subject.CommonName != "guest" {
				t.Fatalf("client certificate %v", cert.Subject)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the proxy saw no client certificate")
		}
		roundTrip(t, c)
	})
	t.Run("external-login", func(t *testing.T) {
		// The broker behind the proxy does not offer EXTERNAL (that needs
		// its own TLS listener and the rabbitmq_auth_mechanism_ssl plugin):
		// the transport asks for it and reports the refusal.
		_, err := connectURL(t, fmt.Sprintf("amqps://localhost:%d//?ssl_ca_certs=%s&ssl_certfile=%s&ssl_keyfile=%s&login_method=EXTERNAL",
			port, pki.CAFile, pki.ClientCertFile, pki.ClientKeyFile))
		if !errors.Is(err, driver.ErrAccessRefused) {
			t.Fatalf("EXTERNAL: %v", err)
		}
	})
	t.Run("tls-1.1-refused", func(t *testing.T) {
		old := startTLSProxy(t, &tls.Config{Certificates: []tls.Certificate{pki.Server}, MaxVersion: tls.VersionTLS11}, backend)
		_, err := connectURL(t, fmt.Sprintf("amqps://guest:guest@localhost:%d//?ssl_ca_certs=%s", old.port(), pki.CAFile))
		if err == nil {
			t.Fatal("TLS 1.1 accepted")
		}
	})
}

// TestRabbitMQTLS runs against the TLS listener of the RabbitMQ node that
// scripts/services.sh starts (`make test`), named by these variables. Like
// every server test it skips when they are unset, except in CI, where it
// fails (internal/testenv):
//
//	KOMBU_TEST_AMQPS_URL   amqps://guest:guest@localhost:PORT//  (certificate for "localhost" only)
//	KOMBU_TEST_AMQPS_CA    CA bundle (PEM) that signed the server and client certificates
//	KOMBU_TEST_AMQPS_CERT  client certificate (PEM) whose CN is an existing user, and
//	KOMBU_TEST_AMQPS_KEY   its key, for EXTERNAL (rabbitmq_auth_mechanism_ssl,
//	                       ssl_cert_login_from = common_name)
func TestRabbitMQTLS(t *testing.T) {
	t.Parallel()
	raw := testenv.ServerURL(t, "KOMBU_TEST_AMQPS_URL")
	ca := testenv.ServerURL(t, "KOMBU_TEST_AMQPS_CA")
	withCA := withQuery(t, raw, "ssl_ca_certs", ca)
	t.Run("verified", func(t *testing.T) {
		c, err := connectURL(t, withCA)
		must(t, err)
		ch, err := c.Channel(tctx(t))
		must(t, err)
		q := declareQueue(t, ch.(*Channel), driver.Queue{})
		pub(t, ch.(*Channel), "", q, "tls")
		if g := getBody(t, ch.(*Channel), q, time.Second); g != "tls" {
			t.Fatalf("got %q", g)
		}
	})
	t.Run("unknown-authority", func(t *testing.T) {
		_, err := connectURL(t, raw)
		var ua x509.UnknownAuthorityError
		if !errors.As(err, &ua) {
			t.Fatalf("want an unknown-authority error, got %v", err)
		}
	})
	t.Run("host-name", func(t *testing.T) {
		u := mustURL(t, withCA)
		if u.Hostname() != "localhost" {
			t.Skip("the URL does not use localhost")
		}
		u.Host = "127.0.0.1:" + u.Port()
		_, err := connectURL(t, u.String())
		var he x509.HostnameError
		if !errors.As(err, &he) {
			t.Fatalf("want a host-name error, got %v", err)
		}
	})
	t.Run("external", func(t *testing.T) {
		cert := testenv.ServerURL(t, "KOMBU_TEST_AMQPS_CERT")
		key := testenv.ServerURL(t, "KOMBU_TEST_AMQPS_KEY")
		u := mustURL(t, withQuery(t, withCA, "ssl_certfile", cert, "ssl_keyfile", key, "login_method", "EXTERNAL"))
		u.User = nil // EXTERNAL sends no password
		c, err := connectURL(t, u.String())
		must(t, err)
		must(t, c.(*Conn).Ping(tctx(t)))
		var ac *amqp.Connection
		if !c.(*Conn).As(&ac) || len(ac.Config.SASL) != 1 || ac.Config.SASL[0].Mechanism() != "EXTERNAL" {
			t.Fatalf("logged in with %v", ac.Config.SASL)
		}
	})
}
