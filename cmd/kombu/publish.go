package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/codec"
	_ "github.com/kombu-go/kombu/kombu/codec/all" // speak every format Python kombu sends
)

type publishFlags struct {
	connFlags
	exchange, routingKey, queue   string
	exchangeType                  string
	file                          string
	serializer, compression       string
	contentType, contentEncoding  string
	headers                       []string
	headersJSON                   string
	priority                      uint8
	deliveryMode                  uint8
	expiration                    time.Duration
	correlationID, replyTo, msgID string
	msgType, appID, userID        string
	mandatory                     bool
	count                         int
	rate                          float64
}

func (a *app) publishCommand() *cobra.Command {
	var f publishFlags
	c := &cobra.Command{
		Use:   "publish [URL] [BODY]",
		Short: "Publish a message (body from an argument, --file or stdin)",
		Long: `Publish a message to an exchange (default: the nameless direct exchange, where
the routing key is a queue name). The body comes from the BODY argument, from
--file, or from stdin when neither is given ("-" also means stdin).

With --serializer json (the default) and yaml the body must be valid JSON or
YAML and is sent as given; with msgpack it is JSON converted to msgpack; with
text it is sent as text/plain and with raw as application/data, unchecked.
--content-type sends the bytes unchecked with that content type.`,
		Example: `  kombu publish redis://localhost:6379/0 --queue tasks '{"id": 1}'
  kombu publish amqp://guest:guest@localhost// --exchange events --routing-key user.created < event.json
  kombu publish redis://localhost:6379/0 --queue load --count 10000 --rate 500 '"ping"'
  KOMBU_URL=amqp://localhost// kombu publish --queue q --header trace=abc --serializer text hello`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, rest, err := a.splitURL(args, 0, 1, "[BODY]")
			if err != nil {
				return err
			}
			return a.publish(cmd.Context(), raw, rest, &f)
		},
	}
	fl := c.Flags()
	f.register(c)
	fl.StringVarP(&f.exchange, "exchange", "e", "", "exchange to publish to (default: the nameless direct exchange)")
	fl.StringVar(&f.exchangeType, "exchange-type", "", exchangeTypeHelp)
	fl.StringVarP(&f.routingKey, "routing-key", "r", "", "routing key (default: --queue)")
	fl.StringVarP(&f.queue, "queue", "q", "", "declare this durable queue and route to it through the default exchange")
	fl.StringVarP(&f.file, "file", "f", "", "read the body from this file (- for stdin)")
	fl.StringVarP(&f.serializer, "serializer", "s", "json", "json, yaml, msgpack, text or raw")
	fl.StringVarP(&f.compression, "compression", "z", "", "zlib, bzip2, xz, zstd or brotli")
	fl.StringVar(&f.contentType, "content-type", "", "send the body unchecked with this content type")
	fl.StringVar(&f.contentEncoding, "content-encoding", "", "content encoding (with --content-type; default utf-8)")
	fl.StringArrayVarP(&f.headers, "header", "H", nil, "header NAME=VALUE; VALUE is JSON when it parses, else a string (repeatable)")
	fl.StringVar(&f.headersJSON, "headers-json", "", "headers as a JSON object (typed as in dump files)")
	fl.Uint8Var(&f.priority, "priority", 0, "message priority")
	fl.Uint8Var(&f.deliveryMode, "delivery-mode", 2, "1 transient, 2 persistent")
	fl.DurationVar(&f.expiration, "expiration", 0, "message time to live (e.g. 30s)")
	fl.StringVar(&f.correlationID, "correlation-id", "", "correlation id property")
	fl.StringVar(&f.replyTo, "reply-to", "", "reply-to property")
	fl.StringVar(&f.msgID, "message-id", "", "message id property")
	fl.StringVar(&f.msgType, "type", "", "type property")
	fl.StringVar(&f.appID, "app-id", "", "app id property")
	fl.StringVar(&f.userID, "user-id", "", "user id property (the broker may check it)")
	fl.BoolVar(&f.mandatory, "mandatory", false, "fail when no queue takes the message")
	fl.IntVarP(&f.count, "count", "n", 1, "publish the message this many times")
	fl.Float64Var(&f.rate, "rate", 0, "at most this many messages per second (0: as fast as possible)")
	_ = c.RegisterFlagCompletionFunc("serializer", fixedCompletion("json", "yaml", "msgpack", "text", "raw"))
	_ = c.RegisterFlagCompletionFunc("compression", fixedCompletion("zlib", "bzip2", "xz", "zstd", "brotli"))
	return c
}

func fixedCompletion(words ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return words, cobra.ShellCompDirectiveNoFileComp
	}
}

// readBody returns the body from the argument, --file or stdin.
func (a *app) readBody(args []string, file string) ([]byte, error) {
	switch {
	case len(args) == 1 && file != "":
		return nil, usagef("give the body as an argument or with --file, not both")
	case len(args) == 1 && args[0] != "-":
		return []byte(args[0]), nil
	case file != "" && file != "-":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, usagef("cannot read body: %v", err)
		}
		return b, nil
	}
	if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return nil, usagef("no body: give BODY, --file FILE, or pipe it to stdin")
	}
	b, err := io.ReadAll(a.stdin)
	if err != nil {
		return nil, usagef("cannot read body from stdin: %v", err)
	}
	return b, nil
}

