package alerting

import (
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/events"
	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func f(v float64) *float64 { return &v }

// st is a state reported at drone time sec and accepted by the server at
// sec+skew.
func st(sec float64, skew time.Duration, lat, lon float64, batt, tte *float64) events.DroneState {
	ts := t0.Add(time.Duration(sec * float64(time.Second)))
	return events.DroneState{TS: ts, UpdatedAt: ts.Add(skew), Lat: lat, Lon: lon, Battery: batt, TimeToEmptySecs: tte}
}

// step is one input to the state machine: a state or a link check at now.
type step struct {
	state *events.DroneState
	check time.Time
	want  []string // transitions as "raised kind[/fence]", "resolved ...", "updated ..."
}

func run(t *testing.T, s Settings, fences []Fence, steps []step) Tracker {
	t.Helper()
	tr := Tracker{TenantID: "acme", DroneID: "d1"}
	opened := map[string]int{}
	for i, sp := range steps {
		var ts []Transition
		if sp.state != nil {
			tr, ts, _ = EvaluateState(tr, *sp.state, s, fences, sp.state.UpdatedAt)
		} else {
			tr, ts, _ = EvaluateLink(tr, s, sp.check)
		}
		var got []string
		for _, x := range ts {
			verb := map[string]string{events.TypeAlertRaised: "raised", events.TypeAlertResolved: "resolved", "": "updated"}[x.Type]
			got = append(got, verb+" "+Key(x.Alert.Kind, x.Alert.FenceID))
			if x.Type == events.TypeAlertRaised {
				opened[x.Alert.ID]++
				if opened[x.Alert.ID] > 1 {
					t.Errorf("step %d: alert %s opened twice", i, x.Alert.ID)
				}
			}
		}
		if diff := cmp.Diff(sp.want, got); diff != "" {
			t.Errorf("step %d: transitions (-want +got):\n%s", i, diff)
		}
	}
	return tr
}

func ps(s events.DroneState) *events.DroneState { return &s }

func TestBatteryLowHysteresis(t *testing.T) {
	s := DefaultSettings() // open < 20, close > 25
	tests := []struct {
		name  string
		batts []float64
		want  [][]string
	}{
		{"hovering at the threshold raises one alert", []float64{21, 19.9, 20.1, 19.8, 20.4, 19.9, 24.9, 25},
			[][]string{nil, {"raised battery.low"}, nil, nil, nil, nil, nil, nil}},
		{"closes only above threshold plus hysteresis", []float64{30, 15, 25.1, 24, 19}, [][]string{nil,
			{"raised battery.low"}, {"resolved battery.low"}, nil, {"raised battery.low"}}},
		{"exactly at the threshold does not open", []float64{20, 20}, [][]string{nil, nil}},
		{"battery swap closes", []float64{10, 100}, [][]string{{"raised battery.low"}, {"resolved battery.low"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var steps []step
			for i, b := range tt.batts {
				steps = append(steps, step{state: ps(st(float64(i), 0, 0, 0, f(b), nil)), want: tt.want[i]})
			}
			run(t, s, nil, steps)
		})
	}
}

func TestBatteryExhaustion(t *testing.T) {
	s := DefaultSettings() // open < 300 s, close > 360 s or unknown
	run(t, s, nil, []step{
		{state: ps(st(0, 0, 0, 0, f(90), f(1000)))},
		{state: ps(st(1, 0, 0, 0, f(89), f(299))), want: []string{"raised battery.exhaustion"}},
		{state: ps(st(2, 0, 0, 0, f(88), f(350)))}, // within the release band: stays open
		{state: ps(st(3, 0, 0, 0, f(87), f(361))), want: []string{"resolved battery.exhaustion"}},
		{state: ps(st(4, 0, 0, 0, f(86), f(100))), want: []string{"raised battery.exhaustion"}},
		{state: ps(st(5, 0, 0, 0, f(100), nil)), want: []string{"resolved battery.exhaustion"}}, // swap: drain unknown
	})
	off := s
	off.MinTimeToEmptySecs = 0
	run(t, off, nil, []step{{state: ps(st(0, 0, 0, 0, f(90), f(1)))}})
}

func TestGeofenceEnterExit(t *testing.T) {
	zone := Fence{ID: "home", Name: "home", Mode: ModeKeepIn,
		Polygon: []Point{{52, 13}, {52, 14}, {53, 14}, {53, 13}}}
	nofly := Fence{ID: "airport", Name: "airport", Mode: ModeKeepOut, Center: &Point{52.5, 13.5}, RadiusM: 1000}
	fences := []Fence{zone, nofly}
	run(t, DefaultSettings(), fences, []step{
		{state: ps(st(0, 0, 52.2, 13.2, nil, nil))},
		{state: ps(st(1, 0, 52.5, 13.505, nil, nil)), want: []string{"raised geofence.breach/airport"}},
		{state: ps(st(2, 0, 52.2, 13.2, nil, nil)), want: []string{"resolved geofence.breach/airport"}},
		{state: ps(st(3, 0, 51.9, 13.2, nil, nil)), want: []string{"raised geofence.breach/home"}},
		{state: ps(st(4, 0, 51.8, 13.2, nil, nil))}, // still out: no storm
		{state: ps(st(5, 0, 52.1, 13.2, nil, nil)), want: []string{"resolved geofence.breach/home"}},
	})
	// A deleted fence's open episode closes at the next state.
	tr := run(t, DefaultSettings(), fences, []step{
		{state: ps(st(0, 0, 51.9, 13.2, nil, nil)), want: []string{"raised geofence.breach/home"}},
	})
	_, ts, _ := EvaluateState(tr, st(1, 0, 51.9, 13.2, nil, nil), DefaultSettings(), nil, t0)
	if len(ts) != 1 || ts[0].Type != events.TypeAlertResolved {
		t.Errorf("after deleting the fence: %+v; want one resolved", ts)
	}
}

func TestOutOfOrderAndRedelivery(t *testing.T) {
	s := DefaultSettings()
	run(t, s, nil, []step{
		{state: ps(st(10, 0, 0, 0, f(50), nil))},
		// A late state (older drone time) with a low battery must not alert.
		{state: ps(st(5, time.Minute, 0, 0, f(5), nil))},
		{state: ps(st(11, 0, 0, 0, f(10), nil)), want: []string{"raised battery.low"}},
		// Redelivered: same state again changes nothing.
		{state: ps(st(11, 0, 0, 0, f(10), nil))},
		// A late high reading must not close it.
		{state: ps(st(9, 2*time.Minute, 0, 0, f(99), nil))},
		{state: ps(st(12, 0, 0, 0, f(90), nil)), want: []string{"resolved battery.low"}},
	})
}

func TestLostLinkAndClockSkew(t *testing.T) {
	s := DefaultSettings() // 60 s
	tests := []struct {
		name  string
		steps []step
	}{
		{"silent drone loses link once, resumes", []step{
			{state: ps(st(0, 0, 0, 0, nil, nil))},
			{check: t0.Add(30 * time.Second)},
			{check: t0.Add(61 * time.Second), want: []string{"raised link.lost"}},
			{check: t0.Add(91 * time.Second)},
			{state: ps(st(120, 0, 0, 0, nil, nil)), want: []string{"resolved link.lost"}},
			{check: t0.Add(150 * time.Second)},
		}},
		// The drone's clock runs an hour behind the server: judged by when
		// its states were accepted, it is alive.
		{"drone clock behind is not lost", []step{
			{state: ps(st(-3600, time.Hour, 0, 0, nil, nil))},
			{check: t0.Add(30 * time.Second)},
		}},
		// An hour ahead: still lost after N s of server time.
		{"drone clock ahead still loses link", []step{
			{state: ps(st(3600, -time.Hour, 0, 0, nil, nil))},
			{check: t0.Add(61 * time.Second), want: []string{"raised link.lost"}},
		}},
		{"never seen is not checked", []step{{check: t0.Add(time.Hour)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { run(t, s, nil, tt.steps) })
	}
	off := s
	off.LostLinkSecs = 0
	run(t, off, nil, []step{{state: ps(st(0, 0, 0, 0, nil, nil))}, {check: t0.Add(time.Hour)}})
}

func TestOutboxAndIDs(t *testing.T) {
	s := DefaultSettings()
	tr := Tracker{TenantID: "acme", DroneID: "d1"}
	tr, ts, _ := EvaluateState(tr, st(0, 0, 0, 0, f(5), nil), s, nil, t0)
	tr2, ts2, _ := EvaluateState(Tracker{TenantID: "acme", DroneID: "d1"}, st(0, 0, 0, 0, f(5), nil), s, nil, t0)
	if ts[0].Alert.ID != ts2[0].Alert.ID || len(tr2.Outbox) != 1 {
		t.Fatalf("ids differ for the same episode: %s vs %s", ts[0].Alert.ID, ts2[0].Alert.ID)
	}
	if len(tr.Outbox) != 1 || tr.Outbox[0].EventID() != ts[0].Alert.ID+"/raised" {
		t.Fatalf("outbox = %+v", tr.Outbox)
	}
	// Two concurrent evaluators: only the first gets the transition.
	tr, claimed, ok := Claim(tr, t0, 30*time.Second)
	if !ok || len(claimed) != 1 {
		t.Fatalf("first Claim = %+v, %v", claimed, ok)
	}
	if _, again, ok := Claim(tr, t0.Add(time.Second), 30*time.Second); ok || len(again) != 0 {
		t.Errorf("second Claim within the lease got %+v", again)
	}
	// A holder that crashed: after the lease another evaluator takes over.
	if _, again, ok := Claim(tr, t0.Add(31*time.Second), 30*time.Second); !ok || len(again) != 1 {
		t.Errorf("Claim after the lease got %+v", again)
	}
	// A failed publish releases the claim at once.
	released, _ := Published(tr, nil, []string{ts[0].EventID()})
	if _, again, ok := Claim(released, t0.Add(time.Second), 30*time.Second); !ok || len(again) != 1 {
		t.Errorf("Claim after release got %+v", again)
	}
	tr, changed := Published(tr, []string{ts[0].EventID()}, nil)
	if !changed || len(tr.Outbox) != 0 || len(tr.Claims) != 0 {
		t.Errorf("Published left %+v %+v", tr.Outbox, tr.Claims)
	}
	if _, changed := Published(tr, []string{"x"}, nil); changed {
		t.Error("Published of an unknown id changed the tracker")
	}
	ev, err := events.NewAlert(ts[0].Type, ts[0].Alert.Event())
	if err != nil || ev.ID() != ts[0].EventID() {
		t.Errorf("NewAlert id = %s, %v; want %s", ev.ID(), err, ts[0].EventID())
	}
}

func TestSettingsValidate(t *testing.T) {
	for _, tt := range []struct {
		s     Settings
		field string
	}{
		{DefaultSettings(), ""},
		{Settings{LowBatteryPct: 101}, "lowBatteryPct"},
		{Settings{HysteresisPct: -1}, "hysteresisPct"},
		{Settings{MinTimeToEmptySecs: -1}, "minTimeToEmptySecs"},
		{Settings{LostLinkSecs: 0.5}, "lostLinkSecs"},
	} {
		err := tt.s.Validate()
		got := ""
		if fe, ok := err.(*FieldError); ok {
			got = fe.Field
		}
		if got != tt.field {
			t.Errorf("Validate(%+v) field = %q; want %q", tt.s, got, tt.field)
		}
	}
}

// LivenessOnly holds for a state that only moves the drone's signs of life
// on, with an alert open or not, and for nothing that opens, closes or
// changes an alert or the outbox.
func TestLivenessOnly(t *testing.T) {
	s := DefaultSettings()
	fresh := Tracker{TenantID: "acme", DroneID: "d1"}
	tr, _, _ := EvaluateState(fresh, st(0, 0, 47, 8, f(80), nil), s, nil, t0)
	next, ts, changed := EvaluateState(tr, st(1, 0, 47, 8, f(79), nil), s, nil, t0)
	if !changed || len(ts) != 0 || !LivenessOnly(tr, next) {
		t.Errorf("a newer state with nothing raised: changed %v, %d transitions, liveness only %v; want true, 0, true", changed, len(ts), LivenessOnly(tr, next))
	}
	low, ts, _ := EvaluateState(next, st(2, 0, 47, 8, f(10), nil), s, nil, t0)
	if len(ts) == 0 || LivenessOnly(next, low) {
		t.Errorf("battery low raised: %d transitions, liveness only %v; want a transition, false", len(ts), LivenessOnly(next, low))
	}
	// Published: the outbox empties.
	var ids []string
	for _, x := range low.Outbox {
		ids = append(ids, x.EventID())
	}
	out, changedOut := Published(low, ids, nil)
	if !changedOut || LivenessOnly(low, out) {
		t.Errorf("outbox published: changed %v, liveness only %v; want true, false", changedOut, LivenessOnly(low, out))
	}
	still, ts, _ := EvaluateState(out, st(3, 0, 47, 8, f(10), nil), s, nil, t0)
	if len(ts) == 0 && !LivenessOnly(out, still) {
		t.Errorf("battery still low, no transition, but not liveness only:\n%s", cmp.Diff(out, still))
	}
	if len(ts) != 0 && LivenessOnly(out, still) {
		t.Errorf("%d transitions counted as liveness only", len(ts))
	}
	if LivenessOnly(tr, Tracker{TenantID: "acme", DroneID: "d2", LastTS: tr.LastTS, LastSeen: tr.LastSeen}) {
		t.Error("another drone's tracker counted as the same")
	}
	lost := tr
	lost.LinkLost = true
	if LivenessOnly(tr, lost) {
		t.Error("a link.lost flag set counted as liveness only")
	}
}
