package mongodb

import (
	"testing"

	"github.com/kombu-go/kombu/virtual"
	"github.com/kombu-go/kombu/virtual/storetest"
)

// TestStorePrimitives runs the store-level checks on the test server.
func TestStorePrimitives(t *testing.T) {
	raw := isolatedURL(t, "")
	storetest.Run(t, func(t *testing.T) virtual.Store { return openStore(t, raw) })
}
