package function

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/dronetrack/dronetrack/core/tracing"
)

// traceOf is ingest's span for the request in ctx: the one ServeHTTP read
// from the drone's traceparent header, or a new trace when the handler was
// called without it (tests calling the paths directly).
func traceOf(ctx context.Context) tracing.Context {
	if tc := tracing.FromContext(ctx); tc.Valid() {
		return tc
	}
	return tracing.New()
}

// continueEventTrace lets a drone that speaks CloudEvents carry its trace
// the CloudEvents way, as the first event's traceparent extension, when the
// request had no valid traceparent header (which wins when present).
func continueEventTrace(ctx context.Context, first event.Event) context.Context {
	if tc := tracing.FromContext(ctx); tc.Valid() && tc.ParentID != [8]byte{} {
		return ctx
	}
	if tc, ok := tracing.FromEvent(first); ok {
		return tracing.NewContext(ctx, tc)
	}
	return ctx
}
