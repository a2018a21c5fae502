package events

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// randomState sets each field of a state, or leaves an optional one
// absent, with values that exercise encoding/json's number and time forms.
func randomState(rng *rand.Rand) DroneState {
	floats := []float64{0, 1, -1, 0.5, 47.123456789, -8.5, 1e-7, 1.5e-9, 1e21, 3e22, 123456789.125, math.Copysign(0, -1), 1e20}
	fl := func() float64 {
		if rng.IntN(3) == 0 {
			return rng.NormFloat64() * math.Pow(10, float64(rng.IntN(30)-15))
		}
		return floats[rng.IntN(len(floats))]
	}
	opt := func() *float64 {
		if rng.IntN(2) == 0 {
			return nil
		}
		return new(fl())
	}
	zones := []*time.Location{time.UTC, time.FixedZone("", 2*3600), time.FixedZone("x", -5*3600-30*60)}
	tm := func() time.Time {
		t := time.Date(2020+rng.IntN(10), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60),
			[]int{0, 123000000, 123456789, 5}[rng.IntN(4)], time.UTC)
		return t.In(zones[rng.IntN(len(zones))])
	}
	s := DroneState{TS: tm(), Lat: fl(), Lon: fl(), Alt: opt(), Speed: opt(), Heading: opt(), Battery: opt(),
		HAE: opt(), Height: opt(), VSpeed: opt(), HAcc: opt(), VAcc: opt(), Link: opt(), GroundSpeed: opt(),
		Course: opt(), DistanceM: fl(), BatteryDrain: opt(), TimeToEmptySecs: opt()}
	if rng.IntN(2) == 0 {
		s.UpdatedAt = tm()
	}
	if rng.IntN(2) == 0 {
		s.Seq = new(rng.Uint64())
	}
	if rng.IntN(2) == 0 {
		s.Armed = new(rng.IntN(2) == 0)
	}
	if rng.IntN(2) == 0 {
		s.Mode = new([]string{"AUTO.MISSION", "RTL", "<&>", "ünï", "a\"b\\c\n", ""}[rng.IntN(6)])
	}
	if rng.IntN(2) == 0 {
		s.Fix = new(rng.IntN(9))
	}
	if rng.IntN(2) == 0 {
		s.Satellites = new(rng.IntN(40) - 2)
	}
	if rng.IntN(2) == 0 {
		s.Home = &Position{Lat: fl(), Lon: fl(), Alt: opt()}
	}
	return s
}

// decodeBoth decodes data with the hand decoder and with encoding/json
// into copies of into, and fails the test when they disagree.
func decodeBoth(t *testing.T, data []byte, into DroneState) {
	t.Helper()
	got, want := into, into
	gotErr := json.Unmarshal(data, &got)
	wantErr := json.Unmarshal(data, (*droneStateJSON)(&want))
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("decode %s: error %v, encoding/json's %v", data, gotErr, wantErr)
	}
	if diff := cmp.Diff(DroneState(want), got); diff != "" {
		t.Fatalf("decode %s (-encoding/json +hand):\n%s", data, diff)
	}
	// Zones and instants, which cmp compares with Equal only.
	for _, p := range [][2]time.Time{{got.TS, want.TS}, {got.UpdatedAt, want.UpdatedAt}} {
		if p[0].String() != p[1].String() {
			t.Fatalf("decode %s: time %s, encoding/json's %s", data, p[0], p[1])
		}
	}
}

func TestStateJSONMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		s := randomState(rng)
		got, gotErr := json.Marshal(s)
		want, wantErr := json.Marshal((*droneStateJSON)(&s))
		if gotErr != nil || wantErr != nil {
			t.Fatalf("marshal %+v: %v / %v", s, gotErr, wantErr)
		}
		if string(got) != string(want) {
			t.Fatalf("marshal:\n%s\nencoding/json:\n%s", got, want)
		}
		direct, _ := s.AppendJSON(nil)
		if string(direct) != string(want) {
			t.Fatalf("AppendJSON:\n%s\nencoding/json:\n%s", direct, want)
		}
		decodeBoth(t, want, DroneState{})
		decodeBoth(t, want, randomState(rng)) // over a state with values: absent members keep them
		// Variants the hand decoder takes or hands on: spacing, member
		// order, nulls, unknown and differently cased names, escapes,
		// duplicates, numbers a field cannot hold.
		var m map[string]json.RawMessage
		if err := json.Unmarshal(want, &m); err != nil {
			t.Fatal(err)
		}
		indented, _ := json.MarshalIndent(m, " ", "\t") // sorted, spaced
		decodeBoth(t, indented, DroneState{})
		mutations := []func(string) string{
			func(s string) string { return strings.Replace(s, `"lat":`, `"lat":null,"lat":`, 1) },
			func(s string) string { return strings.Replace(s, `"ts":`, `"TS":`, 1) },
			func(s string) string { return strings.Replace(s, `{"ts"`, `{"extra":[1,{"a":2}],"ts"`, 1) },
			func(s string) string { return strings.Replace(s, `"lon":`, `"l\u006fn":`, 1) },
			func(s string) string { return strings.Replace(s, `,"distanceM":`, `,"fix":1.5,"distanceM":`, 1) },
			func(s string) string { return strings.Replace(s, `,"distanceM":`, `,"seq":-1,"distanceM":`, 1) },
			func(s string) string { return strings.Replace(s, `,"distanceM":`, `,"alt":null,"distanceM":`, 1) },
			func(s string) string {
				return strings.Replace(s, `,"distanceM":`, `,"home":{"lat":1,"x":2},"distanceM":`, 1)
			},
			func(s string) string { return strings.Replace(s, `,"distanceM":`, `,"armed":"yes","distanceM":`, 1) },
			func(s string) string { return strings.Replace(s, `"updatedAt":"`, `"updatedAt":"x`, 1) },
			func(s string) string {
				return strings.Replace(s, `,"distanceM":`, `,"lat":1E+2,"lon":-0.0e-0,"distanceM":`, 1)
			},
			func(s string) string { return s[:len(s)-1] }, // truncated
			func(s string) string { return s + "x" },
		}
		for _, mut := range mutations {
			decodeBoth(t, []byte(mut(string(want))), DroneState{})
		}
	}
}

