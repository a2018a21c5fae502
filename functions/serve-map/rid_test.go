package function

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/cache"
	"github.com/dronetrack/dronetrack/core/remoteid"
	"github.com/dronetrack/dronetrack/core/ridauth"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/events"
)

// ridAudience is the SP host the test tokens name.
const ridAudience = "sp.dronetrack.test"

// newRIDAuthority is a local test authority whose public key serve-map
// trusts through RID_PUBLIC_KEY_FILE; cfg gets the RID settings.
func newRIDAuthority(t testing.TB) (*ridauth.Authority, map[string]string) {
	t.Helper()
	a, err := ridauth.NewAuthority()
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "authority.pem")
	if err := os.WriteFile(f, a.PublicKeyPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return a, map[string]string{"RID_AUDIENCE": ridAudience + ", localhost", "RID_PUBLIC_KEY_FILE": f,
		"RID_REFRESH": "0s", "RID_INJECTION": "true"}
}

func ridToken(t *testing.T, a *ridauth.Authority, scope string) string {
	t.Helper()
	tok, err := a.Token(scope, ridAudience, "test-client", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + tok
}

// ridDo sends a Remote ID request with an Authorization header (none when
// auth is empty).
func ridDo(t *testing.T, method, url, auth string, body any) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return send(t, req)
}

// testFlight is an InterUSS TestFlight flying east from (lat, lng) at
// 1 state per second from start for n seconds.
func testFlight(injectionID string, start time.Time, n int, lat, lng float64) map[string]any {
	var tel []map[string]any
	for i := 0; i < n; i++ {
		tel = append(tel, map[string]any{
			"timestamp":          start.Add(time.Duration(i) * time.Second).UTC().Format(time.RFC3339Nano),
			"timestamp_accuracy": 0.1, "operational_status": "Airborne",
			"position": map[string]any{"lat": lat, "lng": lng + float64(i)*0.0001, "alt": 480.5,
				"accuracy_h": "HA3m", "accuracy_v": "VA10m", "extrapolated": false,
				"height": map[string]any{"distance": 60, "reference": "TakeoffLocation"}},
			"track": 90, "speed": 7.6, "speed_accuracy": "SA1mps", "vertical_speed": 0.5,
		})
	}
	return map[string]any{"injection_id": injectionID, "aircraft_type": "Helicopter", "telemetry": tel,
		"details_responses": []map[string]any{{"effective_after": start.Add(-time.Minute).UTC().Format(time.RFC3339),
			"details": map[string]any{"id": "uss-chosen", "operator_id": "CHEop12345", "operation_description": "qualifier flight",
				"uas_id":            map[string]any{"serial_number": "MFR1C123456789ABC"},
				"operator_location": map[string]any{"lat": lat, "lng": lng - 0.001},
				"eu_classification": map[string]any{"category": "Open", "class": "Class1"}}}}}
}

