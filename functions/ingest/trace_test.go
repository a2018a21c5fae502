package function_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/core/tracing"
	"github.com/dronetrack/dronetrack/events"
	function "github.com/dronetrack/dronetrack/functions/ingest"
)

const droneTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// The drone's trace continues into the event: same trace id, ingest's own
// span (a child of the drone's), tracestate kept, and the trace id logged.
func TestEventContinuesDroneTrace(t *testing.T) {
	e := newEnv(t)
	req, err := http.NewRequest(http.MethodPost, e.url+function.PathTelemetry, strings.NewReader(report(0, 1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", droneTraceParent)
	req.Header.Set("tracestate", "fleet=7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202", resp.StatusCode)
	}
	evs := e.sink.got()
	if len(evs) != 1 {
		t.Fatalf("sink got %d events, want 1", len(evs))
	}
	tp, _ := evs[0].Extensions()[tracing.ExtTraceParent].(string)
	got, ok := tracing.Parse(tp)
	if !ok {
		t.Fatalf("event traceparent %q is not valid", tp)
	}
	if got.TraceIDString() != "4bf92f3577b34da6a3ce929d0e0e4736" || got.SpanIDString() == "00f067aa0ba902b7" {
		t.Errorf("event traceparent %s: want the drone's trace id with ingest's own span id", tp)
	}
	if ts := evs[0].Extensions()[tracing.ExtTraceState]; ts != "fleet=7" {
		t.Errorf("event tracestate = %v, want fleet=7", ts)
	}
	logs := e.logs.String()
	for _, want := range []string{`"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"`, `"parent_span_id":"00f067aa0ba902b7"`,
		`"span_id":"` + got.SpanIDString() + `"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}

// Without a valid traceparent (absent, or malformed) every event still
// starts a trace of its own, on the JSON and the OsmAnd paths.
func TestEventStartsTraceWithoutValidHeader(t *testing.T) {
	e := newOsmAndEnv(t)
	e.post(t, report(0, 1, 2))
	r := e.do(t, http.MethodGet, function.PathOsmAnd+"?id="+deviceID+"&lat=1&lon=2", "", "", nil)
	if r.status >= 300 {
		t.Fatalf("osmand: status %d: %s", r.status, r.body)
	}
	evs := e.sink.got()
	if len(evs) != 2 {
		t.Fatalf("sink got %d events, want 2", len(evs))
	}
	var ids []string
	for _, ev := range evs {
		tp, _ := ev.Extensions()[tracing.ExtTraceParent].(string)
		c, ok := tracing.Parse(tp)
		if !ok {
			t.Fatalf("event %s traceparent %q is not valid", ev.ID(), tp)
		}
		ids = append(ids, c.TraceIDString())
	}
	if ids[0] == ids[1] {
		t.Errorf("two requests share trace id %s", ids[0])
	}
}

// /metrics carries ingest's series and the Go runtime and process
// collectors Knative dashboards expect.
func TestMetricsIncludeRuntime(t *testing.T) {
	e := newEnv(t)
	e.post(t, report(time.Second, 1, 2))
	r := e.do(t, http.MethodGet, function.PathMetrics, "", "", nil)
	var missing []string
	for _, name := range []string{"dronetrack_ingest_requests_total", "dronetrack_ingest_reports_accepted_total",
		"dronetrack_ingest_publish_duration_seconds", "go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(string(r.body), "# TYPE "+name+" ") {
			missing = append(missing, name)
		}
	}
	if diff := cmp.Diff([]string(nil), missing); diff != "" {
		t.Errorf("/metrics lacks series (-want +got):\n%s", diff)
	}
}

// A drone speaking CloudEvents may carry its trace as the event's own
// traceparent extension; without a header, ingest continues that trace.
func TestCloudEventTraceExtensionContinued(t *testing.T) {
	e := newEnv(t)
	in := reportEvent(t, "c1", events.Report{TS: t0.Add(-time.Second), Lat: 47.1, Lon: 8.1})
	in.SetExtension(tracing.ExtTraceParent, droneTraceParent)
	resp := testenv.PostEvent(t, e.url+function.PathEvents, in, http.Header{"Authorization": {"Bearer " + e.key}})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202", resp.StatusCode)
	}
	evs := e.sink.got()
	if len(evs) != 1 {
		t.Fatalf("sink got %d events, want 1", len(evs))
	}
	tp, _ := evs[0].Extensions()[tracing.ExtTraceParent].(string)
	got, ok := tracing.Parse(tp)
	if !ok || got.TraceIDString() != "4bf92f3577b34da6a3ce929d0e0e4736" || got.SpanIDString() == "00f067aa0ba902b7" {
		t.Errorf("event traceparent %q: want the drone event's trace id with ingest's own span id", tp)
	}
}
