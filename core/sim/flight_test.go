package sim

import (
	"github.com/dronetrack/dronetrack/core/flights"
	"github.com/dronetrack/dronetrack/events"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fly runs n flights for steps of dt and calls check for every step.
func fly(t *testing.T, n, steps int, dt time.Duration, check func(t *testing.T, drone int, home Point, prev, next Sample)) {
	t.Helper()
	centre := Point{Lat: 47.3769, Lon: 8.5417}
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range n {
		f := NewFlight(rand.New(rand.NewPCG(7, uint64(i))), randomPoint(rng, centre, 3000), 3000)
		prev := f.Sample()
		for range steps {
			next := f.Step(dt)
			check(t, i, f.Home(), prev, next)
			prev = next
		}
	}
}

func airborne(p Phase) bool { return p == Climbing || p == Cruising || p == Landing }

func TestFlightStaysPlausible(t *testing.T) {
	const spread = 3000.0
	phases := map[Phase]int{}
	fly(t, 50, 3600, time.Second, func(t *testing.T, drone int, home Point, prev, next Sample) {
		phases[next.Phase]++
		if d := distance(home, next.Pos); d > spread+1 {
			t.Fatalf("drone %d is %.0f m from home, spread is %.0f m", drone, d, spread)
		}
		if next.Alt < groundElev || next.Alt > groundElev+maxAGL+1e-9 {
			t.Fatalf("drone %d altitude %.1f m outside [%g, %g]", drone, next.Alt, groundElev, groundElev+maxAGL)
		}
		if next.Speed < 0 || next.Speed > maxCruise+1e-6 {
			t.Fatalf("drone %d speed %.2f m/s outside [0, %g]", drone, next.Speed, maxCruise)
		}
		if next.Heading < 0 || next.Heading >= 360 {
			t.Fatalf("drone %d heading %g outside [0, 360)", drone, next.Heading)
		}
		if next.Battery < reserve || next.Battery > 100 {
			t.Fatalf("drone %d battery %g outside [%g, 100]", drone, next.Battery, reserve)
		}
		if climb := next.Alt - prev.Alt; climb > climbRate+1e-9 || -climb > descentRate+1e-9 {
			t.Fatalf("drone %d changed altitude by %.2f m in 1 s", drone, climb)
		}
		if next.Phase == Grounded && next.Alt != groundElev {
			t.Fatalf("drone %d grounded at %.1f m", drone, next.Alt)
		}
	})
	// An hour of 50 drones must go through every phase, or the model is stuck.
	for _, p := range []Phase{Grounded, Climbing, Cruising, Landing} {
		if phases[p] == 0 {
			t.Errorf("no step in phase %s: %v", p, phases)
		}
	}
}

func TestFlightBatteryNeverRisesInFlight(t *testing.T) {
	fly(t, 50, 3600, 500*time.Millisecond, func(t *testing.T, drone int, _ Point, prev, next Sample) {
		if airborne(prev.Phase) && airborne(next.Phase) && next.Battery > prev.Battery {
			t.Fatalf("drone %d battery rose in flight from %g to %g (%s -> %s)", drone, prev.Battery, next.Battery, prev.Phase, next.Phase)
		}
		if prev.Phase == Cruising && next.Phase == Cruising && next.Speed > 0 && next.Battery >= prev.Battery && prev.Battery > reserve {
			t.Fatalf("drone %d cruised at %.1f m/s without draining (%g)", drone, next.Speed, next.Battery)
		}
	})
}

func TestFlightSpeedAndHeadingMatchMovement(t *testing.T) {
	const dt = time.Second
	moves := 0
	fly(t, 30, 1800, dt, func(t *testing.T, drone int, _ Point, prev, next Sample) {
		d := distance(prev.Pos, next.Pos)
		if d == 0 {
			if next.Speed != 0 {
				t.Fatalf("drone %d reports %.2f m/s without moving (%s)", drone, next.Speed, next.Phase)
			}
			if next.Heading != prev.Heading {
				t.Fatalf("drone %d heading changed from %g to %g without moving", drone, prev.Heading, next.Heading)
			}
			return
		}
		moves++
		if got, want := next.Speed, d/dt.Seconds(); math.Abs(got-want) > 1e-6 {
			t.Fatalf("drone %d speed %.4f m/s, moved %.4f m in %s", drone, got, d, dt)
		}
		want := bearing(prev.Pos, next.Pos)
		if diff := angleDiff(next.Heading, want); diff > 0.01 {
			t.Fatalf("drone %d heading %.3f, bearing of its move %.3f (off by %.3f)", drone, next.Heading, want, diff)
		}
	})
	if moves == 0 {
		t.Fatal("no drone moved")
	}
}

func TestFlightIsDeterministic(t *testing.T) {
	run := func() []Sample {
		f := NewFlight(rand.New(rand.NewPCG(42, 1)), Point{Lat: 51.5, Lon: -0.12}, 2000)
		var out []Sample
		for range 600 {
			out = append(out, f.Step(time.Second))
		}
		return out
	}
	if diff := cmp.Diff(run(), run()); diff != "" {
		t.Errorf("same seed, different route (-first +second):\n%s", diff)
	}
}

func TestGeodesy(t *testing.T) {
	a := Point{Lat: 0, Lon: 0}
	tests := []struct {
		name    string
		brg, d  float64
		wantBrg float64
	}{
		{"north", 0, 1000, 0},
		{"east", 90, 1000, 90},
		{"south", 180, 1000, 180},
		{"west", 270, 1000, 270},
		{"north-east", 45, 5000, 45},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := destination(a, tc.brg, tc.d)
			if got := distance(a, b); math.Abs(got-tc.d) > 1e-6 {
				t.Errorf("distance = %.6f, want %g", got, tc.d)
			}
			if got := bearing(a, b); angleDiff(got, tc.wantBrg) > 1e-6 {
				t.Errorf("bearing = %.6f, want %g", got, tc.wantBrg)
			}
		})
	}
}