// TestRemoteIDServiceProvider drives the whole Remote ID surface through
// HTTP: tenant A turns Remote ID on and declares a drone's identity through
// the API, tenant B leaves it off; a test flight is injected with a token
// of the local authority; a display provider's token finds A's drone and
// the injected flight in a view around them (never B's), and their details.
// Every reply is validated against openapi.json, whose Remote ID schemas
// carry the standard's field names, types and enumerations with
// additionalProperties false.
func TestRemoteIDServiceProvider(t *testing.T) {
	modes(t, func(t *testing.T, cacheURL string) {
		auth, cfg := newRIDAuthority(t)
		e := newAuthEnv(t, cacheURL, cfg)
		o := newOpenAPIReplies(t)
		ctx := context.Background()
		a := signUp(t, e, "Alpha Org", "ann@alpha.test", pwA)
		b := signUp(t, e, "Bravo Org", "bob@bravo.test", pwB)
		aTenant := decode[struct{ User userJSON }](t, e.do(t, a, http.MethodGet, "/api/v1/me", nil)).User.TenantID
		bTenant := decode[struct{ User userJSON }](t, e.do(t, b, http.MethodGet, "/api/v1/me", nil)).User.TenantID
		aDrone := decode[droneKeyReply](t, e.do(t, a, http.MethodPost, "/api/v1/drones", map[string]string{"name": "A1"})).Drone.ID
		aPlain := decode[droneKeyReply](t, e.do(t, a, http.MethodPost, "/api/v1/drones", map[string]string{"name": "A2"})).Drone.ID
		bDrone := decode[droneKeyReply](t, e.do(t, b, http.MethodPost, "/api/v1/drones", map[string]string{"name": "B1"})).Drone.ID

		// Settings through the API: on for A, identity of A1; B stays off.
		r := e.do(t, a, http.MethodGet, "/api/v1/remote-id", nil)
		if r.status != 200 || !strings.Contains(string(r.body), `"enabled":false`) {
			t.Fatalf("Remote ID is off by default: %d %s", r.status, r.body)
		}
		o.check(t, "GET", "/api/v1/remote-id", r)
		r = e.do(t, a, http.MethodPut, "/api/v1/remote-id", map[string]bool{"enabled": true})
		o.check(t, "PUT", "/api/v1/remote-id", r)
		if r.status != 200 {
			t.Fatalf("turn on: %d %s", r.status, r.body)
		}
		ident := map[string]string{"serialNumber": "mfr1c123456789abc", "uaType": "Helicopter", "operatorId": "CHEabc123",
			"euCategory": "Open", "euClass": "Class2"}
		r = e.do(t, a, http.MethodPut, "/api/v1/drones/"+aDrone+"/remote-id", ident)
		o.check(t, "PUT", "/api/v1/drones/{id}/remote-id", r)
		if r.status != 200 || !strings.Contains(string(r.body), `"serialNumber":"MFR1C123456789ABC"`) {
			t.Fatalf("identity: %d %s", r.status, r.body)
		}
		r = e.do(t, a, http.MethodPut, "/api/v1/drones/"+aDrone+"/remote-id", map[string]string{"serialNumber": "INTCJ123-4567-890", "uaType": "Drone"})
		o.check(t, "PUT", "/api/v1/drones/{id}/remote-id", r)
		if r.status != 400 || !strings.Contains(string(r.body), `"field":"serialNumber"`) || !strings.Contains(string(r.body), `"field":"uaType"`) {
			t.Errorf("bad identity: %d %s", r.status, r.body)
		}
		r = e.do(t, a, http.MethodGet, "/api/v1/drones/"+aDrone+"/remote-id", nil)
		o.check(t, "GET", "/api/v1/drones/{id}/remote-id", r)
		if !strings.Contains(string(r.body), `"euClass":"Class2"`) {
			t.Errorf("identity read back: %s", r.body)
		}

		// Fresh states: A1 and B1 side by side near Zurich, A2 far away.
		now := time.Now().UTC().Truncate(time.Millisecond)
		c, err := cache.Open(ctx, cacheURL, cache.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		put := func(tenant, drone string, lat, lon float64, ts time.Time) {
			st := events.DroneState{TS: ts, Lat: lat, Lon: lon, Speed: new(12.5), Course: new(45.0), UpdatedAt: ts,
				Alt: new(470.0), HAE: new(520.25), Height: new(35.0), HAcc: new(2.0), Armed: new(true),
				Home: &events.Position{Lat: lat - 0.002, Lon: lon - 0.002, Alt: new(440.0)}}
			if _, _, err := e.st.UpdateState(ctx, tenant, drone, func(*events.DroneState) (events.DroneState, bool) { return st, true }); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Put(ctx, tenant, drone, st); err != nil {
				t.Fatal(err)
			}
		}
		put(aTenant, aDrone, 47.3769, 8.5417, now.Add(-2*time.Second))
		put(bTenant, bDrone, 47.3770, 8.5418, now.Add(-2*time.Second))
		put(aTenant, aPlain, 46.0, 7.0, now.Add(-2*time.Second))

		// Inject a test flight near the same place.
		inject := ridToken(t, auth, ridauth.ScopeInjectTestData)
		display := ridToken(t, auth, ridauth.ScopeDisplayProvider)
		body := map[string]any{"requested_flights": []any{testFlight("inj-1", now.Add(-10*time.Second), 120, 47.378, 8.543)}}
		r = ridDo(t, "PUT", e.url+"/rid/injection/tests/qual-1", inject, body)
		o.check(t, "PUT", "/rid/injection/tests/{test_id}", r)
		if r.status != 200 {
			t.Fatalf("inject: %d %s", r.status, r.body)
		}
		changed := decode[remoteid.ChangeTestResponse](t, r)
		testFlightID := remoteid.TestFlightID("qual-1", "inj-1")
		if changed.Version == "" || len(changed.InjectedFlights) != 1 || changed.InjectedFlights[0].InjectionID != "inj-1" ||
			changed.InjectedFlights[0].DetailsResponses[0].Details.ID != testFlightID {
			t.Errorf("injection reply: %s", r.body)
		}
		if r := ridDo(t, "PUT", e.url+"/rid/injection/tests/qual-1", inject, body); r.status != 409 {
			t.Errorf("same test again: %d %s", r.status, r.body)
		}

		view := "47.370,8.535,47.385,8.550" // ~2 km diagonal
		r = ridDo(t, "GET", e.url+"/rid/v2/uss/flights?view="+view+"&recent_positions_duration=5", display, nil)
		o.check(t, "GET", "/rid/v2/uss/flights", r)
		if r.status != 200 {
			t.Fatalf("flights: %d %s", r.status, r.body)
		}
		got := decode[remoteid.FlightsResponse](t, r)
		byID := map[string]remoteid.Flight{}
		for _, f := range got.Flights {
			byID[f.ID] = f
		}
		if len(got.Flights) != 2 {
			t.Errorf("flights %s: want A1 and the injected flight", r.body)
		}
		if strings.Contains(string(r.body), bDrone) || strings.Contains(string(r.body), aPlain) {
			t.Errorf("B's drone (Remote ID off) or A's far drone in the view's flights: %s", r.body)
		}
		if f, ok := byID[aDrone]; !ok || f.AircraftType != "Helicopter" || f.Simulated || f.CurrentState == nil ||
			f.CurrentState.Position.Lat != 47.3769 || f.CurrentState.Position.Alt != 520.25 || f.CurrentState.Speed != 12.5 ||
			f.CurrentState.Track != 45 || f.CurrentState.OperationalStatus != "Airborne" || f.CurrentState.Position.AccuracyH != "HA3m" ||
			f.CurrentState.Position.Height == nil || *f.CurrentState.Position.Height != (remoteid.Height{Distance: 35, Reference: "TakeoffLocation"}) {
			t.Errorf("A1's flight %+v", byID[aDrone])
		}
		tf, ok := byID[testFlightID]
		if !ok || !tf.Simulated || tf.AircraftType != "Helicopter" || tf.CurrentState.Position.Alt != 480.5 ||
			tf.CurrentState.SpeedAccuracy != "SA1mps" || len(tf.RecentPositions) < 4 || len(tf.RecentPositions) > 7 {
			t.Errorf("injected flight %+v (recent %d)", tf, len(tf.RecentPositions))
		} else {
			// The current state is the injected state for this second.
			ts, _ := time.Parse(time.RFC3339Nano, tf.CurrentState.Timestamp.Value)
			if d := time.Since(ts); d < 0 || d > 2*time.Second {
				t.Errorf("injected flight's current state is %v old, want the latest second", d)
			}
		}

		// Details.
		r = ridDo(t, "GET", e.url+"/rid/v2/uss/flights/"+aDrone+"/details", display, nil)
		o.check(t, "GET", "/rid/v2/uss/flights/{id}/details", r)
		d := decode[remoteid.DetailsResponse](t, r).Details
		if r.status != 200 || d.ID != aDrone || d.UASID == nil || d.UASID.SerialNumber != "MFR1C123456789ABC" ||
			d.OperatorID != "CHEabc123" || d.EUClassification == nil || d.EUClassification.Class != "Class2" {
			t.Errorf("A1's details: %d %s", r.status, r.body)
		}
		// The operator location is the home point, obfuscated by default.
		if loc := d.OperatorLocation; loc == nil || loc.Altitude != nil {
			t.Errorf("A1's operator location %+v: want an obfuscated point without altitude", loc)
		} else if m := remoteid.DistanceM(47.3769-0.002, 8.5417-0.002, loc.Position.Lat, loc.Position.Lng); m < 300 || m > 601 {
			t.Errorf("A1's operator location is %.0f m from home, want 300-600 m", m)
		}
		r = ridDo(t, "GET", e.url+"/rid/v2/uss/flights/"+testFlightID+"/details", display, nil)
		o.check(t, "GET", "/rid/v2/uss/flights/{id}/details", r)
		d = decode[remoteid.DetailsResponse](t, r).Details
		if r.status != 200 || d.ID != testFlightID || d.OperatorID != "CHEop12345" || d.OperatorLocation == nil ||
			d.OperationDescription != "qualifier flight" || d.UASID.SerialNumber != "MFR1C123456789ABC" {
			t.Errorf("injected flight's details: %d %s", r.status, r.body)
		}
		for _, id := range []string{bDrone, "nope", "rid-test.000"} {
			r = ridDo(t, "GET", e.url+"/rid/v2/uss/flights/"+id+"/details", display, nil)
			o.check(t, "GET", "/rid/v2/uss/flights/{id}/details", r)
			if r.status != 404 {
				t.Errorf("details of %s: %d %s", id, r.status, r.body)
			}
		}

		// B's drone never appears, even alone in the view; turning A off
		// removes A's drones too.
		r = ridDo(t, "GET", e.url+"/rid/v2/uss/flights?view=47.3769,8.5417,47.3771,8.5419", display, nil)
		if got := decode[remoteid.FlightsResponse](t, r); r.status != 200 || strings.Contains(string(r.body), bDrone) || len(got.Flights) != 1 {
			t.Errorf("tiny view on B1 and A1: %d %s", r.status, r.body)
		}
		if r := e.do(t, a, http.MethodPut, "/api/v1/remote-id", map[string]bool{"enabled": false}); r.status != 200 {
			t.Fatal(r.status)
		}
		r = ridDo(t, "GET", e.url+"/rid/v2/uss/flights?view="+view, display, nil)
		if strings.Contains(string(r.body), aDrone) {
			t.Errorf("A's drone reported after A turned Remote ID off: %s", r.body)
		}

		// Errors.
		for _, tc := range []struct {
			method, route, url, auth string
			body                     any
			status                   int
		}{
			{"GET", "/rid/v2/uss/flights", "/rid/v2/uss/flights?view=47.37,8.53,47.4419,8.53", display, nil, 413}, // 8 km north
			{"GET", "/rid/v2/uss/flights", "/rid/v2/uss/flights?view=47.37,8.53,47.38", display, nil, 400},
			{"GET", "/rid/v2/uss/flights", "/rid/v2/uss/flights", display, nil, 400},
			{"GET", "/rid/v2/uss/flights", "/rid/v2/uss/flights?view=" + view + "&recent_positions_duration=61", display, nil, 400},
			{"GET", "/rid/v2/uss/flights", "/rid/v2/uss/flights?view=" + view, "", nil, 401},
			{"GET", "/rid/v2/uss/flights", "/rid/v2/uss/flights?view=" + view, "Bearer not-a-jwt", nil, 401},
			{"GET", "/rid/v2/uss/flights", "/rid/v2/uss/flights?view=" + view, inject, nil, 403},
			{"GET", "/rid/v2/uss/flights/{id}/details", "/rid/v2/uss/flights/" + aDrone + "/details", "", nil, 401},
			{"GET", "/rid/v2/uss/flights/{id}/details", "/rid/v2/uss/flights/" + aDrone + "/details", inject, nil, 403},
			{"PUT", "/rid/injection/tests/{test_id}", "/rid/injection/tests/qual-2", display, body, 403},
			{"PUT", "/rid/injection/tests/{test_id}", "/rid/injection/tests/qual-2", "", body, 401},
			{"PUT", "/rid/injection/tests/{test_id}", "/rid/injection/tests/qual-3", inject, map[string]any{"requested_flights": []any{}}, 400},
			{"DELETE", "/rid/injection/tests/{test_id}/{version}", "/rid/injection/tests/qual-1/" + changed.Version, display, nil, 403},
			{"DELETE", "/rid/injection/tests/{test_id}/{version}", "/rid/injection/tests/qual-1/wrong", inject, nil, 404},
		} {
			r := ridDo(t, tc.method, e.url+tc.url, tc.auth, tc.body)
			if r.status != tc.status {
				t.Errorf("%s %s: %d %s, want %d", tc.method, tc.url, r.status, r.body, tc.status)
				continue
			}
			o.check(t, tc.method, tc.route, r)
			if r.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s: 401 without WWW-Authenticate: Bearer", tc.url)
			}
		}

		// Delete the test: the flight leaves the SP.
		r = ridDo(t, "DELETE", e.url+"/rid/injection/tests/qual-1/"+changed.Version, inject, nil)
		o.check(t, "DELETE", "/rid/injection/tests/{test_id}/{version}", r)
		if del := decode[remoteid.DeleteTestResponse](t, r); r.status != 200 || len(del.InjectedFlights) != 1 {
			t.Errorf("delete: %d %s", r.status, r.body)
		}
		r = ridDo(t, "GET", e.url+"/rid/v2/uss/flights?view="+view, display, nil)
		if r.status != 200 || strings.Contains(string(r.body), testFlightID) {
			t.Errorf("flights after delete: %d %s", r.status, r.body)
		}
		for _, s := range []string{string(auth.PublicKeyPEM()), strings.TrimPrefix(display, "Bearer "), strings.TrimPrefix(inject, "Bearer ")} {
			if strings.Contains(e.logs.String(), s) {
				t.Error("a token or key appears in the logs")
			}
		}
	})
}

