package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
)

type inspectFlags struct {
	connFlags
	asJSON bool
}

// queueReport is one queue's line of inspect. Bindings is null where the
// transport cannot list them (inspectReport.BindingsNote says why).
type queueReport struct {
	Name      string           `json:"name"`
	Exists    bool             `json:"exists"`
	Messages  int              `json:"messages"`
	Consumers int              `json:"consumers"`
	Bindings  *[]bindingReport `json:"bindings"`
}

// bindingReport is one binding of a queue. Arguments are in the typed
// JSON of dump records, and absent where the transport does not know them
// (a binding another process made).
type bindingReport struct {
	Exchange   string          `json:"exchange"`
	RoutingKey string          `json:"routing_key"`
	Arguments  json.RawMessage `json:"arguments,omitempty"`
}

// bindingsNotListed is the note of a transport that cannot list bindings.
const bindingsNotListed = "not available: the transport cannot list bindings"

// amqpBindingsNote says where RabbitMQ's bindings can be seen instead.
const amqpBindingsNote = "not available over AMQP 0-9-1, which has no method to list bindings (see rabbitmqctl list_bindings or the management UI)"

type inspectReport struct {
	Transport   string         `json:"transport"`
	URL         string         `json:"url"` // password masked
	Host        string         `json:"host"`
	Port        int            `json:"port"`
	VirtualHost string         `json:"virtual_host,omitempty"`
	Features    map[string]any `json:"features"`
	Queues      []queueReport  `json:"queues"`
	// BindingsNote says why no bindings are listed, when the transport
	// cannot list them.
	BindingsNote string `json:"bindings_note,omitempty"`
}

func (a *app) inspectCommand() *cobra.Command {
	var f inspectFlags
	c := &cobra.Command{
		Use:   "inspect [URL] [QUEUE...]",
		Short: "Show the transport, its features and each queue's length, consumers and bindings",
		Long: `Show what the transport can tell: its name and features, and for each QUEUE
whether it exists, its ready messages, its consumers (a transport that cannot
count consumers reports 0) and its bindings (exchange, routing key, arguments
where known). A table by default, a JSON object with --json.
Virtual transports list the bindings their server keeps (redis, SQL, mongodb,
couchdb: those other processes made too; beanstalk, sqs: this process's only).
AMQP 0-9-1 has no method to list bindings: they show as n/a, with a note.`,
		Example: `  kombu inspect amqp://guest:guest@localhost// tasks retries
  kombu inspect redis://localhost:6379/0 tasks --json | jq '.queues[0].messages'
  kombu inspect redis://localhost:6379/0 tasks --json | jq -r '.queues[0].bindings[] | "\(.exchange) \(.routing_key)"'`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, queues, err := a.splitURL(args, 0, -1, "[QUEUE...]")
			if err != nil {
				return err
			}
			return a.inspect(cmd.Context(), raw, queues, &f)
		},
	}
	f.register(c)
	c.Flags().BoolVar(&f.asJSON, "json", false, "print a JSON object instead of a table")
	return c
}

