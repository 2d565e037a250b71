// Command kombu publishes, consumes, inspects, moves and backs up messages
// on any broker kombu-go has a transport for, chosen by URL:
//
//	kombu publish redis://localhost:6379/0 --queue tasks '{"id": 1}'
//	kombu consume amqp://guest:guest@localhost// tasks --count 10
//	kombu inspect redis://localhost:6379/0 tasks
//	kombu move redis://localhost:6379/0 tasks amqp://guest:guest@localhost//
//	kombu dump redis://localhost:6379/0 tasks tasks.jsonl
//	kombu load tasks.jsonl amqp://guest:guest@localhost//
//
// A URL argument may be left out when KOMBU_URL is set. Messages are
// printed and stored as JSON lines, byte-exact (see docs/cli.md); exit
// codes are documented there too. Passwords are never printed.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// app is one run of the command: its streams, environment and the secrets
// to keep out of everything it prints.
type app struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	secret secrets
}

// run executes the command line args and returns the exit code. It never
// panics: a panic anywhere below becomes a one-line error.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) (code int) {
	a := &app{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	for _, arg := range args {
		a.secret.addURL(arg)
	}
	if u := getenv("KOMBU_URL"); u != "" {
		a.secret.addURL(u)
	}
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintln(stderr, "kombu: internal error:", oneLine(a.secret.mask(fmt.Sprint(p))))
			code = exitFailure
		}
	}()
	root := a.rootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, errInterrupted)) {
		err = errInterrupted
	}
	msg := strings.TrimPrefix(oneLine(a.secret.mask(err.Error())), "kombu: ")
	fmt.Fprintln(stderr, "kombu: "+msg)
	return exitCode(err)
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "kombu",
		Short: "Publish, consume, inspect, move and back up messages on any broker by URL",
		Long: `kombu works on every broker kombu-go has a transport for; the URL picks it
(amqp://, redis://, memory://, ...). A URL argument may be left out when the
KOMBU_URL environment variable is set. Messages are printed and stored as JSON
lines, byte-exact; passwords are never printed.

Exit codes: 0 ok, 1 the broker failed the operation, 2 bad input (flags, URL,
file, body), 3 broker unreachable (wrong credentials: 1), 4 queue or exchange not found, 5 no message
(get) or fewer than --count before --timeout (consume), 130 interrupted.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err: err} })
	root.AddCommand(
		a.publishCommand(), a.consumeCommand(), a.getCommand(),
		a.purgeCommand(), a.declareCommand(), a.deleteCommand(), a.bindCommand(), a.unbindCommand(),
		a.inspectCommand(), a.moveCommand(), a.dumpCommand(), a.loadCommand(), a.checkCommand(),
	)
	for _, c := range root.Commands() {
		c.SetFlagErrorFunc(root.FlagErrorFunc())
		if c.ValidArgsFunction == nil && c.Name() != "load" {
			c.ValidArgsFunction = urlFirstCompletion
		}
	}
	return root
}