// encodeBody checks body against the serializer and returns it with its
// content type and encoding, ready to send.
func encodeBody(body []byte, f *publishFlags) (out []byte, ct, ce string, err error) {
	if f.contentType != "" {
		ce = f.contentEncoding
		if ce == "" {
			ce = codec.EncodingUTF8
		}
		return body, f.contentType, ce, nil
	}
	switch strings.ToLower(f.serializer) {
	case "text":
		return body, codec.ContentTypeText, codec.EncodingUTF8, nil
	case "raw":
		return body, codec.ContentTypeData, codec.EncodingBinary, nil
	case "msgpack":
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			return nil, "", "", usagef("body is not valid JSON (msgpack bodies are given as JSON): %v", err)
		}
		out, ct, ce, err := codec.Encode("msgpack", v, "", "")
		if err != nil {
			return nil, "", "", usagef("body: %v", err)
		}
		return out, ct, ce, nil
	}
	s, ok := codec.Default.Lookup(f.serializer)
	if !ok {
		return nil, "", "", usagef("unknown serializer %q: want json, yaml, msgpack, text or raw", f.serializer)
	}
	var v any
	if err := codec.Decode(s.ContentType, s.ContentEncoding, body, &v); err != nil || len(body) == 0 {
		hint := "; send other bytes with --serializer text or raw"
		if err == nil {
			return nil, "", "", usagef("empty body is not valid %s%s", s.Name, hint)
		}
		return nil, "", "", usagef("body is not valid %s: %v%s", s.Name, firstLine(err.Error()), hint)
	}
	return body, s.ContentType, s.ContentEncoding, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// parseHeaders reads --header NAME=VALUE pairs and --headers-json.
func parseHeaders(pairs []string, asJSON string) (map[string]any, error) {
	h := map[string]any{}
	if asJSON != "" {
		t, err := decodeTable(json.RawMessage(asJSON))
		if err != nil {
			return nil, usagef("--headers-json: %v", err)
		}
		h = t
	}
	for _, p := range pairs {
		name, value, ok := strings.Cut(p, "=")
		if !ok || name == "" {
			return nil, usagef("--header %q: want NAME=VALUE", p)
		}
		var v any = value
		if t, err := decodeTable(json.RawMessage(`{"v":` + value + `}`)); err == nil {
			v = t["v"]
		}
		h[name] = v
	}
	if len(h) == 0 {
		return nil, nil
	}
	return h, nil
}

func (a *app) publish(ctx context.Context, raw string, args []string, f *publishFlags) error {
	if f.count < 1 {
		return usagef("--count must be at least 1")
	}
	if f.rate < 0 {
		return usagef("--rate must not be negative")
	}
	if f.queue != "" && f.exchange != "" {
		return usagef("--queue routes through the default exchange; with --exchange give --routing-key")
	}
	body, err := a.readBody(args, f.file)
	if err != nil {
		return err
	}
	data, ct, ce, err := encodeBody(body, f)
	if err != nil {
		return err
	}
	headers, err := parseHeaders(f.headers, f.headersJSON)
	if err != nil {
		return err
	}
	s, err := a.dial(ctx, raw, f.connFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.declareExchange(ctx, f.exchange, f.exchangeType); err != nil {
		return err
	}
	rk := f.routingKey
	opts := &kombu.PublishOptions{
		ContentType: ct, ContentEncoding: ce, Compression: f.compression, Headers: headers,
		Priority: f.priority, DeliveryMode: kombu.DeliveryMode(f.deliveryMode), Expiration: f.expiration,
		Mandatory: f.mandatory, CorrelationID: f.correlationID, ReplyTo: f.replyTo, MessageID: f.msgID,
		Type: f.msgType, AppID: f.appID, UserID: f.userID,
	}
	if f.queue != "" {
		if rk == "" {
			rk = f.queue
		}
		opts.Declare = []kombu.Declarable{kombu.NewQueue(f.queue, kombu.DefaultExchange, f.queue)}
	}
	opts.RoutingKey = rk
	p, err := kombu.NewProducer(ctx, s.ch, &kombu.ProducerOptions{
		Exchange: kombu.Exchange{Name: f.exchange, Type: kombu.Direct}, NoDeclare: true})
	if err != nil {
		return err
	}
	if f.count == 1 {
		return p.Publish(ctx, data, opts)
	}
	return publishMany(ctx, p, data, opts, f.count, f.rate, a.stderr)
}

// publishMany publishes body count times: in batches when no rate is
// set, else one by one, paced.
func publishMany(ctx context.Context, p *kombu.Producer, body []byte, opts *kombu.PublishOptions, count int, rate float64, log io.Writer) error {
	start := time.Now()
	if rate == 0 {
		const batch = 200
		for done := 0; done < count; {
			n := min(batch, count-done)
			bodies := make([]any, n)
			for i := range bodies {
				bodies[i] = body
			}
			if err := p.PublishBatch(ctx, bodies, opts); err != nil {
				return fmt.Errorf("after %d messages: %w", done, err)
			}
			done += n
		}
	} else {
		interval := time.Duration(float64(time.Second) / rate)
		for i := 0; i < count; i++ {
			if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
				select {
				case <-ctx.Done():
					return fmt.Errorf("after %d messages: %w", i, ctx.Err())
				case <-time.After(wait):
				}
			}
			if err := p.Publish(ctx, body, opts); err != nil {
				return fmt.Errorf("after %d messages: %w", i, err)
			}
		}
	}
	el := time.Since(start)
	fmt.Fprintf(log, "published %d messages in %v (%.0f msg/s)\n", count, el.Round(time.Millisecond), float64(count)/el.Seconds())
	return nil
}
