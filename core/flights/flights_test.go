package flights

import (
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/telemetry"
	"github.com/dronetrack/dronetrack/events"
)

var t0 = time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)

func f(v float64) *float64 { return &v }
func b(v bool) *bool       { return &v }

// at is a report sec seconds after t0, dy metres north of a fixed point.
func at(sec float64, northM float64) events.Report {
	return events.Report{TS: t0.Add(time.Duration(sec * float64(time.Second))), Lat: 47 + northM/111195, Lon: 8}
}

func near(t *testing.T, what string, got *float64, want, tol float64) {
	t.Helper()
	if got == nil || math.Abs(*got-want) > tol {
		t.Errorf("%s = %v, want %v ± %g", what, deref(got), want, tol)
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// armedSequence: on the ground disarmed, armed at 10 s, climbs to 50 m
// while flying north at 10 m/s, lands at 90 s, disarms at 100 s.
func armedSequence() []events.Report {
	var out []events.Report
	for s := 0; s <= 110; s++ {
		r := at(float64(s), 0)
		h, v, north := 0.0, 0.0, 0.0
		switch {
		case s >= 20 && s < 90:
			h, v = math.Min(50, float64(s-20)*5), 10
			north = float64(s-20) * 10
		case s >= 90:
			north = 700
		}
		r = at(float64(s), north)
		r.Height, r.Speed, r.Alt = f(h), f(v), f(400+h)
		r.Battery = f(95 - float64(s)*0.2)
		r.Armed = b(s >= 10 && s < 100)
		out = append(out, r)
	}
	return out
}

func TestArmedFlight(t *testing.T) {
	d := Detector{TenantID: "t", DroneID: "d1"}
	reps := armedSequence()
	var got []Flight
	for i := 0; i < len(reps); i += 7 { // batches of 7, as process would hand them over
		ch := d.Apply(DefaultSettings(), reps[i:min(i+7, len(reps))])
		got = append(got, ch.Upsert...)
	}
	final := latest(got)
	if len(final) != 1 {
		t.Fatalf("flights %+v, want one", final)
	}
	fl := final[0]
	if fl.Rule != RuleArmed || fl.InProgress || !fl.Start.Equal(t0.Add(10*time.Second)) || !fl.End.Equal(t0.Add(100*time.Second)) {
		t.Errorf("flight %s..%s rule %s in progress %v, want armed 10 s..100 s, ended", fl.Start, fl.End, fl.Rule, fl.InProgress)
	}
	if fl.ID != ID("d1", fl.Start) || fl.TenantID != "t" || fl.DroneID != "d1" {
		t.Errorf("ids %q %q %q", fl.ID, fl.TenantID, fl.DroneID)
	}
	if fl.DurationSecs != 90 || fl.Points != 91 {
		t.Errorf("duration %v s, %d points; want 90 s, 91", fl.DurationSecs, fl.Points)
	}
	near(t, "distance", &fl.DistanceM, 700, 0.5)
	near(t, "max height", fl.MaxHeight, 50, 0)
	near(t, "max alt", fl.MaxAlt, 450, 0)
	near(t, "max speed", fl.MaxSpeed, 10, 0)
	near(t, "battery at start", fl.BatteryStart, 95-10*0.2, 1e-9)
	near(t, "battery at end", fl.BatteryEnd, 95-100*0.2, 1e-9)
	if fl.StartPos.Lat != 47 || math.Abs(fl.EndPos.Lat-(47+700.0/111195)) > 1e-9 || *fl.EndPos.Alt != 400 {
		t.Errorf("start %+v end %+v", fl.StartPos, fl.EndPos)
	}
	if d.Open != nil {
		t.Error("a flight is still open after disarming")
	}
}

// latest keeps the last version of each flight id, in start order.
func latest(fs []Flight) []Flight {
	byID := map[string]Flight{}
	for _, f := range fs {
		byID[f.ID] = f
	}
	out := make([]Flight, 0, len(byID))
	for _, f := range byID {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b Flight) int { return a.Start.Compare(b.Start) })
	return out
}

func TestMotionFlight(t *testing.T) {
	s := DefaultSettings()
	var reps []events.Report
	north := 0.0
	for sec := 0; sec <= 420; sec++ {
		moving := (sec >= 30 && sec < 35) || // a hop shorter than StartSecs: no flight
			(sec >= 60 && sec < 150) || (sec >= 170 && sec < 300) // a 20 s pause (< StopSecs) inside
		r := at(float64(sec), north)
		if moving {
			north += 5
			r.Height, r.Speed = f(20), f(5)
		} else {
			r.Height, r.Speed = f(0.5), f(0.2)
		}
		reps = append(reps, r)
	}
	d := Detector{TenantID: "t", DroneID: "d"}
	got := latest(d.Apply(s, reps).Upsert)
	if len(got) != 1 {
		t.Fatalf("%d flights %+v, want one", len(got), got)
	}
	fl := got[0]
	if fl.Rule != RuleMotion || !fl.Start.Equal(t0.Add(60*time.Second)) || !fl.End.Equal(t0.Add(300*time.Second)) || fl.InProgress {
		t.Errorf("flight %s..%s %s in progress %v; want motion 60 s..300 s (first report of the stop)", fl.Start, fl.End, fl.Rule, fl.InProgress)
	}
	if fl.Points != 241 {
		t.Errorf("%d points, want 241 (60..300 s)", fl.Points)
	}
	near(t, "distance", &fl.DistanceM, float64(90+130)*5, 0.5)

	// Without speed or height, the speed between positions decides.
	var bare []events.Report
	for sec := 0; sec <= 120; sec++ {
		north := math.Min(math.Max(0, float64(sec-20)*6), 360) // 6 m/s from 20 s to 80 s
		bare = append(bare, at(float64(sec), north))
	}
	d = Detector{DroneID: "d"}
	got = latest(d.Apply(s, bare).Upsert)
	if len(got) != 1 || !got[0].Start.Equal(t0.Add(21*time.Second)) || !got[0].End.Equal(t0.Add(81*time.Second)) {
		t.Fatalf("flights from positions alone: %+v, want one from 21 s to 81 s", got)
	}
	near(t, "derived max speed", got[0].MaxSpeed, 6, 0.01)
}

func TestGapEndsFlight(t *testing.T) {
	s := DefaultSettings()
	reps := armedSequence()[:60] // armed, flying, then nothing
	last := reps[len(reps)-1]
	later := at(60+s.MaxGapSecs+1, 0)
	later.Armed = b(true)
	d := Detector{DroneID: "d"}
	got := latest(d.Apply(s, append(reps, later)).Upsert)
	if len(got) != 2 {
		t.Fatalf("%d flights, want the lost one and a new one", len(got))
	}
	if got[0].InProgress || !got[0].End.Equal(last.TS) {
		t.Errorf("lost flight ends %s in progress %v, want ended at the last report %s", got[0].End, got[0].InProgress, last.TS)
	}
	if !got[1].InProgress || !got[1].Start.Equal(later.TS) {
		t.Errorf("new flight %+v", got[1])
	}
}

func TestSettingsValidate(t *testing.T) {
	if errs := DefaultSettings().Validate(); errs != nil {
		t.Errorf("defaults invalid: %v", errs)
	}
	bad := Settings{MinSpeed: -1, MinHeight: math.NaN(), StartSecs: 0, StopSecs: 0, MaxGapSecs: 5}
	var got []string
	for _, e := range bad.Validate() {
		got = append(got, e.Pointer)
	}
	if diff := cmp.Diff([]string{"/minSpeed", "/minHeight", "/stopSecs", "/maxGapSecs"}, got); diff != "" {
		t.Errorf("bad settings (-want +got):\n%s", diff)
	}
}

// harness stands in for the store and flightupdate: history holds what
// was delivered so far, flights the stored records.
type harness struct {
	d        Detector
	history  []events.Report // sorted by time, unique
	flights  map[string]Flight
	replays  int
	settings Settings
}

func (h *harness) deliver(batch []events.Report) {
	for _, r := range batch {
		i, found := slices.BinarySearchFunc(h.history, r.TS, func(e events.Report, t time.Time) int { return e.TS.Compare(t) })
		if found {
			h.history[i] = r
		} else {
			h.history = slices.Insert(h.history, i, r)
		}
	}
	var ch Changes
	if earliest, late := h.d.Late(batch); late {
		anchor := h.d.Anchor(earliest)
		from := 0
		if !anchor.IsZero() {
			from, _ = slices.BinarySearchFunc(h.history, anchor.Add(-secs(h.settings.MaxGapSecs)),
				func(e events.Report, t time.Time) int { return e.TS.Compare(t) })
		}
		ch = h.d.Replay(h.settings, anchor, h.history[from:])
		h.replays++
	} else {
		ch = h.d.Apply(h.settings, batch)
	}
	keep := map[string]bool{}
	for _, f := range ch.Upsert {
		keep[f.ID] = true
		h.flights[f.ID] = f
	}
	if ch.ReplaceFrom != nil {
		for id, f := range h.flights {
			if !f.Start.Before(*ch.ReplaceFrom) && !keep[id] {
				delete(h.flights, id)
			}
		}
	}
}

// randomDay: a day of a drone: some flights reported with armed, some by
// motion only, positions at 1 Hz with jitter, silences.
func randomDay(rng *rand.Rand) []events.Report {
	var out []events.Report
	sec, north := 0.0, 0.0
	for range 6 {
		useArmed := rng.IntN(2) == 0
		ground := 20 + rng.Float64()*900
		flight := 30 + rng.Float64()*600
		for end := sec + ground; sec < end; sec += 0.5 + rng.Float64() {
			r := at(sec, north)
			r.Speed, r.Height = f(rng.Float64()), f(rng.Float64())
			if useArmed {
				r.Armed = b(false)
			}
			out = append(out, r)
		}
		if rng.IntN(4) == 0 {
			sec += 400 // a silence longer than MaxGapSecs
		}
		for end := sec + flight; sec < end; sec += 0.5 + rng.Float64() {
			north += 5
			r := at(sec, north)
			r.Speed, r.Height, r.Battery, r.Alt = f(3+rng.Float64()*10), f(5+rng.Float64()*100), f(90-sec/1000), f(500+rng.Float64()*100)
			if useArmed {
				r.Armed = b(true)
			}
			out = append(out, r)
		}
	}
	return out
}

// TestLateDuplicateOutOfOrderGiveTheSameFlights is the property the
// checkpoints and replay exist for: any delivery order, with duplicates
// and redelivered batches, ends with the flights of in-order delivery.
func TestLateDuplicateOutOfOrderGiveTheSameFlights(t *testing.T) {
	s := DefaultSettings()
	seeds := 4
	if os.Getenv("DRONETRACK_SOAK") != "" {
		seeds = 200
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(uint64(seed), 16))
		reps := randomDay(rng)
		in := &harness{d: Detector{TenantID: "t", DroneID: "d"}, flights: map[string]Flight{}, settings: s}
		for i := 0; i < len(reps); i += 5 {
			in.deliver(reps[i:min(i+5, len(reps))])
		}
		if in.replays != 0 {
			t.Fatalf("seed %d: in-order delivery replayed %d times", seed, in.replays)
		}
		if len(in.flights) < 3 {
			t.Fatalf("seed %d: only %d flights; the generator should make about 6", seed, len(in.flights))
		}
		// Batches of 1..20 reports, shuffled within a window (a late report
		// arrives up to ~200 reports after its time), one batch in ten
		// delivered twice.
		var batches [][]events.Report
		for i := 0; i < len(reps); {
			n := 1 + rng.IntN(20)
			batches = append(batches, reps[i:min(i+n, len(reps))])
			i += n
		}
		for i := range batches {
			j := min(len(batches)-1, i+rng.IntN(10))
			batches[i], batches[j] = batches[j], batches[i]
		}
		out := &harness{d: Detector{TenantID: "t", DroneID: "d"}, flights: map[string]Flight{}, settings: s}
		for _, bt := range batches {
			out.deliver(bt)
			if rng.IntN(10) == 0 {
				out.deliver(bt)
			}
		}
		if out.replays == 0 {
			t.Fatalf("seed %d: shuffled delivery never replayed; the test tests nothing", seed)
		}
		if diff := cmp.Diff(in.flights, out.flights); diff != "" {
			t.Fatalf("seed %d: flights differ from in-order delivery (-in order +shuffled):\n%s", seed, diff)
		}
	}
}

