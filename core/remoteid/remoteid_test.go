package remoteid

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/events"
)

var t0 = time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)

func f64(v float64) *float64 { return &v }

func TestParseView(t *testing.T) {
	v, err := ParseView("47.0,8.0, 47.01,8.02")
	if err != nil {
		t.Fatal(err)
	}
	if want := (View{47, 8, 47.01, 8.02}); v != want {
		t.Errorf("view = %+v, want %+v", v, want)
	}
	for _, bad := range []string{"", "1,2,3", "1,2,3,4,5", "a,2,3,4", "91,0,0,0", "0,181,0,0", "NaN,0,0,0", "0,0,0,Inf"} {
		if _, err := ParseView(bad); err == nil {
			t.Errorf("ParseView(%q) accepted", bad)
		}
	}
}

func TestViewDiagonalLimit(t *testing.T) {
	// 0.05° of latitude is ~5.56 km; with 0.05° of longitude at 47°N
	// (~3.79 km) the diagonal is ~6.7 km: allowed.
	ok := View{47, 8, 47.05, 8.05}
	if d := ok.DiagonalKm(); d < 6.5 || d > 6.9 {
		t.Fatalf("diagonal = %.3f km, want ~6.7", d)
	}
	if err := CheckView(ok); err != nil {
		t.Errorf("6.7 km view: %v", err)
	}
	// 8 km straight north.
	big := View{47, 8, 47 + 8/111.195, 8}
	if d := big.DiagonalKm(); math.Abs(d-8) > 0.01 {
		t.Fatalf("diagonal = %.3f km, want 8", d)
	}
	if err := CheckView(big); !errors.Is(err, ErrViewTooLarge) {
		t.Errorf("8 km view: %v, want ErrViewTooLarge", err)
	}
}

func TestViewAcrossAntimeridian(t *testing.T) {
	v := View{-17, 179.99, -16.99, -179.99}
	if d := v.DiagonalKm(); d > 3 {
		t.Errorf("diagonal across ±180 = %.1f km, want the short way (~2.4 km)", d)
	}
	bs := v.Boxes()
	if len(bs) != 2 {
		t.Fatalf("boxes = %+v, want two", bs)
	}
	if !v.Contains(-16.995, 179.995) || !v.Contains(-16.995, -179.995) || v.Contains(-16.995, 0) {
		t.Error("Contains disagrees with the box across the antimeridian")
	}
}

func TestSerialNumbers(t *testing.T) {
	for _, s := range []string{"MFR1C123456789ABC", "ABCD1X", "1234F123456789ABCDEF"[:5] + "123456789ABCDEF"} {
		if !ValidSerial(s) {
			t.Errorf("ValidSerial(%q) = false", s)
		}
	}
	for _, s := range []string{
		"INTCJ123-4567-890", // the API's example: J is no length code
		"MFR1C12345678",     // length code C = 12, 8 given
		"MFRO1X",            // O is not a code point
		"MFR10",             // no serial
		"mfr11x",            // lower case
		"ABCD0X",            // 0 is no length code
	} {
		if ValidSerial(s) {
			t.Errorf("ValidSerial(%q) = true", s)
		}
	}
}

func TestIdentityValidate(t *testing.T) {
	id := Identity{SerialNumber: " mfr1c123456789abc ", RegistrationID: "n.123456", UAType: "Helicopter",
		OperatorID: "FIN87astrdge12k8", EUCategory: "Open", EUClass: "Class1"}.Normalize()
	if errs := id.Validate(); len(errs) != 0 {
		t.Errorf("valid identity: %+v", errs)
	}
	if id.SerialNumber != "MFR1C123456789ABC" || id.RegistrationID != "N.123456" {
		t.Errorf("normalised %+v", id)
	}
	bad := Identity{SerialNumber: "X", RegistrationID: "N123", UAType: "Quadcopter", OperatorID: "has space",
		EUCategory: "open", EUClass: "Class9", OperatorLocation: "fuzzy"}
	var fields []string
	for _, e := range bad.Validate() {
		fields = append(fields, e.Field)
		if e.Pointer != "/"+e.Field || e.Detail == "" {
			t.Errorf("field error %+v", e)
		}
	}
	want := []string{"serialNumber", "registrationId", "operatorId", "uaType", "euCategory", "euClass", "operatorLocation"}
	if !slices.Equal(fields, want) {
		t.Errorf("fields = %v, want %v", fields, want)
	}
}

