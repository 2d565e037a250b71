package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
)

// TLSOptionNames are the URL options TLS reads, the same for every scheme:
//
//	ssl=true              use TLS (implied by a TLS scheme such as amqps:// or rediss://,
//	                      and by any other option below)
//	ssl_cert_reqs=...     required (the default), optional (the same for a client:
//	                      TLS servers always send a certificate) or none (no
//	                      verification); a CERT_ prefix and any case are accepted
//	insecure=true         the same as ssl_cert_reqs=none
//	ssl_ca_certs=FILE     PEM file of the CAs to trust instead of the system's
//	ssl_certfile=FILE     PEM client certificate (with ssl_keyfile)
//	ssl_keyfile=FILE      PEM private key of the client certificate
//	ssl_check_hostname=0  verify the chain but not the server's name
//	ssl_server_hostname=H the name sent in SNI and checked in the certificate
//	                      (default: the host of the URL)
var TLSOptionNames = []string{"ssl", "ssl_cert_reqs", "insecure", "ssl_ca_certs", "ssl_certfile",
	"ssl_keyfile", "ssl_check_hostname", "ssl_server_hostname"}

// TLS reads the TLS options (see TLSOptionNames) and returns the client
// configuration, or nil when TLS is off. schemeTLS says whether the
// URL's scheme already means TLS; host is the URL's host, the default
// name to verify. Files are read here, so the errors come at parse time.
// Invalid values are recorded like every other option and reported by
// Err; TLS then returns nil. The configuration asks for TLS 1.2 or later.
func (q *Query) TLS(schemeTLS bool, host string) *tls.Config {
	var (
		ssl, insecure                                    bool
		checkHost                                        = true
		certReqs, caCerts, certFile, keyFile, serverName string
	)
	q.Bool("ssl", &ssl)
	q.Bool("insecure", &insecure)
	q.Bool("ssl_check_hostname", &checkHost)
	q.String("ssl_cert_reqs", &certReqs)
	q.String("ssl_ca_certs", &caCerts)
	q.String("ssl_certfile", &certFile)
	q.String("ssl_keyfile", &keyFile)
	q.String("ssl_server_hostname", &serverName)
	if q.err != nil {
		return nil
	}
	on := schemeTLS || ssl
	if q.Has("ssl") && !ssl {
		if schemeTLS {
			q.fail("ssl", "false", "contradicts the TLS scheme")
			return nil
		}
		for _, k := range TLSOptionNames[1:] {
			if q.Has(k) {
				q.fail(k, "", "given with ssl=false")
				return nil
			}
		}
	}
	for _, k := range TLSOptionNames[1:] {
		on = on || q.Has(k)
	}
	if !on {
		return nil
	}

	verify := true
	switch strings.TrimPrefix(strings.ToLower(strings.TrimSpace(certReqs)), "cert_") {
	case "", "required", "optional":
	case "none":
		verify = false
	default:
		q.fail("ssl_cert_reqs", certReqs, "want required, optional or none")
		return nil
	}
	if insecure {
		verify = false
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if serverName != "" {
		conf.ServerName = serverName
	}
	if caCerts != "" {
		pem, err := os.ReadFile(caCerts)
		if err != nil {
			q.fail("ssl_ca_certs", caCerts, err.Error())
			return nil
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			q.fail("ssl_ca_certs", caCerts, "no PEM certificate in the file")
			return nil
		}
		conf.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		q.fail("ssl_certfile", certFile, "ssl_certfile and ssl_keyfile go together")
		return nil
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			q.fail("ssl_certfile", certFile, err.Error())
			return nil
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	switch {
	case !verify:
		conf.InsecureSkipVerify = true
	case !checkHost:
		conf.InsecureSkipVerify = true // replaced by the chain check below
		conf.VerifyConnection = verifyChainOnly(conf.RootCAs)
	}
	return conf
}

// verifyChainOnly checks the server's chain against roots (the system's
// when nil) without checking its name, for ssl_check_hostname=false.
func verifyChainOnly(roots *x509.CertPool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: the server sent no certificate")
		}
		opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
			return fmt.Errorf("tls: server certificate: %w", err)
		}
		return nil
	}
}