func (a *app) inspect(ctx context.Context, raw string, queues []string, f *inspectFlags) error {
	s, err := a.dial(ctx, raw, f.connFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	info := s.conn.Info()
	rep := inspectReport{Transport: info.Transport, URL: info.URI, Host: info.Hostname, Port: info.Port,
		VirtualHost: info.VirtualHost, Features: featureMap(info.Features), Queues: []queueReport{}}
	if !info.Features.ListBindings {
		rep.BindingsNote = bindingsNote(rep.Transport)
	}
	for _, q := range queues {
		qi, err := s.queueInfo(ctx, q)
		switch {
		case errors.Is(err, driver.ErrNotFound):
			// AMQP closes the channel on a failed passive declare.
			if err := s.reopen(ctx); err != nil {
				return err
			}
			// Bindings may outlive their queue (or a redis queue that
			// holds no message, which does not exist for kombu): show them.
			qr := queueReport{Name: q}
			if err := s.listBindings(ctx, &qr, &rep); err != nil {
				return err
			}
			rep.Queues = append(rep.Queues, qr)
		case err != nil:
			return err
		default:
			qr := queueReport{Name: q, Exists: true, Messages: qi.Messages, Consumers: qi.Consumers}
			if err := s.listBindings(ctx, &qr, &rep); err != nil {
				return err
			}
			rep.Queues = append(rep.Queues, qr)
		}
	}
	if f.asJSON {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "%s\n", b)
		return err
	}
	writeInspectTable(a.stdout, &rep)
	var missing []string
	for _, q := range rep.Queues {
		if !q.Exists {
			missing = append(missing, q.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: queue %s", driver.ErrNotFound, strings.Join(missing, ", "))
	}
	return nil
}

func writeInspectTable(out io.Writer, rep *inspectReport) {
	fmt.Fprintf(out, "transport  %s  %s\n", rep.Transport, rep.URL)
	names := make([]string, 0, len(rep.Features))
	for k := range rep.Features {
		names = append(names, k)
	}
	sort.Strings(names)
	var fs []string
	for _, k := range names {
		switch v := rep.Features[k].(type) {
		case bool:
			if v {
				fs = append(fs, k)
			}
		default:
			fs = append(fs, fmt.Sprintf("%s=%v", k, v))
		}
	}
	fmt.Fprintf(out, "features   %s\n", strings.Join(fs, " "))
	if len(rep.Queues) == 0 {
		return
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "QUEUE\tMESSAGES\tCONSUMERS\tBINDINGS\t")
	for _, q := range rep.Queues {
		if !q.Exists {
			fmt.Fprintf(tw, "%s\t-\t-\t%s\t (not found)\n", q.Name, bindingCount(q))
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t\n", q.Name, q.Messages, q.Consumers, bindingCount(q))
	}
	tw.Flush()
	writeBindingsTable(out, rep)
}

// bindingCount is the BINDINGS cell: how many, or n/a where the transport
// cannot tell.
func bindingCount(q queueReport) string {
	if q.Bindings == nil {
		return "n/a"
	}
	return fmt.Sprint(len(*q.Bindings))
}

// writeBindingsTable lists the bindings of the queues, or says why there
// are none to list.
func writeBindingsTable(out io.Writer, rep *inspectReport) {
	if rep.BindingsNote != "" {
		fmt.Fprintf(out, "\nbindings   %s\n", rep.BindingsNote)
		return
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	rows := 0
	for _, q := range rep.Queues {
		if q.Bindings == nil {
			continue
		}
		for _, b := range *q.Bindings {
			if rows == 0 {
				fmt.Fprintln(tw, "\nQUEUE\tEXCHANGE\tROUTING KEY\tARGUMENTS")
			}
			rows++
			args := "-"
			if b.Arguments != nil {
				args = string(b.Arguments)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", q.Name, b.Exchange, printable(b.RoutingKey), args)
		}
	}
	tw.Flush()
}

// printable shows an empty routing key as "" rather than as nothing.
func printable(rk string) string {
	if rk == "" {
		return `""`
	}
	return rk
}

func bindingsNote(transport string) string {
	if transport == "amqp" {
		return amqpBindingsNote
	}
	return bindingsNotListed
}

// listBindings fills in qr's bindings, or rep's note when the transport
// cannot list them.
func (s *session) listBindings(ctx context.Context, qr *queueReport, rep *inspectReport) error {
	if rep.BindingsNote != "" {
		return nil
	}
	bs, err := kombu.Queue{Name: qr.Name}.ListBindings(ctx, s.ch)
	if errors.Is(err, driver.ErrNotSupported) {
		rep.BindingsNote = bindingsNote(rep.Transport)
		return nil
	}
	if err != nil {
		return err
	}
	list := make([]bindingReport, 0, len(bs))
	for _, b := range bs {
		br := bindingReport{Exchange: b.Exchange, RoutingKey: b.RoutingKey}
		if b.Args != nil {
			if br.Arguments, err = encodeTable(b.Args); err != nil {
				return fmt.Errorf("binding arguments of %s to %s: %w", qr.Name, b.Exchange, err)
			}
		}
		list = append(list, br)
	}
	qr.Bindings = &list
	return nil
}

// reopen replaces the session's channel, after an error closed it.
func (s *session) reopen(ctx context.Context) error {
	_ = s.ch.Close()
	ch, err := s.conn.Channel(ctx)
	if err != nil {
		return err
	}
	s.ch, s.drv = ch, ch.Driver()
	return nil
}

// schemeCompletion offers the registered URL schemes.
func schemeCompletion() ([]string, cobra.ShellCompDirective) {
	var out []string
	for _, s := range transport.Schemes() {
		out = append(out, s+"://")
	}
	return out, cobra.ShellCompDirectiveNoSpace | cobra.ShellCompDirectiveNoFileComp
}

// urlFirstCompletion offers URL schemes for the first argument and leaves
// the others (queue names, files) to the shell.
func urlFirstCompletion(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return schemeCompletion()
	}
	return nil, cobra.ShellCompDirectiveDefault
}
