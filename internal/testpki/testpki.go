// Package testpki makes a throw-away certificate authority for TLS tests:
// a CA, a server certificate for the DNS name "localhost" only (no IP
// address, so dialling 127.0.0.1 must fail the host-name check) and a
// client certificate with common name "guest", written as PEM files.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a test CA with its certificates, as files in Dir.
type PKI struct {
	Dir    string
	CAFile string // ca.pem
	CAPool *x509.CertPool

	ServerCertFile, ServerKeyFile string // server.pem, server.key ("localhost")
	Server                        tls.Certificate

	ClientCertFile, ClientKeyFile string // client.pem, client.key ("guest")
}

// New makes a PKI in a temporary directory of t, valid for a day.
func New(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		if err != nil {
			t.Helper()
			t.Fatal(err)
		}
	}
	write := func(name, typ string, der []byte) string {
		f := filepath.Join(dir, name)
		must(os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return f
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kombu-go test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(err)
	ca, err := x509.ParseCertificate(caDER)
	must(err)
	issue := func(serial int64, cn string, dns []string, usage x509.ExtKeyUsage) ([]byte, []byte, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		must(err)
		keyDER, err := x509.MarshalECPrivateKey(key)
		must(err)
		return der, keyDER, key
	}
	p := &PKI{Dir: dir, CAPool: x509.NewCertPool()}
	p.CAPool.AddCert(ca)
	p.CAFile = write("ca.pem", "CERTIFICATE", caDER)
	sDER, sKeyDER, sKey := issue(2, "localhost", []string{"localhost"}, x509.ExtKeyUsageServerAuth)
	p.ServerCertFile = write("server.pem", "CERTIFICATE", sDER)
	p.ServerKeyFile = write("server.key", "EC PRIVATE KEY", sKeyDER)
	p.Server = tls.Certificate{Certificate: [][]byte{sDER}, PrivateKey: sKey}
	cDER, cKeyDER, _ := issue(3, "guest", nil, x509.ExtKeyUsageClientAuth)
	p.ClientCertFile = write("client.pem", "CERTIFICATE", cDER)
	p.ClientKeyFile = write("client.key", "EC PRIVATE KEY", cKeyDER)
	return p
}
