package faulttest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kombu-go/kombu/internal/testenv"
)

// SentinelSet is the sentinel_cluster service of scripts/services.sh: a
// Redis primary, a replica and three sentinels. Tests kill the primary and
// watch the sentinels promote the replica.
type SentinelSet struct {
	URL       string   // sentinel:// URL for the client
	Master    string   // the master name
	Sentinels []string // host:port of each sentinel
	revive    string
}

// Sentinels returns the sentinel_cluster service, its killed members
// started again first when an earlier test left them down.
func Sentinels(t testing.TB) *SentinelSet {
	t.Helper()
	s := &SentinelSet{
		URL:       testenv.ServerURL(t, testenv.RedisFailoverURL),
		Master:    testenv.ServerURL(t, testenv.RedisFailoverMaster),
		Sentinels: strings.Split(testenv.ServerURL(t, testenv.RedisFailoverSentinels), ","),
		revive:    testenv.ServerURL(t, testenv.RedisFailoverRevive),
	}
	LockFile(t, s.revive+".lock")
	if err := s.Revive(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// Primary asks every sentinel for the primary's address and returns it once
// all that answer agree (right after a failover they may not, for a few ms).
func (s *SentinelSet) Primary(ctx context.Context) (string, error) {
	var last error
	for {
		var addrs []string
		for _, a := range s.Sentinels {
			c := redis.NewSentinelClient(&redis.Options{Addr: a, DialTimeout: time.Second, ReadTimeout: time.Second})
			hp, err := c.GetMasterAddrByName(ctx, s.Master).Result()
			_ = c.Close()
			if err != nil {
				last = err
				continue
			}
			if len(hp) == 2 {
				addrs = append(addrs, net.JoinHostPort(hp[0], hp[1]))
			}
		}
		agreed := len(addrs) > 0
		for _, a := range addrs {
			agreed = agreed && a == addrs[0]
		}
		if agreed {
			return addrs[0], nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("faulttest: sentinels do not agree on a primary (%v, last error %v): %w", addrs, last, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// RedisPID asks a redis server for its process id (INFO server).
func RedisPID(ctx context.Context, addr string) (int, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	defer c.Close()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, fmt.Errorf("faulttest: no process_id in INFO of %s", addr)
}

// KillPrimary crashes (SIGKILL) the current primary and returns its address.
func (s *SentinelSet) KillPrimary(ctx context.Context) (string, error) {
	addr, err := s.Primary(ctx)
	if err != nil {
		return "", err
	}
	pid, err := RedisPID(ctx, addr)
	if err != nil {
		return "", err
	}
	return addr, KillPID(pid, syscall.SIGKILL, 10*time.Second)
}

// WaitNewPrimary waits until the sentinels agree on a primary other than old.
func (s *SentinelSet) WaitNewPrimary(ctx context.Context, old string) (string, error) {
	for {
		addr, err := s.Primary(ctx)
		if err != nil {
			return "", err
		}
		if addr != old {
			return addr, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("faulttest: no new primary after %s: %w", old, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Revive starts every killed member again (a killed primary comes back as a
// replica of the new one) and waits until the set is whole.
func (s *SentinelSet) Revive(ctx context.Context) error {
	return runCommand(ctx, 60*time.Second, s.revive)
}
