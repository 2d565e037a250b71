package beanstalk

import (
	"context"
	"sync"
	"testing"

	"github.com/beanstalkd/go-beanstalk"

	"github.com/kombu-go/kombu/kombu/drivertest"
	"github.com/kombu-go/kombu/virtual"
	"github.com/kombu-go/kombu/virtual/storetest"
)

// TestConformance runs the whole kombu conformance suite against the
// beanstalkd that `make test` starts.
func TestConformance(t *testing.T) {
	raw := serverURL(t)
	drivertest.RunConformanceTests(t, drivertest.Harness{URL: raw, PushUndecodable: pushGarbage(t)})
}

// TestStorePrimitives runs the store-level checks on beanstalkd.
func TestStorePrimitives(t *testing.T) {
	serverURL(t)
	storetest.Run(t, func(t *testing.T) virtual.Store { return openStore(t) })
}

// garbageJobs are job bodies that are not kombu envelopes.
var garbageJobs = map[string][]byte{
	"not json":       []byte("hello, beanstalk"),
	"json, no body":  []byte(`{"properties": {}}`),
	"binary":         {0xff, 0xfe, 0, 1, 2},
	"truncated json": []byte(`{"body": "aGk=", "properties": {`),
	"empty":          {},
}

// pushGarbage puts every one of garbageJobs into a tube with go-beanstalk.
func pushGarbage(t *testing.T) func(ctx context.Context, queue string) (int, error) {
	c := rawConn(t)
	var mu sync.Mutex
	return func(ctx context.Context, queue string) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		tube := beanstalk.Tube{Conn: c, Name: queue}
		for _, body := range garbageJobs {
			if _, err := tube.Put(body, 0, 0, DefaultTTR); err != nil {
				return 0, err
			}
		}
		return len(garbageJobs), nil
	}
}
