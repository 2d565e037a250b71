package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/kombu-go/kombu/kombu/codec"
	"github.com/kombu-go/kombu/kombu/driver"
)

// settle says what happens to a message once it is printed.
type settle string

const (
	settleRequeue settle = "requeue" // put back, untouched (the default: looking changes nothing)
	settleAck     settle = "ack"     // removed from the queue once printed
	settleNoAck   settle = "no-ack"  // removed by the broker as it is delivered
)

type consumeFlags struct {
	connFlags
	ack, requeue, noAck bool
	count               int
	timeout             time.Duration
	follow              bool
	raw                 bool
	prefetch            int
}

func (f *consumeFlags) mode() (settle, error) {
	n := 0
	for _, b := range []bool{f.ack, f.requeue, f.noAck} {
		if b {
			n++
		}
	}
	switch {
	case n > 1:
		return "", usagef("give one of --ack, --requeue, --no-ack")
	case f.ack:
		return settleAck, nil
	case f.noAck:
		return settleNoAck, nil
	}
	return settleRequeue, nil
}

func (f *consumeFlags) registerSettle(c *cobra.Command) {
	c.Flags().BoolVar(&f.ack, "ack", false, "acknowledge each message once printed (removes it)")
	c.Flags().BoolVar(&f.requeue, "requeue", false, "put messages back when done (the default)")
	c.Flags().BoolVar(&f.noAck, "no-ack", false, "consume without acknowledgements (the broker removes each message as it sends it)")
	c.Flags().BoolVar(&f.raw, "raw", false, "do not decode the body into \"payload\"")
}

func (a *app) consumeCommand() *cobra.Command {
	var f consumeFlags
	c := &cobra.Command{
		Use:   "consume [URL] QUEUE",
		Short: "Print a queue's messages as JSON lines (tail it with --follow)",
		Long: `Print messages of QUEUE as JSON lines: delivery info, properties, headers, the
body (text, or body_base64) and the decoded payload. By default messages are put
back when consume ends (--requeue), so looking changes nothing; --ack removes
them once printed, --no-ack lets the broker remove them as it sends them.

consume stops after --count messages, or when no message came for --timeout;
with --follow it waits for new messages until --count or Ctrl-C. It exits 5 when
--count was given and fewer messages came.`,
		Example: `  kombu consume redis://localhost:6379/0 tasks
  kombu consume amqp://guest:guest@localhost// tasks --ack --count 100
  kombu consume amqp://localhost// events --follow | jq .payload`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, rest, err := a.splitURL(args, 1, 1, "QUEUE")
			if err != nil {
				return err
			}
			return a.consume(cmd.Context(), raw, rest[0], &f)
		},
	}
	f.register(c)
	f.registerSettle(c)
	c.Flags().IntVarP(&f.count, "count", "n", 0, "stop after this many messages (0: no limit)")
	c.Flags().DurationVarP(&f.timeout, "timeout", "t", 2*time.Second, "stop when no message came for this long (not with --follow)")
	c.Flags().BoolVarP(&f.follow, "follow", "F", false, "keep waiting for messages until --count or Ctrl-C")
	c.Flags().IntVar(&f.prefetch, "prefetch", 100, "messages in flight at once (with --ack and --no-ack)")
	return c
}

func (a *app) getCommand() *cobra.Command {
	var f consumeFlags
	c := &cobra.Command{
		Use:   "get [URL] QUEUE",
		Short: "Print one message of a queue (exit 5 when it is empty)",
		Example: `  kombu get redis://localhost:6379/0 tasks
  kombu get amqp://localhost// poison --ack   # remove it`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, rest, err := a.splitURL(args, 1, 1, "QUEUE")
			if err != nil {
				return err
			}
			return a.get(cmd.Context(), raw, rest[0], &f)
		},
	}
	f.register(c)
	f.registerSettle(c)
	return c
}

// printer writes records as JSON lines.
type printer struct {
	w   *bufio.Writer
	raw bool
}

