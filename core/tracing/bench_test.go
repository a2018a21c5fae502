package tracing_test

import (
	"net/http"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/dronetrack/dronetrack/core/tracing"
)

// BenchmarkIngestHop is ingest's per-request cost: continue the drone's
// trace from its header and stamp the child on the event.
func BenchmarkIngestHop(b *testing.B) {
	h := http.Header{}
	h.Set("traceparent", example)
	e := event.New()
	b.ReportAllocs()
	for b.Loop() {
		tracing.FromHeader(h).Inject(&e)
	}
}

func BenchmarkChild(b *testing.B) {
	c := tracing.New()
	b.ReportAllocs()
	for b.Loop() {
		_ = c.Child()
	}
}

func BenchmarkInject(b *testing.B) {
	c := tracing.New()
	e := event.New()
	b.ReportAllocs()
	for b.Loop() {
		c.Inject(&e)
	}
}

func BenchmarkFromHeader(b *testing.B) {
	h := http.Header{}
	h.Set("traceparent", example)
	b.ReportAllocs()
	for b.Loop() {
		_ = tracing.FromHeader(h)
	}
}
