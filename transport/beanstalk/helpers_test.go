package beanstalk

import (
	"context"
	"net/url"
	"testing"

	"github.com/beanstalkd/go-beanstalk"

	"github.com/kombu-go/kombu/internal/testenv"
)

// URLVar names the variable scripts/services.d/beanstalkd.sh exports.
const URLVar = "KOMBU_TEST_BEANSTALK_URL"

// serverURL is the test server's URL; the test is skipped (failed in CI)
// without one.
func serverURL(t testing.TB) string {
	t.Helper()
	return testenv.ServerURL(t, URLVar)
}

// serverOptions parses the test server's URL.
func serverOptions(t testing.TB) *Options {
	t.Helper()
	u, err := url.Parse(serverURL(t))
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// openStore dials a Store on the test server, closed by the test's cleanup.
func openStore(t testing.TB) *Store {
	t.Helper()
	s, err := NewConnector(serverOptions(t)).Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// rawConn dials the test server with go-beanstalk alone, to look at tubes
// and jobs from outside the transport.
func rawConn(t testing.TB) *beanstalk.Conn {
	t.Helper()
	c, err := beanstalk.Dial("tcp", serverOptions(t).Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
