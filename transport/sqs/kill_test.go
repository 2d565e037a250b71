package sqs

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/kombu-go/kombu/internal/faulttest"
	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
)

// TestHelperProcessConsumer is not a test: it is the consumer process
// TestKilledConsumerLosesNothing kills (see faulttest.KilledConsumer).
func TestHelperProcessConsumer(t *testing.T) { faulttest.KilledConsumerProcess(t) }

// TestKilledConsumerLosesNothing: a consumer process (prefetch 20) acks
// 200 of 400 messages, holds 20 more unacked and is killed with SIGKILL.
// Every message it did not ack comes back after the queue's visibility
// timeout (2 s here), counted by SQS: lost = 0, every held message
// redelivered once with x-delivery-count 1, as many redelivered as SQS had
// in flight at the kill, and none of the acked ones again.
func TestKilledConsumerLosesNothing(t *testing.T) {
	const vt = 2 * time.Second
	raw := testenv.ServerURL(t, testURLVar) + "&visibility_timeout=" + strconv.Itoa(int(vt/time.Second))
	s := openStore(t, raw)
	q := fmt.Sprintf("kill.%d", time.Now().UnixNano())
	faulttest.KilledConsumer{
		Transport: "sqs", URL: raw, Queue: q,
		Total: 400, Acks: 200, Hold: 20, Prefetch: 20,
		InFlight: func(ctx context.Context) (int, error) {
			u, err := s.queueURL(ctx, q, false)
			if err != nil {
				return 0, err
			}
			attrs, err := s.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(u),
				AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
			if err != nil {
				return 0, err
			}
			return strconv.Atoi(attrs.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
		},
		EarliestRedelivery: vt - 500*time.Millisecond,
		LatestRedelivery:   vt + 10*time.Second,
		CheckRedelivered: func(m *kombu.Message) error {
			if n, _ := driver.Int64(m.Headers[headerDeliveryCount]); n != 1 {
				return fmt.Errorf("x-delivery-count %v, want 1", m.Headers[headerDeliveryCount])
			}
			return nil
		},
		Note: "visibility timeout 2 s",
	}.Run(t)
}
