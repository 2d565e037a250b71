package redis

import (
	"testing"

	"github.com/kombu-go/kombu/virtual"
	"github.com/kombu-go/kombu/virtual/storetest"
)

// TestStorePrimitives runs the store-level checks on the real redis-server.
func TestStorePrimitives(t *testing.T) {
	storetest.Run(t, func(t *testing.T) virtual.Store { return openStore(t, isolated(t, nil)) })
}
