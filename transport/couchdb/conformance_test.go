package couchdb

import (
	"context"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu/drivertest"
)

// TestConformance runs the whole kombu conformance suite against the
// pouchdb-server that `make test` starts, in a database of its own.
// pouchdb-server writes a few hundred documents a second on an idle core
// (and every message is three writes: put, claim, delete), so the suite's
// 2000-message concurrency case needs more than the default 10 s x 6.
func TestConformance(t *testing.T) {
	raw := freshDatabaseURL(t, "")
	drivertest.RunConformanceTests(t, drivertest.Harness{URL: raw, Timeout: conformanceTimeout, PushUndecodable: pushGarbage(t, raw)})
}

// conformanceTimeout is Harness.Timeout: each test's deadline is 6 times it.
const conformanceTimeout = 30 * time.Second

// garbageDocs are message documents, as another program could write them,
// whose payload is no kombu envelope.
func garbageDocs() map[string]map[string]any {
	return map[string]map[string]any{
		"no payload":             {},
		"payload a number":       {"payload": 42},
		"payload not json":       {"payload": "{not json"},
		"payload a json list":    {"payload": "[1, 2]"},
		"body not base64":        {"payload": `{"body": "%%%", "properties": {"body_encoding": "base64"}}`},
		"payload an odd object":  {"payload": map[string]any{"body": 7}},
		"priority 9, not json":   {"payload": "\x00\xff", "priority": 9},
		"priority not a number":  {"payload": "nope", "priority": "high"},
		"lease not a number":     {"payload": "nope", "lease": "soon"},
		"payload a json null":    {"payload": nil},
		"payload bytes of utf-8": {"payload": "\u00e9t\u00e9"},
	}
}

// pushGarbage writes every one of garbageDocs into a queue with kivik.
func pushGarbage(t *testing.T, raw string) func(ctx context.Context, queue string) (int, error) {
	db := rawDB(t, raw)
	ids := newIDClock()
	return func(ctx context.Context, queue string) (int, error) {
		docs := garbageDocs()
		for _, fields := range docs {
			doc := map[string]any{"kombu": kindMessage, "queue": queue}
			for k, v := range fields {
				doc[k] = v
			}
			p, _ := fields["priority"].(int)
			if _, err := db.Put(ctx, ids.next(queue, p), doc); err != nil {
				return 0, err
			}
		}
		return len(docs), nil
	}
}
