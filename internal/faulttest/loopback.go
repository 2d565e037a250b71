package faulttest

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"net"
)

// PrivateLoopback returns an address of its own in 127.0.0.0/8 (never
// 127.0.0.1) and a port free on it, for a test server that is killed and
// started again on the same address. Between the kill and the restart the
// port is free, and on 127.0.0.1, where every other test binds its servers
// and proxies, another package's test (go test runs packages side by side)
// could take it: the restart would then fail to bind, and a health check
// answered by the other test's server would send the test's clients to the
// wrong server, where their messages look lost. Linux routes all of
// 127.0.0.0/8 to the loopback interface, so no setup is needed.
func PrivateLoopback() (host string, port int, err error) {
	for attempt := 0; attempt < 20; attempt++ {
		n, err := rand.Int(rand.Reader, big.NewInt(200*250*250))
		if err != nil {
			return "", 0, err
		}
		v := int(n.Int64())
		host = fmt.Sprintf("127.%d.%d.%d", 20+v/62500, 1+v/250%250, 1+v%250)
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			continue
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		return host, port, nil
	}
	return "", 0, fmt.Errorf("faulttest: no free private loopback address: %w", err)
}
