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

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
)

type inspectFlags struct {
	connFlags
	asJSON bool
}

// queueReport is one queue's line of inspect.
type queueReport struct {
	Name      string `json:"name"`
	Exists    bool   `json:"exists"`
	Messages  int    `json:"messages"`
	Consumers int    `json:"consumers"`
}

type inspectReport struct {
	Transport   string         `json:"transport"`
	URL         string         `json:"url"` // password masked
	Host        string         `json:"host"`
	Port        int            `json:"port"`
	VirtualHost string         `json:"virtual_host,omitempty"`
	Features    map[string]any `json:"features"`
	Queues      []queueReport  `json:"queues"`
}

func (a *app) inspectCommand() *cobra.Command {
	var f inspectFlags
	c := &cobra.Command{
		Use:   "inspect [URL] [QUEUE...]",
		Short: "Show the transport, its features and each queue's length and consumers",
		Long: `Show what the transport can tell: its name and features, and for each QUEUE
whether it exists, its ready messages and its consumers (a transport that cannot
count consumers reports 0). A table by default, a JSON object with --json.
Listing bindings needs the broker's management interface, which no transport
offers through kombu's contract, so they are not shown.`,
		Example: `  kombu inspect amqp://guest:guest@localhost// tasks retries
  kombu inspect redis://localhost:6379/0 tasks --json | jq '.queues[0].messages'`,
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
	for _, q := range queues {
		qi, err := s.queueInfo(ctx, q)
		switch {
		case errors.Is(err, driver.ErrNotFound):
			rep.Queues = append(rep.Queues, queueReport{Name: q})
			// AMQP closes the channel on a failed passive declare.
			if err := s.reopen(ctx); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			rep.Queues = append(rep.Queues, queueReport{Name: q, Exists: true, Messages: qi.Messages, Consumers: qi.Consumers})
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
	fmt.Fprintln(tw, "QUEUE\tMESSAGES\tCONSUMERS\t")
	for _, q := range rep.Queues {
		if !q.Exists {
			fmt.Fprintf(tw, "%s\t-\t-\t(not found)\n", q.Name)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t\n", q.Name, q.Messages, q.Consumers)
	}
	tw.Flush()
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
