package function

import (
	"context"

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
