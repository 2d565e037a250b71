package main

import (
	"bufio"
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/testenv"
)

// TestGetAndConsumeSettleModes: looking (the default) changes nothing and
// keeps the order, --ack removes, --no-ack removes as it takes.
func TestGetAndConsumeSettleModes(t *testing.T) {
	url := testenv.ServerURL(t, testenv.RedisURL)
	q := uniqueName(t, "settle")
	t.Cleanup(func() { runKombu(t, "", nil, "delete", url, "queue", q) })
	for _, b := range []string{"1", "2", "3", "4"} {
		mustKombu(t, "", "publish", url, "--queue", q, b)
	}
	bodies := func(out string) string {
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if i := strings.Index(l, `"body":"`); i >= 0 {
				got = append(got, l[i+8:i+9])
			}
		}
		return strings.Join(got, "")
	}
	for i := 0; i < 2; i++ {
		if got := bodies(mustKombu(t, "", "consume", url, q, "--timeout", "300ms").stdout); got != "1234" {
			t.Fatalf("look %d: bodies %q, want 1234 (nothing removed, order kept)", i, got)
		}
	}
	if got := bodies(mustKombu(t, "", "get", url, q).stdout); got != "1" {
		t.Fatalf("get: %q", got)
	}
	if got := bodies(mustKombu(t, "", "get", url, q, "--ack").stdout); got != "1" {
		t.Fatalf("get --ack: %q", got)
	}
	if got := bodies(mustKombu(t, "", "consume", url, q, "--no-ack", "--count", "1").stdout); got != "2" {
		t.Fatalf("consume --no-ack --count 1: %q", got)
	}
	if got := bodies(mustKombu(t, "", "consume", url, q, "--ack", "--count", "1").stdout); got != "3" {
		t.Fatalf("consume --ack --count 1: %q", got)
	}
	r := runKombu(t, "", nil, "consume", url, q, "--count", "2", "--timeout", "300ms")
	if r.code != exitEmpty || bodies(r.stdout) != "4" {
		t.Fatalf("consume --count 2 of 1 message: exit %d, stdout %q", r.code, r.stdout)
	}
	mustKombu(t, "", "purge", url, q)
	if r := runKombu(t, "", nil, "get", url, q); r.code != exitEmpty && r.code != exitNotFound {
		t.Fatalf("get after purge: exit %d", r.code)
	}
}

// TestFollowEndsCleanlyOnInterrupt: consume --follow prints messages as
// they come and exits 0 on SIGINT, handing them back; an interrupted move
// exits 130.
func TestFollowEndsCleanlyOnInterrupt(t *testing.T) {
	url := testenv.ServerURL(t, testenv.RedisURL)
	q := uniqueName(t, "follow")
	t.Cleanup(func() { runKombu(t, "", nil, "delete", url, "queue", q) })
	mustKombu(t, "", "declare", url, "queue", q)
	mustKombu(t, "", "publish", url, "--queue", q, `"first"`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kombuBinary(t), "consume", url, q, "--follow")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || !strings.Contains(lines.Text(), `"payload":"first"`) {
		t.Fatalf("first line: %q", lines.Text())
	}
	mustKombu(t, "", "publish", url, "--queue", q, `"second"`)
	if !lines.Scan() || !strings.Contains(lines.Text(), `"payload":"second"`) {
		t.Fatalf("followed line: %q", lines.Text())
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("consume --follow after SIGINT: %v", err)
	}
	if r := mustKombu(t, "", "consume", url, q, "--timeout", "300ms"); strings.Count(r.stdout, "\n") != 2 {
		t.Fatalf("the followed messages were not handed back: %q", r.stdout)
	}

	move := exec.CommandContext(ctx, kombuBinary(t), "move", url, q, url, "--dst-queue", q+"-dst", "--follow")
	t.Cleanup(func() { runKombu(t, "", nil, "delete", url, "queue", q+"-dst") })
	if err := move.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := move.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := move.Wait(); !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
		t.Fatalf("interrupted move: %v, want exit %d", err, exitInterrupted)
	}
}
