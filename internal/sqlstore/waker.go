package sqlstore

import (
	"sync"
	"sync/atomic"
)

// Waker tells waiting consumers that a message may have become ready.
type Waker interface {
	// Wait returns a channel closed at the next signal, and whether every
	// new message in the database is signalled (PostgreSQL while its
	// LISTEN connection is up). When not, consumers also poll.
	Wait() (signal <-chan struct{}, live bool)
	// Signal wakes the waiters (a put or a restore of this process).
	Signal()
	// Close releases what the waker holds (a listener connection).
	Close() error
}

// Broadcast is a Waker with no source of its own: Signal closes the
// current channel and starts a new one. Engines embed it.
type Broadcast struct {
	mu   sync.Mutex
	ch   chan struct{}
	live atomic.Bool
}

// NewBroadcast returns a Broadcast that is not live.
func NewBroadcast() *Broadcast { return &Broadcast{ch: make(chan struct{})} }

// Wait implements Waker.
func (b *Broadcast) Wait() (<-chan struct{}, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch, b.live.Load()
}

// Signal implements Waker.
func (b *Broadcast) Signal() {
	b.mu.Lock()
	close(b.ch)
	b.ch = make(chan struct{})
	b.mu.Unlock()
}

// SetLive records whether every new message is signalled from now on, and
// wakes the waiters so that they look again (messages may have come while
// it was not).
func (b *Broadcast) SetLive(live bool) {
	b.live.Store(live)
	b.Signal()
}

// Close implements Waker.
func (b *Broadcast) Close() error { return nil }
