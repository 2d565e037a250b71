package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kombu-go/kombu/kombu/driver"
)

// entityFlags are the attributes of declare, delete, bind and unbind.
type entityFlags struct {
	connFlags
	exchangeType          string
	durable, autoDelete   bool
	exclusive, internal   bool
	args                  []string
	routingKey            string
	ifUnused, ifEmpty     bool
	bindExchange          string
	exchangeBindingTarget bool
}

// parseArgs reads --arg NAME=VALUE pairs (VALUE is JSON when it parses).
func parseArgs(pairs []string) (map[string]any, error) {
	h, err := parseHeaders(pairs, "")
	if err != nil {
		return nil, usagef("%s", strings.ReplaceAll(err.Error(), "--header", "--arg"))
	}
	return h, nil
}

func kindArg(kind string) error {
	if kind != "queue" && kind != "exchange" {
		return usagef("want queue or exchange, got %q", kind)
	}
	return nil
}

func (a *app) purgeCommand() *cobra.Command {
	var f connFlags
	c := &cobra.Command{
		Use:     "purge [URL] QUEUE...",
		Short:   "Remove every ready message of the queues",
		Example: `  kombu purge redis://localhost:6379/0 tasks retries`,
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, queues, err := a.splitURL(args, 1, -1, "QUEUE...")
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			s, err := a.dial(ctx, raw, f)
			if err != nil {
				return err
			}
			defer s.Close()
			for _, q := range queues {
				if _, err := s.queueInfo(ctx, q); err != nil {
					return err
				}
				n, err := s.drv.QueuePurge(ctx, q)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "purged %d messages from %s\n", n, q)
			}
			return nil
		},
	}
	f.register(c)
	return c
}

func (a *app) declareCommand() *cobra.Command {
	var f entityFlags
	c := &cobra.Command{
		Use:   "declare [URL] queue|exchange NAME",
		Short: "Declare a queue (optionally bound to an exchange) or an exchange",
		Example: `  kombu declare amqp://localhost// exchange events --type topic
  kombu declare amqp://localhost// queue audit --bind events --routing-key '#'
  kombu declare redis://localhost:6379/0 queue tasks --arg x-max-priority=9`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, rest, err := a.splitURL(args, 2, 2, "queue|exchange NAME")
			if err != nil {
				return err
			}
			if err := kindArg(rest[0]); err != nil {
				return err
			}
			xargs, err := parseArgs(f.args)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			s, err := a.dial(ctx, raw, f.connFlags)
			if err != nil {
				return err
			}
			defer s.Close()
			name := rest[1]
			if rest[0] == "exchange" {
				err := s.drv.ExchangeDeclare(ctx, driver.Exchange{Name: name, Type: f.exchangeType, Durable: f.durable,
					AutoDelete: f.autoDelete, Internal: f.internal, Args: xargs})
				if err == nil {
					fmt.Fprintf(a.stdout, "declared %s exchange %s\n", f.exchangeType, name)
				}
				return err
			}
			info, err := s.drv.QueueDeclare(ctx, driver.Queue{Name: name, Durable: f.durable, Exclusive: f.exclusive,
				AutoDelete: f.autoDelete, Args: xargs})
			if err != nil {
				return err
			}
			if f.bindExchange != "" {
				if cmd.Flags().Changed("type") {
					if err := s.declareExchange(ctx, f.bindExchange, f.exchangeType); err != nil {
						return err
					}
				}
				if err := s.drv.QueueBind(ctx, driver.Binding{Queue: info.Name, Exchange: f.bindExchange, RoutingKey: f.routingKey}); err != nil {
					return err
				}
			}
			fmt.Fprintf(a.stdout, "declared queue %s (%d messages, %d consumers)\n", info.Name, info.Messages, info.Consumers)
			return nil
		},
	}
	f.register(c)
	fl := c.Flags()
	fl.StringVar(&f.exchangeType, "type", "direct", "exchange type: direct, topic, fanout or headers (with queue --bind: declare the exchange with it first, as redis needs)")
	fl.BoolVar(&f.durable, "durable", true, "survive a broker restart")
	fl.BoolVar(&f.autoDelete, "auto-delete", false, "delete when the last consumer (queue) or binding (exchange) goes")
	fl.BoolVar(&f.exclusive, "exclusive", false, "queue only: used by this connection only")
	fl.BoolVar(&f.internal, "internal", false, "exchange only: no direct publishes")
	fl.StringArrayVar(&f.args, "arg", nil, "x-argument NAME=VALUE, VALUE JSON when it parses (repeatable)")
	fl.StringVar(&f.bindExchange, "bind", "", "queue only: bind it to this exchange")
	fl.StringVarP(&f.routingKey, "routing-key", "r", "", "routing key of --bind")
	_ = c.RegisterFlagCompletionFunc("type", fixedCompletion("direct", "topic", "fanout", "headers"))
	c.ValidArgsFunction = kindCompletion
	return c
}

// kindCompletion completes the queue|exchange argument after the URL.
func kindCompletion(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return schemeCompletion()
	}
	if len(args) == 1 {
		return []string{"queue", "exchange"}, cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}

