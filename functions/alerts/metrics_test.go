package function

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dronetrack/dronetrack/core/testenv"
)

// /metrics answers before Start and counts events by type and status after,
// next to the Go runtime and process collectors.
func TestMetricsServed(t *testing.T) {
	f := New()
	srv := httptest.NewServer(http.HandlerFunc(f.Handle))
	defer srv.Close()
	scrape := func() string {
		t.Helper()
		resp, err := http.Get(srv.URL + PathMetrics)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/metrics: %d", resp.StatusCode)
		}
		return string(b)
	}
	if got := scrape(); !strings.Contains(got, "# TYPE go_goroutines ") {
		t.Errorf("/metrics before Start lacks the Go collector:\n%s", got)
	}
	ctx := context.Background()
	cfg := map[string]string{EnvStoreURL: "bolt://" + filepath.Join(t.TempDir(), "s.db"), EnvSink: "http://127.0.0.1:1/"}
	if err := f.Start(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	defer f.Stop(ctx)

	// Over HTTP (the type from the Ce-Type header) and in process as `up`
	// delivers (the type from the event: no header).
	ev := stateEvent(t, 0, 1, 2, 80)
	resp := testenv.PostEvent(t, srv.URL+"/", ev)
	if resp2, _ := testenv.DeliverInProcess(t, http.HandlerFunc(f.Handle), "/", ev); resp2.StatusCode != resp.StatusCode {
		t.Errorf("in process: %d, over HTTP %d", resp2.StatusCode, resp.StatusCode)
	}
	got := scrape()
	for _, want := range []string{
		`dronetrack_alerts_events_total{code="` + itoa(resp.StatusCode) + `",type="state_updated"} 2`,
		`dronetrack_alerts_event_duration_seconds_count{type="state_updated"} 2`,
		`dronetrack_alerts_event_duration_seconds_count{type="alert"} 0`, // webhook deliveries, exported before the first
		"# TYPE process_cpu_seconds_total ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, got)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
