package function

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tkrajina/gpxgo/gpx"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/flights"
	"github.com/dronetrack/dronetrack/core/flights/flightupdate"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/storetest"
	"github.com/dronetrack/dronetrack/events"
)

// seedFlight writes 100 s of a drone to history and runs flight detection
// as process does: armed at 10 s, flying north at 5 m/s, disarmed at 90 s.
// It returns the reports and the stored flight.
func seedFlight(t *testing.T, st store.Store, tenantID, droneID string, start time.Time) ([]events.Report, flights.Flight) {
	t.Helper()
	reps := flightReports(start)
	storetest.DeliverFlightBatch(t, st, tenantID, droneID, reps)
	fs, err := st.ListFlights(context.Background(), store.FlightQuery{TenantID: tenantID, DroneID: droneID, From: start, To: start.Add(time.Hour)})
	if err != nil || len(fs) != 1 {
		t.Fatalf("seeded flights: %+v, %v", fs, err)
	}
	return reps, fs[0]
}

// oweFlightReplay writes the drone's flight (flightReports from start) as
// process would when its middle 20 s come late: the first 40 s and the
// last 40 s in order, inOrder (if set), then the middle, whose write owes
// a replay of the drone's flights and leaves it to be paid.
func oweFlightReplay(t *testing.T, st store.Store, tenantID, droneID string, start time.Time, inOrder func()) []events.Report {
	t.Helper()
	reps := flightReports(start)
	storetest.DeliverFlightBatch(t, st, tenantID, droneID, reps[:40])
	storetest.DeliverFlightBatch(t, st, tenantID, droneID, reps[60:])
	if inOrder != nil {
		inOrder()
	}
	ctx := context.Background()
	pts := make([]store.TrackPoint, 0, 20)
	for _, r := range reps[40:60] {
		pts = append(pts, store.TrackPoint{TenantID: tenantID, DroneID: droneID, Report: r})
	}
	if err := st.AppendTrack(ctx, pts); err != nil {
		t.Fatal(err)
	}
	p := flightupdate.NewPass(flights.DefaultSettings(), reps[40:60], time.Now())
	if _, err := st.UpdateFlights(ctx, tenantID, droneID, p.Apply); err != nil || !p.NeedsReplay() {
		t.Fatalf("late batch: owes a replay %v, err %v; want it owed", p.NeedsReplay(), err)
	}
	return reps
}

// flightReports is 100 s of a drone: armed at 10 s, flying north at 5 m/s,
// disarmed at 90 s.
func flightReports(start time.Time) []events.Report {
	var reps []events.Report
	for s := 0; s < 100; s++ {
		h := 0.0
		if s >= 20 && s < 80 {
			h = 30
		}
		fix, sats, mode := events.FixRTKFix, 20, "AUTO.MISSION"
		r := events.Report{TS: start.Add(time.Duration(s) * time.Second), Lat: 47 + float64(s)*5/111195, Lon: 8,
			Alt: new(400 + h), HAE: new(447.5 + h), Height: new(h), Speed: new(5.0), Battery: new(100 - float64(s)/5),
			Armed: new(s >= 10 && s < 90), Mode: &mode, Fix: &fix, Satellites: &sats}
		reps = append(reps, r)
	}
	return reps
}

