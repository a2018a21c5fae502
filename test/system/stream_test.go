package system

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/events"

	"github.com/dronetrack/dronetrack/infra/local"
)

// TestStreamShowsIngestedReports measures the whole live path a browser
// sees: a report posted to ingest travels through the broker, process and
// cache-refresh and reaches an open SSE stream on serve-map. Each report
// must arrive; the latencies are logged (this is not a benchmark: the
// bound is generous so a loaded CI machine cannot make it flaky).
func TestStreamShowsIngestedReports(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sys, demo := startTestSystem(t, local.Options{DemoDrones: 1})
	drone := demo[0]

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, sys.URL()+"/api/v1/stream", nil)
	resp, err := demoClient(t, sys).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	seen := make(chan events.DroneState, 64)
	go readSSE(resp.Body, func(kind, data string) {
		var v struct {
			ID    string             `json:"id"`
			State *events.DroneState `json:"state"`
		}
		if kind == "drone" && json.Unmarshal([]byte(data), &v) == nil && v.ID == drone.DroneID && v.State != nil {
			seen <- *v.State
		}
	})

	const reports = 10
	base := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	var lat []time.Duration
	// A drone reporting at 1 Hz: posts on a fixed 1 s cadence. (Faster
	// reporting drones see up to one STATE_INTERVAL more: process writes a
	// drone's latest state at most once a second.)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := range reports {
		if i > 0 {
			<-tick.C
		}
		ts := base.Add(time.Duration(i) * time.Second)
		body := fmt.Sprintf(`{"ts":%q,"lat":%g,"lon":8.5,"battery":80}`, ts.Format(time.RFC3339), 47+float64(i)/1000)
		post, _ := http.NewRequestWithContext(ctx, http.MethodPost, sys.URL()+"/v1/telemetry", strings.NewReader(body))
		post.Header.Set("Content-Type", "application/json")
		post.Header.Set("Authorization", "Bearer "+drone.Key)
		r, err := http.DefaultClient.Do(post)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusAccepted {
			t.Fatalf("report %d: %d", i, r.StatusCode)
		}
		acked := time.Now()
		timeout := time.After(10 * time.Second)
	wait:
		for {
			select {
			case st := <-seen:
				if st.TS.Equal(ts) {
					lat = append(lat, time.Since(acked))
					break wait
				}
			case <-timeout:
				t.Fatalf("report %d (ts %s) never reached the stream", i, ts.Format(time.RFC3339))
			}
		}
	}
	slices.Sort(lat)
	t.Logf("ingest 202 -> SSE event on serve-map: n=%d p50 %s p90 %s max %s",
		len(lat), lat[len(lat)/2], lat[len(lat)*9/10], lat[len(lat)-1])
}
