package function_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/dronetrack/dronetrack/core/keys"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/bolt"
	"github.com/dronetrack/dronetrack/events"
	function "github.com/dronetrack/dronetrack/functions/ingest"
)

// deviceID is a tracker's OsmAnd id registered as a drone's key.
const deviceID = "tracker-7Qe2Lk9ZpX4mWc1R"

// chain asks each finder in turn until one knows the hash.
type chain []function.DroneFinder

func (c chain) DroneByKeyHash(ctx context.Context, h string) (store.Drone, error) {
	var err error
	for _, f := range c {
		var d store.Drone
		if d, err = f.DroneByKeyHash(ctx, h); err == nil || !errors.Is(err, store.ErrNotFound) {
			return d, err
		}
	}
	return store.Drone{}, err
}

// newOsmAndEnv is newEnv plus a second drone, "tracker-1", registered (in
// a real bolt store) with deviceID as its key.
func newOsmAndEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	db, err := bolt.Open(filepath.Join(t.TempDir(), "devices.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	if err := db.CreateTenant(ctx, store.Tenant{ID: "tenant-1", Name: "One", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateDrone(ctx, store.Drone{ID: "tracker-1", TenantID: "tenant-1", Name: "Phone",
		KeyHash: keys.Hash(pepper, deviceID), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	e.finder.inner = chain{e.finder.inner, db}
	return e
}

func telemetryOf(t *testing.T, e event.Event) events.TelemetryReceived {
	t.Helper()
	if e.Type() != events.TypeTelemetryReceived {
		t.Fatalf("published type %q", e.Type())
	}
	var d events.TelemetryReceived
	if err := json.Unmarshal(e.Data(), &d); err != nil {
		t.Fatalf("event data: %v", err)
	}
	return d
}

var approx = cmpopts.EquateApprox(0, 1e-9)

func TestOsmAndVariants(t *testing.T) {
	at := t0.Add(-10 * time.Second)
	epoch := "1795924790" // t0 - 10 s, epoch seconds
	if got := time.Unix(1795924790, 0).UTC(); !got.Equal(at) {
		t.Fatalf("test setup: epoch %s is %s, want %s", epoch, got, at)
	}
	tests := []struct {
		name, method, query, contentType, body string
		drone                                  string
		want                                   []events.Report
	}{
		{
			name: "GET query (OsmAnd / Traccar Client classic)", method: http.MethodGet,
			query: "id=" + deviceID + "&lat=47.3977&lon=8.5456&timestamp=" + epoch + "&speed=10&bearing=270.5&altitude=488.1&accuracy=4&batt=87&hdop=0.9",
			drone: "tracker-1",
			want: []events.Report{{TS: at, Lat: 47.3977, Lon: 8.5456, Alt: new(488.1), Speed: new(10 * 1852.0 / 3600),
				Heading: new(270.5), Battery: new(87.0), HAcc: new(4.0)}},
		},
		{
			name: "POST with query and empty body (Traccar Client Android)", method: http.MethodPost,
			query: "deviceid=" + deviceID + "&location=47.3977,8.5456&timestamp=" + url.QueryEscape(at.Format(time.RFC3339)) + "&heading=0",
			drone: "tracker-1",
			want:  []events.Report{{TS: at, Lat: 47.3977, Lon: 8.5456, Heading: new(0.0)}},
		},
		{
			name: "POST form body", method: http.MethodPost, contentType: "application/x-www-form-urlencoded",
			body:  "id=" + deviceID + "&lat=-33.8688&lon=151.2093&timestamp=" + url.QueryEscape(at.Format("2006-01-02 15:04:05")) + "&speed=0",
			drone: "tracker-1",
			want:  []events.Report{{TS: at, Lat: -33.8688, Lon: 151.2093, Speed: new(0.0)}},
		},
		{
			name: "POST JSON (Traccar Client 9)", method: http.MethodPost, contentType: "application/json",
			body:  `{"location":{"timestamp":"` + at.Format(time.RFC3339Nano) + `","coords":{"latitude":-6.1148096,"longitude":106.6837015,"accuracy":3.8,"altitude_accuracy":5.5,"speed":18.67,"heading":63,"altitude":35.7},"is_moving":true,"battery":{"is_charging":false,"level":0.79},"extras":{}},"device_id":"` + deviceID + `"}`,
			drone: "tracker-1",
			want: []events.Report{{TS: at, Lat: -6.1148096, Lon: 106.6837015, Alt: new(35.7), Speed: new(18.67),
				Heading: new(63.0), Battery: new(79.0), HAcc: new(3.8), VAcc: new(5.5)}},
		},
		{
			name: "the drone key as the device id", method: http.MethodGet,
			query: "lat=1&lon=2&timestamp=" + epoch, // id added below
			drone: "drone-1",
			want:  []events.Report{{TS: at, Lat: 1, Lon: 2}},
		},
		{
			name: "no timestamp: receiver clock", method: http.MethodGet,
			query: "id=" + deviceID + "&lat=1&lon=2",
			drone: "tracker-1",
			want:  []events.Report{{TS: t0, Lat: 1, Lon: 2}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newOsmAndEnv(t)
			q := tt.query
			if tt.drone == "drone-1" {
				q += "&id=" + e.key
			}
			path := function.PathOsmAnd
			if q != "" {
				path += "?" + q
			}
			r := e.do(t, tt.method, path, "", tt.contentType, strings.NewReader(tt.body))
			if r.status != http.StatusOK || len(r.body) != 0 {
				t.Fatalf("status %d body %q, want 200 and an empty body", r.status, r.body)
			}
			got := e.sink.got()
			if len(got) != 1 {
				t.Fatalf("published %d events, want 1", len(got))
			}
			d := telemetryOf(t, got[0])
			if d.DroneID != tt.drone || d.TenantID != "tenant-1" {
				t.Errorf("published for %s/%s, want tenant-1/%s", d.TenantID, d.DroneID, tt.drone)
			}
			if diff := cmp.Diff(tt.want, d.Reports, approx); diff != "" {
				t.Errorf("reports mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOsmAndSpeedKnotsExact(t *testing.T) {
	e := newOsmAndEnv(t)
	r := e.do(t, http.MethodGet, function.PathOsmAnd+"?id="+deviceID+"&lat=1&lon=2&speed=100", "", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	d := telemetryOf(t, e.sink.got()[0])
	// 100 kn = 185.2 km/h = 51.4444… m/s
	if got := *d.Reports[0].Speed; math.Abs(got-51.44444444444444) > 1e-9 {
		t.Errorf("100 kn published as %v m/s, want 51.444444", got)
	}
}

func TestOsmAndRejections(t *testing.T) {
	tests := []struct {
		name, query string
		status      int
		fields      []string
	}{
		{"missing position", "id=" + deviceID + "&timestamp=1795924790", http.StatusBadRequest, []string{"lat", "lon"}},
		{"bearing out of range named as sent", "id=" + deviceID + "&lat=1&lon=2&bearing=400", http.StatusBadRequest, []string{"bearing"}},
		{"speed over the limit in knots", "id=" + deviceID + "&lat=1&lon=2&speed=1000", http.StatusBadRequest, []string{"speed"}},
		{"no id", "lat=1&lon=2", http.StatusBadRequest, []string{"id"}},
		{"short id is no credential", "id=123456&lat=1&lon=2", http.StatusUnauthorized, nil},
		{"unknown long id", "id=tracker-unknown-0000000000&lat=1&lon=2", http.StatusUnauthorized, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newOsmAndEnv(t)
			r := e.do(t, http.MethodGet, function.PathOsmAnd+"?"+tt.query, "", "", nil)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if r.status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			p := decodeProblem(t, r)
			var fields []string
			for _, fe := range p.Errors {
				fields = append(fields, fe.Field)
			}
			if diff := cmp.Diff(tt.fields, fields); diff != "" {
				t.Errorf("fields mismatch (-want +got):\n%s", diff)
			}
			if n := len(e.sink.got()); n != 0 {
				t.Errorf("published %d events for a rejected request", n)
			}
		})
	}
}

func TestOsmAndInvalidFixAcknowledgedNotPublished(t *testing.T) {
	e := newOsmAndEnv(t)
	r := e.do(t, http.MethodGet, function.PathOsmAnd+"?id="+deviceID+"&lat=1&lon=2&valid=false", "", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if n := len(e.sink.got()); n != 0 {
		t.Errorf("published %d events for an invalid fix", n)
	}
}

func TestOsmAndBrokerDownIs503(t *testing.T) {
	e := newOsmAndEnv(t)
	e.sink.mu.Lock()
	e.sink.status = http.StatusServiceUnavailable
	e.sink.mu.Unlock()
	r := e.do(t, http.MethodGet, function.PathOsmAnd+"?id="+deviceID+"&lat=1&lon=2", "", "", nil)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("status %d Retry-After %q, want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
}

// reportEvent is a drone's CloudEvent carrying data (a Report or []Report).
func reportEvent(t *testing.T, id string, data any) event.Event {
	t.Helper()
	e := cloudevents.NewEvent()
	e.SetID(id)
	e.SetType(events.TypeTelemetryReport)
	e.SetSource("/drones/drone-1")
	if err := e.SetData(cloudevents.ApplicationJSON, data); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestCloudEventsModes sends with sdk-go's own client (binary and
// structured) and sdk-go's batch request builder, and checks each lands as
// one telemetry.received event with the reports intact.
func TestCloudEventsModes(t *testing.T) {
	r1 := events.Report{TS: t0.Add(-2 * time.Second), Lat: 47.1, Lon: 8.1, Alt: new(500.0), Speed: new(12.5), Heading: new(90.0), Battery: new(80.0),
		Armed: new(true), Mode: new("POSCTL"), Fix: new(events.FixDGPS), Satellites: new(11), HAE: new(547.5), Height: new(42.0),
		VSpeed: new(0.5), HAcc: new(1.5), VAcc: new(2.5), Link: new(71.0), Home: &events.Position{Lat: 47.09, Lon: 8.09, Alt: new(458.0)}}
	r2 := events.Report{TS: t0.Add(-time.Second), Lat: 47.2, Lon: 8.2}
	for _, mode := range []string{"binary", "structured"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t)
			c, err := cloudevents.NewClientHTTP(cehttp.WithTarget(e.url+function.PathEvents),
				cehttp.WithHeader("Authorization", "Bearer "+e.key))
			if err != nil {
				t.Fatal(err)
			}
			ctx := binding.WithForceBinary(context.Background())
			if mode == "structured" {
				ctx = binding.WithForceStructured(context.Background())
			}
			for i, data := range []any{r1, []events.Report{r1, r2}} {
				res := c.Send(ctx, reportEvent(t, "ev-"+mode+string(rune('a'+i)), data))
				var hr *cehttp.Result
				if !cloudevents.ResultAs(res, &hr) || hr.StatusCode != http.StatusAccepted {
					t.Fatalf("send %d: result %v, want HTTP 202", i, res)
				}
			}
			got := e.sink.got()
			if len(got) != 2 {
				t.Fatalf("published %d events, want 2", len(got))
			}
			if diff := cmp.Diff([]events.Report{r1}, telemetryOf(t, got[0]).Reports, approx); diff != "" {
				t.Errorf("single report (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]events.Report{r1, r2}, telemetryOf(t, got[1]).Reports, approx); diff != "" {
				t.Errorf("report array (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("batched", func(t *testing.T) {
		e := newEnv(t)
		req, err := cehttp.NewHTTPRequestFromEvents(context.Background(), e.url+function.PathEvents,
			[]event.Event{reportEvent(t, "b1", r1), reportEvent(t, "b2", []events.Report{r2})})
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+e.key)
		if ct := req.Header.Get("Content-Type"); ct != event.ApplicationCloudEventsBatchJSON {
			t.Fatalf("sdk-go batch Content-Type %q", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d, want 202", resp.StatusCode)
		}
		got := e.sink.got()
		if len(got) != 1 {
			t.Fatalf("published %d events, want 1 for the whole batch", len(got))
		}
		if diff := cmp.Diff([]events.Report{r1, r2}, telemetryOf(t, got[0]).Reports, approx); diff != "" {
			t.Errorf("batch reports (-want +got):\n%s", diff)
		}
	})
}

func TestCloudEventsRejections(t *testing.T) {
	good := events.Report{TS: t0, Lat: 1, Lon: 2}
	wrongType := reportEvent(t, "x", good)
	wrongType.SetType(events.TypeTelemetryReceived)
	tests := []struct {
		name     string
		evs      []event.Event
		batch    bool
		key      bool
		status   int
		pointers []string
	}{
		{"no key", []event.Event{reportEvent(t, "a", good)}, false, false, http.StatusUnauthorized, nil},
		{"wrong type", []event.Event{wrongType}, false, true, http.StatusBadRequest, []string{"/type"}},
		{"bad report in data", []event.Event{reportEvent(t, "a", map[string]any{"ts": t0, "lat": 95, "lon": 2})}, false, true,
			http.StatusBadRequest, []string{"/data/lat"}},
		{"bad telemetry fields in data", []event.Event{reportEvent(t, "a", map[string]any{"ts": t0, "lat": 1, "lon": 2, "link": 120,
			"home": map[string]any{"lat": 1, "lon": 200}})}, false, true, http.StatusBadRequest, []string{"/data/link", "/data/home/lon"}},
		{"bad second event of a batch", []event.Event{reportEvent(t, "a", good), reportEvent(t, "b", []map[string]any{{"ts": t0, "lat": 1}})},
			true, true, http.StatusBadRequest, []string{"/1/data/0/lon"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			var req *http.Request
			var err error
			if tt.batch {
				req, err = cehttp.NewHTTPRequestFromEvents(context.Background(), e.url+function.PathEvents, tt.evs)
			} else {
				req, err = cehttp.NewHTTPRequestFromEvent(context.Background(), e.url+function.PathEvents, tt.evs[0])
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.key {
				req.Header.Set("Authorization", "Bearer "+e.key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			var p problemBody
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
			var ptrs []string
			for _, fe := range p.Errors {
				ptrs = append(ptrs, fe.Pointer)
			}
			if diff := cmp.Diff(tt.pointers, ptrs); diff != "" {
				t.Errorf("pointers (-want +got):\n%s", diff)
			}
			if n := len(e.sink.got()); n != 0 {
				t.Errorf("published %d events for a rejected request", n)
			}
		})
	}
}

// TestCloudEventsParallelSenders guards the hazard noted in the design:
// sdk-go's receive handler was seen to hang with 32 parallel senders. Ingest
// decodes with the HTTP binding in a plain handler; every send must finish.
func TestCloudEventsParallelSenders(t *testing.T) {
	// One drone sends 320 requests at once: this tests the receive path under
	// parallel senders, not the per-drone rate limit (tested on its own).
	e := newEnvDeps(t, func(d *function.Deps) { d.RateLimits = benchLimits })
	c, err := cloudevents.NewClientHTTP(cehttp.WithTarget(e.url+function.PathEvents),
		cehttp.WithHeader("Authorization", "Bearer "+e.key))
	if err != nil {
		t.Fatal(err)
	}
	const senders, each = 32, 10
	errs := make(chan error, senders*each)
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r := events.Report{TS: t0.Add(-time.Duration(s*each+i) * time.Millisecond), Lat: 1, Lon: 2}
				res := c.Send(binding.WithForceBinary(context.Background()), reportEvent(t, fmt.Sprintf("p%d-%d", s, i), r))
				var hr *cehttp.Result
				if !cloudevents.ResultAs(res, &hr) || hr.StatusCode != http.StatusAccepted {
					errs <- fmt.Errorf("sender %d event %d: %v", s, i, res)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(e.sink.got()); n != senders*each {
		t.Errorf("published %d events, want %d", n, senders*each)
	}
}
