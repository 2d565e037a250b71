package redis

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/redis/go-redis/v9"
)

// go-redis has one logger for the whole process (redis.SetLogger), which
// writes to stderr by default. On the first dial, the transport installs
// clientLogs in its place, which sends each line to the Logger of every
// live store (the kombu Connection's Options.Logger, given through
// Connector.SetLogger), once per distinct logger: go-redis does not say
// which client a line is about. A store without a Logger adds nothing, so
// with none the lines are dropped, as kombu drops what it would log. A
// program that uses go-redis itself and wants its own logger should call
// redis.SetLogger after dialling kombu-go's first redis connection.
var clientLogs = &logRouter{live: map[*Store]*slog.Logger{}}

var installLogs sync.Once

type logRouter struct {
	mu   sync.Mutex
	live map[*Store]*slog.Logger
}

// add registers a store's logger, installing the router on first use.
func (r *logRouter) add(s *Store, l *slog.Logger) {
	installLogs.Do(func() { redis.SetLogger(r) })
	r.mu.Lock()
	r.live[s] = l
	r.mu.Unlock()
}

func (r *logRouter) remove(s *Store) {
	r.mu.Lock()
	delete(r.live, s)
	r.mu.Unlock()
}

// Printf implements go-redis's internal.Logging.
func (r *logRouter) Printf(ctx context.Context, format string, v ...any) {
	r.mu.Lock()
	var to []*slog.Logger
	for _, l := range r.live {
		if l != nil && !contains(to, l) {
			to = append(to, l)
		}
	}
	r.mu.Unlock()
	if len(to) == 0 {
		return
	}
	line := fmt.Sprintf(format, v...)
	for _, l := range to {
		l.LogAttrs(ctx, slog.LevelWarn, line, slog.String("transport", "redis"), slog.String("source", "go-redis"))
	}
}

func contains(ls []*slog.Logger, l *slog.Logger) bool {
	for _, x := range ls {
		if x == l {
			return true
		}
	}
	return false
}
