package sqs

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu"
)

// emulator dials the fauxqs emulator with extra URL options and returns
// the connection and a unique queue name.
func emulator(t *testing.T, extra string) (*kombu.Connection, string) {
	t.Helper()
	raw := testenv.ServerURL(t, testURLVar) + extra
	conn := dialInterop(t, raw)
	return conn, fmt.Sprintf("sem.%s.%08x", strings.ReplaceAll(t.Name(), "/", "."), rand.Uint32())
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// A requeue is ChangeMessageVisibility 0: the message comes back at once,
// and its delivery count is SQS's receive count.
func TestRequeueCountsReceives(t *testing.T) {
	conn, name := emulator(t, "")
	ctx := ctxT(t, 20*time.Second)
	sq, err := conn.SimpleQueue(ctx, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sq.Put(ctx, "again", nil); err != nil {
		t.Fatal(err)
	}
	for want := 1; want <= 3; want++ {
		m, err := sq.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.DeliveryCount() != want || m.Redelivered != (want > 1) {
			t.Fatalf("delivery %d: count %d, redelivered %v", want, m.DeliveryCount(), m.Redelivered)
		}
		if want < 3 {
			err = m.Requeue(ctx)
		} else {
			err = m.Ack(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