// TestRemoteIDOff: without RID_* settings every Remote ID endpoint answers
// 503 with a problem, and serve-map otherwise works.
func TestRemoteIDOff(t *testing.T) {
	fx := newFixture(t, "local://"+uniq("sm"), nil)
	for _, u := range []string{"/rid/v2/uss/flights?view=1,1,1.01,1.01", "/rid/v2/uss/flights/x/details"} {
		if r := get(t, fx.url+u); r.status != 503 || !strings.Contains(string(r.body), `"message"`) {
			t.Errorf("%s: %d %s", u, r.status, r.body)
		}
	}
	// A half-done configuration refuses to start.
	f := New()
	err := f.start(context.Background(), map[string]string{"CACHE_URL": "local://" + uniq("sm"), "RID_AUDIENCE": "x"}, newTestStore(t))
	if err == nil || !strings.Contains(err.Error(), "RID_") {
		t.Errorf("RID_AUDIENCE without keys: %v", err)
	}
}

// TestRemoteIDViewAcrossAntimeridian: a view across ±180° (queried as two
// halves of the geo index) finds drones on both sides and on the line, once
// each.
func TestRemoteIDViewAcrossAntimeridian(t *testing.T) {
	auth, cfg := newRIDAuthority(t)
	fx := newFixture(t, "local://"+uniq("sm"), cfg)
	ctx := context.Background()
	if err := fx.st.SetTenantRemoteID(ctx, fx.tenant, true); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for id, lon := range map[string]float64{"-a": 179.999, "-b": -179.999, "-c": 180} {
		fx.put(t, fx.tenant+id, events.DroneState{TS: now, UpdatedAt: now, Lat: -17, Lon: lon})
	}
	r := ridDo(t, "GET", fx.url+"/rid/v2/uss/flights?view=-17.01,179.99,-16.99,-179.99", ridToken(t, auth, ridauth.ScopeDisplayProvider), nil)
	got := decode[remoteid.FlightsResponse](t, r)
	var ids []string
	for _, f := range got.Flights {
		ids = append(ids, strings.TrimPrefix(f.ID, fx.tenant))
	}
	if r.status != 200 || strings.Join(ids, ",") != "-a,-b,-c" {
		t.Errorf("flights across the antimeridian: %d %v; want -a,-b,-c once each", r.status, ids)
	}
}

