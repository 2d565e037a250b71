package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/kombu-go/kombu/kombu/driver"
)

type dumpFlags struct {
	connFlags
	remove  bool
	count   int
	timeout time.Duration
	batch   int
}

func (a *app) dumpCommand() *cobra.Command {
	var f dumpFlags
	c := &cobra.Command{
		Use:   "dump [URL] QUEUE FILE",
		Short: "Back up a queue's messages to a JSON lines file (- for stdout)",
		Long: `Write every message of QUEUE to FILE, one JSON object a line, byte-exact: the
body (text, or body_base64 when it is not UTF-8), the properties and the typed
headers, so that load publishes the same bytes again.

By default the queue is left as it was: messages are held unacknowledged while
they are written and handed back at the end (marked redelivered). --remove
acknowledges each batch once it is written and synced to FILE, so a dump that
dies loses nothing but may write some messages twice.`,
		Example: `  kombu dump redis://localhost:6379/0 tasks tasks.jsonl
  kombu dump amqp://localhost// poison - --remove | gzip > poison.jsonl.gz`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, rest, err := a.splitURL(args, 2, 2, "QUEUE FILE")
			if err != nil {
				return err
			}
			return a.dump(cmd.Context(), raw, rest[0], rest[1], &f)
		},
	}
	f.register(c)
	c.Flags().BoolVar(&f.remove, "remove", false, "acknowledge (remove) messages once written")
	c.Flags().IntVarP(&f.count, "count", "n", 0, "dump at most this many messages (0: all)")
	c.Flags().DurationVarP(&f.timeout, "timeout", "t", 2*time.Second, "end once the queue stayed empty this long")
	c.Flags().IntVar(&f.batch, "batch", 100, "messages per sync and ack with --remove")
	return c
}

// syncer is a file that can be flushed to disk (stdout may not be).
type syncer interface{ Sync() error }

func (a *app) dump(ctx context.Context, raw, queue, file string, f *dumpFlags) error {
	if f.count < 0 || f.batch < 1 || f.timeout <= 0 {
		return usagef("--count must not be negative, --batch at least 1, --timeout positive")
	}
	var out io.Writer = a.stdout
	if file != "-" {
		fh, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return usagef("cannot write dump: %v", err)
		}
		defer fh.Close()
		out = fh
	}
	s, err := a.dial(ctx, raw, f.connFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.queueInfo(ctx, queue); err != nil {
		return err
	}
	w := bufio.NewWriterSize(out, 1<<16)
	d := &drainer{s: s, queue: queue, batch: f.batch, idle: f.timeout, untilEmpty: true, limit: f.count}
	if !f.remove {
		d.batch, d.handBack = 0, true // everything stays held until the end
	}
	written := 0
	_, err = d.run(ctx, func(ds []*driver.Delivery) error {
		for _, m := range ds {
			r, err := newRecord(m)
			if err != nil {
				return fmt.Errorf("message %d: %w", written+1, err)
			}
			line, err := json.Marshal(r)
			if err != nil {
				return fmt.Errorf("message %d: %w", written+1, err)
			}
			w.Write(line)
			if err := w.WriteByte('\n'); err != nil {
				return err
			}
			written++
		}
		if !f.remove {
			return nil
		}
		// On disk before the broker forgets them.
		if err := w.Flush(); err != nil {
			return err
		}
		if sy, ok := out.(syncer); ok && file != "-" {
			if err := sy.Sync(); err != nil {
				return err
			}
		}
		return s.drv.Ack(ctx, ds[len(ds)-1].Tag, true)
	})
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if sy, ok := out.(syncer); ok && file != "-" && err == nil {
		err = sy.Sync()
	}
	verb := "dumped"
	if f.remove {
		verb = "dumped and removed"
	}
	fmt.Fprintf(a.stderr, "%s %d messages from %s\n", verb, written, queue)
	return err
}

type loadFlags struct {
	connFlags
	queue, exchange, routingKey string
	exchangeType                string
	noDeclare                   bool
	skipUnreadable              bool
	batch                       int
}

func (a *app) loadCommand() *cobra.Command {
	var f loadFlags
	c := &cobra.Command{
		Use:   "load FILE [URL]",
		Short: "Publish the messages of a dump file (- for stdin), byte-exact",
		Long: `Publish every message of FILE (written by dump) with the same body, properties
and headers. By default each goes back to the queue it was dumped from
(declared durable unless --no-declare); --queue picks another queue, --exchange
and --routing-key route instead (without --routing-key each message keeps the
routing key it had). A file is checked whole before anything is published.`,
		Example: `  kombu load tasks.jsonl amqp://guest:guest@localhost//
  kombu load tasks.jsonl redis://localhost:6379/0 --queue tasks.replay
  gunzip -c poison.jsonl.gz | kombu load - amqp://localhost// --exchange retry`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 || isURL(args[0]) {
				return usagef("want arguments FILE [URL]")
			}
			file := args[0]
			raw, _, err := a.splitURL(args[1:], 0, 0, "")
			if err != nil {
				return err
			}
			return a.load(cmd.Context(), file, raw, &f)
		},
	}
	f.register(c)
	c.Flags().StringVarP(&f.queue, "queue", "q", "", "publish every message to this queue")
	c.Flags().StringVarP(&f.exchange, "exchange", "e", "", "publish through this exchange")
	c.Flags().StringVar(&f.exchangeType, "exchange-type", "", exchangeTypeHelp)
	c.Flags().StringVarP(&f.routingKey, "routing-key", "r", "", "routing key with --exchange (default: each message's own)")
	c.Flags().BoolVar(&f.noDeclare, "no-declare", false, "do not declare the queues")
	c.Flags().BoolVar(&f.skipUnreadable, "skip-unreadable", false, "skip (and count) messages the transport could not read when they were dumped")
	c.Flags().IntVar(&f.batch, "batch", 100, "messages per round trip")
	return c
}

