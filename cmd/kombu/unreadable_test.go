package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/kombu-go/kombu/internal/testenv"
)

// TestUnreadableMessagesStayInTheSource puts values that are not kombu
// envelopes in a redis queue among good messages: move moves the good
// ones, leaves the others where they were and says so (exit 1); dump
// writes them with decode_error, and load refuses them unless told to
// skip them.
func TestUnreadableMessagesStayInTheSource(t *testing.T) {
	url := testenv.ServerURL(t, testenv.RedisURL)
	src, dst := uniqueName(t, "garbage-src"), uniqueName(t, "garbage-dst")
	t.Cleanup(func() {
		runKombu(t, "", nil, "delete", url, "queue", src)
		runKombu(t, "", nil, "delete", url, "queue", dst)
	})
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	mustKombu(t, "", "publish", url, "--queue", src, "--count", "3", `"good"`)
	// LPUSH: the queue's list, read from the right (kombu's layout).
	if err := rdb.LPush(ctx, src, "not an envelope 1", "not an envelope 2").Err(); err != nil {
		t.Fatal(err)
	}
	mustKombu(t, "", "publish", url, "--queue", src, "--count", "2", `"good"`)

	r := runKombu(t, "", nil, "move", url, src, url, "--dst-queue", dst, "--batch", "2", "--idle", "300ms")
	if r.code != exitFailure || !strings.Contains(r.stderr, "left 2 messages the source could not read") {
		t.Fatalf("move: exit %d, stderr %q", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "moved 5 messages") {
		t.Errorf("move did not move the 5 good messages: %q", r.stderr)
	}
	dir := t.TempDir()
	dump := filepath.Join(dir, "garbage.jsonl")
	mustKombu(t, "", "dump", url, src, dump, "--timeout", "300ms")
	lines := strings.Split(strings.TrimSpace(readFile(t, dump)), "\n")
	if len(lines) != 2 {
		t.Fatalf("the source holds %d messages, want the 2 unreadable ones: %q", len(lines), lines)
	}
	for _, l := range lines {
		if !strings.Contains(l, `"decode_error":`) || !strings.Contains(l, `"body":"not an envelope`) {
			t.Errorf("dump line of an unreadable message: %s", l)
		}
	}
	r = runKombu(t, "", nil, "load", dump, url, "--queue", dst)
	if r.code != exitUsage || !strings.Contains(r.stderr, "line 1 is a message the transport could not read") {
		t.Fatalf("load of unreadable messages: exit %d, stderr %q", r.code, r.stderr)
	}
	good := filepath.Join(dir, "mixed.jsonl")
	goodLine := strings.TrimSpace(mustKombu(t, "", "get", url, dst, "--raw").stdout)
	if err := os.WriteFile(good, []byte(lines[0]+"\n"+goodLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = mustKombu(t, "", "load", good, url, "--queue", dst, "--skip-unreadable")
	if !strings.Contains(r.stderr, "loaded 1 messages") || !strings.Contains(r.stderr, "skipped 1 unreadable") {
		t.Errorf("load --skip-unreadable: %q", r.stderr)
	}
	if n, err := rdb.LLen(ctx, src).Result(); err != nil || n != 2 {
		t.Errorf("source list holds %d values (%v), want the 2 unreadable ones back", n, err)
	}
}
