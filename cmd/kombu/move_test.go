package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/kombu-go/kombu/internal/faulttest"
	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
)

// withQuery adds a query option to a URL that may already have some.
func withQuery(url, opt string) string {
	if strings.Contains(url, "?") {
		return url + "&" + opt
	}
	return url + "?" + opt
}

// channel dials url with the library and opens a driver channel.
func channel(t *testing.T, ctx context.Context, url string) driver.Channel {
	t.Helper()
	conn, err := kombu.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ch.Driver()
}

// readyCount is a queue's ready messages, 0 when it does not exist.
func readyCount(t *testing.T, ctx context.Context, ch driver.Channel, queue string) int {
	t.Helper()
	info, err := ch.QueueDeclare(ctx, driver.Queue{Name: queue, Passive: true})
	if errors.Is(err, driver.ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return info.Messages
}

// TestMoveKilledMidwayLosesNothing moves 10,000 messages from redis to
// RabbitMQ, SIGKILLs the move half-way, starts it again, and counts every
// message at the destination: none lost; duplicates (messages moved but
// not yet acked at the kill) are reported.
func TestMoveKilledMidwayLosesNothing(t *testing.T) {
	redisURL := testenv.ServerURL(t, testenv.RedisURL)
	amqpURL := testenv.ServerURL(t, testenv.AMQPURL)
	const n = 10000
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	q := uniqueName(t, "move-kill")
	t.Cleanup(func() {
		runKombu(t, "", nil, "delete", redisURL, "queue", q)
		runKombu(t, "", nil, "delete", amqpURL, "queue", q)
	})
	started := time.Now()
	ledger := faulttest.NewLedger(n)
	conn, err := kombu.Dial(ctx, redisURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p, err := conn.Producer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	queue := kombu.NewQueue(q, kombu.DefaultExchange, q)
	for first := 0; first < n; first += 500 {
		bodies := make([]any, 500)
		for i := range bodies {
			bodies[i] = ledger.Body(first + i)
		}
		err := p.PublishBatch(ctx, bodies, &kombu.PublishOptions{RoutingKey: q, Declare: []kombu.Declarable{queue}})
		for i := range bodies {
			ledger.Publish(first+i, err, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	// The source's visibility timeout is short so that the messages the
	// killed move held come back soon. Batches of 500 take long enough
	// to publish that the kill usually lands between a batch reaching
	// the destination and its ack at the source: the duplicates that
	// at-least-once allows.
	const visibility = 2 * time.Second
	src := withQuery(redisURL, "visibility_timeout=2")
	args := []string{"move", src, q, amqpURL, "--batch", "500", "--progress-interval", "200ms"}
	cmd := exec.CommandContext(ctx, kombuBinary(t), args...)
	var firstErr bytes.Buffer
	cmd.Stderr = &firstErr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dst := channel(t, ctx, amqpURL)
	// Half-way through a batch: some of it is at the destination and
	// none of it acked at the source yet.
	for readyCount(t, ctx, dst, q) < n/4+250 {
		if ctx.Err() != nil {
			t.Fatal("the move did not get a quarter through")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	atKill := readyCount(t, ctx, dst, q)
	if atKill >= n {
		t.Fatalf("the move had finished (%d at the destination) before the kill: the test proves nothing", atKill)
	}
	t.Logf("killed the move with %d of %d messages at the destination; its progress: %q", atKill, n, lastLine(firstErr.String()))

	// Start again once the killed move's deliveries are due back.
	time.Sleep(visibility + 500*time.Millisecond)
	r := mustKombu(t, "", args...)
	t.Logf("restarted move: %s", lastLine(r.stderr))
	if left := readyCount(t, ctx, channel(t, ctx, redisURL), q); left != 0 {
		t.Errorf("%d messages left in the source queue", left)
	}

	// Count the destination.
	for {
		d, err := dst.Get(ctx, q, true)
		if errors.Is(err, driver.ErrEmpty) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ledger.Delivery(d.Headers, d.Body, d.Redelivered)
	}
	res := ledger.Check()
	faulttest.Record(t, faulttest.Row{Test: "kombu move killed mid-way", Transport: "redis→amqp",
		Fault:  "SIGKILL at " + itoa(atKill) + "/" + itoa(n) + ", restart",
		Result: res, Elapsed: time.Since(started), Note: "duplicates " + itoa(res.Duplicated)})
	if !res.OK() {
		t.Fatalf("lost %d (e.g. %v), unexpected %d: %s", res.Lost, res.LostSeqs, res.Unexpected, res)
	}
	if res.Delivered != n {
		t.Fatalf("delivered %d of %d", res.Delivered, n)
	}
	// Only the batch in flight at the kill may arrive twice.
	if res.Duplicated > 500 {
		t.Fatalf("%d duplicates, more than the one batch of 500 in flight at the kill", res.Duplicated)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// fillQueue publishes n small messages to queue with the command itself.
func fillQueue(t *testing.T, url, queue string, n int) {
	t.Helper()
	mustKombu(t, "", "publish", url, "--queue", queue, "--count", itoa(n), `"x"`)
}

func TestMoveDrawsProgressBarOnTerminal(t *testing.T) {
	url := testenv.ServerURL(t, testenv.RedisURL)
	src, dst := uniqueName(t, "bar-src"), uniqueName(t, "bar-dst")
	t.Cleanup(func() {
		runKombu(t, "", nil, "delete", url, "queue", src)
		runKombu(t, "", nil, "delete", url, "queue", dst)
	})
	const n = 3000
	fillQueue(t, url, src, n)
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: 100}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(kombuBinary(t), "move", url, src, url, "--dst-queue", dst, "--batch", "5", "--idle", "500ms")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	var out bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(&out, ptmx) // ends with EIO once the child is gone
	}()
	err = cmd.Wait()
	wg.Wait()
	if err != nil {
		t.Fatalf("move: %v\n%q", err, out.String())
	}
	screen := out.String()
	redraws := strings.Count(screen, "\r")
	bar := regexp.MustCompile(`moving ` + src + ` \[=*\s*\] +\d+/3000 +\d+% +\d+ msg/s ETA \S+`)
	switch {
	case !bar.MatchString(screen):
		t.Fatalf("no progress bar on the terminal: %q", screen)
	case !strings.Contains(screen, "["+strings.Repeat("=", 10)):
		t.Errorf("the bar never filled: %q", screen)
	case !strings.Contains(screen, "3000/3000 100%"):
		t.Errorf("the bar did not end at 100%%: %q", screen)
	case redraws < 2:
		t.Errorf("the bar was drawn %d times, want it redrawn in place", redraws)
	case !strings.Contains(screen, "moved 3000 messages from "+src):
		t.Errorf("no summary: %q", screen)
	}
	for _, l := range strings.Split(screen, "\n") {
		if len(strings.TrimRight(l[strings.LastIndex(l, "\r")+1:], "\r\x1b[K")) > 100 {
			t.Errorf("a line is wider than the 100-column terminal: %q", l)
		}
	}
}

func TestMovePrintsProgressLinesWithoutTerminal(t *testing.T) {
	url := testenv.ServerURL(t, testenv.RedisURL)
	src, dst := uniqueName(t, "lines-src"), uniqueName(t, "lines-dst")
	t.Cleanup(func() {
		runKombu(t, "", nil, "delete", url, "queue", src)
		runKombu(t, "", nil, "delete", url, "queue", dst)
	})
	const n = 3000
	fillQueue(t, url, src, n)
	r := mustKombu(t, "", "move", url, src, url, "--dst-queue", dst, "--batch", "5", "--idle", "500ms", "--progress-interval", "10ms")
	if strings.Contains(r.stderr, "\r") || strings.Contains(r.stderr, "\x1b") {
		t.Errorf("terminal control characters in a pipe: %q", r.stderr)
	}
	line := regexp.MustCompile(`^moving ` + src + ` \d+/3000 \(\d+%\), \d+ msg/s, ETA \S+$`)
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	progress := 0
	for _, l := range lines[:len(lines)-1] {
		if !line.MatchString(l) {
			t.Errorf("not a progress line: %q", l)
		}
		progress++
	}
	if progress < 2 {
		t.Errorf("%d progress lines, want several: %q", progress, r.stderr)
	}
	if !strings.HasPrefix(lines[len(lines)-1], "moved 3000 messages from "+src) {
		t.Errorf("last line is not the summary: %q", lines[len(lines)-1])
	}
	if got := strings.Count(mustKombu(t, "", "consume", url, dst, "--ack", "--raw", "--timeout", "500ms").stdout, "\n"); got != n {
		t.Errorf("%d messages at the destination, want %d", got, n)
	}
}

// TestMoveKeepsTheSourceWhenTheDestinationRefuses: a destination that
// refuses (no such exchange) or routes nowhere makes the move fail with
// every message still in the source.
func TestMoveKeepsTheSourceWhenTheDestinationRefuses(t *testing.T) {
	redisURL := testenv.ServerURL(t, testenv.RedisURL)
	amqpURL := testenv.ServerURL(t, testenv.AMQPURL)
	q := uniqueName(t, "refused")
	t.Cleanup(func() { runKombu(t, "", nil, "delete", redisURL, "queue", q) })
	fillQueue(t, redisURL, q, 50)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no such exchange", []string{"--exchange", q + "-missing", "--routing-key", "k"}, "NOT_FOUND"},
		{"unroutable", []string{"--exchange", "amq.direct", "--routing-key", q + "-nowhere"}, "unroutable"},
		{"undeclared queue", []string{"--dst-queue", q + "-undeclared", "--no-declare"}, "unroutable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runKombu(t, "", nil, append([]string{"move", redisURL, q, amqpURL, "--idle", "300ms"}, tc.args...)...)
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want a failure saying %q", r.code, r.stderr, tc.want)
			}
			ctx := context.Background()
			if n := readyCount(t, ctx, channel(t, ctx, redisURL), q); n != 50 {
				t.Fatalf("the source holds %d messages after the refused move, want 50", n)
			}
		})
	}
}

// TestLoadFailsOnUnroutable: load through an exchange that routes the
// messages nowhere fails instead of losing them.
func TestLoadFailsOnUnroutable(t *testing.T) {
	amqpURL := testenv.ServerURL(t, testenv.AMQPURL)
	dump := t.TempDir() + "/one.jsonl"
	if err := os.WriteFile(dump, []byte(`{"queue":"q","body":"x","properties":{}}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runKombu(t, "", nil, "load", dump, amqpURL, "--exchange", "amq.direct", "--routing-key", uniqueName(t, "nowhere"))
	if r.code == 0 || !strings.Contains(r.stderr, "unroutable") || !strings.Contains(r.stderr, "after 0 messages") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}
