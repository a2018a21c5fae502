// Package logging builds the structured logger every function uses, so
// their lines share one shape (JSON, a "function" attribute, LOG_LEVEL).
package logging

import (
	"io"
	"log/slog"
	"os"
)

// New returns a JSON logger writing to w (stderr when nil) at level (a
// slog level name such as "debug" or "WARN"; empty or unknown means info),
// with every line naming the function.
func New(w io.Writer, function, level string) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil || level == "" {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})).With("function", function)
}
