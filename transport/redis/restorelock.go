package redis

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// defaultRestoreLease is how long the unacked_mutex lives without renewal.
// Python kombu sets it for unacked_mutex_expire (300 s) at once, so a
// consumer that loses its connection mid-restore stops every other
// consumer from restoring for five minutes. kombu-go sets a short lease
// and renews it while restoring; the key, the SET NX PX and the
// compare-and-delete are kombu's, so Python consumers still see it held.
const defaultRestoreLease = 10 * time.Second

// restoreLock is a store's hold on the unacked_mutex.
type restoreLock struct {
	lease time.Duration // 0: min(defaultRestoreLease, unacked_mutex_expire)
	token string        // of the hold being restored under
	// stale is the token of a hold whose release did not reach redis (the
	// connection dropped): released before the next try, so the store
	// does not block others until the lease ends.
	stale string
	stop  chan struct{} // ends the renewal goroutine
	done  chan struct{}
}

func (s *Store) restoreLease() time.Duration {
	if l := s.restoreLk.lease; l > 0 {
		return l
	}
	return min(defaultRestoreLease, s.o.UnackedMutexExpire)
}

// acquireRestoreLock takes the unacked_mutex (sweepMu held), reporting
// false when someone else holds it, and renews it every third of its
// lease until releaseRestoreLock.
func (s *Store) acquireRestoreLock(ctx context.Context) (bool, error) {
	lk := &s.restoreLk
	if lk.stale != "" {
		if err := unlockScript.Run(ctx, s.rdb, []string{s.k.unackedMutex}, lk.stale).Err(); err != nil {
			return false, s.wrap(ctx, "restore mutex release", err)
		}
		lk.stale = ""
	}
	lease := s.restoreLease()
	token := randomSeed() + randomSeed()
	ok, err := s.rdb.SetNX(ctx, s.k.unackedMutex, token, lease).Result()
	if err != nil {
		return false, s.wrap(ctx, "restore mutex", err)
	}
	if !ok {
		return false, nil
	}
	lk.token = token
	lk.stop, lk.done = make(chan struct{}), make(chan struct{})
	go func(stop, done chan struct{}) {
		defer close(done)
		t := time.NewTicker(lease / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				rctx, cancel := context.WithTimeout(context.Background(), lease/3)
				_ = renewLockScript.Run(rctx, s.rdb, []string{s.k.unackedMutex}, token, lease.Milliseconds()).Err()
				cancel()
			}
		}
	}(lk.stop, lk.done)
	return true, nil
}

// releaseRestoreLock stops the renewal and deletes the mutex if it is still
// this store's; a release that fails is retried on the next acquire.
func (s *Store) releaseRestoreLock(ctx context.Context) {
	lk := &s.restoreLk
	close(lk.stop)
	<-lk.done
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := unlockScript.Run(uctx, s.rdb, []string{s.k.unackedMutex}, lk.token).Err(); err != nil {
		lk.stale = lk.token
	}
	lk.token = ""
}

// renewLockScript extends the restore mutex only if this process still
// holds it (redis-py's Lock.extend with replace_ttl).
var renewLockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)
