// Package flights finds a drone's flights in its reports and keeps each
// flight's statistics. It is pure (no I/O, no clock): the store keeps a
// Detector per drone and the flights it produces; flightupdate runs it.
//
// The rule (Settings holds the numbers, per tenant):
//
//   - A drone that reports armed: a flight runs from the first armed report
//     to the first disarmed one after it, whatever it did in between.
//   - Otherwise, by motion: a report is moving when its height above
//     take-off exceeds MinHeight or its speed exceeds MinSpeed (the reported
//     speed, else the speed from the previous report). Moving reports
//     spanning at least StartSecs start a flight at the first of them; a
//     flight ends at the first report of a stop (reports not moving) lasting
//     at least StopSecs. A disarmed report ends a flight too.
//   - No report for longer than MaxGapSecs ends a flight at the last report
//     before the gap, whichever rule started it.
//
// The detector is causal: its state after a report depends only on the
// reports up to it. Checkpoints remember instants at which it was idle (no
// flight, no moving run), so reports arriving late are handled by
// replaying the history from the latest checkpoint before them: late,
// duplicate and out-of-order reports give the same flights as the same
// reports delivered in order (under the same settings; a settings change
// applies to reports processed after it).
package flights

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/dronetrack/dronetrack/core/telemetry"
	"github.com/dronetrack/dronetrack/events"
)

// Rules a flight was found by.
const (
	RuleArmed  = "armed"
	RuleMotion = "motion"
)

// Settings are a tenant's flight detection thresholds.
type Settings struct {
	MinSpeed   float64 `json:"minSpeed"`   // m/s: faster is moving
	MinHeight  float64 `json:"minHeight"`  // m above take-off: higher is flying
	StartSecs  float64 `json:"startSecs"`  // moving this long starts a flight
	StopSecs   float64 `json:"stopSecs"`   // stopped this long ends it
	MaxGapSecs float64 `json:"maxGapSecs"` // no report this long ends it
}

// DefaultSettings: 2 m/s is faster than a walk (a drone carried to the
// field does not fly), 3 m clears GPS height noise on the ground, 10 s of
// motion is a take-off, 30 s at rest a landing, 5 min of silence a lost
// flight.
func DefaultSettings() Settings {
	return Settings{MinSpeed: 2, MinHeight: 3, StartSecs: 10, StopSecs: 30, MaxGapSecs: 300}
}

// Validate names each setting out of range (JSON names, pointers "/name").
func (s Settings) Validate() []events.FieldError {
	var errs []events.FieldError
	check := func(name string, v, lo, hi float64) {
		if math.IsNaN(v) || v < lo || v > hi {
			errs = append(errs, events.FieldError{Field: name, Pointer: "/" + name,
				Detail: fmt.Sprintf("must be within [%g, %g]", lo, hi)})
		}
	}
	check("minSpeed", s.MinSpeed, 0, events.MaxSpeed)
	check("minHeight", s.MinHeight, 0, 1000)
	check("startSecs", s.StartSecs, 0, 3600)
	check("stopSecs", s.StopSecs, 1, 3600)
	check("maxGapSecs", s.MaxGapSecs, 10, 24*3600)
	return errs
}

func secs(v float64) time.Duration { return time.Duration(v * float64(time.Second)) }

// Flight is one flight of a drone and its statistics. Positions' alt is
// metres above mean sea level, as in reports.
type Flight struct {
	ID         string    `json:"id"`
	TenantID   string    `json:"tenantId"`
	DroneID    string    `json:"droneId"`
	Rule       string    `json:"rule"` // RuleArmed or RuleMotion
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"` // so far, while InProgress
	InProgress bool      `json:"inProgress"`

	StartPos     events.Position `json:"startPos"`
	EndPos       events.Position `json:"endPos"`
	DurationSecs float64         `json:"durationSecs"`
	DistanceM    float64         `json:"distanceM"`           // along the reported track
	MaxHeight    *float64        `json:"maxHeight,omitempty"` // m above take-off
	MaxAlt       *float64        `json:"maxAlt,omitempty"`    // m above mean sea level
	MaxSpeed     *float64        `json:"maxSpeed,omitempty"`  // m/s
	BatteryStart *float64        `json:"batteryStart,omitempty"`
	BatteryEnd   *float64        `json:"batteryEnd,omitempty"`
	Points       int             `json:"points"`
}

