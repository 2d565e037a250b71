package redis

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/alicebob/miniredis/v2"

	"github.com/kombu-go/kombu/internal/faulttest"
	"github.com/kombu-go/kombu/internal/testenv"
)

// Where this test binary's redis tests run, decided once in TestMain:
//
//   - KOMBU_TEST_REDIS_URL set: the real redis-server it names, for every test;
//   - unset in CI (CI=true or 1): nowhere; every test that needs a server fails
//     (through testenv.ServerURL), as CI must run on the real server;
//   - unset elsewhere: an in-process miniredis, so that a contributor without a
//     redis-server still runs the store checks, the conformance suite and the
//     rest. A test that needs what only a real server has (benchmarks) calls
//     requireRealServer, which skips it there with the reason; the skips are
//     listed at the end of the run.
var testServer struct {
	url  string               // the server's URL; "" when none (CI without a server)
	mini *miniredis.Miniredis // non-nil when url is the in-process miniredis
	mu   sync.Mutex           // guards skip
	skip map[string][]string  // reason -> tests skipped for it on miniredis
}

// serverChoice is where the redis tests run.
type serverChoice int

const (
	realServer      serverChoice = iota // the redis-server at KOMBU_TEST_REDIS_URL
	noServer                            // none: CI without KOMBU_TEST_REDIS_URL, tests fail
	miniredisServer                     // an in-process miniredis
)

// chooseServer applies the rule at testServer to the value of
// KOMBU_TEST_REDIS_URL and whether the tests run in CI.
func chooseServer(redisURL string, inCI bool) serverChoice {
	switch {
	case redisURL != "":
		return realServer
	case inCI:
		return noServer
	default:
		return miniredisServer
	}
}

// startTestServer picks the server as described at testServer and says which
// on stderr. It returns a function that stops miniredis, if it started one.
func startTestServer() (stop func()) {
	if faulttest.InKilledConsumerProcess() || os.Getenv(logHelperEnv) != "" {
		return func() {} // a helper process: it gets its URL from the parent, and its stderr is checked
	}
	raw := os.Getenv(testenv.RedisURL)
	switch chooseServer(raw, testenv.InCI()) {
	case realServer:
		testServer.url = raw
		fmt.Fprintf(os.Stderr, "redis tests: on the real redis at %s (%s)\n", raw, testenv.RedisURL)
		return func() {}
	case noServer:
		fmt.Fprintf(os.Stderr, "redis tests: %s is not set and CI is on: no fallback to miniredis, tests that need redis fail\n", testenv.RedisURL)
		return func() {}
	}
	m, err := miniredis.Run()
	if err != nil {
		fmt.Fprintf(os.Stderr, "redis tests: cannot start miniredis: %v\n", err)
		os.Exit(1)
	}
	testServer.mini = m
	testServer.url = "redis://" + m.Addr() + "/0"
	fmt.Fprintf(os.Stderr, "redis tests: on an in-process miniredis at %s (%s is not set; `make services-up` and `. .services/env` for the real server)\n", m.Addr(), testenv.RedisURL)
	return m.Close
}

// reportSkips lists, after the run, what was skipped because it ran on miniredis.
func reportSkips() {
	if testServer.mini == nil {
		return
	}
	testServer.mu.Lock()
	defer testServer.mu.Unlock()
	n := 0
	for _, tests := range testServer.skip {
		n += len(tests)
	}
	if n == 0 {
		fmt.Fprintf(os.Stderr, "redis tests: ran on miniredis; no test was skipped for it\n")
		return
	}
	fmt.Fprintf(os.Stderr, "redis tests: ran on miniredis; %d tests skipped for it (they run on the real server):\n", n)
	reasons := make([]string, 0, len(testServer.skip))
	for r := range testServer.skip {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	for _, r := range reasons {
		tests := testServer.skip[r]
		slices.Sort(tests)
		fmt.Fprintf(os.Stderr, "  %s: %s\n", r, strings.Join(tests, ", "))
	}
}

// testServerURL returns the URL of the server this binary's tests run on (see
// testServer). Without one (CI and KOMBU_TEST_REDIS_URL unset) it fails the test.
func testServerURL(t testing.TB) string {
	t.Helper()
	if testServer.url == "" {
		return testenv.ServerURL(t, testenv.RedisURL)
	}
	return testServer.url
}

// logServer says in the test's log which server it runs on.
func logServer(t testing.TB) {
	t.Helper()
	if onMiniredis() {
		t.Logf("on an in-process miniredis at %s (%s is not set)", testServer.mini.Addr(), testenv.RedisURL)
	} else {
		t.Logf("on the real redis at %s", testServer.url)
	}
}

// onMiniredis reports whether the tests run on the in-process miniredis.
func onMiniredis() bool { return testServer.mini != nil }

// requireRealServer skips the test, saying why, when it would run on
// miniredis: it needs what only a real redis-server has. On a real server it
// does nothing. The skips are listed at the end of the run (reportSkips).
func requireRealServer(t testing.TB, why string) {
	t.Helper()
	if !onMiniredis() {
		return
	}
	reason := "needs a real redis-server: " + why
	testServer.mu.Lock()
	if testServer.skip == nil {
		testServer.skip = map[string][]string{}
	}
	testServer.skip[reason] = append(testServer.skip[reason], t.Name())
	testServer.mu.Unlock()
	t.Skipf("on miniredis: %s", reason)
}

// In CI the tests never fall back to miniredis; a configured server always wins.
func TestServerChoice(t *testing.T) {
	for _, c := range []struct {
		url  string
		inCI bool
		want serverChoice
	}{
		{"redis://127.0.0.1:6379/0", false, realServer},
		{"redis://127.0.0.1:6379/0", true, realServer},
		{"", true, noServer},
		{"", false, miniredisServer},
	} {
		if got := chooseServer(c.url, c.inCI); got != c.want {
			t.Errorf("chooseServer(%q, inCI=%v) = %d, want %d", c.url, c.inCI, got, c.want)
		}
	}
}
