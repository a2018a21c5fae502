package redis

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// logger carries go-redis's own log lines (dial failures while Redis
// is down, pool notices) into the function's slog logger, so they are JSON
// with the function attribute like every other line instead of plain text
// on stderr. While Redis is down the client retries every dial and would
// print a line each time: at most one line per period goes out, with the
// count of the lines folded into it.
type logger struct {
	log     *slog.Logger
	period  time.Duration
	now     func() time.Time
	last    atomic.Int64 // unix nanoseconds of the last line written
	dropped atomic.Int64
}

func (l *logger) Printf(ctx context.Context, format string, v ...any) {
	now := l.now().UnixNano()
	last := l.last.Load()
	if now-last < int64(l.period) || !l.last.CompareAndSwap(last, now) {
		l.dropped.Add(1)
		return
	}
	l.log.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...), "similar_lines_dropped", l.dropped.Swap(0))
}

var loggerOnce sync.Once

// setLogger routes go-redis's logging (process-wide in go-redis) to
// log, once per process: the first cache opened on Redis names it.
func setLogger(log *slog.Logger) {
	loggerOnce.Do(func() {
		redis.SetLogger(&logger{log: log, period: time.Second, now: time.Now})
	})
}