// TestRemoteIDSilentDroneWithFastClock: freshness also needs the state to
// have been accepted within the near-real-time window. A drone whose clock
// runs minutes fast (ingest allows events.MaxFutureSkew) is shown while it
// reports, but once it falls silent it leaves /flights and /details after
// 60 s like any other, not when its future timestamp finally ages.
func TestRemoteIDSilentDroneWithFastClock(t *testing.T) {
	auth, cfg := newRIDAuthority(t)
	fx := newFixture(t, "local://"+uniq("sm"), cfg)
	if err := fx.st.SetTenantRemoteID(context.Background(), fx.tenant, true); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	fast := now.Add(4 * time.Minute) // the drone's clock
	fx.put(t, fx.tenant+"-live", events.DroneState{TS: fast, UpdatedAt: now, Lat: -17, Lon: 10})
	fx.put(t, fx.tenant+"-silent", events.DroneState{TS: fast.Add(-90 * time.Second), UpdatedAt: now.Add(-90 * time.Second), Lat: -17, Lon: 10.001})
	display := ridToken(t, auth, ridauth.ScopeDisplayProvider)
	r := ridDo(t, "GET", fx.url+"/rid/v2/uss/flights?view=-17.01,9.99,-16.99,10.01", display, nil)
	var ids []string
	for _, f := range decode[remoteid.FlightsResponse](t, r).Flights {
		ids = append(ids, strings.TrimPrefix(f.ID, fx.tenant))
	}
	if r.status != 200 || strings.Join(ids, ",") != "-live" {
		t.Errorf("flights: %d %v; want -live only (-silent was accepted 90 s ago)", r.status, ids)
	}
	if r := ridDo(t, "GET", fx.url+"/rid/v2/uss/flights/"+fx.tenant+"-silent/details", display, nil); r.status != 404 {
		t.Errorf("details of the silent drone: %d; want 404", r.status)
	}
	if r := ridDo(t, "GET", fx.url+"/rid/v2/uss/flights/"+fx.tenant+"-live/details", display, nil); r.status != 200 {
		t.Errorf("details of the reporting drone: %d; want 200", r.status)
	}
}