func TestFlightsAPI(t *testing.T) {
	fx := newFixture(t, "local://"+uniq("sm"), nil)
	drone := fx.tenant + "-a"
	reps, fl := seedFlight(t, fx.st, fx.tenant, drone, t0)
	_, later := seedFlight(t, fx.st, fx.tenant, fx.tenant+"-b", t0.Add(time.Hour))
	_, others := seedFlight(t, fx.st, fx.other, fx.other+"-x", t0)
	// A battery alert of the drone opened during the flight, one of another drone.
	low := events.DroneState{TS: t0.Add(50 * time.Second), Lat: 47, Lon: 8, Battery: new(5.0), UpdatedAt: t0.Add(50 * time.Second)}
	for _, d := range []string{drone, fx.tenant + "-b"} {
		if _, err := fx.st.EvaluateAlerts(context.Background(), fx.tenant, d, func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool) {
			return alerting.EvaluateState(prev, low, alerting.DefaultSettings(), nil, low.UpdatedAt)
		}); err != nil {
			t.Fatal(err)
		}
	}
	rng := "from=" + url.QueryEscape(t0.Add(-time.Hour).Format(time.RFC3339)) + "&to=" + url.QueryEscape(t0.Add(3*time.Hour).Format(time.RFC3339))

	var list flightList
	r := get(t, fx.url+"/api/v1/drones/"+drone+"/flights?"+rng)
	if r.status != 200 || json.Unmarshal(r.body, &list) != nil || len(list.Flights) != 1 || list.Flights[0].ID != fl.ID {
		t.Fatalf("drone flights: %d %s", r.status, r.body)
	}
	f := list.Flights[0]
	if !f.Start.Equal(t0.Add(10*time.Second)) || !f.End.Equal(t0.Add(90*time.Second)) || *f.MaxHeight != 30 || *f.MaxAlt != 430 ||
		math.Abs(f.DistanceM-400) > 0.5 || *f.BatteryStart != 98 || *f.BatteryEnd != 82 || f.DurationSecs != 80 {
		t.Errorf("flight stats %+v", f)
	}
	r = get(t, fx.url+"/api/v1/flights?"+rng)
	if json.Unmarshal(r.body, &list) != nil || len(list.Flights) != 2 || list.Flights[0].ID != later.ID || list.Flights[1].ID != fl.ID {
		t.Errorf("fleet flights, newest first: %s", r.body)
	}
	r = get(t, fx.url+"/api/v1/flights?"+rng+"&limit=1")
	if json.Unmarshal(r.body, &list) != nil || len(list.Flights) != 1 {
		t.Errorf("limit 1: %s", r.body)
	}
	var detail flightDetail
	r = get(t, fx.url+"/api/v1/flights/"+fl.ID)
	if r.status != 200 || json.Unmarshal(r.body, &detail) != nil || detail.ID != fl.ID {
		t.Fatalf("flight: %d %s", r.status, r.body)
	}
	if len(detail.Alerts) != 1 || detail.Alerts[0].DroneID != drone || detail.Alerts[0].Kind != alerting.KindBatteryLow {
		t.Errorf("alerts during the flight: %+v, want the drone's battery alert only", detail.Alerts)
	}

	// Exports. GPX 1.1, read back by a GPX parser: one point per report of
	// the flight, elevation (m above mean sea level) and time on each.
	r = get(t, fx.url+"/api/v1/flights/"+fl.ID+"/export?format=gpx")
	if r.status != 200 || r.header.Get("Content-Type") != "application/gpx+xml" ||
		!strings.Contains(r.header.Get("Content-Disposition"), `attachment; filename="`) {
		t.Fatalf("gpx: %d %v", r.status, r.header)
	}
	g, err := gpx.ParseBytes(r.body)
	if err != nil {
		t.Fatalf("gpx parse: %v\n%.500s", err, r.body)
	}
	if g.Version != "1.1" || len(g.Tracks) != 1 || len(g.Tracks[0].Segments) != 1 {
		t.Fatalf("gpx shape: version %q tracks %d", g.Version, len(g.Tracks))
	}
	gp := g.Tracks[0].Segments[0].Points
	if len(gp) != 81 {
		t.Fatalf("gpx points %d, want 81 (10 s..90 s)", len(gp))
	}
	for i, p := range gp {
		want := reps[10+i]
		if !p.Timestamp.Equal(want.TS) || p.Latitude != want.Lat || p.Longitude != want.Lon ||
			!p.Elevation.NotNull() || p.Elevation.Value() != *want.Alt {
			t.Fatalf("gpx point %d: %v %v,%v ele %v; want %v %v,%v ele %v", i, p.Timestamp, p.Latitude, p.Longitude,
				p.Elevation.Value(), want.TS, want.Lat, want.Lon, *want.Alt)
		}
		if p.GeoidHeight != "47.5" || p.Satellites.Value() != 20 || p.TypeOfGpsFix != "dgps" {
			t.Fatalf("gpx point %d: geoid height %q sats %v fix %q", i, p.GeoidHeight, p.Satellites.Value(), p.TypeOfGpsFix)
		}
	}
	// CSV: header and one row per point, alt above mean sea level.
	r = get(t, fx.url+"/api/v1/flights/"+fl.ID+"/export?format=csv")
	rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil || len(rows) != 82 || rows[0][3] != "alt_msl_m" || rows[1][0] != reps[10].TS.Format(time.RFC3339Nano) ||
		rows[20][3] != "430" || rows[1][10] != "true" || rows[1][11] != "AUTO.MISSION" {
		t.Errorf("csv: %v rows, err %v, first %v", len(rows), err, rows[:min(2, len(rows))])
	}
	// GeoJSON: a LineString with hae as the third coordinate (RFC 7946).
	r = get(t, fx.url+"/api/v1/flights/"+fl.ID+"/export?format=geojson")
	var gj struct {
		Type     string
		Features []struct {
			Geometry struct {
				Type        string
				Coordinates [][]float64
			}
			Properties struct {
				Times    []time.Time
				AltMSL   []float64 `json:"altMSL"`
				FlightID string    `json:"flightId"`
			}
		}
	}
	if err := json.Unmarshal(r.body, &gj); err != nil || r.header.Get("Content-Type") != "application/geo+json" {
		t.Fatalf("geojson: %v %s", err, r.header.Get("Content-Type"))
	}
	if ft := gj.Features[0]; gj.Type != "FeatureCollection" || ft.Geometry.Type != "LineString" || len(ft.Geometry.Coordinates) != 81 ||
		ft.Geometry.Coordinates[0][0] != 8 || ft.Geometry.Coordinates[10][2] != 477.5 || ft.Properties.AltMSL[10] != 430 ||
		!ft.Properties.Times[0].Equal(reps[10].TS) || ft.Properties.FlightID != fl.ID {
		t.Errorf("geojson content: %.300s", r.body)
	}
	// KML: a gx:Track with a time per point, absolute altitudes.
	r = get(t, fx.url+"/api/v1/flights/"+fl.ID+"/export?format=kml")
	var k struct {
		Document struct {
			Placemark []struct {
				Name  string
				Track struct {
					AltitudeMode string   `xml:"altitudeMode"`
					When         []string `xml:"when"`
					Coord        []string `xml:"http://www.google.com/kml/ext/2.2 coord"`
				} `xml:"http://www.google.com/kml/ext/2.2 Track"`
			}
		}
	}
	if err := xml.Unmarshal(r.body, &k); err != nil || len(k.Document.Placemark) != 4 {
		t.Fatalf("kml: %v, %d placemarks\n%.400s", err, len(k.Document.Placemark), r.body)
	}
	if tr := k.Document.Placemark[0].Track; len(tr.When) != 81 || len(tr.Coord) != 81 || tr.AltitudeMode != "absolute" ||
		tr.Coord[20] != "8 "+num(reps[30].Lat)+" 430" {
		t.Errorf("kml track: mode %q, %d times, %d coords, coord[20] %q", tr.AltitudeMode, len(tr.When), len(tr.Coord), tr.Coord[min(20, len(tr.Coord)-1)])
	}
	// A drone and time range: the whole 100 s.
	r = get(t, fx.url+"/api/v1/drones/"+drone+"/export?format=gpx&"+rng)
	if g, err := gpx.ParseBytes(r.body); err != nil || len(g.Tracks[0].Segments[0].Points) != 100 {
		t.Errorf("range export: %d %v", r.status, err)
	}

	// Errors and isolation.
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/api/v1/flights/" + fl.ID + "/export?format=shp", 400},
		{"/api/v1/flights/" + fl.ID + "/export", 400},
		{"/api/v1/drones/" + drone + "/export?format=gpx&from=yesterday", 400},
		{"/api/v1/drones/" + drone + "/flights?limit=0", 400},
		{"/api/v1/flights?from=" + url.QueryEscape(t0.Format(time.RFC3339)) + "&to=" + url.QueryEscape(t0.Add(-time.Second).Format(time.RFC3339)), 400},
		{"/api/v1/flights/" + others.ID, 404},
		{"/api/v1/flights/" + others.ID + "/export?format=gpx", 404},
		{"/api/v1/drones/" + fx.other + "-x/flights", 404},
		{"/api/v1/drones/" + fx.other + "-x/export?format=csv", 404},
		{"/api/v1/flights/fl_nope", 404},
	} {
		if r := get(t, fx.url+tc.path); r.status != tc.status {
			t.Errorf("GET %s: %d, want %d: %s", tc.path, r.status, tc.status, r.body)
		} else if tc.status == 400 && !strings.Contains(string(r.body), `"pointer"`) {
			t.Errorf("GET %s: 400 without a named parameter: %s", tc.path, r.body)
		}
	}
	r = get(t, fx.url+"/api/v1/flights?"+rng)
	if strings.Contains(string(r.body), others.ID) || strings.Contains(string(r.body), fx.other) {
		t.Errorf("fleet flights leak another tenant's: %s", r.body)
	}
}

