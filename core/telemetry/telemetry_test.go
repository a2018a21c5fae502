package telemetry

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/events"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func f(v float64) *float64 { return &v }

func rep(sec float64, lat, lon float64, batt *float64) events.Report {
	return events.Report{TS: t0.Add(time.Duration(sec * float64(time.Second))), Lat: lat, Lon: lon, Battery: batt}
}

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.6f, want %.6f ± %g", what, got, want, tol)
	}
}

func TestDistance(t *testing.T) {
	tests := []struct {
		name                   string
		lat1, lon1, lat2, lon2 float64
		want, tol              float64
	}{
		{"Paris to London", 48.8566, 2.3522, 51.5074, -0.1278, 343_500, 500},
		{"same point", 10, 10, 10, 10, 0, 1e-9},
		{"across the antimeridian", 0, 179.9, 0, -179.9, 22_239, 5},
		{"over the north pole", 89.9, 0, 89.9, 180, 22_239, 5},
		{"one degree of latitude", 0, 0, 1, 0, 111_195, 5},
	}
	for _, tt := range tests {
		near(t, tt.name, Distance(tt.lat1, tt.lon1, tt.lat2, tt.lon2), tt.want, tt.tol)
	}
}

func TestBearing(t *testing.T) {
	tests := []struct {
		name                   string
		lat1, lon1, lat2, lon2 float64
		want                   float64
	}{
		{"north", 0, 0, 1, 0, 0},
		{"east", 0, 0, 0, 1, 90},
		{"south", 1, 0, 0, 0, 180},
		{"west", 0, 0, 0, -1, 270},
		{"east across the antimeridian", 0, 179.9, 0, -179.9, 90},
		{"west across the antimeridian", 0, -179.9, 0, 179.9, 270},
	}
	for _, tt := range tests {
		got := Bearing(tt.lat1, tt.lon1, tt.lat2, tt.lon2)
		if got < 0 || got >= 360 {
			t.Errorf("%s: %v outside [0,360)", tt.name, got)
		}
		near(t, tt.name, got, tt.want, 1e-6)
	}
}

func TestNextNewerWins(t *testing.T) {
	first, ok := Next(nil, rep(0, 0, 0, f(90)), t0)
	if !ok || first.DistanceM != 0 || first.GroundSpeed != nil || first.BatteryDrain != nil {
		t.Fatalf("first report: ok=%v state=%+v, want accepted with nothing derived", ok, first)
	}
	for name, r := range map[string]events.Report{
		"duplicate (equal ts)": rep(0, 1, 1, f(80)),
		"older (late arrival)": rep(-5, 1, 1, f(80)),
	} {
		got, ok := Next(&first, r, t0)
		if ok || got != first {
			t.Errorf("%s: ok=%v, state changed to %+v", name, ok, got)
		}
	}
}

func TestNextDerivesMotionAndBattery(t *testing.T) {
	a, _ := Next(nil, rep(0, 0, 0, f(80)), t0)
	// 0.001° of latitude north in 10 s: ~111.2 m at ~11.1 m/s.
	b, ok := Next(&a, rep(10, 0.001, 0, f(79)), t0.Add(time.Minute))
	if !ok {
		t.Fatal("newer report rejected")
	}
	near(t, "distance", b.DistanceM, 111.195, 0.01)
	near(t, "ground speed", *b.GroundSpeed, 11.1195, 0.001)
	near(t, "course", *b.Course, 0, 1e-6)
	near(t, "drain %/s", *b.BatteryDrain, 0.1, 1e-9)
	near(t, "time to empty", *b.TimeToEmptySecs, 790, 1e-6)
	if !b.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("UpdatedAt = %v", b.UpdatedAt)
	}
	// East 10 s later, draining faster: the EWMA moves 30% of the way.
	c, _ := Next(&b, rep(20, 0.001, 0.001, f(77)), t0)
	near(t, "cumulative distance", c.DistanceM, 111.195+111.195, 0.05)
	near(t, "course east", *c.Course, 90, 0.01)
	near(t, "smoothed drain", *c.BatteryDrain, 0.3*0.2+0.7*0.1, 1e-9)
}