func newPrinter(w io.Writer, raw bool) *printer { return &printer{w: bufio.NewWriter(w), raw: raw} }

func (p *printer) print(d *driver.Delivery) error {
	r, err := newRecord(d)
	if err != nil {
		return err
	}
	if !p.raw && d.DecodeError == nil {
		r.Payload, r.PayloadError = decodePayload(&d.Message)
	}
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	p.w.Write(line)
	p.w.WriteByte('\n')
	return p.w.Flush()
}

// maxPayload bounds a decompressed body printed as payload.
const maxPayload = 64 << 20

// decodePayload decodes a body as a kombu consumer would, for display.
func decodePayload(m *driver.Message) (json.RawMessage, string) {
	body := m.Body
	if comp, _ := m.Headers["compression"].(string); comp != "" {
		out, err := codec.Decompress(comp, body, maxPayload)
		if err != nil {
			return nil, err.Error()
		}
		body = out
	}
	var v any
	if err := codec.Decode(m.ContentType, m.ContentEncoding, body, &v); err != nil {
		return nil, err.Error()
	}
	if _, ok := v.([]byte); ok {
		return nil, "" // binary data: body_base64 already shows it
	}
	out, err := json.Marshal(jsonable(v))
	if err != nil {
		return nil, err.Error()
	}
	return out, ""
}

// jsonable turns what msgpack and yaml decode (maps with non-string keys)
// into values encoding/json accepts.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = jsonable(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonable(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonable(e)
		}
		return out
	}
	return v
}

func (a *app) get(ctx context.Context, raw, queue string, f *consumeFlags) error {
	mode, err := f.mode()
	if err != nil {
		return err
	}
	s, err := a.dial(ctx, raw, f.connFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.queueInfo(ctx, queue); err != nil {
		return err
	}
	d, err := s.drv.Get(ctx, queue, mode == settleNoAck)
	if errors.Is(err, driver.ErrEmpty) {
		return &emptyError{msg: fmt.Sprintf("queue %q is empty", queue)}
	}
	if err != nil {
		return err
	}
	if err := newPrinter(a.stdout, f.raw).print(d); err != nil {
		_ = s.drv.Reject(ctx, d.Tag, true)
		return err
	}
	switch mode {
	case settleAck:
		return s.drv.Ack(ctx, d.Tag, false)
	case settleRequeue:
		return s.drv.Reject(ctx, d.Tag, true)
	}
	return nil
}

func (a *app) consume(ctx context.Context, raw, queue string, f *consumeFlags) error {
	mode, err := f.mode()
	if err != nil {
		return err
	}
	if f.count < 0 || f.prefetch < 0 || f.timeout <= 0 {
		return usagef("--count and --prefetch must not be negative, --timeout must be positive")
	}
	s, err := a.dial(ctx, raw, f.connFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.queueInfo(ctx, queue); err != nil {
		return err
	}
	d := &drainer{s: s, queue: queue, batch: f.prefetch, noAck: mode == settleNoAck, idle: f.timeout,
		follow: f.follow, limit: f.count}
	if mode == settleRequeue {
		// Every message stays unacked until the end, so that none is
		// delivered twice: no prefetch limit then.
		d.batch, d.handBack = 0, true
	}
	out := newPrinter(a.stdout, f.raw)
	got, err := d.run(ctx, func(ds []*driver.Delivery) error {
		for _, m := range ds {
			if err := out.print(m); err != nil {
				return err
			}
			if mode == settleAck {
				if err := s.drv.Ack(ctx, m.Tag, false); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		if f.follow && ctx.Err() != nil {
			return nil // Ctrl-C is how a follow ends
		}
		return err
	}
	if f.count > 0 && got < f.count {
		return &emptyError{msg: fmt.Sprintf("got %d of %d messages from %q before the %v timeout", got, f.count, queue, f.timeout)}
	}
	return nil
}

// randomTag is a random consumer tag suffix.
func randomTag() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
