package system

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/events"

	"github.com/dronetrack/dronetrack/infra/local"
)

// TestSpineExactlyOnceInEffect drives the telemetry spine end to end through
// `up` (ingest -> local broker -> process -> store, state.updated ->
// cache-refresh -> serve-map) with the awkward traffic real drones send:
// a retried request, a late report, an out-of-order pair, a replay, and
// malformed requests. It then checks exactly what the store holds and what
// the API shows.
func TestSpineExactlyOnceInEffect(t *testing.T) {
	ctx := context.Background()
	sys, demo := startTestSystem(t, local.Options{DemoDrones: 2})
	drone, other := demo[0], demo[1]
	base := time.Now().UTC().Truncate(time.Second).Add(-10 * time.Minute)
	at := func(sec int) string { return base.Add(time.Duration(sec) * time.Second).Format(time.RFC3339) }
	report := func(sec int, lat float64) string {
		return fmt.Sprintf(`{"ts":%q,"lat":%g,"lon":8.5,"alt":100,"battery":%d}`, at(sec), lat, 90-sec/10)
	}

	post := func(key, contentType, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, sys.URL()+"/v1/telemetry", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	accepted := []struct{ name, body string }{
		{"first report", report(10, 47.0)},
		{"the same request retried (lost reply)", report(10, 47.0)},
		{"out-of-order pair in one batch", "[" + report(30, 47.002) + "," + report(20, 47.001) + "]"},
		{"late report, older than the state", report(5, 46.999)},
		{"replay of a stored report in a new batch", "[" + report(10, 47.0) + "," + report(20, 47.001) + "]"},
	}
	for _, a := range accepted {
		if code, body := post(drone.Key, "application/json", a.body); code != http.StatusAccepted {
			t.Fatalf("%s: %d %s, want 202", a.name, code, body)
		}
	}
	rejected := []struct {
		name, key, ctype, body string
		code                   int
		field                  string
	}{
		{"latitude out of range", drone.Key, "application/json", report(40, 91), 400, "/lat"},
		{"unknown field", drone.Key, "application/json", `{"ts":"` + at(41) + `","lat":1,"lon":1,"droneId":"x"}`, 400, "/droneId"},
		{"time far in the future", drone.Key, "application/json", `{"ts":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `","lat":1,"lon":1}`, 400, "/ts"},
		{"one bad report spoils the batch", drone.Key, "application/json", "[" + report(42, 1) + `,{"ts":"` + at(43) + `","lat":1,"lon":"x"}]`, 400, "/1/lon"},
		{"wrong content type", drone.Key, "text/plain", report(44, 1), 415, ""},
		{"unknown key", "dtk_" + strings.Repeat("A", 43), "application/json", report(45, 1), 401, ""},
		{"no key", "", "application/json", report(46, 1), 401, ""},
	}
	for _, r := range rejected {
		code, body := post(r.key, r.ctype, r.body)
		if code != r.code || !strings.Contains(body, r.field) || !strings.Contains(body, `"status"`) {
			t.Errorf("%s: %d %s, want %d problem naming %q", r.name, code, body, r.code, r.field)
		}
	}
	// The other drone's traffic must not bleed into this drone's history.
	if code, body := post(other.Key, "application/json", report(50, 10)); code != http.StatusAccepted {
		t.Fatalf("other drone: %d %s", code, body)
	}

	// Wait (bounded) for the pipeline, then check the store exactly.
	want := []time.Time{base.Add(5 * time.Second), base.Add(10 * time.Second), base.Add(20 * time.Second), base.Add(30 * time.Second)}
	var got []time.Time
	deadline := time.Now().Add(30 * time.Second)
	for {
		got = got[:0]
		for _, p := range readTrack(t, sys.Store(), drone.TenantID, drone.DroneID) {
			got = append(got, p.Report.TS.UTC())
		}
		st, err := sys.Store().LatestState(ctx, drone.TenantID, drone.DroneID)
		if len(got) >= len(want) && err == nil && st.TS.Equal(want[3]) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("history, each accepted report once (-want +got):\n%s", diff)
	}
	st, err := sys.Store().LatestState(ctx, drone.TenantID, drone.DroneID)
	if err != nil {
		t.Fatal(err)
	}
	// Newer wins: the state is the t=30 report, derived along 10 -> 20 -> 30
	// (two legs of 0.001° latitude, ~111 m each), never via the late t=5.
	if !st.TS.Equal(want[3]) || st.Lat != 47.002 || st.DistanceM < 221 || st.DistanceM > 224 {
		t.Errorf("latest state %v lat %v distance %.1f m, want t=30, lat 47.002, ~222 m", st.TS, st.Lat, st.DistanceM)
	}
	if _, err := sys.Store().LatestState(ctx, "another-tenant", drone.DroneID); err == nil {
		t.Error("another tenant can read this drone's state")
	}

	// The API (cache first) converges on the same state.
	var view struct {
		ID    string            `json:"id"`
		State events.DroneState `json:"state"`
	}
	api := demoClient(t, sys)
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := api.Get(sys.URL() + "/api/v1/drones/" + drone.DroneID)
		if err != nil {
			t.Fatal(err)
		}
		_ = json.NewDecoder(resp.Body).Decode(&view)
		resp.Body.Close()
		if view.State.TS.Equal(want[3]) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !view.State.TS.Equal(want[3]) || view.State.Lat != 47.002 {
		t.Errorf("API shows %+v, want the t=30 state", view)
	}
}

// The same spine with every hop over loopback TCP, as separate processes
// would talk (DRONETRACK_INPROC_DELIVERY=0; in-process hops are the
// default): the transport changes nothing of what is stored.
func TestSpineOverLoopbackTCP(t *testing.T) {
	t.Setenv(local.EnvInprocDelivery, "0")
	TestSpineExactlyOnceInEffect(t)
}
