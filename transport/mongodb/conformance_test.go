package mongodb

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/kombu-go/kombu/kombu/drivertest"
)

// TestConformance runs the whole kombu conformance suite against the test
// server (FerretDB).
func TestConformance(t *testing.T) {
	raw := isolatedURL(t, "")
	// FerretDB writes through SQLite one statement at a time: while the
	// 2000-message concurrency case runs (4 writes per message), the cases
	// beside it wait their turn, on a busy 2-core machine for tens of
	// seconds. 60 s per wait instead of the default 10 s.
	drivertest.RunConformanceTests(t, drivertest.Harness{URL: raw, Timeout: 60 * time.Second, PushUndecodable: pushGarbage(t, raw)})
}

// garbageDocs are messages documents no kombu consumer can decode: bad
// payload strings, payloads of other BSON types, no payload at all.
func garbageDocs(queue string) []bson.D {
	return []bson.D{
		{{Key: "queue", Value: queue}, {Key: "payload", Value: "not json"}, {Key: "priority", Value: 9}},
		{{Key: "queue", Value: queue}, {Key: "payload", Value: `{"body": 1}`}, {Key: "priority", Value: 9}},
		{{Key: "queue", Value: queue}, {Key: "payload", Value: `["a list"]`}, {Key: "priority", Value: 9}},
		{{Key: "queue", Value: queue}, {Key: "payload", Value: int32(42)}, {Key: "priority", Value: 9}},
		{{Key: "queue", Value: queue}, {Key: "payload", Value: bson.D{{Key: "body", Value: "x"}}}, {Key: "priority", Value: 9}},
		{{Key: "queue", Value: queue}, {Key: "priority", Value: 0}},
		{{Key: "queue", Value: queue}, {Key: "payload", Value: "\xff\xfe"}, {Key: "priority", Value: "high"}},
	}
}

// pushGarbage inserts garbageDocs into a queue with the MongoDB driver.
func pushGarbage(t *testing.T, raw string) func(ctx context.Context, queue string) (int, error) {
	coll := collection(t, raw, optionsOf(t, raw).MessagesCollection)
	return func(ctx context.Context, queue string) (int, error) {
		docs := garbageDocs(queue)
		for _, d := range docs {
			if _, err := coll.InsertOne(ctx, d); err != nil {
				return 0, err
			}
		}
		return len(docs), nil
	}
}
