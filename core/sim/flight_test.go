package sim

import (
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