// BenchmarkApply is flight detection's cost per report on the fast path:
// one report per batch, a drone in flight (the common case).
func BenchmarkApply(b *testing.B) {
	s := DefaultSettings()
	d := Detector{TenantID: "t", DroneID: "d"}
	r := at(0, 0)
	r.Armed, r.Height, r.Speed, r.Battery, r.Alt = ptrB(true), f(40), f(8), f(80), f(520)
	d.Apply(s, []events.Report{r})
	batch := make([]events.Report, 1)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		r.TS = t0.Add(time.Duration(i) * time.Second)
		r.Lat = 47 + float64(i)*1e-5
		batch[0] = r
		d.Apply(s, batch)
	}
}

func ptrB(v bool) *bool { return &v }

var _ = telemetry.Distance

// A redelivered batch (reports already applied) is not late: it must not
// cost a replay of history. A report older than the head that was never
// applied still is.
func TestRedeliveryIsNotLate(t *testing.T) {
	s := DefaultSettings()
	var d Detector
	var reps []events.Report
	for i := 0; i < 2*RecentApplied; i++ {
		if i == 10 {
			continue // arrives late below
		}
		reps = append(reps, at(float64(i), float64(i)*5))
	}
	d.Apply(s, reps)
	if _, late := d.Late(reps[len(reps)-20:]); late {
		t.Errorf("a redelivery of the newest 20 reports counts as late")
	}
	if len(d.Applied) != RecentApplied {
		t.Errorf("remembers %d applied reports, want %d", len(d.Applied), RecentApplied)
	}
	if earliest, late := d.Late([]events.Report{at(10, 50)}); !late || !earliest.Equal(at(10, 50).TS) {
		t.Errorf("a report never applied, older than the head: late %v at %v, want late at %v", late, earliest, at(10, 50).TS)
	}
	// Older than what it remembers: it cannot tell a duplicate, so it replays.
	if _, late := d.Late(reps[:5]); !late {
		t.Errorf("a report older than the remembered ones does not count as late")
	}
	// A replay rebuilds what it remembers from the history it reads.
	c := d.Clone()
	c.Replay(s, time.Time{}, append(slices.Clone(reps), at(10, 50)))
	if _, late := c.Late(reps[len(reps)-5:]); late || len(c.Applied) != RecentApplied {
		t.Errorf("after a replay: redelivery late %v, %d remembered", late, len(c.Applied))
	}
}
