package transport

import (
	"crypto/tls"
	"errors"
	"github.com/kombu-go/kombu/internal/testpki"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
)

// handshake runs one TLS handshake of conf against a server presenting the
// "localhost" certificate.
func handshake(t *testing.T, p *testpki.PKI, conf *tls.Config) error {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{p.Server}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(&d, "tcp", ln.Addr().String(), conf)
	if err == nil {
		c.Close()
	}
	return err
}

func tlsFrom(t *testing.T, schemeTLS bool, host, rawQuery string) (*tls.Config, error) {
	t.Helper()
	q := newQuery(t, rawQuery)
	conf := q.TLS(schemeTLS, host)
	return conf, q.Err()
}

// The same options mean the same thing for every scheme; each case is a
// real handshake against a server whose certificate names "localhost".
func TestTLSOptionsHandshake(t *testing.T) {
	p := testpki.New(t)
	ca := "ssl_ca_certs=" + p.CAFile
	cases := []struct {
		name, host, query string
		ok                bool
	}{
		{"trusted CA, matching host", "localhost", ca, true},
		{"system roots do not know the test CA", "localhost", "", false},
		{"optional verifies like required", "localhost", "ssl_cert_reqs=optional", false},
		{"CERT_REQUIRED spelled as Python does", "localhost", ca + "&ssl_cert_reqs=CERT_REQUIRED", true},
		{"host name mismatch", "127.0.0.1", ca, false},
		{"ssl_check_hostname=false keeps the chain check", "127.0.0.1", ca + "&ssl_check_hostname=false", true},
		{"ssl_check_hostname=false with an unknown CA", "127.0.0.1", "ssl_check_hostname=false", false},
		{"ssl_server_hostname names the certificate's host", "127.0.0.1", ca + "&ssl_server_hostname=localhost", true},
		{"ssl_server_hostname wrong name", "localhost", ca + "&ssl_server_hostname=other", false},
		{"ssl_cert_reqs=none", "127.0.0.1", "ssl_cert_reqs=none", true},
		{"insecure", "127.0.0.1", "insecure=true", true},
		{"client certificate", "localhost", ca + "&ssl_certfile=" + p.ClientCertFile + "&ssl_keyfile=" + p.ClientKeyFile, true},
	}
	for _, c := range cases {
		conf, err := tlsFrom(t, true, c.host, c.query)
		if err != nil || conf == nil {
			t.Errorf("%s: parse: %v %v", c.name, conf, err)
			continue
		}
		if conf.MinVersion < tls.VersionTLS12 {
			t.Errorf("%s: MinVersion %x", c.name, conf.MinVersion)
		}
		if err := handshake(t, p, conf); (err == nil) != c.ok {
			t.Errorf("%s: handshake error %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

func TestTLSOptionsParse(t *testing.T) {
	p := testpki.New(t)
	if conf, err := tlsFrom(t, false, "h", ""); conf != nil || err != nil {
		t.Fatalf("no TLS asked: %v %v", conf, err)
	}
	for _, q := range []string{"ssl=true", "ssl", "ssl_cert_reqs=none", "ssl_ca_certs=" + p.CAFile} {
		if conf, err := tlsFrom(t, false, "h", q); conf == nil || err != nil {
			t.Errorf("%s on a plain scheme does not turn TLS on: %v %v", q, conf, err)
		}
	}
	bad := []struct{ query, key string }{
		{"ssl=false", "ssl"}, // on a TLS scheme
		{"ssl_cert_reqs=maybe", "ssl_cert_reqs"},
		{"ssl_ca_certs=/nonexistent/ca.pem", "ssl_ca_certs"},
		{"ssl_ca_certs=" + p.ClientKeyFile, "ssl_ca_certs"},
		{"ssl_certfile=" + p.ClientCertFile, "ssl_certfile"},
		{"ssl_keyfile=" + p.ClientKeyFile, "ssl_certfile"},
		{"ssl_check_hostname=perhaps", "ssl_check_hostname"},
	}
	for _, b := range bad {
		conf, err := tlsFrom(t, true, "h", b.query)
		var oe *OptionError
		if conf != nil || !errors.As(err, &oe) || oe.Key != b.key || !errors.Is(err, driver.ErrInvalidURL) {
			t.Errorf("%s: got %v %v, want an OptionError for %s", b.query, conf, err, b.key)
		}
	}
	if _, err := tlsFrom(t, false, "h", "ssl=false&ssl_ca_certs="+p.CAFile); err == nil || !strings.Contains(err.Error(), "ssl=false") {
		t.Errorf("ssl=false with a TLS option: %v", err)
	}
	// The key file's name is never echoed: its option name looks secret.
	if _, err := tlsFrom(t, true, "h", "ssl_keyfile=/secret/place.key"); err == nil || strings.Contains(err.Error(), "/secret/place.key") {
		t.Errorf("ssl_keyfile error: %v", err)
	}
}
