package function

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/core/tracing"
	"github.com/dronetrack/dronetrack/events"
)

// Knative does not copy the incoming event's extensions to a reply, so
// process stamps its own span, a child of the sender's, on state.updated,
// and logs the trace id with the event.
func TestReplyCarriesTraceContext(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, Options{Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}, "d1")
	ev, err := events.NewTelemetryReceived(received("d1", rep(0, 1, 1, 50)))
	if err != nil {
		t.Fatal(err)
	}
	ingest := tracing.New()
	ingest.State = "fleet=7"
	ingest.Inject(&ev)
	resp := testenv.PostEvent(t, e.srv.URL+"/", ev)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	reply, err := cehttp.NewEventFromHTTPResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := events.Decode[events.StateUpdated](*reply, events.TypeStateUpdated); err != nil {
		t.Fatalf("reply with trace extensions: %v", err)
	}
	tp, _ := reply.Extensions()[tracing.ExtTraceParent].(string)
	got, ok := tracing.Parse(tp)
	if !ok {
		t.Fatalf("reply traceparent %q is not valid", tp)
	}
	if got.TraceID != ingest.TraceID || got.SpanID == ingest.SpanID {
		t.Errorf("reply traceparent %s: want trace %s with a new span id (not %s)", tp, ingest.TraceIDString(), ingest.SpanIDString())
	}
	if ts := reply.Extensions()[tracing.ExtTraceState]; ts != "fleet=7" {
		t.Errorf("reply tracestate = %v, want fleet=7", ts)
	}
	// The event's log line names the trace and links process's span to ingest's.
	for _, want := range []string{`"trace_id":"` + ingest.TraceIDString() + `"`, `"span_id":"` + got.SpanIDString() + `"`,
		`"parent_span_id":"` + ingest.SpanIDString() + `"`, `"event_id":"` + ev.ID() + `"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, logs.String())
		}
	}
}

func TestMetricsIncludeRuntime(t *testing.T) {
	e := newEnv(t, Options{}, "d1")
	e.post(t, received("d1", rep(0, 1, 1, 50)))
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, name := range []string{"dronetrack_process_events_total", "dronetrack_process_reports_total",
		"dronetrack_process_state_writes_total", "dronetrack_process_history_flush_points", "go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(string(b), "# TYPE "+name+" ") {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}