// NaN, infinities and times Time.MarshalJSON refuses fail as they do with
// encoding/json.
func TestStateJSONRefusesWhatEncodingJSONRefuses(t *testing.T) {
	ts := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for _, s := range []DroneState{
		{TS: ts, Lat: math.NaN()},
		{TS: ts, Alt: new(math.Inf(1))},
		{TS: ts, Home: &Position{Alt: new(math.NaN())}},
		{TS: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if _, err := json.Marshal(s); err == nil {
			t.Errorf("marshal %+v: no error", s)
		}
	}
}

// Drone documents and events hold the state as a member: the methods are
// used there too and give the same bytes.
func TestStateJSONAsMember(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	s := randomState(rng)
	type withState struct {
		ID    string      `json:"id"`
		State *DroneState `json:"state,omitempty"`
	}
	type withPlain struct {
		ID    string          `json:"id"`
		State *droneStateJSON `json:"state,omitempty"`
	}
	got, _ := json.Marshal(withState{ID: "d", State: &s})
	want, _ := json.Marshal(withPlain{ID: "d", State: (*droneStateJSON)(&s)})
	if string(got) != string(want) {
		t.Fatalf("member:\n%s\nwant\n%s", got, want)
	}
	var back withState
	if err := json.Unmarshal(got, &back); err != nil || !reflect.DeepEqual(back.State.TS.Unix(), s.TS.Unix()) {
		t.Fatalf("decode member: %v", err)
	}
}

func FuzzStateJSON(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 8 {
		raw, _ := json.Marshal(randomState(rng))
		f.Add(raw)
	}
	f.Add([]byte(`{"ts":"2026-12-03T10:00:00Z","fix":1e1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeBoth(t, data, DroneState{})
		var r, rw Report
		if (json.Unmarshal(data, &r) == nil) != (json.Unmarshal(data, (*reportJSON)(&rw)) == nil) || !cmp.Equal(r, rw) {
			t.Fatalf("report %s: %+v, encoding/json's %+v", data, r, rw)
		}
		var s DroneState
		if json.Unmarshal(data, &s) != nil {
			return
		}
		got, gotErr := json.Marshal(s)
		want, wantErr := json.Marshal((*droneStateJSON)(&s))
		if (gotErr == nil) != (wantErr == nil) || string(got) != string(want) {
			t.Fatalf("marshal %s:\n%s (%v)\nencoding/json:\n%s (%v)", data, got, gotErr, want, wantErr)
		}
	})
}

func BenchmarkStateJSON(b *testing.B) {
	bat, alt, sp := 80.0, 120.0, 12.5
	s := DroneState{TS: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC), Lat: 47.123456, Lon: 8.654321, Alt: &alt,
		Speed: &sp, Heading: new(90.0), Battery: &bat, GroundSpeed: new(12.3), Course: new(88.5), DistanceM: 1234.5,
		BatteryDrain: new(0.01), TimeToEmptySecs: new(8000.0), UpdatedAt: time.Date(2026, 12, 3, 10, 0, 0, 300, time.UTC)}
	raw, _ := json.Marshal(s)
	for _, c := range []struct {
		name string
		enc  func() ([]byte, error)
		dec  func([]byte) error
	}{
		{"hand", func() ([]byte, error) { return s.MarshalJSON() },
			func(d []byte) error { var x DroneState; return x.UnmarshalJSON(d) }},
		{"encoding-json", func() ([]byte, error) { return json.Marshal((*droneStateJSON)(&s)) },
			func(d []byte) error { var x droneStateJSON; return json.Unmarshal(d, &x) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.enc(); err != nil {
					b.Fatal(err)
				}
				if err := c.dec(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// stateReport is the report part of a state (what Report.State copies).
func stateReport(s DroneState) Report {
	return Report{TS: s.TS, Lat: s.Lat, Lon: s.Lon, Alt: s.Alt, Speed: s.Speed, Heading: s.Heading,
		Battery: s.Battery, Seq: s.Seq, Armed: s.Armed, Mode: s.Mode, Fix: s.Fix, Satellites: s.Satellites,
		HAE: s.HAE, Height: s.Height, VSpeed: s.VSpeed, HAcc: s.HAcc, VAcc: s.VAcc, Link: s.Link, Home: s.Home}
}

func TestReportJSONMatchesEncodingJSON(t *testing.T) {
	if n, m := reflect.TypeOf(Report{}).NumField(), 19; n != m {
		t.Fatalf("Report has %d fields, the test copies %d: update stateReport and reportOf", n, m)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	decode := func(data []byte, into Report) {
		t.Helper()
		got, want := into, into
		gotErr := json.Unmarshal(data, &got)
		wantErr := json.Unmarshal(data, (*reportJSON)(&want))
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("decode %s: error %v, encoding/json's %v", data, gotErr, wantErr)
		}
		if diff := cmp.Diff(Report(want), got); diff != "" {
			t.Fatalf("decode %s (-encoding/json +hand):\n%s", data, diff)
		}
		if got.TS.String() != want.TS.String() {
			t.Fatalf("decode %s: time %s, encoding/json's %s", data, got.TS, want.TS)
		}
	}
	for range 2000 {
		r := stateReport(randomState(rng))
		got, gotErr := json.Marshal(r)
		want, wantErr := json.Marshal((*reportJSON)(&r))
		if gotErr != nil || wantErr != nil || string(got) != string(want) {
			t.Fatalf("marshal:\n%s (%v)\nencoding/json:\n%s (%v)", got, gotErr, want, wantErr)
		}
		decode(want, Report{})
		decode(want, stateReport(randomState(rng)))
		// State members are not a report's: encoding/json ignores them.
		st := randomState(rng)
		asState, _ := json.Marshal((*droneStateJSON)(&st))
		decode(asState, Report{})
		decode([]byte(strings.Replace(string(want), `"lat":`, `"lat":null,"lat":`, 1)), Report{})
	}
	if _, err := json.Marshal(Report{Lat: math.NaN()}); err == nil {
		t.Error("marshal NaN: no error")
	}
}
