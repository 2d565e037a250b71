package virtual

import (
	"sync"

	"github.com/kombu-go/kombu/kombu/driver"
)

// State is the broker state that virtual emulates in process: declared
// exchanges, declared queues and binding tables. Stores that implement
// SharedStateStore share one State between connections; otherwise each
// connection has its own, as in Python kombu.
type State struct {
	mu        sync.RWMutex
	exchanges map[string]driver.Exchange
	queues    map[string]driver.Queue
	bindings  map[string][]driver.Binding // by exchange
	version   uint64                      // bumped on every binding change, for route caches
}

// NewState returns an empty State.
func NewState() *State {
	return &State{
		exchanges: map[string]driver.Exchange{},
		queues:    map[string]driver.Queue{},
		bindings:  map[string][]driver.Binding{},
	}
}
