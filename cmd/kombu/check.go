package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kombu-go/kombu/kombu/driver"
)

func (a *app) checkCommand() *cobra.Command {
	var f connFlags
	c := &cobra.Command{
		Use:   "check [URL]",
		Short: "Round-trip one message through a temporary queue and compare it byte for byte",
		Long: `Connect, declare a temporary queue, publish a message with a binary body, every
property and typed headers, get it back, compare it with what was sent, and
delete the queue. It works on memory:// too, whose queues live in one process.`,
		Example: `  kombu check amqp://guest:guest@localhost//
  KOMBU_URL=redis://localhost:6379/0 kombu check`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, _, err := a.splitURL(args, 0, 0, "")
			if err != nil {
				return err
			}
			return a.check(cmd.Context(), raw, f)
		},
	}
	f.register(c)
	return c
}

// checkMessage is what check sends: a body that is not UTF-8, and header
// values of every portable type.
func checkMessage() driver.Message {
	return driver.Message{
		Body:            []byte{0, 1, 2, 0xff, 0xfe, 'k', 'o', 'm', 'b', 'u'},
		ContentType:     "application/data",
		ContentEncoding: "binary",
		Headers: map[string]any{
			"text": "héllo", "int": int64(-42), "float": 2.5, "whole_float": 3.0, "yes": true, "none": nil,
			"list": []any{int64(1), "two", 3.5}, "table": map[string]any{"nested": "x", "n": int64(7)},
		},
		Properties: driver.Properties{DeliveryMode: 2, Priority: 0, CorrelationID: "corr-1", ReplyTo: "replies",
			MessageID: "msg-1", Type: "check", AppID: "kombu-cli"},
	}
}

func (a *app) check(ctx context.Context, raw string, f connFlags) error {
	start := time.Now()
	s, err := a.dial(ctx, raw, f)
	if err != nil {
		return err
	}
	defer s.Close()
	queue := "kombu-check-" + randomTag()
	if _, err := s.drv.QueueDeclare(ctx, driver.Queue{Name: queue, AutoDelete: false}); err != nil {
		return fmt.Errorf("declare %s: %w", queue, err)
	}
	defer s.drv.QueueDelete(context.WithoutCancel(ctx), queue, false, false)
	sent := checkMessage()
	if err := s.drv.Publish(ctx, &driver.Publishing{RoutingKey: queue, Message: sent}); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	var got *driver.Delivery
	for deadline := time.Now().Add(10 * time.Second); ; {
		got, err = s.drv.Get(ctx, queue, false)
		if err == nil {
			break
		}
		if !errors.Is(err, driver.ErrEmpty) || time.Now().After(deadline) {
			return fmt.Errorf("get: %w", err)
		}
		time.Sleep(emptyPoll)
	}
	if err := s.drv.Ack(ctx, got.Tag, false); err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	want, err := messageRecord(&sent)
	if err != nil {
		return err
	}
	have, err := messageRecord(&got.Message)
	if err != nil {
		return err
	}
	wb, _ := json.Marshal(want)
	hb, _ := json.Marshal(have)
	if !bytes.Equal(wb, hb) {
		return fmt.Errorf("round trip changed the message:\n sent %s\n  got %s", wb, hb)
	}
	fmt.Fprintf(a.stdout, "ok: %s round trip through %s in %v, byte-exact\n", s.conn.TransportName(), queue,
		time.Since(start).Round(time.Millisecond))
	return nil
}