// ID is a flight's id: a hash of the drone and the start, so the same
// flight found twice (replay, redelivery) is the same record.
func ID(droneID string, start time.Time) string {
	h := sha256.Sum256([]byte(droneID + "\x00" + start.UTC().Format(time.RFC3339Nano)))
	return "fl_" + hex.EncodeToString(h[:12])
}

// Detector is a drone's detection state, stored between batches.
type Detector struct {
	TenantID string    `json:"tenantId"`
	DroneID  string    `json:"droneId"`
	Head     time.Time `json:"head"` // newest report applied

	Last      *Fix    `json:"last,omitempty"`      // newest report: speed and gaps are measured from it
	Open      *Flight `json:"open,omitempty"`      // the flight in progress
	Candidate *Flight `json:"candidate,omitempty"` // motion rule: moving, not yet StartSecs long
	Landing   *Flight `json:"landing,omitempty"`   // motion rule: Open as it was when the current stop began
	// Checkpoints are report times before which the detector was idle,
	// oldest first: where a replay may start.
	Checkpoints []time.Time `json:"checkpoints,omitempty"`
	// Applied are the times of the newest reports applied (at most
	// RecentApplied, oldest first). A redelivered report is one of them:
	// it changes nothing, so it must not cost a replay of history (after a
	// store outage every retried batch is such a duplicate, and replaying
	// each one kept the store too busy to answer in time).
	Applied Instants `json:"applied,omitempty"`
	// Owed is a replay of history the detector owes (nil: none): a batch
	// with a late report records it with its own write, and a replay
	// (flightupdate.Replay) pays it later, apart from the batch. Until
	// then the flights from Owed.From on may lack the late reports.
	Owed *Owed `json:"owed,omitempty"`
	// LateSeq counts the late batches the detector has recorded, ever (a
	// replay keeps it): a replay whose read of history came before the
	// last of them leaves its replay owed.
	LateSeq uint64 `json:"lateSeq,omitempty"`
}

// Owed is a replay the detector owes.
type Owed struct {
	// From is the checkpoint the replay starts at (Anchor of the earliest
	// late report; the zero time is all history).
	From time.Time `json:"from"`
	// Since is when the replay was first owed: a sweep takes up replays
	// owed longer than a while (their owner failed or died).
	Since time.Time `json:"since"`
}

// Owe records a late batch: a replay is owed from the checkpoint anchor
// (the earlier of anchor and one owed already), at now when none was.
func (d *Detector) Owe(anchor, now time.Time) {
	d.LateSeq++
	if d.Owed == nil {
		d.Owed = &Owed{From: anchor, Since: now.UTC()}
		return
	}
	if anchor.Before(d.Owed.From) {
		d.Owed.From = anchor
	}
}

// RecentApplied is how many applied report times a Detector remembers:
// about two minutes of a 1 Hz drone, longer than the broker's retries of a
// delivery.
const RecentApplied = 128

// remember records that the report at ts is reflected in the detector.
func (d *Detector) remember(ts time.Time) {
	if !inNanoRange(ts) {
		return // no report is accepted that far from now
	}
	if n := len(d.Applied); n >= RecentApplied {
		// Full: the oldest make room in place. Appending first grew a full
		// slice to twice its size for every report of a drone.
		d.Applied = d.Applied[:copy(d.Applied, d.Applied[n-RecentApplied+1:])]
	}
	d.Applied = append(d.Applied, ts.UnixNano())
}

// applied reports whether the report at ts was applied recently.
func (d *Detector) applied(ts time.Time) bool {
	if !inNanoRange(ts) {
		return false
	}
	n := ts.UnixNano()
	for i := len(d.Applied) - 1; i >= 0; i-- {
		if d.Applied[i] == n {
			return true
		}
	}
	return false
}

// Fix is the part of a report the next one is measured from (speed,
// distance, silence): the detector keeps only this of its newest report,
// as it is stored and read back with every batch.
type Fix struct {
	TS  time.Time `json:"ts"`
	Lat float64   `json:"lat"`
	Lon float64   `json:"lon"`
}

func fixOf(r events.Report) *Fix { return &Fix{TS: r.TS, Lat: r.Lat, Lon: r.Lon} }

// Checkpoint spacing and count: a late report replays at most about
// CheckpointEvery of history (or its flight) when it is younger than
// MaxCheckpoints*CheckpointEvery, the whole retained history otherwise.
const (
	CheckpointEvery = 10 * time.Minute
	MaxCheckpoints  = 144 // a day at the spacing
)

// Changes is what a batch did to the stored flights: Upsert by id; when
// ReplaceFrom is set, the drone's stored flights starting at or after it
// that are not in Upsert are deleted (a replay may merge or drop them).
type Changes struct {
	Upsert      []Flight
	ReplaceFrom *time.Time
}

