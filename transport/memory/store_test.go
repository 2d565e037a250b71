package memory_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/kombu-go/kombu/transport/memory"
	"github.com/kombu-go/kombu/virtual"
	"github.com/kombu-go/kombu/virtual/storetest"
)

var brokerSeq atomic.Int64

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) virtual.Store {
		s, err := memory.NewConnector(&memory.Options{Broker: fmt.Sprintf("storetest-%d", brokerSeq.Add(1))}).DialStore(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