func (a *app) deleteCommand() *cobra.Command {
	var f entityFlags
	c := &cobra.Command{
		Use:   "delete [URL] queue|exchange NAME",
		Short: "Delete a queue (with its messages) or an exchange",
		Example: `  kombu delete amqp://localhost// queue old-tasks --if-empty
  kombu delete amqp://localhost// exchange events`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, rest, err := a.splitURL(args, 2, 2, "queue|exchange NAME")
			if err != nil {
				return err
			}
			if err := kindArg(rest[0]); err != nil {
				return err
			}
			ctx := cmd.Context()
			s, err := a.dial(ctx, raw, f.connFlags)
			if err != nil {
				return err
			}
			defer s.Close()
			if rest[0] == "exchange" {
				if err := s.drv.ExchangeDelete(ctx, rest[1], f.ifUnused); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "deleted exchange %s\n", rest[1])
				return nil
			}
			n, err := s.drv.QueueDelete(ctx, rest[1], f.ifUnused, f.ifEmpty)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "deleted queue %s (%d messages)\n", rest[1], n)
			return nil
		},
	}
	f.register(c)
	c.Flags().BoolVar(&f.ifUnused, "if-unused", false, "only if it has no consumers (queue) or bindings (exchange)")
	c.Flags().BoolVar(&f.ifEmpty, "if-empty", false, "queue only: only if it holds no message")
	c.ValidArgsFunction = kindCompletion
	return c
}

func (a *app) bindCommand() *cobra.Command   { return a.bindingCommand(true) }
func (a *app) unbindCommand() *cobra.Command { return a.bindingCommand(false) }

// bindingCommand builds bind and unbind, which take the same arguments.
func (a *app) bindingCommand(bind bool) *cobra.Command {
	var f entityFlags
	verb := "bind"
	short := "Bind a queue (or with --exchange-to-exchange, an exchange) to an exchange"
	if !bind {
		verb = "unbind"
		short = "Remove a binding made by bind"
	}
	c := &cobra.Command{
		Use:   verb + " [URL] QUEUE EXCHANGE",
		Short: short,
		Example: fmt.Sprintf(`  kombu %[1]s amqp://localhost// audit events --routing-key 'user.*'
  kombu %[1]s amqp://localhost// audit headers-ex --arg x-match=all --arg kind=invoice`, verb),
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, rest, err := a.splitURL(args, 2, 2, "QUEUE EXCHANGE")
			if err != nil {
				return err
			}
			xargs, err := parseArgs(f.args)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			s, err := a.dial(ctx, raw, f.connFlags)
			if err != nil {
				return err
			}
			defer s.Close()
			dest, source := rest[0], rest[1]
			if err := s.declareExchange(ctx, source, f.exchangeType); err != nil {
				return err
			}
			if f.exchangeBindingTarget {
				eb, ok := s.drv.(driver.ExchangeBinder)
				if !ok {
					return fmt.Errorf("%s: exchange-to-exchange bindings: %w", s.conn.TransportName(), driver.ErrNotSupported)
				}
				if bind {
					err = eb.ExchangeBind(ctx, dest, source, f.routingKey, xargs)
				} else {
					err = eb.ExchangeUnbind(ctx, dest, source, f.routingKey, xargs)
				}
			} else {
				b := driver.Binding{Queue: dest, Exchange: source, RoutingKey: f.routingKey, Args: xargs}
				if bind {
					err = s.drv.QueueBind(ctx, b)
				} else {
					err = s.drv.QueueUnbind(ctx, b)
				}
			}
			if err == nil {
				fmt.Fprintf(a.stdout, "%s %s %s %s (routing key %q)\n", verb, dest, map[bool]string{true: "to", false: "from"}[bind], source, f.routingKey)
			}
			return err
		},
	}
	f.register(c)
	c.Flags().StringVarP(&f.routingKey, "routing-key", "r", "", "routing key (binding key)")
	c.Flags().StringArrayVar(&f.args, "arg", nil, "binding argument NAME=VALUE (headers exchanges; repeatable)")
	c.Flags().BoolVar(&f.exchangeBindingTarget, "exchange-to-exchange", false, "the first name is an exchange, not a queue")
	c.Flags().StringVar(&f.exchangeType, "exchange-type", "", exchangeTypeHelp)
	return c
}

// featureMap names a transport's features as docs/transports.md does.
func featureMap(ft driver.Features) map[string]any {
	prio := map[driver.PriorityOrder]string{driver.PriorityNone: "none", driver.PriorityHighFirst: "high-first",
		driver.PriorityLowFirst: "low-first"}[ft.Priority]
	return map[string]any{
		"priority": prio, "ttl": ft.TTL, "queue_limits": ft.QueueLimits, "headers_exchange": ft.Headers,
		"durable_fanout": ft.DurableFanout, "mandatory": ft.Mandatory, "persistent": ft.Persistent,
		"leases": ft.Leases, "confirms": ft.Confirms, "exchange_binding": ft.ExchangeBinding,
		"shared_state": ft.SharedState, "list_bindings": ft.ListBindings,
	}
}