func TestNextGuards(t *testing.T) {
	a, _ := Next(nil, rep(0, 0, 0, f(50)), t0)
	b, _ := Next(&a, rep(10, 0.001, 0, f(49)), t0)

	// A teleport: 1° (111 km) in 1 s. No distance, speed kept.
	c, _ := Next(&b, rep(11, 1.001, 0, f(49)), t0)
	if c.DistanceM != b.DistanceM || *c.GroundSpeed != *b.GroundSpeed {
		t.Errorf("teleport changed distance %v->%v or speed %v->%v", b.DistanceM, c.DistanceM, *b.GroundSpeed, *c.GroundSpeed)
	}
	// Samples 50 ms apart: position and distance advance, rates are kept.
	d, ok := Next(&b, rep(10.05, 0.0010005, 0, f(40)), t0)
	if !ok || *d.GroundSpeed != *b.GroundSpeed || *d.BatteryDrain != *b.BatteryDrain {
		t.Errorf("close samples re-derived rates: %+v", d)
	}
	if d.DistanceM <= b.DistanceM {
		t.Errorf("close samples lost distance")
	}
	// Charging: drain and time to empty become unknown.
	e, _ := Next(&b, rep(20, 0.001, 0, f(60)), t0)
	if e.BatteryDrain != nil || e.TimeToEmptySecs != nil {
		t.Errorf("charging: drain %v tte %v, want nil", e.BatteryDrain, e.TimeToEmptySecs)
	}
	// No battery reading: unknown too.
	g, _ := Next(&b, rep(20, 0.001, 0, nil), t0)
	if g.BatteryDrain != nil || g.TimeToEmptySecs != nil {
		t.Errorf("no battery: drain %v tte %v, want nil", g.BatteryDrain, g.TimeToEmptySecs)
	}
	// Hovering: jitter below half a metre keeps the course.
	h, _ := Next(&b, rep(20, 0.001+1e-6, 0, f(48)), t0)
	if *h.Course != *b.Course {
		t.Errorf("hover changed course %v -> %v", *b.Course, *h.Course)
	}
}

func TestFoldOrdersAndSkips(t *testing.T) {
	prev, _ := Next(nil, rep(10, 0, 0, nil), t0)
	batch := []events.Report{
		rep(30, 0.002, 0, nil),
		rep(5, 9, 9, nil), // older than prev: history only
		rep(20, 0.001, 0, nil),
		rep(10, 9, 9, nil), // equal to prev: duplicate
	}
	got, ok := Fold(&prev, batch, t0)
	if !ok {
		t.Fatal("batch with newer reports did not advance")
	}
	if !got.TS.Equal(t0.Add(30*time.Second)) || got.Lat != 0.002 {
		t.Errorf("state = %v at %v, want the newest report", got.Lat, got.TS)
	}
	// Applied in order 10 -> 20 -> 30: two legs of 0.001°, not a detour via 9,9.
	near(t, "distance", got.DistanceM, 2*111.195, 0.05)

	same, ok := Fold(&got, batch, t0)
	if ok || same != got {
		t.Error("replaying the batch changed the state")
	}
	if _, ok := Fold(nil, nil, t0); ok {
		t.Error("empty batch on no state advanced")
	}
}

// TestNewerWinsSequences feeds report sequences one by one through Next, as
// deliveries arrive, and checks which were accepted and the final state.
func TestNewerWinsSequences(t *testing.T) {
	tests := []struct {
		name         string
		arrivals     []events.Report
		wantAccepted []bool
		wantTS       float64 // seconds after t0 of the final state
		wantDistance float64
	}{
		{"in order", []events.Report{rep(0, 0, 0, nil), rep(10, 0.001, 0, nil), rep(20, 0.002, 0, nil)},
			[]bool{true, true, true}, 20, 2 * 111.195},
		{"out-of-order pair: the late one loses", []events.Report{rep(0, 0, 0, nil), rep(20, 0.002, 0, nil), rep(10, 0.001, 0, nil)},
			[]bool{true, true, false}, 20, 2 * 111.195},
		{"replay of an old report", []events.Report{rep(0, 0, 0, nil), rep(10, 0.001, 0, nil), rep(0, 0, 0, nil)},
			[]bool{true, true, false}, 10, 111.195},
		{"duplicate with equal ts and other values", []events.Report{rep(0, 0, 0, nil), rep(0, 5, 5, nil)},
			[]bool{true, false}, 0, 0},
		{"one nanosecond newer wins", []events.Report{rep(0, 0, 0, nil), {TS: t0.Add(time.Nanosecond)}},
			[]bool{true, true}, 1e-9, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cur *events.DroneState
			for i, r := range tt.arrivals {
				st, ok := Next(cur, r, t0)
				if ok != tt.wantAccepted[i] {
					t.Errorf("arrival %d (ts %v): accepted %v, want %v", i, r.TS.Sub(t0), ok, tt.wantAccepted[i])
				}
				if !ok && cur != nil && st != *cur {
					t.Errorf("arrival %d rejected but state changed", i)
				}
				cur = &st
			}
			if want := t0.Add(time.Duration(tt.wantTS * float64(time.Second))); !cur.TS.Equal(want) {
				t.Errorf("final ts %v, want %v", cur.TS, want)
			}
			near(t, "distance", cur.DistanceM, tt.wantDistance, 0.05)
		})
	}
}

