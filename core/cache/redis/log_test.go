package redis

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// go-redis's lines come out as JSON through the function's logger, and a
// burst of them (a dial failure per retry while Redis is down) becomes one
// line per period that counts what it folded in.
func TestRedisLoggerIsJSONAndRateLimited(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	l := &logger{log: slog.New(slog.NewJSONHandler(&buf, nil)).With("function", "serve-map"),
		period: time.Second, now: func() time.Time { return now }}
	ctx := context.Background()
	for range 5 {
		l.Printf(ctx, "redis: connection pool: failed to dial after %d attempts: %v", 3, "connection refused")
	}
	now = now.Add(time.Second)
	l.Printf(ctx, "redis: connection pool: failed to dial after %d attempts: %v", 4, "connection refused")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("wrote %d lines, want 2 (one per second):\n%s", len(lines), buf.String())
	}
	var first, second struct {
		Level, Msg, Function, Detail string
		Dropped                      int `json:"similar_lines_dropped"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatalf("line is not JSON: %v: %s", err, lines[0])
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatalf("line is not JSON: %v: %s", err, lines[1])
	}
	if first.Level != "WARN" || first.Function != "serve-map" || first.Detail != "redis: connection pool: failed to dial after 3 attempts: connection refused" || first.Dropped != 0 {
		t.Errorf("first line = %+v", first)
	}
	if second.Dropped != 4 || !strings.Contains(second.Detail, "after 4 attempts") {
		t.Errorf("second line = %+v, want 4 dropped lines folded in", second)
	}
}
