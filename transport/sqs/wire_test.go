package sqs

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/kombu"
)

// What kombu-go puts on SQS, read back with the SDK: the queue has
// kombu's translated name and the body is base64 of kombu's envelope,
// whose body is base64 again (kombu-wire-format §5). A plain-JSON
// envelope (sqs_base64_encoding=false in Python) is read too.
func TestWireFormat(t *testing.T) {
	raw := testenv.ServerURL(t, testURLVar)
	conn := dialInterop(t, raw+"&queue_name_prefix=wirefmt-")
	ctx := ctxT(t, 20*time.Second)
	name := "wire.celery:tasks"
	sq, err := conn.SimpleQueue(ctx, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = sq.Clear(ctx) })
	if err := sq.Put(ctx, map[string]any{"n": 1}, &kombu.PublishOptions{Headers: map[string]any{"x-seq": 1}}); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, raw)
	u, err := s.client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("wirefmt-wire-celery_tasks")})
	if err != nil {
		t.Fatalf("kombu's SQS name: %v", err)
	}
	out, err := s.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: u.QueueUrl, WaitTimeSeconds: 1})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("receive: %v, %d messages", err, len(out.Messages))
	}
	outer, err := base64.StdEncoding.DecodeString(aws.ToString(out.Messages[0].Body))
	if err != nil {
		t.Fatalf("MessageBody is not base64: %v", err)
	}
	var env struct {
		Body       string         `json:"body"`
		Headers    map[string]any `json:"headers"`
		Properties struct {
			BodyEncoding string `json:"body_encoding"`
			DeliveryInfo struct {
				RoutingKey string `json:"routing_key"`
			} `json:"delivery_info"`
			DeliveryTag string `json:"delivery_tag"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(outer, &env); err != nil {
		t.Fatalf("envelope %s: %v", outer, err)
	}
	inner, err := base64.StdEncoding.DecodeString(env.Body)
	if err != nil || string(inner) != `{"n":1}` || env.Properties.BodyEncoding != "base64" ||
		env.Properties.DeliveryInfo.RoutingKey != name || env.Properties.DeliveryTag == "" || env.Headers["x-seq"] != 1.0 {
		t.Errorf("envelope %s (inner body %q, %v)", outer, inner, err)
	}
	// Back in the queue, this time as plain JSON text.
	if _, err := s.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: u.QueueUrl, MessageBody: aws.String(string(outer))}); err != nil {
		t.Fatal(err)
	}
	m, err := sq.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := m.Payload(); p.(map[string]any)["n"] != int64(1) && p.(map[string]any)["n"] != 1.0 {
		t.Errorf("plain-JSON envelope read as %v", p)
	}
	_ = m.Ack(ctx)
}
