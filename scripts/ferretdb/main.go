// Command ferretdb runs FerretDB (a MongoDB-wire-compatible server on
// SQLite) for kombu-go's tests: the stock cmd/ferretdb of v1.24 panics at
// start in a module build (a generated version file is missing), so this
// main embeds github.com/FerretDB/FerretDB/ferretdb instead.
//
//	ferretdb -listen 127.0.0.1:PORT -data DIR [-log FILE]
//
// It is its own module so that the library's go.mod does not carry
// FerretDB; scripts/services.d/mongodb.sh builds and starts it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on (loopback only)")
	data := flag.String("data", "", "SQLite data directory (required; a real directory, not :memory:)")
	level := flag.String("log-level", "warn", "log level: debug, info, warn or error")
	flag.Parse()
	if err := run(*listen, *data, *level); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
}

func run(listen, data, level string) error {
	if data == "" {
		return fmt.Errorf("-data is required")
	}
	if !strings.HasPrefix(listen, "127.0.0.1:") {
		return fmt.Errorf("-listen %q: only 127.0.0.1 is allowed", listen)
	}
	dir, err := filepath.Abs(data)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return f.Run(ctx)
}
