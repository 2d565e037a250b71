package redis

import (
	"testing"

	"github.com/kombu-go/kombu/virtual"
	"github.com/kombu-go/kombu/virtual/storetest"
)

// TestStorePrimitives runs the store-level checks on the test server (the
// real redis-server, or miniredis: see testServer).
func TestStorePrimitives(t *testing.T) {
	testServerURL(t)
	logServer(t)
	storetest.Run(t, func(t *testing.T) virtual.Store { return openStore(t, isolated(t, nil)) })
}