// TestRemoteIDWithoutRedis: with Redis stopped the SP answers from the store
// (flights and details), as the fleet API does.
func TestRemoteIDWithoutRedis(t *testing.T) {
	addr, stop := testenv.StartRedis(t)
	auth, cfg := newRIDAuthority(t)
	fx := newFixture(t, "redis://"+addr+"/0", cfg)
	ctx := context.Background()
	if err := fx.st.SetTenantRemoteID(ctx, fx.tenant, true); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	st := events.DroneState{TS: now, UpdatedAt: now, Lat: 47.4, Lon: 8.5, HAE: new(470.0)}
	if _, _, err := fx.st.UpdateState(ctx, fx.tenant, fx.tenant+"-a", func(*events.DroneState) (events.DroneState, bool) { return st, true }); err != nil {
		t.Fatal(err)
	}
	display := ridToken(t, auth, ridauth.ScopeDisplayProvider)
	check := func(stage string) {
		t.Helper()
		r := ridDo(t, "GET", fx.url+"/rid/v2/uss/flights?view=47.39,8.49,47.41,8.51", display, nil)
		got := decode[remoteid.FlightsResponse](t, r)
		if r.status != 200 || len(got.Flights) != 1 || got.Flights[0].ID != fx.tenant+"-a" || got.Flights[0].CurrentState.Position.Alt != 470 {
			t.Errorf("%s: flights %d %s", stage, r.status, r.body)
		}
		if r := ridDo(t, "GET", fx.url+"/rid/v2/uss/flights/"+fx.tenant+"-a/details", display, nil); r.status != 200 {
			t.Errorf("%s: details %d %s", stage, r.status, r.body)
		}
		// The other tenant (Remote ID off) has a drone at the same place.
		if r := ridDo(t, "GET", fx.url+"/rid/v2/uss/flights/"+fx.other+"-x/details", display, nil); r.status != 404 {
			t.Errorf("%s: details of the other tenant's drone %d %s", stage, r.status, r.body)
		}
	}
	check("redis up")
	stop()
	check("redis stopped")
}

