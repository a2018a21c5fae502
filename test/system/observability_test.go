package system

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/core/tracing"

	"github.com/dronetrack/dronetrack/infra/local"
)

// probe GETs a path of a hosted function and returns status and body.
func probe(t *testing.T, base, path string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get(base + path)
	if err != nil {
		t.Fatalf("GET %s%s: %v", base, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHealthAndMetricsPerFunction checks, for every function `up` hosts,
// what Knative's probes and a Prometheus scrape see: /health/readiness
// answers 503 before Start and 200 after, /health/liveness 200 throughout,
// and /metrics serves the function's own dronetrack_<function>_* series
// (the naming rule) next to the Go runtime and process collectors.
func TestHealthAndMetricsPerFunction(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	logs := &testenv.LogBuffer{}
	sys, err := local.Start(ctx, local.Options{DataDir: dir, HTTPAddr: "127.0.0.1:0",
		LogLevel: slog.LevelWarn, Log: logs, Out: logs, StopTimeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("start system: %v", err)
	}
	defer func() {
		_ = sys.Shutdown()
		if t.Failed() {
			t.Logf("system output:\n%s", logs.String())
		}
	}()
	pepper, err := local.LoadPepper(sys.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	// The configuration local.Start gives its functions.
	cfg := map[string]string{"STORE_URL": local.StoreURL(sys.DataDir()), "K_SINK": sys.Broker().IngressURL(),
		"CACHE_URL": "local://dronetrack", "DRONE_KEY_PEPPER": pepper, "LOG_LEVEL": "warn"}
	for k, v := range local.ExtraFunctionConfig(sys.DataDir()) {
		cfg[k] = v
	}
	if len(sys.Functions()) < 4 {
		t.Fatalf("up hosts %d functions, want at least ingest, process, cache-refresh, serve-map", len(sys.Functions()))
	}
	for _, f := range local.Registry {
		t.Run(f.Name, func(t *testing.T) {
			running := sys.Function(f.Name)
			if running == nil {
				t.Fatalf("up does not host %s", f.Name)
			}
			// A fresh instance, served the way func-go serves it.
			fn := f.New()
			h, err := local.Listen(f.Name, fn, sys.Logger())
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := fn.Ready(ctx); ok || err != nil {
				t.Errorf("Ready before Start = %v, %v; want false, nil", ok, err)
			}
			if code, body := probe(t, h.URL(), "/health/readiness"); code != http.StatusServiceUnavailable {
				t.Errorf("/health/readiness before Start: %d %q, want 503", code, body)
			}
			if code, _ := probe(t, h.URL(), "/health/liveness"); code != http.StatusOK {
				t.Errorf("/health/liveness before Start: %d, want 200", code)
			}
			if err := fn.Start(ctx, cfg); err != nil {
				t.Fatalf("Start: %v", err)
			}
			defer func() {
				sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				if err := h.Shutdown(sctx); err != nil {
					t.Errorf("shutdown: %v", err)
				}
			}()
			if ok, err := fn.Ready(ctx); !ok || err != nil {
				t.Errorf("Ready after Start = %v, %v; want true, nil", ok, err)
			}
			for _, path := range []string{"/health/readiness", "/health/liveness"} {
				if code, body := probe(t, h.URL(), path); code != http.StatusOK {
					t.Errorf("%s after Start: %d %q, want 200", path, code, body)
				}
			}

			// /metrics on the system's running instance.
			code, body := probe(t, running.URL(), "/metrics")
			if code != http.StatusOK {
				t.Fatalf("/metrics: %d %s", code, body)
			}
			prefix := "dronetrack_" + strings.ReplaceAll(running.Name(), "-", "_") + "_"
			own := 0
			for _, line := range strings.Split(body, "\n") {
				if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
					name, _, _ = strings.Cut(name, " ")
					switch {
					case strings.HasPrefix(name, prefix):
						own++
					case strings.HasPrefix(name, "dronetrack_"):
						t.Errorf("series %s does not follow %s<name>", name, prefix)
					}
				}
			}
			if own == 0 {
				t.Errorf("/metrics has no %s* series", prefix)
			}
			for _, want := range []string{"# TYPE go_goroutines ", "# TYPE process_cpu_seconds_total "} {
				if !strings.Contains(body, want) {
					t.Errorf("/metrics lacks %q (Go runtime and process collectors)", want)
				}
			}
		})
	}
}

// captureStderr points os.Stderr at a pipe until the returned stop is
// called, so the JSON logs the functions open in Start (they log to
// os.Stderr, as on Knative) can be read; lines are copied into buf and
// through to the real stderr on failure only.
func captureStderr(t *testing.T, buf *testenv.LogBuffer) (restore func()) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	orig := os.Stderr
	os.Stderr = w
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(buf, r)
	}()
	t.Cleanup(func() { w.Close(); wg.Wait(); r.Close() })
	return func() { os.Stderr = orig }
}

// TestTraceContextFromDroneToCacheRefresh posts a report with a W3C
// traceparent header through `up` and follows the trace id in the
// functions' logs: ingest continues the drone's trace into the event's
// distributed tracing extension, the broker carries it unchanged, process
// makes a child span and stamps it on its state.updated reply, and
// cache-refresh logs the same trace id with process's span as its parent.
func TestTraceContextFromDroneToCacheRefresh(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	sysLogs, fnLogs := &testenv.LogBuffer{}, &testenv.LogBuffer{}
	restore := captureStderr(t, fnLogs)
	sys, err := local.Start(ctx, local.Options{DataDir: dir, HTTPAddr: "127.0.0.1:0", DemoDrones: 1,
		LogLevel: slog.LevelDebug, Log: sysLogs, Out: sysLogs, StopTimeout: 30 * time.Second})
	restore()
	if err != nil {
		t.Fatalf("start system: %v", err)
	}
	defer func() {
		_ = sys.Shutdown()
		if t.Failed() {
			t.Logf("function logs:\n%s", fnLogs.String())
		}
	}()
	demo, err := local.ReadDemoKeys(filepath.Join(dir, local.DemoKeysFile))
	if err != nil || len(demo) < 1 {
		t.Fatalf("demo keys: %v", err)
	}

	const traceID = "0af7651916cd43dd8448eb211c80319c"
	const droneSpan = "b7ad6b7169203331"
	body := fmt.Sprintf(`{"ts":%q,"lat":47.1,"lon":8.5}`, time.Now().UTC().Add(-time.Second).Format(time.RFC3339Nano))
	mustPostReport(t, sys.URL(), demo[0].Key, body, "traceparent", "00-"+traceID+"-"+droneSpan+"-01")

	// Wait (bounded by the test's deadline, not a timed assertion) for
	// cache-refresh's line for this trace.
	var spans map[string]logLine
	for {
		spans = traceSpans(fnLogs.String(), traceID)
		if _, ok := spans["cache-refresh"]; ok {
			break
		}
		if dl, ok := t.Deadline(); ok && time.Until(dl) < 5*time.Second {
			t.Fatalf("no cache-refresh log line with trace_id %s; lines of the trace: %+v", traceID, spans)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ing, proc, cr := spans["ingest"], spans["process"], spans["cache-refresh"]
	if ing.Span == "" || proc.Span == "" {
		t.Fatalf("trace %s: want log lines from ingest and process too, got %+v", traceID, spans)
	}
	// The chain of parents: drone -> ingest -> process -> cache-refresh.
	for _, link := range []struct {
		hop          string
		got, want    string
		span, parent string
	}{
		{"ingest", ing.Parent, droneSpan, ing.Span, droneSpan},
		{"process", proc.Parent, ing.Span, proc.Span, ing.Span},
		{"cache-refresh", cr.Parent, proc.Span, cr.Span, proc.Span},
	} {
		if link.got != link.want {
			t.Errorf("%s parent_span_id = %q, want %q (the previous hop's span)", link.hop, link.got, link.want)
		}
		if link.span == link.parent {
			t.Errorf("%s reuses its parent's span id %s", link.hop, link.span)
		}
	}
	if _, ok := tracing.Parse("00-" + traceID + "-" + cr.Span + "-01"); !ok {
		t.Errorf("cache-refresh span id %q is not a valid W3C span id", cr.Span)
	}
}

type logLine struct {
	Function string `json:"function"`
	Trace    string `json:"trace_id"`
	Span     string `json:"span_id"`
	Parent   string `json:"parent_span_id"`
}

// traceSpans finds, per function, a JSON log line of the trace. Lines
// without a function attribute are cache-refresh's (its logger names
// itself that way) when they carry the message "state cached".
func traceSpans(logs, traceID string) map[string]logLine {
	out := map[string]logLine{}
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Trace != traceID {
			continue
		}
		out[l.Function] = l
	}
	return out
}
