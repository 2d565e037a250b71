package sqs

import (
	"context"
	"net/url"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu/drivertest"
	"github.com/kombu-go/kombu/virtual"
	"github.com/kombu-go/kombu/virtual/storetest"
)

// testURLVar names the emulator's URL (scripts/services.d/sqs.sh).
const testURLVar = "KOMBU_TEST_SQS_URL"

// TestConformance runs the whole kombu conformance suite against the
// fauxqs emulator that `make test` starts.
func TestConformance(t *testing.T) {
	raw := testenv.ServerURL(t, testURLVar)
	drivertest.RunConformanceTests(t, drivertest.Harness{URL: raw, PushUndecodable: pushGarbage(t, raw)})
}

// TestStorePrimitives runs the store-level checks on the emulator.
func TestStorePrimitives(t *testing.T) {
	raw := testenv.ServerURL(t, testURLVar)
	storetest.Run(t, func(t *testing.T) virtual.Store { return openStore(t, raw) })
}

func testOptions(t testing.TB, raw string) *Options {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func openStore(t testing.TB, raw string) *Store {
	t.Helper()
	s, err := NewConnector(testOptions(t, raw)).Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// garbageBodies are SQS message bodies that are not kombu envelopes.
var garbageBodies = []string{
	"plain text, not JSON",
	`{"no": "body field"}`,
	"eyJub3QiOiAiYW4gZW52ZWxvcGUifQ==", // base64 of a JSON object that is not one either
	`[1, 2, 3]`,
}

// pushGarbage sends garbageBodies to a queue with the SDK itself.
func pushGarbage(t *testing.T, raw string) func(ctx context.Context, queue string) (int, error) {
	s := openStore(t, raw)
	return func(ctx context.Context, queue string) (int, error) {
		u, err := s.queueURL(ctx, queue, false)
		if err != nil {
			return 0, err
		}
		for _, b := range garbageBodies {
			if _, err := s.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(u), MessageBody: aws.String(b)}); err != nil {
				return 0, err
			}
		}
		return len(garbageBodies), nil
	}
}