func TestFlightSettingsAPI(t *testing.T) {
	e := newAuthEnv(t, "local://"+uniq("sm"), nil)
	a := signUp(t, e, "Alpha Org", "ann@alpha.test", pwA)
	r := e.do(t, a, http.MethodGet, "/api/v1/flight-settings", nil)
	if got := decode[flights.Settings](t, r); got != flights.DefaultSettings() {
		t.Fatalf("defaults: %d %s", r.status, r.body)
	}
	want := flights.Settings{MinSpeed: 1, MinHeight: 2, StartSecs: 5, StopSecs: 20, MaxGapSecs: 120}
	if r := e.do(t, a, http.MethodPut, "/api/v1/flight-settings", want); r.status != 200 {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	if got := decode[flights.Settings](t, e.do(t, a, http.MethodGet, "/api/v1/flight-settings", nil)); got != want {
		t.Errorf("after put: %+v, want %+v", got, want)
	}
	r = e.do(t, a, http.MethodPut, "/api/v1/flight-settings", flights.Settings{MinSpeed: -1, MinHeight: 2, StartSecs: 5, MaxGapSecs: 120})
	if r.status != 400 || !strings.Contains(string(r.body), `"/minSpeed"`) || !strings.Contains(string(r.body), `"/stopSecs"`) {
		t.Errorf("bad settings: %d %s", r.status, r.body)
	}
}

// A drone's flights list says while a replay of its flights is owed (a late
// batch written, the replay not run yet) and from when its flights may
// still change; once the replay has run, it says nothing. The fleet's list
// never says (see docs/flights.md).
func TestDroneFlightsSayWhenAReplayIsOwed(t *testing.T) {
	fx := newFixture(t, "local://"+uniq("sm"), nil)
	ctx := context.Background()
	drone := fx.tenant + "-c"
	rng := "from=" + url.QueryEscape(t0.Add(-time.Hour).Format(time.RFC3339)) + "&to=" + url.QueryEscape(t0.Add(time.Hour).Format(time.RFC3339))
	list := func(path string) (flightList, string) {
		t.Helper()
		r := get(t, fx.url+path+"?"+rng)
		var l flightList
		if r.status != 200 || json.Unmarshal(r.body, &l) != nil {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
		return l, string(r.body)
	}
	droneFlights := "/api/v1/drones/" + drone + "/flights"
	reps := oweFlightReplay(t, fx.st, fx.tenant, drone, t0, func() {
		if l, body := list(droneFlights); l.ReplayOwed != nil || strings.Contains(body, "replayOwed") {
			t.Errorf("flights written in order: %s, want no replayOwed", body)
		}
	})
	l, body := list(droneFlights)
	if l.ReplayOwed == nil || l.ReplayOwed.From.After(reps[40].TS) || l.ReplayOwed.Since.IsZero() {
		t.Fatalf("flights with a late batch written: %s, want replayOwed from at or before %s", body, reps[40].TS.Format(time.RFC3339))
	}
	if fleet, body := list("/api/v1/flights"); fleet.ReplayOwed != nil {
		t.Errorf("fleet's flights: %s, want no replayOwed", body)
	}
	if _, err := flightupdate.Replay(ctx, fx.st, flights.DefaultSettings(), fx.tenant, drone, time.Now()); err != nil {
		t.Fatal(err)
	}
	if l, body := list(droneFlights); l.ReplayOwed != nil {
		t.Errorf("flights after the replay ran: %s, want no replayOwed", body)
	}
}
