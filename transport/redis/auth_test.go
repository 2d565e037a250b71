package redis

import (
	"context"
	"errors"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu/driver"
)

// TestPasswordAuth runs a private redis-server with requirepass (outside CI
// without redis-server installed, a miniredis that requires the password):
// the right password works, a wrong or missing one fails with
// ErrAccessRefused, and no error shows the password.
func TestPasswordAuth(t *testing.T) {
	const password = "p@ss:w/rd%"
	addr := startPasswordRedis(t, password)
	dial := func(user *url.Userinfo) error {
		u := &url.URL{Scheme: "redis", User: user, Host: addr, Path: "/0"}
		o, err := ParseURL(u)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var s *Store
		for range 50 { // the server may still be starting
			s, err = NewConnector(o).Dial(ctx)
			if !errors.Is(err, driver.ErrConnectionLost) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err == nil {
			_ = s.Put(ctx, "auth-q", newEnv("x", 0))
			_, _ = s.Purge(ctx, "auth-q")
			_ = s.Close()
		}
		return err
	}
	if err := dial(url.UserPassword("", password)); err != nil {
		t.Fatalf("right password: %v", err)
	}
	for _, u := range []*url.Userinfo{url.UserPassword("", "wrong-"+password), nil} {
		err := dial(u)
		if !errors.Is(err, driver.ErrAccessRefused) {
			t.Errorf("bad credentials: %v, want ErrAccessRefused", err)
		}
		if err != nil && strings.Contains(err.Error(), "p@ss") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

// startPasswordRedis starts a private server that requires password and
// returns its address: redis-server when installed (always in CI), else an
// in-process miniredis.
func startPasswordRedis(t *testing.T, password string) (addr string) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if testenv.InCI() {
			t.Fatal("redis-server is not installed (make test installs it)")
		}
		m := miniredis.RunT(t)
		m.RequireAuth(password)
		t.Logf("on an in-process miniredis at %s (redis-server is not installed)", m.Addr())
		return m.Addr()
	}
	port := freePort(t)
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--requirepass", password,
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	t.Logf("on a private redis-server on port %d", port)
	return "127.0.0.1:" + strconv.Itoa(port)
}