func (c *Changes) put(f Flight) {
	for i := range c.Upsert {
		if c.Upsert[i].ID == f.ID {
			c.Upsert[i] = f
			return
		}
	}
	c.Upsert = append(c.Upsert, f)
}

// Late reports whether any report is not newer than the detector's head
// and was not applied already (a redelivery): Apply would skip it, so the
// caller replays instead.
func (d *Detector) Late(reports []events.Report) (earliest time.Time, late bool) {
	for _, r := range reports {
		if !r.TS.After(d.Head) && !d.applied(r.TS) && (!late || r.TS.Before(earliest)) {
			earliest, late = r.TS, true
		}
	}
	return earliest, late && !d.Head.IsZero()
}

// Apply runs reports newer than the head, in time order, and returns what
// changed. Reports not newer than the head are skipped (see Late).
func (d *Detector) Apply(s Settings, reports []events.Report) Changes {
	var ch Changes
	byTime := func(a, b events.Report) int { return a.TS.Compare(b.TS) }
	sorted := reports // the common batch, one report or in order, is read as it is
	if !slices.IsSortedFunc(reports, byTime) {
		sorted = slices.Clone(reports)
		slices.SortStableFunc(sorted, byTime)
	}
	for _, r := range sorted {
		if d.Head.IsZero() || r.TS.After(d.Head) {
			d.step(s, r, &ch)
		}
	}
	return ch
}

// Anchor is where a replay for reports as old as earliest starts: the
// latest checkpoint at or before it, or the zero time (all history).
func (d *Detector) Anchor(earliest time.Time) time.Time {
	var a time.Time
	for _, c := range d.Checkpoints {
		if c.After(earliest) {
			break
		}
		a = c
	}
	return a
}

// Replay rebuilds the detector from anchor (see Anchor) over history, the
// drone's stored reports in time order from at least MaxGapSecs before the
// anchor: those before the anchor only give the report the first one is
// measured from. It returns the changes, with ReplaceFrom set to anchor.
func (d *Detector) Replay(s Settings, anchor time.Time, history []events.Report) Changes {
	keep := d.Checkpoints[:0:0]
	for _, c := range d.Checkpoints {
		if c.Before(anchor) {
			keep = append(keep, c)
		}
	}
	*d = Detector{TenantID: d.TenantID, DroneID: d.DroneID, Checkpoints: keep, LateSeq: d.LateSeq}
	a := anchor
	ch := Changes{ReplaceFrom: &a}
	for _, r := range history {
		switch {
		case r.TS.Before(anchor):
			d.Last, d.Head = fixOf(r), r.TS
			d.remember(r.TS)
		case d.Head.IsZero() || r.TS.After(d.Head):
			d.step(s, r, &ch)
		}
	}
	return ch
}

func (d *Detector) step(s Settings, r events.Report, ch *Changes) {
	d.remember(r.TS)
	prev := d.Last
	if prev != nil && r.TS.Sub(prev.TS) > secs(s.MaxGapSecs) {
		// Silence: the flight ended where the drone was last heard of.
		if d.Open != nil {
			end := d.Open
			if d.Landing != nil {
				end = d.Landing
			}
			d.close(end, ch)
		}
		d.Candidate, d.Landing, prev = nil, nil, nil
	}
	if d.Open == nil && d.Candidate == nil {
		if n := len(d.Checkpoints); n == 0 || r.TS.Sub(d.Checkpoints[n-1]) >= CheckpointEvery {
			d.Checkpoints = append(d.Checkpoints, r.TS)
			if n+1 > MaxCheckpoints {
				d.Checkpoints = slices.Delete(d.Checkpoints, 0, n+1-MaxCheckpoints)
			}
		}
	}
	defer func() {
		d.Last, d.Head = fixOf(r), r.TS
		if d.Open != nil {
			f := *d.Open
			f.InProgress = true
			ch.put(f)
		}
	}()

	if r.Armed != nil {
		d.Candidate = nil
		if *r.Armed {
			if d.Open == nil {
				d.Open = d.begin(RuleArmed, r)
			} else {
				d.Open.add(prev, r)
				d.Open.Rule = RuleArmed // disarming ends it now, not a stop
				d.Landing = nil
			}
			return
		}
		if d.Open != nil { // disarmed: landed here
			d.Open.add(prev, r)
			d.close(d.Open, ch)
		}
		return
	}

	moving := s.moving(prev, r)
	switch {
	case d.Open != nil:
		d.Open.add(prev, r)
		if d.Open.Rule == RuleArmed {
			return // only disarming or silence ends it
		}
		if moving {
			d.Landing = nil
			return
		}
		if d.Landing == nil {
			l := *d.Open
			d.Landing = &l
		}
		if r.TS.Sub(d.Landing.End) >= secs(s.StopSecs) {
			d.close(d.Landing, ch)
		}
	case moving:
		if d.Candidate == nil {
			d.Candidate = d.begin(RuleMotion, r)
		} else {
			d.Candidate.add(prev, r)
		}
		if r.TS.Sub(d.Candidate.Start) >= secs(s.StartSecs) {
			d.Open, d.Candidate = d.Candidate, nil
		}
	default:
		d.Candidate = nil
	}
}