func TestAccuracyCategories(t *testing.T) {
	cases := []struct {
		m    *float64
		h, v string
	}{
		{nil, "HAUnknown", "VAUnknown"},
		{f64(0.5), "HA1m", "VA1m"},
		{f64(2.9), "HA3m", "VA3m"},
		{f64(3), "HA10m", "VA10m"},
		{f64(24), "HA30m", "VA25m"},
		{f64(40), "HA005NM", "VA45m"},
		{f64(100), "HA01NM", "VA150m"},
		{f64(200), "HA03NM", "VA150mPlus"},
		{f64(20000), "HA10NMPlus", "VA150mPlus"},
	}
	for _, c := range cases {
		if got := HorizontalAccuracy(c.m); got != c.h {
			t.Errorf("HorizontalAccuracy(%v) = %s, want %s", c.m, got, c.h)
		}
		if got := VerticalAccuracy(c.m); got != c.v {
			t.Errorf("VerticalAccuracy(%v) = %s, want %s", c.m, got, c.v)
		}
	}
}

func TestStateMapping(t *testing.T) {
	armed := true
	tel := Telemetry{TS: t0.Add(123456789 * time.Nanosecond), Lat: 47.123456789, Lng: 8.98765432, HAE: f64(512.345),
		Height: f64(40), Track: f64(-90), Speed: f64(300), VSpeed: f64(-80), HAcc: f64(2), VAcc: f64(4), Armed: &armed}
	s := tel.State()
	if s.Timestamp != (Time{Value: "2026-12-03T08:00:00.123Z", Format: "RFC3339"}) {
		t.Errorf("timestamp %+v", s.Timestamp)
	}
	p := s.Position
	if p.Lat != 47.1234568 || p.Lng != 8.9876543 || p.Alt != 512.35 {
		t.Errorf("position %+v: want 1e-7 degrees and alt from hae", p)
	}
	if p.Height == nil || *p.Height != (Height{Distance: 40, Reference: "TakeoffLocation"}) {
		t.Errorf("height %+v", p.Height)
	}
	if p.AccuracyH != "HA3m" || p.AccuracyV != "VA10m" {
		t.Errorf("accuracy %s %s", p.AccuracyH, p.AccuracyV)
	}
	if s.Track != 270 || s.Speed != MaxSpeed || s.VerticalSpeed != -MaxVerticalSpeed || s.OperationalStatus != "Airborne" {
		t.Errorf("state %+v: want track 270, speed capped at 254.25, vertical speed -62, Airborne", s)
	}

	unknown := Telemetry{TS: t0, Lat: 1, Lng: 2}.State()
	if unknown.Position.Alt != -1000 || unknown.Track != 361 || unknown.Speed != 255 || unknown.VerticalSpeed != 63 ||
		unknown.SpeedAccuracy != "SAUnknown" || unknown.Position.Height != nil || unknown.OperationalStatus != "Undeclared" {
		t.Errorf("unknown values %+v", unknown)
	}
	disarmed := false
	if got := (Telemetry{Armed: &disarmed}).Status(); got != "Ground" {
		t.Errorf("disarmed = %s", got)
	}
	if got := (Telemetry{Armed: &armed, Mode: ptr("Emergency")}).Status(); got != "Emergency" {
		t.Errorf("emergency mode = %s", got)
	}
	if got := (Telemetry{Speed: f64(5)}).Status(); got != "Airborne" {
		t.Errorf("moving without armed flag = %s", got)
	}
}

func ptr[T any](v T) *T { return &v }

func TestFresh(t *testing.T) {
	if !Fresh(t0, t0.Add(60*time.Second)) || Fresh(t0, t0.Add(61*time.Second)) || !Fresh(t0.Add(time.Second), t0) {
		t.Error("the near-real-time window is 60 s")
	}
}

