// Package telemetry holds the rules that turn a drone's reports into its
// latest state: newer-wins, and the values derived from one accepted state to
// the next (distance, ground speed, course, battery drain, time to empty).
// It is pure: no I/O, no clocks except the one passed in.
package telemetry

import (
	"math"
	"slices"
	"time"

	"github.com/dronetrack/dronetrack/events"
)

// EarthRadiusM is the mean Earth radius (IUGG), good to ~0.5% for the
// distances between two reports.
const EarthRadiusM = 6371008.8

const (
	// minDerivationGap is the shortest interval between two states from which
	// speed, course and drain are derived; closer samples amplify GPS and
	// battery-gauge noise into nonsense, so they keep the previous values.
	minDerivationGap = 200 * time.Millisecond
	// drainSmoothing is the EWMA weight of a new battery-drain sample: gauges
	// report in whole percent, so single samples jump between 0 and large values.
	drainSmoothing = 0.3
	// minMoveM: below this, successive fixes are GPS jitter, not movement, and
	// course keeps its previous value.
	minMoveM = 0.5
)

// Next applies one report to the previous state (nil for a drone's first
// report). It returns false, and prev unchanged, when the report is not newer
// than prev: a late, replayed or duplicate report never overwrites a newer
// state nor counts its distance twice.
//
// Derived values come from prev to r and follow these rules, so noisy input
// cannot poison them:
//   - dt <= 0 cannot happen (newer-wins rejects it first).
//   - A leg faster than events.MaxSpeed is a bad fix or a drone carried
//     while off: position and battery still update, but the leg adds no
//     distance and ground speed and course keep their previous values.
//   - Samples closer than 200 ms add their (plausible) distance but keep the
//     previous speed, course and drain: dividing GPS or gauge noise by a
//     tiny dt gives nonsense.
//   - Moves under 0.5 m keep the previous course (hover jitter).
//   - Drain is an EWMA (weight 0.3) of per-leg samples in %/s, positive
//     while draining; a rise (charging, battery swap) or a missing reading
//     makes it unknown (nil) and the next draining leg starts afresh.
//   - TimeToEmptySecs = battery / drain, only while drain > 0.
//
// The drone telemetry fields (armed, mode, fix, ...) are the report's own:
// absent in the report is absent in the state, except Home, which stays
// the previous one until the drone reports another.
func Next(prev *events.DroneState, r events.Report, now time.Time) (events.DroneState, bool) {
	if prev != nil && !r.TS.After(prev.TS) {
		return *prev, false
	}
	next := r.State()
	next.TS, next.UpdatedAt = r.TS.UTC(), now.UTC()
	if prev == nil {
		return next, true
	}
	if next.Home == nil {
		// Autopilots send the home position seldom (MAVLink HOME_POSITION
		// on change), so the last one known stays until a new one comes.
		next.Home = prev.Home
	}
	next.DistanceM = prev.DistanceM
	next.GroundSpeed, next.Course = prev.GroundSpeed, prev.Course
	next.BatteryDrain, next.TimeToEmptySecs = prev.BatteryDrain, prev.TimeToEmptySecs

	dt := r.TS.Sub(prev.TS) // > 0: newer-wins passed
	d := Distance(prev.Lat, prev.Lon, r.Lat, r.Lon)
	// A jump faster than any drone flies is a bad fix (or a drone moved while
	// off): it neither adds distance nor shows as speed.
	plausible := d/dt.Seconds() <= events.MaxSpeed
	if plausible {
		next.DistanceM += d
	}
	if dt >= minDerivationGap {
		if plausible {
			next.GroundSpeed = new(d / dt.Seconds())
			if d >= minMoveM {
				next.Course = new(Bearing(prev.Lat, prev.Lon, r.Lat, r.Lon))
			}
		}
		next.BatteryDrain = drain(prev, r, dt)
	}
	next.TimeToEmptySecs = nil
	if next.Battery != nil && next.BatteryDrain != nil && *next.BatteryDrain > 0 {
		next.TimeToEmptySecs = new(*next.Battery / *next.BatteryDrain)
	}
	return next, true
}

// drain returns the smoothed battery drain rate in percent per second, or
// nil when it can't be known (no battery reading) or the battery is charging.
func drain(prev *events.DroneState, r events.Report, dt time.Duration) *float64 {
	if prev.Battery == nil || r.Battery == nil {
		return nil
	}
	sample := (*prev.Battery - *r.Battery) / dt.Seconds()
	if sample < 0 { // charging or a battery swap: the old rate means nothing now
		return nil
	}
	if prev.BatteryDrain == nil {
		return new(sample)
	}
	return new(drainSmoothing*sample + (1-drainSmoothing)**prev.BatteryDrain)
}

// Fold applies a batch of reports, in time order whatever order they came
// in, skipping those not newer than the state so far. It reports whether the
// state advanced. It is the pure function store.UpdateState runs.
func Fold(prev *events.DroneState, reports []events.Report, now time.Time) (events.DroneState, bool) {
	byTime := func(a, b events.Report) int { return a.TS.Compare(b.TS) }
	sorted := reports // the common batch, one report or in order, is read as it is
	if !slices.IsSortedFunc(reports, byTime) {
		sorted = slices.Clone(reports)
		slices.SortStableFunc(sorted, byTime)
	}
	cur, advanced := prev, false
	for _, r := range sorted {
		if st, ok := Next(cur, r, now); ok {
			cur, advanced = &st, true
		}
	}
	if cur == nil {
		return events.DroneState{}, false
	}
	return *cur, advanced
}

// Distance is the great-circle distance in metres (haversine), correct
// across the antimeridian and near the poles.
func Distance(lat1, lon1, lat2, lon2 float64) float64 {
	φ1, φ2 := rad(lat1), rad(lat2)
	dφ, dλ := rad(lat2-lat1), rad(lon2-lon1)
	a := math.Sin(dφ/2)*math.Sin(dφ/2) + math.Cos(φ1)*math.Cos(φ2)*math.Sin(dλ/2)*math.Sin(dλ/2)
	return 2 * EarthRadiusM * math.Asin(math.Min(1, math.Sqrt(a)))
}

// Bearing is the initial great-circle bearing from the first point to the
// second, in degrees true within [0, 360).
func Bearing(lat1, lon1, lat2, lon2 float64) float64 {
	φ1, φ2, dλ := rad(lat1), rad(lat2), rad(lon2-lon1)
	y := math.Sin(dλ) * math.Cos(φ2)
	x := math.Cos(φ1)*math.Sin(φ2) - math.Sin(φ1)*math.Cos(φ2)*math.Cos(dλ)
	deg := math.Mod(math.Atan2(y, x)*180/math.Pi+360, 360)
	if deg >= 360 { // Mod can round up to exactly 360
		deg = 0
	}
	return deg
}

func rad(deg float64) float64 { return deg * math.Pi / 180 }