// TestRemoteIDInjectionOff: by default (RID_INJECTION unset) the injection
// routes answer 404 and a test already in the store is not reported.
func TestRemoteIDInjectionOff(t *testing.T) {
	auth, cfg := newRIDAuthority(t)
	delete(cfg, "RID_INJECTION")
	fx := newFixture(t, "local://"+uniq("sm"), cfg)
	now := time.Now().UTC()
	flights, errs := remoteid.PrepareTest("stored", remoteid.CreateTestParameters{RequestedFlights: []remoteid.TestFlight{{
		InjectionID: "i", Telemetry: []remoteid.InjectedState{{Timestamp: now.Format(time.RFC3339Nano),
			Position: &remoteid.InjectedPosition{Lat: new(47.0), Lng: new(8.0)}}}}}})
	packed, err := remoteid.PackFlights(flights)
	if len(errs) > 0 || err != nil {
		t.Fatal(errs, err)
	}
	if err := fx.st.CreateRIDTest(context.Background(), store.RIDTest{ID: "stored", Version: "v", Flights: packed,
		CreatedAt: now, ExpireAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	inject := ridToken(t, auth, ridauth.ScopeInjectTestData)
	body := map[string]any{"requested_flights": []any{testFlight("x", now, 5, 47, 8)}}
	if r := ridDo(t, "PUT", fx.url+"/rid/injection/tests/t1", inject, body); r.status != 404 || !strings.Contains(string(r.body), "RID_INJECTION") {
		t.Errorf("PUT with injection off: %d %s", r.status, r.body)
	}
	if r := ridDo(t, "DELETE", fx.url+"/rid/injection/tests/stored/v", inject, nil); r.status != 404 {
		t.Errorf("DELETE with injection off: %d %s", r.status, r.body)
	}
	r := ridDo(t, "GET", fx.url+"/rid/v2/uss/flights?view=46.99,7.99,47.01,8.01", ridToken(t, auth, ridauth.ScopeDisplayProvider), nil)
	if r.status != 200 || strings.Contains(string(r.body), "rid-test.") {
		t.Errorf("a stored test is reported with injection off: %d %s", r.status, r.body)
	}
}

// TestRemoteIDRecentPositions: recent_positions come from the drone's
// history within the duration: the samples in the view and the neighbours
// of those (entering or leaving), nothing older.
func TestRemoteIDRecentPositions(t *testing.T) {
	auth, cfg := newRIDAuthority(t)
	fx := newFixture(t, "local://"+uniq("sm"), cfg)
	ctx := context.Background()
	if err := fx.st.SetTenantRemoteID(ctx, fx.tenant, true); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	drone := fx.tenant + "-a"
	// Flying east along 47.0: in the view (8.00-8.02) from -8 s to -4 s.
	var pts []store.TrackPoint
	for i, lon := range []float64{7.95, 7.97, 7.99, 8.005, 8.01, 8.015, 8.03, 8.05} { // -9 s ... -2 s
		ts := now.Add(time.Duration(i-9) * time.Second)
		pts = append(pts, store.TrackPoint{TenantID: fx.tenant, DroneID: drone,
			Report: events.Report{TS: ts, Lat: 47.0, Lon: lon, HAE: new(500.0)}})
	}
	if err := fx.st.AppendTrack(ctx, pts); err != nil {
		t.Fatal(err)
	}
	fx.put(t, drone, events.DroneState{TS: now.Add(-2 * time.Second), UpdatedAt: now, Lat: 47.0, Lon: 8.019})
	display := ridToken(t, auth, ridauth.ScopeDisplayProvider)
	r := ridDo(t, "GET", fx.url+"/rid/v2/uss/flights?view=46.99,8.0,47.01,8.02&recent_positions_duration=8.5", display, nil)
	got := decode[remoteid.FlightsResponse](t, r)
	if r.status != 200 || len(got.Flights) != 1 {
		t.Fatalf("flights %d %s", r.status, r.body)
	}
	var lons []float64
	for _, p := range got.Flights[0].RecentPositions {
		lons = append(lons, p.Position.Lng)
		if p.Position.Alt != 500 {
			t.Errorf("recent position alt %v, want the sample's hae", p.Position.Alt)
		}
	}
	// -9 s (7.95) is older than 8.5 s; 7.97 is out of the view and not next
	// to an in-view sample; 7.99 enters, 8.03 leaves; 8.05 is out.
	want := []float64{7.99, 8.005, 8.01, 8.015, 8.03}
	if fmt.Sprint(lons) != fmt.Sprint(want) {
		t.Errorf("recent positions at %v, want %v", lons, want)
	}
	if r := ridDo(t, "GET", fx.url+"/rid/v2/uss/flights?view=46.99,8.0,47.01,8.02", display, nil); strings.Contains(string(r.body), "recent_positions") {
		t.Errorf("recent positions without being asked: %s", r.body)
	}
}