func TestDetailsAndObfuscation(t *testing.T) {
	key := []byte("server-secret")
	home := &Point{Lat: 47.5, Lng: 8.5, HAE: f64(450)}
	id := &Identity{SerialNumber: "MFR1C123456789ABC", OperatorID: "CHE123", EUCategory: "Open"}
	d := Details("d-1", id, home, key)
	if d.UASID == nil || d.UASID.SerialNumber != id.SerialNumber || d.UASID.UTMID != "" {
		t.Errorf("uas_id %+v", d.UASID)
	}
	if d.EUClassification == nil || *d.EUClassification != (EUClassification{"Open", "EUClassUndefined"}) {
		t.Errorf("eu_classification %+v", d.EUClassification)
	}
	loc := d.OperatorLocation
	if loc == nil {
		t.Fatal("no operator location")
	}
	dist := DistanceM(home.Lat, home.Lng, loc.Position.Lat, loc.Position.Lng)
	if dist < MinObfuscationM || dist > 2*MinObfuscationM+1 {
		t.Errorf("obfuscated location %.0f m from the true one, want 300-600", dist)
	}
	if loc.Altitude != nil {
		t.Error("an obfuscated location must not carry the exact altitude")
	}
	if again := Details("d-1", id, home, key); *again.OperatorLocation != *loc {
		t.Error("obfuscation differs between queries: averaging would reveal the point")
	}
	if other := Details("d-1", id, home, []byte("another key")); *other.OperatorLocation == *loc {
		t.Error("obfuscation does not depend on the server key")
	}
	exact := Details("d-1", &Identity{OperatorLocation: OperatorExact}, home, key)
	if p := exact.OperatorLocation; p.Position != (LatLng{47.5, 8.5}) || p.Altitude == nil || p.Altitude.Value != 450 ||
		p.Altitude.Reference != "W84" || p.AltitudeType != "Takeoff" {
		t.Errorf("exact location %+v", p)
	}
	if h := Details("d-1", &Identity{OperatorLocation: OperatorHidden}, home, key); h.OperatorLocation != nil {
		t.Error("hidden operator location reported")
	}
	none := Details("d-2", nil, nil, key)
	if none.UASID == nil || len(none.UASID.UTMID) != 36 || none.UASID.UTMID[14] != '4' {
		t.Errorf("undeclared drone uas_id %+v: want a utm_id UUID", none.UASID)
	}
}

func TestObfuscationSpreadsDirections(t *testing.T) {
	quadrants := map[[2]bool]bool{}
	for i := 0; i < 64; i++ {
		p := Obfuscate(10, 10, []byte("k"), "flight-"+string(rune('a'+i%26))+string(rune('a'+i/26)))
		quadrants[[2]bool{p.Lat > 10, p.Lng > 10}] = true
	}
	if len(quadrants) != 4 {
		t.Errorf("64 obfuscated points fall in %d quadrants, want all 4", len(quadrants))
	}
}

func injected(sec int, lat, lng float64) InjectedState {
	return InjectedState{Timestamp: t0.Add(time.Duration(sec) * time.Second).Format(time.RFC3339),
		Position: &InjectedPosition{Lat: f64(lat), Lng: f64(lng), Alt: f64(600), AccuracyH: "HA1m", AccuracyV: "VA3m"},
		Speed:    f64(5), Track: f64(90), VerticalSpeed: f64(0), SpeedAccuracy: "SA1mps", OperationalStatus: "Airborne"}
}

func TestInjectedFlightOverTime(t *testing.T) {
	p := CreateTestParameters{RequestedFlights: []TestFlight{{
		InjectionID: "inj-1", AircraftType: "Helicopter",
		// Out of order on purpose: PrepareTest sorts.
		Telemetry: []InjectedState{injected(10, 47.0, 8.002), injected(0, 47.0, 8.0), injected(5, 47.0, 8.001)},
		DetailsResponses: []DetailsResponseAt{
			{EffectiveAfter: t0.Add(5 * time.Second).Format(time.RFC3339), Details: InjectedDetails{ID: "x", OperatorID: "LATER"}},
			{EffectiveAfter: t0.Format(time.RFC3339), Details: InjectedDetails{ID: "x", OperatorID: "FIRST",
				SerialNumber: "MFR1C123456789ABC", OperatorLocation: &LatLng{47, 7.99}}},
		},
	}}}
	fs, errs := PrepareTest("test-1", p)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	f := &fs[0]
	if f.FlightID() != TestFlightID("test-1", "inj-1") || strings.ContainsAny(f.FlightID(), "\x00\t\r\n#%/:?@[\\]") {
		t.Errorf("flight id %q", f.FlightID())
	}
	view := View{46.99, 7.99, 47.01, 8.0015} // holds the first two positions only
	if _, ok := f.Flight(t0.Add(-time.Second), view, 0); ok {
		t.Error("reported before its first state")
	}
	fl, ok := f.Flight(t0.Add(7*time.Second), view, 10*time.Second)
	if !ok || fl.CurrentState.Position.Lng != 8.001 || !fl.Simulated || fl.AircraftType != "Helicopter" {
		t.Fatalf("at +7 s: %+v %v", fl, ok)
	}
	if len(fl.RecentPositions) != 2 {
		t.Errorf("recent positions %+v, want the two states of the last 10 s", fl.RecentPositions)
	}
	// At +12 s the current state (8.002) is outside the view, but the one
	// at +5 s inside it is within 60 s: still reported.
	if fl, ok := f.Flight(t0.Add(12*time.Second), view, 0); !ok || fl.CurrentState.Position.Lng != 8.002 {
		t.Errorf("at +12 s: %+v %v", fl, ok)
	}
	if _, ok := f.Flight(t0.Add(66*time.Second), view, 0); ok {
		t.Error("reported 61 s after its last position in the view")
	}
	if _, ok := f.Flight(t0.Add(71*time.Second), View{46, 7, 48, 9}, 0); ok || !f.Ended(t0.Add(71*time.Second)) {
		t.Error("reported more than 60 s after its last state")
	}
	if d := f.Details(t0.Add(time.Second)); d.OperatorID != "FIRST" || d.ID != f.FlightID() || d.UASID == nil ||
		d.UASID.SerialNumber != "MFR1C123456789ABC" || d.OperatorLocation == nil {
		t.Errorf("details at +1 s: %+v", d)
	}
	if d := f.Details(t0.Add(6 * time.Second)); d.OperatorID != "LATER" {
		t.Errorf("details at +6 s: %+v", d)
	}
	if fs[0].DetailsResponses[0].Details.ID != f.FlightID() {
		t.Error("echoed details.id is not the reported flight id")
	}

	packed, err := PackFlights(fs)
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnpackFlights("test-1", packed)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(fs)
	b, _ := json.Marshal(back)
	if string(a) != string(b) {
		t.Errorf("pack/unpack changed the flights:\n%s\n%s", a, b)
	}
}