func (d *Detector) begin(rule string, r events.Report) *Flight {
	f := &Flight{ID: ID(d.DroneID, r.TS), TenantID: d.TenantID, DroneID: d.DroneID, Rule: rule, Start: r.TS}
	f.add(nil, r)
	return f
}

// close stores f as ended and leaves the detector idle.
func (d *Detector) close(f *Flight, ch *Changes) {
	done := *f
	done.InProgress = false
	ch.put(done)
	d.Open, d.Landing = nil, nil
}

// moving: above MinHeight, or faster than MinSpeed (reported, else from
// the previous report).
func (s Settings) moving(prev *Fix, r events.Report) bool {
	if r.Height != nil && *r.Height > s.MinHeight {
		return true
	}
	if v, ok := speed(prev, r); ok {
		return v > s.MinSpeed
	}
	return false
}

func speed(prev *Fix, r events.Report) (float64, bool) {
	if r.Speed != nil {
		return *r.Speed, true
	}
	if prev == nil {
		return 0, false
	}
	dt := r.TS.Sub(prev.TS).Seconds()
	if dt <= 0 {
		return 0, false
	}
	v := telemetry.Distance(prev.Lat, prev.Lon, r.Lat, r.Lon) / dt
	return v, v <= events.MaxSpeed
}

func position(r events.Report) events.Position {
	return events.Position{Lat: r.Lat, Lon: r.Lon, Alt: r.Alt}
}

// add extends the flight with r; prev is the report before r (nil for the
// first of the flight or after a gap).
func (f *Flight) add(prev *Fix, r events.Report) {
	if f.Points == 0 {
		f.StartPos = position(r)
	} else if prev != nil {
		d := telemetry.Distance(prev.Lat, prev.Lon, r.Lat, r.Lon)
		if dt := r.TS.Sub(prev.TS).Seconds(); dt > 0 && d/dt <= events.MaxSpeed {
			f.DistanceM += d // a jump faster than any drone is a bad fix
		}
	}
	f.Points++
	f.End, f.EndPos = r.TS, position(r)
	f.DurationSecs = r.TS.Sub(f.Start).Seconds()
	if r.Battery != nil {
		if f.BatteryStart == nil {
			f.BatteryStart = ptr(*r.Battery)
		}
		f.BatteryEnd = ptr(*r.Battery)
	}
	f.MaxHeight = maxOf(f.MaxHeight, r.Height)
	f.MaxAlt = maxOf(f.MaxAlt, r.Alt)
	if f.Points > 1 || r.Speed != nil {
		if v, ok := speed(prev, r); ok {
			f.MaxSpeed = maxOf(f.MaxSpeed, &v)
		}
	}
}

func maxOf(cur, v *float64) *float64 {
	if v == nil || (cur != nil && *cur >= *v) {
		return cur
	}
	return ptr(*v)
}

func ptr(v float64) *float64 { return &v }

// Clone returns a copy that shares nothing mutable with d, so a store
// transaction that retries its function starts again from the same state.
func (d Detector) Clone() Detector {
	c := d
	c.Checkpoints = slices.Clone(d.Checkpoints)
	if d.Applied != nil {
		// Room for the next report's time (remember), which a batch of
		// one report, the common one, adds.
		c.Applied = append(make(Instants, 0, min(len(d.Applied)+1, max(len(d.Applied), RecentApplied))), d.Applied...)
	}
	if d.Last != nil {
		l := *d.Last
		c.Last = &l
	}
	if d.Owed != nil {
		o := *d.Owed
		c.Owed = &o
	}
	for _, p := range []**Flight{&c.Open, &c.Candidate, &c.Landing} {
		if *p != nil {
			f := **p
			*p = &f
		}
	}
	return c
}