func angleDiff(a, b float64) float64 {
	d := math.Abs(a - b)
	return math.Min(d, 360-d)
}

// TestFlightArmsFliesLandsDisarms: a simulated drone's reports arm before
// take-off, fly, land and disarm after touch-down, every one valid under
// the contract, and flight detection finds one flight per cycle, armed to
// disarmed, around each climb-cruise-land.
func TestFlightArmsFliesLandsDisarms(t *testing.T) {
	now := time.Now().UTC()
	home := Point{Lat: 47.3769, Lon: 8.5417}
	var f *Flight
	for seed := uint64(1); ; seed++ { // one that starts on the ground
		f = NewFlight(rand.New(rand.NewPCG(seed, 2)), home, 2000)
		if f.Sample().Phase == Grounded {
			break
		}
	}
	det := flights.Detector{TenantID: "t", DroneID: "d"}
	var found []flights.Flight
	cycles, wasArmed, armedAt := 0, false, -1
	start := now.Add(-3 * time.Hour)
	var prev Sample
	for i := range 3 * 3600 {
		s := f.Step(time.Second)
		r := toReport(start.Add(time.Duration(i)*time.Second), s, uint64(i), f.Home(), false)
		if errs := r.Validate(now, ""); len(errs) > 0 {
			t.Fatalf("report %d invalid: %v", i, errs)
		}
		if s.Phase != Grounded && !s.Armed {
			t.Fatalf("step %d: %s while disarmed", i, s.Phase)
		}
		switch {
		case s.Armed && !wasArmed:
			armedAt = i
			if s.Phase != Grounded {
				t.Fatalf("step %d: armed in the air", i)
			}
		case !s.Armed && wasArmed:
			cycles++
			if prev.Phase != Grounded || i-armedAt < 10 {
				t.Fatalf("step %d: disarmed in phase %s after %d s armed", i, prev.Phase, i-armedAt)
			}
		}
		if s.Phase == Climbing && s.Height > 0 && s.VSpeed <= 0 || s.Phase == Landing && s.VSpeed > 0 {
			t.Fatalf("step %d: %s with vspeed %v", i, s.Phase, s.VSpeed)
		}
		if *r.HAE-*r.Alt < GeoidSeparation-0.11 || *r.Height != round(s.Alt-groundElev, 1) || r.Home == nil {
			t.Fatalf("step %d: altitudes alt %v hae %v height %v", i, *r.Alt, *r.HAE, *r.Height)
		}
		found = append(found, det.Apply(flights.DefaultSettings(), []events.Report{r}).Upsert...)
		wasArmed, prev = s.Armed, s
	}
	byID := map[string]flights.Flight{}
	for _, fl := range found {
		byID[fl.ID] = fl
	}
	ended := 0
	for _, fl := range byID {
		if fl.InProgress {
			continue
		}
		ended++
		if fl.Rule != flights.RuleArmed || *fl.MaxHeight < minAGL || fl.DurationSecs < 60 || *fl.BatteryEnd >= *fl.BatteryStart {
			t.Errorf("flight %s: rule %s, max height %v, %v s, battery %v -> %v; want armed, above %v m, a minute or more, battery used", fl.ID, fl.Rule, *fl.MaxHeight, fl.DurationSecs, *fl.BatteryStart, *fl.BatteryEnd, minAGL)
		}
	}
	if cycles < 3 || ended != cycles {
		t.Errorf("%d arm-disarm cycles, %d ended flights; want them equal and at least 3 in 3 hours", cycles, ended)
	}
	// Without the drone fields, the reports are what they were before them.
	r := toReport(now, f.Sample(), 1, f.Home(), true)
	if r.Armed != nil || r.Mode != nil || r.Home != nil || r.Height != nil || r.Alt == nil {
		t.Errorf("position-only report %+v", r)
	}
}
