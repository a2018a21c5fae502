package logging

import (
	"context"
	"log/slog"
	"slices"
)

// Deferred returns a logger that writes what l writes, but whose With is
// cheap: the attributes are kept aside and handed to l's handler only when
// a line is written. The functions build a logger with the event's ids
// for every event they handle and write with it only when something goes
// wrong; slog's JSON handler renders attributes at With, which cost as much
// as a small part of the event's own work.
func Deferred(l *slog.Logger) *slog.Logger {
	if _, ok := l.Handler().(*deferredHandler); ok {
		return l
	}
	return slog.New(&deferredHandler{h: l.Handler()})
}

// deferredHandler holds the attributes of With calls not yet handed to h.
type deferredHandler struct {
	h     slog.Handler
	attrs []slog.Attr
}

func (d *deferredHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return d.h.Enabled(ctx, level)
}

func (d *deferredHandler) Handle(ctx context.Context, r slog.Record) error {
	return d.flush().Handle(ctx, r)
}

func (d *deferredHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return d
	}
	return &deferredHandler{h: d.h, attrs: append(slices.Clip(d.attrs), attrs...)}
}

// WithGroup applies the attributes so far outside the group, as slog does.
func (d *deferredHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return d
	}
	return &deferredHandler{h: d.flush().WithGroup(name)}
}

func (d *deferredHandler) flush() slog.Handler {
	if len(d.attrs) == 0 {
		return d.h
	}
	return d.h.WithAttrs(d.attrs)
}
