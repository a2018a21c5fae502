package function

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/core/tracing"
)

// The event's log line carries the trace id from the state.updated event's
// traceparent and links cache-refresh's span to process's.
func TestLogsTraceOfEvent(t *testing.T) {
	f := New()
	if err := f.Start(context.Background(), map[string]string{"CACHE_URL": "local://" + uniq("cr")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Stop(context.Background()) })
	var logs testenv.LogBuffer
	f.log = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewServer(http.HandlerFunc(f.Handle))
	t.Cleanup(srv.Close)

	process := tracing.New()
	e := stateEvent(t, uniq("tenant"), "d1", 1, 47)
	process.Inject(&e)
	if got := send(t, srv.URL, e); got != http.StatusNoContent {
		t.Fatalf("status = %d, want 204", got)
	}
	for _, want := range []string{`"trace_id":"` + process.TraceIDString() + `"`,
		`"parent_span_id":"` + process.SpanIDString() + `"`, `"msg":"state cached"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, logs.String())
		}
	}
}

// /metrics answers before Start (Knative scrapes a starting pod too) and
// counts outcomes after.
func TestMetricsServed(t *testing.T) {
	srv := start(t, "local://"+uniq("cr"))
	tenant := uniq("tenant")
	send(t, srv.URL, stateEvent(t, tenant, "d1", 10, 47))
	send(t, srv.URL, stateEvent(t, tenant, "d1", 5, 47))
	send(t, srv.URL, stateEvent(t, "", "d1", 5, 47))

	resp, err := http.Get(srv.URL + PathMetrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`dronetrack_cache_refresh_events_total{outcome="applied"} 1`,
		`dronetrack_cache_refresh_events_total{outcome="stale"} 1`,
		`dronetrack_cache_refresh_events_total{outcome="rejected"} 1`,
		`dronetrack_cache_refresh_events_total{outcome="retry"} 0`,
		`dronetrack_cache_refresh_put_duration_seconds_count 2`,
		"# TYPE go_goroutines ", "# TYPE process_cpu_seconds_total ",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	rec := httptest.NewRecorder()
	New().Handle(rec, httptest.NewRequest(http.MethodGet, PathMetrics, nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "dronetrack_cache_refresh_events_total") {
		t.Errorf("/metrics before Start: %d", rec.Code)
	}
}
