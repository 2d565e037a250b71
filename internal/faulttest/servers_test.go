package faulttest

import (
	"context"
	"errors"
	"github.com/kombu-go/kombu/internal/testenv"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestRedisServerKillRestartKeepsData: a write acknowledged before a
// SIGKILL is there after Restart (appendonly, fsync always), on the same
// port; Kill and Stop are idempotent.
func TestRedisServerKillRestartKeepsData(t *testing.T) {
	r := StartRedis(t, RedisOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer c.Close()
	must(t, c.RPush(ctx, "k", "a", "b").Err())
	pid := r.PID()
	if pid == 0 {
		t.Fatal("no pid for a running server")
	}
	must(t, r.Kill())
	if !ProcessGone(pid) || r.PID() != 0 {
		t.Fatalf("pid %d still alive after Kill", pid)
	}
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("a killed server answers PING")
	}
	must(t, r.Kill()) // already down: a no-op
	must(t, r.Restart(ctx))
	if r.PID() == 0 || r.PID() == pid {
		t.Fatalf("pid after restart %d (before %d)", r.PID(), pid)
	}
	got, err := c.LRange(ctx, "k", 0, -1).Result()
	must(t, err)
	if len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("after a crash and restart: %q, want [a b]", got)
	}
	must(t, r.Restart(ctx)) // running: a no-op
	r.Stop()
	r.Stop()
}

// TestRedisServerRestartRefusesAnotherServer: when another server took the
// port while the test's was down, Restart fails instead of passing that
// server off as the test's own.
func TestRedisServerRestartRefusesAnotherServer(t *testing.T) {
	r := StartRedis(t, RedisOptions{})
	if strings.HasPrefix(r.Addr(), "127.0.0.1:") {
		t.Fatalf("address %s: want a private loopback address, not 127.0.0.1", r.Addr())
	}
	must(t, r.Kill())
	host, port, _ := strings.Cut(r.Addr(), ":")
	squatter := exec.Command(r.bin, "--port", port, "--bind", host, "--save", "", "--appendonly", "no")
	must(t, squatter.Start())
	defer func() { _ = squatter.Process.Kill(); _ = squatter.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for redisPing(r.Addr()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the other redis-server does not answer")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := r.Restart(ctx)
	if err == nil || !strings.Contains(err.Error(), "not by the redis-server started") {
		t.Fatalf("Restart with another server on the port: %v, want a refusal", err)
	}
}

// TestLockFileIsExclusive: a second process cannot take the lock while a
// test holds it (flock is per open file, so another process is needed).
func TestLockFileIsExclusive(t *testing.T) {
	flock, err := exec.LookPath("flock")
	if err != nil {
		if testenv.InCI() {
			t.Fatal("flock(1) not installed (util-linux)")
		}
		t.Skip("flock(1) not installed")
	}
	path := filepath.Join(t.TempDir(), "node.lock")
	t.Run("held", func(t *testing.T) {
		LockFile(t, path)
		err := exec.Command(flock, "-n", path, "true").Run()
		var ee *exec.ExitError
		if err == nil {
			t.Fatal("another process took the lock while the test held it")
		} else if !errors.As(err, &ee) {
			t.Fatal(err)
		}
	})
	// Released when the subtest ended.
	if err := exec.Command(flock, "-n", path, "true").Run(); err != nil {
		t.Fatalf("lock not released after the test: %v", err)
	}
}

func TestKillPIDRefusesInit(t *testing.T) {
	for _, pid := range []int{0, 1, -1} {
		if err := KillPID(pid, syscall.SIGKILL, time.Second); err == nil {
			t.Errorf("KillPID(%d) accepted", pid)
		}
	}
}

func init() {
	// go-redis logs every failed dial of its pools; the killed server makes some.
	redis.SetLogger(quietLogger{})
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