func TestPrepareTestRejects(t *testing.T) {
	_, errs := PrepareTest("t", CreateTestParameters{RequestedFlights: []TestFlight{
		{InjectionID: "a", Telemetry: []InjectedState{{Timestamp: "yesterday", Position: &InjectedPosition{Lat: f64(1), Lng: f64(2)}}}},
		{InjectionID: "a", AircraftType: "Saucer", Telemetry: []InjectedState{{Timestamp: t0.Format(time.RFC3339)}}},
		{Telemetry: nil},
	}})
	var ptrs []string
	for _, e := range errs {
		ptrs = append(ptrs, e.Pointer)
	}
	want := []string{"/requested_flights/0/telemetry/0/timestamp", "/requested_flights/1/injection_id",
		"/requested_flights/1/aircraft_type", "/requested_flights/1/telemetry/0/position",
		"/requested_flights/2/injection_id", "/requested_flights/2/telemetry"}
	if !slices.Equal(ptrs, want) {
		t.Errorf("pointers %v\nwant %v", ptrs, want)
	}
}

func TestFromState(t *testing.T) {
	armed := false
	st := events.DroneState{TS: t0, Lat: 47.1, Lon: 8.2, Alt: f64(500), HAE: f64(549.3), Height: f64(12),
		VSpeed: f64(1.5), HAcc: f64(4), VAcc: f64(6), Armed: &armed, Heading: f64(80), GroundSpeed: f64(3),
		Home: &events.Position{Lat: 47.09, Lon: 8.19, Alt: f64(480)}}
	s := FromState(st).State()
	if s.Position.Alt != 549.3 || s.Position.Height.Distance != 12 || s.VerticalSpeed != 1.5 || s.Speed != 3 ||
		s.Track != 80 || s.Position.AccuracyH != "HA10m" || s.Position.AccuracyV != "VA10m" || s.OperationalStatus != "Ground" {
		t.Errorf("state from drone state: %+v", s)
	}
	noHAE := st
	noHAE.HAE = nil
	if got := FromState(noHAE).State().Position.Alt; got != UnknownAlt {
		t.Errorf("alt without hae = %v, want -1000 (never the MSL alt)", got)
	}
	h := Home(st)
	if h == nil || h.Lat != 47.09 || h.HAE == nil || math.Abs(*h.HAE-529.3) > 1e-9 {
		t.Errorf("home %+v: want the MSL home altitude plus the drone's geoid separation (529.3)", h)
	}
	if Home(noHAE).HAE != nil {
		t.Error("home height above the ellipsoid without the drone's hae")
	}
	rep := FromReport(events.Report{TS: t0, Lat: 1, Lon: 2, HAE: f64(10), Heading: f64(5)}).Position()
	if rep.Alt != 10 || rep.Lat != 1 {
		t.Errorf("report position %+v", rep)
	}
}

func TestFreshState(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name    string
		ts, acc time.Time
		want    bool
	}{
		{"just reported", now.Add(-time.Second), now, true},
		{"fast clock, reporting", now.Add(4 * time.Minute), now.Add(-time.Second), true},
		{"fast clock, silent 90 s", now.Add(150 * time.Second), now.Add(-90 * time.Second), false},
		{"old report accepted now", now.Add(-2 * time.Minute), now, false},
		{"no acceptance time", now.Add(-30 * time.Second), time.Time{}, true},
	} {
		if got := FreshState(events.DroneState{TS: c.ts, UpdatedAt: c.acc}, now); got != c.want {
			t.Errorf("%s: FreshState %v; want %v", c.name, got, c.want)
		}
	}
}
