package transport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	mathbig "math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
)

// testPKI is a CA, a server certificate for "localhost" signed by it, and a
// client certificate, all written to PEM files.
type testPKI struct {
	caFile, certFile, keyFile string
	server                    tls.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: mathbig.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage) (tls.Certificate, []byte, []byte) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: mathbig.NewInt(serial), Subject: pkix.Name{CommonName: name},
			DNSNames: []string{name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, _ := x509.MarshalECPrivateKey(key)
		certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return c, certPEM, keyPEM
	}
	server, _, _ := leaf(2, "localhost", x509.ExtKeyUsageServerAuth)
	_, clientPEM, clientKey := leaf(3, "client", x509.ExtKeyUsageClientAuth)
	p := testPKI{caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "client.pem"),
		keyFile: filepath.Join(dir, "client.key"), server: server}
	for f, b := range map[string][]byte{
		p.caFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), p.certFile: clientPEM, p.keyFile: clientKey,
	} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// handshake runs one TLS handshake of conf against a server presenting the
// "localhost" certificate.
func handshake(t *testing.T, p testPKI, conf *tls.Config) error {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{p.server}})
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
	p := newTestPKI(t)
	ca := "ssl_ca_certs=" + p.caFile
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
		{"client certificate", "localhost", ca + "&ssl_certfile=" + p.certFile + "&ssl_keyfile=" + p.keyFile, true},
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
	p := newTestPKI(t)
	if conf, err := tlsFrom(t, false, "h", ""); conf != nil || err != nil {
		t.Fatalf("no TLS asked: %v %v", conf, err)
	}
	for _, q := range []string{"ssl=true", "ssl", "ssl_cert_reqs=none", "ssl_ca_certs=" + p.caFile} {
		if conf, err := tlsFrom(t, false, "h", q); conf == nil || err != nil {
			t.Errorf("%s on a plain scheme does not turn TLS on: %v %v", q, conf, err)
		}
	}
	bad := []struct{ query, key string }{
		{"ssl=false", "ssl"}, // on a TLS scheme
		{"ssl_cert_reqs=maybe", "ssl_cert_reqs"},
		{"ssl_ca_certs=/nonexistent/ca.pem", "ssl_ca_certs"},
		{"ssl_ca_certs=" + p.keyFile, "ssl_ca_certs"},
		{"ssl_certfile=" + p.certFile, "ssl_certfile"},
		{"ssl_keyfile=" + p.keyFile, "ssl_certfile"},
		{"ssl_check_hostname=perhaps", "ssl_check_hostname"},
	}
	for _, b := range bad {
		conf, err := tlsFrom(t, true, "h", b.query)
		var oe *OptionError
		if conf != nil || !errors.As(err, &oe) || oe.Key != b.key || !errors.Is(err, driver.ErrInvalidURL) {
			t.Errorf("%s: got %v %v, want an OptionError for %s", b.query, conf, err, b.key)
		}
	}
	if _, err := tlsFrom(t, false, "h", "ssl=false&ssl_ca_certs="+p.caFile); err == nil || !strings.Contains(err.Error(), "ssl=false") {
		t.Errorf("ssl=false with a TLS option: %v", err)
	}
	// The key file's name is never echoed: its option name looks secret.
	if _, err := tlsFrom(t, true, "h", "ssl_keyfile=/secret/place.key"); err == nil || strings.Contains(err.Error(), "/secret/place.key") {
		t.Errorf("ssl_keyfile error: %v", err)
	}
}