// TestNextAcrossTheAntimeridianAndPoles: derived values use great-circle
// geometry, not longitude differences.
func TestNextAcrossTheAntimeridianAndPoles(t *testing.T) {
	tests := []struct {
		name             string
		from, to         events.Report
		wantDist, wantCo float64
	}{
		// 0.2° of longitude at the equator in 100 s, heading east over 180°.
		{"eastward over the antimeridian", rep(0, 0, 179.9, nil), rep(100, 0, -179.9, nil), 22_239, 90},
		{"westward over the antimeridian", rep(0, 0, -179.9, nil), rep(100, 0, 179.9, nil), 22_239, 270},
		// Straight over the north pole: ~22 km, initial course due north.
		{"over the north pole", rep(0, 89.9, 0, nil), rep(100, 89.9, 180, nil), 22_239, 0},
		{"over the south pole", rep(0, -89.9, 0, nil), rep(100, -89.9, 180, nil), 22_239, 180},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := Next(nil, tt.from, t0)
			b, ok := Next(&a, tt.to, t0)
			if !ok || b.GroundSpeed == nil || b.Course == nil {
				t.Fatalf("ok=%v state %+v, want speed and course derived", ok, b)
			}
			near(t, "distance", b.DistanceM, tt.wantDist, 5)
			near(t, "ground speed", *b.GroundSpeed, tt.wantDist/100, 0.05)
			near(t, "course", *b.Course, tt.wantCo, 0.01)
		})
	}
}

// TestDrainAndTimeToEmpty follows a battery through steady drain, gauge
// jitter, a plateau and charging.
func TestDrainAndTimeToEmpty(t *testing.T) {
	steps := []struct {
		sec, batt         float64
		wantDrain, wantTE *float64
	}{
		{0, 80, nil, nil},                             // first report: nothing to derive from
		{10, 79, f(0.1), f(790)},                      // 1 % in 10 s
		{20, 77, f(0.3*0.2 + 0.7*0.1), f(77 / 0.13)},  // a 2 % step moves the EWMA 30 % of the way
		{30, 77, f(0.7 * 0.13), f(77 / (0.7 * 0.13))}, // plateau: gauge reads the same, drain decays
		{40, 90, nil, nil},                            // charging: unknown
		{50, 89, f(0.1), f(890)},                      // draining again: starts afresh
	}
	var cur *events.DroneState
	for _, s := range steps {
		st, ok := Next(cur, rep(s.sec, 0, 0, f(s.batt)), t0)
		if !ok {
			t.Fatalf("t=%v rejected", s.sec)
		}
		for _, c := range []struct {
			what      string
			got, want *float64
		}{{"drain", st.BatteryDrain, s.wantDrain}, {"time to empty", st.TimeToEmptySecs, s.wantTE}} {
			switch {
			case c.want == nil && c.got != nil:
				t.Errorf("t=%v %s = %v, want unknown", s.sec, c.what, *c.got)
			case c.want != nil && c.got == nil:
				t.Errorf("t=%v %s unknown, want %v", s.sec, c.what, *c.want)
			case c.want != nil:
				near(t, fmt.Sprintf("t=%v %s", s.sec, c.what), *c.got, *c.want, 1e-6)
			}
		}
		cur = &st
	}
}

func TestNextCopiesDroneTelemetry(t *testing.T) {
	armed, mode, fix, sats := true, "AUTO.MISSION", events.Fix3D, 12
	home := &events.Position{Lat: 1, Lon: 2, Alt: f(30)}
	r := rep(0, 1, 2, f(90))
	r.Armed, r.Mode, r.Fix, r.Satellites, r.HAE, r.Height = &armed, &mode, &fix, &sats, f(80), f(50)
	r.VSpeed, r.HAcc, r.VAcc, r.Link, r.Home = f(-1.5), f(0.7), f(1.1), f(88), home
	a, _ := Next(nil, r, t0)
	if *a.Armed != armed || *a.Mode != mode || *a.Fix != fix || *a.Satellites != sats || *a.HAE != 80 ||
		*a.Height != 50 || *a.VSpeed != -1.5 || *a.HAcc != 0.7 || *a.VAcc != 1.1 || *a.Link != 88 || a.Home != home {
		t.Fatalf("state %+v does not carry the report's telemetry %+v", a, r)
	}
	// The next report says nothing but position: every telemetry field is
	// unknown again, except home, which stays until another is reported.
	b, _ := Next(&a, rep(1, 1, 2, nil), t0)
	if b.Armed != nil || b.Mode != nil || b.Fix != nil || b.Satellites != nil || b.HAE != nil || b.Height != nil ||
		b.VSpeed != nil || b.HAcc != nil || b.VAcc != nil || b.Link != nil {
		t.Errorf("absent fields came out present: %+v", b)
	}
	if b.Home != home {
		t.Errorf("home = %+v, want the previous one kept", b.Home)
	}
	r3 := rep(2, 1, 2, nil)
	r3.Home = &events.Position{Lat: 3, Lon: 4}
	if c, _ := Next(&b, r3, t0); c.Home != r3.Home {
		t.Errorf("home = %+v, want the new one", c.Home)
	}
}
