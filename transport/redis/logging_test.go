package redis

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

const logHelperEnv = "KOMBU_REDIS_HELPER_LOGS"

// TestHelperProcessRedisLogs is not a test: TestGoRedisLogsGoToTheConnectionLogger
// runs the test binary again with logHelperEnv set to an address where
// nothing listens, and this function then dials it from three kombu
// connections at once: two with a JSON logger on stdout each, one with
// none. go-redis logs the failed dials.
func TestHelperProcessRedisLogs(t *testing.T) {
	addr := os.Getenv(logHelperEnv)
	if addr == "" {
		t.Skip("helper process for TestGoRedisLogsGoToTheConnectionLogger")
	}
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b", ""} {
		var l *slog.Logger
		if name != "" {
			l = slog.New(slog.NewJSONHandler(os.Stdout, nil)).With("conn", name)
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if c, err := kombu.Dial(ctx, "redis://"+addr+"/0", &kombu.Options{Logger: l}); err == nil {
				_ = c.Close()
			}
		})
	}
	wg.Wait()
}

// TestGoRedisLogsGoToTheConnectionLogger: go-redis's own log lines (here
// about failed dials) reach the Logger of the kombu connections, each of
// them, and nothing reaches stderr, where go-redis writes by default.
func TestGoRedisLogsGoToTheConnectionLogger(t *testing.T) {
	if os.Getenv(logHelperEnv) != "" {
		t.Skip("in the helper process")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	// -test.v keeps TestMain from silencing go-redis: its default logger
	// is in place until the first dial.
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcessRedisLogs$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), logHelperEnv+"="+addr)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	if strings.Contains(stderr.String(), "dial") || strings.Contains(stderr.String(), "redis") {
		t.Errorf("go-redis wrote to stderr:\n%s", stderr.String())
	}
	seen := map[string]int{}
	for _, line := range strings.Split(stdout.String(), "\n") {
		var rec struct {
			Msg, Conn, Source string
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Source == "go-redis" && strings.Contains(rec.Msg, "failed to dial") {
			seen[rec.Conn]++
		}
	}
	if seen["a"] == 0 || seen["b"] == 0 || len(seen) != 2 {
		t.Errorf("go-redis lines per connection logger: %v, want some for a and b only\nstdout: %s", seen, stdout.String())
	}
}