// dumpReader reads the records of a dump, one a line.
type dumpReader struct {
	r    *bufio.Reader
	line int
}

// next returns the next record with its message, or io.EOF.
func (d *dumpReader) next() (*record, driver.Message, error) {
	for {
		b, err := d.r.ReadBytes('\n')
		if len(b) == 0 && err != nil {
			return nil, driver.Message{}, err
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, driver.Message{}, err
		}
		d.line++
		if len(trimSpace(b)) == 0 {
			continue
		}
		var r record
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, driver.Message{}, usagef("line %d: not a dump record: %v", d.line, err)
		}
		m, err := r.message()
		if err != nil {
			return nil, driver.Message{}, usagef("line %d: %v", d.line, err)
		}
		return &r, m, nil
	}
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r' || b[len(b)-1] == '\n') {
		b = b[:len(b)-1]
	}
	return b
}

func (a *app) openDump(file string) (io.Reader, func(), error) {
	if file == "-" {
		return a.stdin, func() {}, nil
	}
	fh, err := os.Open(file)
	if err != nil {
		return nil, nil, usagef("cannot read dump: %v", err)
	}
	return fh, func() { fh.Close() }, nil
}

func (a *app) load(ctx context.Context, file, raw string, f *loadFlags) error {
	if f.batch < 1 {
		return usagef("--batch must be at least 1")
	}
	if f.queue != "" && f.exchange != "" {
		return usagef("give --queue or --exchange, not both")
	}
	if f.exchange == "" && f.routingKey != "" {
		return usagef("--routing-key needs --exchange")
	}
	if file != "-" {
		// Check the whole file first: a bad line must not leave half a
		// restore behind.
		in, done, err := a.openDump(file)
		if err != nil {
			return err
		}
		dr := &dumpReader{r: bufio.NewReaderSize(in, 1<<16)}
		for {
			r, _, err := dr.next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				done()
				return fmt.Errorf("%s: %w", file, err)
			}
			if f.queue == "" && f.exchange == "" && r.Queue == "" {
				done()
				return usagef("%s: line %d names no queue: give --queue or --exchange", file, dr.line)
			}
			if r.DecodeError != "" && !f.skipUnreadable {
				done()
				return usagef("%s: line %d is a message the transport could not read (%s): its body is the raw bytes, "+
					"not a message to publish; give --skip-unreadable to load the others", file, dr.line, r.DecodeError)
			}
		}
		done()
	}
	in, done, err := a.openDump(file)
	if err != nil {
		return err
	}
	defer done()
	s, err := a.dial(ctx, raw, f.connFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.declareExchange(ctx, f.exchange, f.exchangeType); err != nil {
		return err
	}
	declared := map[string]bool{}
	dr := &dumpReader{r: bufio.NewReaderSize(in, 1<<16)}
	var pubs []*driver.Publishing
	loaded, skipped := 0, 0
	flush := func() error {
		if err := publishAll(ctx, s.drv, pubs, f.exchange == "" && !f.noDeclare); err != nil {
			return fmt.Errorf("after %d messages: %w", loaded, err)
		}
		loaded += len(pubs)
		pubs = pubs[:0]
		return nil
	}
	for {
		r, m, err := dr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s (%d messages loaded): %w", file, loaded, err)
		}
		if r.DecodeError != "" {
			if !f.skipUnreadable {
				return usagef("%s: line %d is a message the transport could not read; give --skip-unreadable to load the others", file, dr.line)
			}
			skipped++
			continue
		}
		p := &driver.Publishing{Message: m, Mandatory: true} // unroutable is an error, not a loss
		switch {
		case f.exchange != "":
			p.Exchange, p.RoutingKey = f.exchange, f.routingKey
			if p.RoutingKey == "" {
				p.RoutingKey = r.RoutingKey
			}
		default:
			q := f.queue
			if q == "" {
				q = r.Queue
			}
			if q == "" {
				return usagef("%s: line %d names no queue: give --queue or --exchange", file, dr.line)
			}
			if !declared[q] && !f.noDeclare {
				if _, err := s.declareQueue(ctx, q); err != nil {
					return fmt.Errorf("queue %s: %w", q, err)
				}
				declared[q] = true
			}
			p.RoutingKey = q
		}
		pubs = append(pubs, p)
		if len(pubs) == f.batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "loaded %d messages\n", loaded)
	if skipped > 0 {
		fmt.Fprintf(a.stderr, "skipped %d unreadable messages (their lines hold decode_error)\n", skipped)
	}
	return nil
}
