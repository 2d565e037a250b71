package redis

import (
	"context"
	"testing"
	"time"
)

// TestRestoreLockLostHolderDoesNotBlock: a consumer whose release of the
// unacked_mutex never reaches redis (its connection dropped) must not keep
// every other consumer from restoring for unacked_mutex_expire (300 s):
// the mutex lives for a short lease, and the store releases its stale hold
// on its next sweep. While a restore runs, the lease is renewed.
func TestRestoreLockLostHolderDoesNotBlock(t *testing.T) {
	opts := isolated(t, nil)
	direct := openStore(t, opts)
	raw := rawClient(t, direct)
	cleanupKeys(t, raw, opts.Get("global_keyprefix"))
	ctx := testCtx(t)
	proxy := startFaultProxy(t)
	o, err := ParseURL(proxy.url(opts))
	must(t, err)
	s, err := NewConnector(o).Dial(ctx)
	must(t, err)
	t.Cleanup(func() { _ = s.Close() })
	mutex := s.k.unackedMutex

	must(t, unlockScript.Load(ctx, raw).Err())
	lost := proxy.on(answer, 0, unlockScript.Hash())
	if _, err := s.RestoreVisible(ctx); err != nil {
		t.Fatal(err)
	}
	if proxy.hits(lost) != 1 {
		t.Fatalf("the proxy refused %d releases, want 1", proxy.hits(lost))
	}
	ttl, err := raw.PTTL(ctx, mutex).Result()
	must(t, err)
	if ttl <= 0 || ttl > defaultRestoreLease {
		t.Fatalf("a lost holder's mutex expires in %v, want at most %v", ttl, defaultRestoreLease)
	}
	proxy.clear()
	if _, err := s.RestoreVisible(ctx); err != nil {
		t.Fatal(err)
	}
	if n := raw.Exists(ctx, mutex).Val(); n != 0 {
		t.Fatalf("the mutex is still held after the holder's next sweep (ttl %v)", raw.PTTL(ctx, mutex).Val())
	}

	// Renewal: a hold outlives its lease while the restore runs.
	s.sweepMu.Lock()
	defer s.sweepMu.Unlock()
	s.restoreLk.lease = 300 * time.Millisecond
	held, err := s.acquireRestoreLock(ctx)
	if err != nil || !held {
		t.Fatalf("acquire: %v %v", held, err)
	}
	time.Sleep(time.Second)
	if v := raw.Get(ctx, mutex).Val(); v != s.restoreLk.token {
		t.Errorf("after three leases the mutex holds %q, want the holder's token", v)
	}
	s.releaseRestoreLock(context.Background())
	if n := raw.Exists(ctx, mutex).Val(); n != 0 {
		t.Errorf("the mutex is still held after release")
	}
}
