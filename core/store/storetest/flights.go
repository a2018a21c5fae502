package storetest

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/dronetrack/dronetrack/core/flights"
	"github.com/dronetrack/dronetrack/core/flights/flightupdate"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// flightTests pin down store.Flights:
//   - An armed -> disarmed sequence written as process writes it (history,
//     then flightupdate), shuffled and duplicated, leaves exactly the one
//     flight in-order delivery leaves, with the right statistics.
//   - UpdateFlights upserts by id and, with ReplaceFrom, deletes the drone's
//     other flights starting at or after it (only that drone's).
//   - ListFlights is newest first within [From, To), per drone or fleet,
//     limited; another tenant's flight, drone or list is not found / empty.
//   - FlightSettings are the defaults until put, per tenant.
//   - A late batch's write records a replay owed in the detector, which
//     OwedReplays lists (every tenant's, by age, limited) and OwedReplay
//     returns for the drone (to its tenant only) until a replay pays it;
//     paid, the flights are those of in-order delivery.
var flightTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"FlightsShuffledAndDuplicated", testFlightsShuffledAndDuplicated},
	{"FlightsUpsertReplaceAndList", testFlightsUpsertReplaceAndList},
	{"FlightSettings", testFlightSettings},
	{"FlightReplaysOwed", testFlightReplaysOwed},
}

// armedFlight is 2 minutes of a drone: 10 s on the ground disarmed, armed
// at 10 s, off at 20 s climbing 2 m/s to 60 m while flying east at 8 m/s,
// down again from 80 s, landed at 110 s, disarmed at 115 s, then 5 s more.
func armedFlight() []events.Report {
	var out []events.Report
	east := 0.0
	for s := 0; s < 120; s++ {
		h, v := 0.0, 0.0
		switch {
		case s >= 20 && s < 50:
			h, v = float64(s-20)*2, 8
		case s >= 50 && s < 80:
			h, v = 60, 8
		case s >= 80 && s < 110:
			h, v = float64(110-s)*2, 8
		}
		if v > 0 {
			east += v
		}
		out = append(out, events.Report{TS: at(0).Add(time.Duration(s) * time.Second), Lat: 52.5,
			Lon: 13.4 + east/(111195*math.Cos(52.5*math.Pi/180)), Alt: new(34 + h), Height: new(h), Speed: new(v),
			Battery: new(100 - float64(s)/4), Armed: new(s >= 10 && s < 115)})
	}
	return out
}

// DeliverFlightBatch writes a batch of the drone's reports to its history
// and runs flight detection on it, as process does (a replay the batch
// owes is paid at once).
func DeliverFlightBatch(t *testing.T, s store.Store, tenantID, droneID string, reps []events.Report) {
	t.Helper()
	ctx := context.Background()
	pts := make([]store.TrackPoint, len(reps))
	for i, r := range reps {
		pts[i] = store.TrackPoint{TenantID: tenantID, DroneID: droneID, Report: r}
	}
	must(t, "AppendTrack", s.AppendTrack(ctx, pts))
	if _, err := flightupdate.Update(ctx, s, flights.DefaultSettings(), tenantID, droneID, reps, time.Now()); err != nil {
		t.Fatalf("flightupdate.Update: %v", err)
	}
}

func testFlightsShuffledAndDuplicated(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "acme")
	mkDrone(t, s, "acme", "inorder")
	mkDrone(t, s, "acme", "shuffled")
	reps := armedFlight()
	for i := 0; i < len(reps); i += 6 {
		DeliverFlightBatch(t, s, "acme", "inorder", reps[i:min(i+6, len(reps))])
	}
	rng := rand.New(rand.NewPCG(16, 16))
	var batches [][]events.Report
	for i := 0; i < len(reps); {
		n := 1 + rng.IntN(8)
		batches = append(batches, reps[i:min(i+n, len(reps))])
		i += n
	}
	rng.Shuffle(len(batches), func(i, j int) { batches[i], batches[j] = batches[j], batches[i] })
	for i, b := range batches {
		DeliverFlightBatch(t, s, "acme", "shuffled", b)
		if i%4 == 0 { // redelivered
			DeliverFlightBatch(t, s, "acme", "shuffled", b)
		}
	}
	// and the whole sequence once more, as a replay of the stream would
	DeliverFlightBatch(t, s, "acme", "shuffled", reps[40:80])

	list := func(drone string) []flights.Flight {
		fs, err := s.ListFlights(ctx, store.FlightQuery{TenantID: "acme", DroneID: drone, From: at(0).Add(-time.Hour), To: at(0).Add(time.Hour)})
		must(t, "ListFlights "+drone, err)
		return fs
	}
	in, out := list("inorder"), list("shuffled")
	if len(in) != 1 || len(out) != 1 {
		t.Fatalf("flights: %d in order, %d shuffled; want one each\nin order %+v\nshuffled %+v", len(in), len(out), in, out)
	}
	f := out[0]
	start, end := at(0).Add(10*time.Second), at(0).Add(115*time.Second)
	if !f.Start.Equal(start) || !f.End.Equal(end) || f.InProgress || f.Rule != flights.RuleArmed {
		t.Errorf("flight %s..%s rule %s in progress %v; want armed %s..%s, ended", f.Start, f.End, f.Rule, f.InProgress, start, end)
	}
	if f.DurationSecs != 105 || f.Points != 106 || f.TenantID != "acme" || f.DroneID != "shuffled" {
		t.Errorf("duration %v points %d tenant %q drone %q; want 105 s, 106, acme, shuffled", f.DurationSecs, f.Points, f.TenantID, f.DroneID)
	}
	approx := func(what string, got *float64, want, tol float64) {
		t.Helper()
		if got == nil || math.Abs(*got-want) > tol {
			t.Errorf("%s = %v, want %v ± %g", what, got, want, tol)
		}
	}
	approx("distance (m)", &f.DistanceM, 90*8, 1)
	approx("max height (m)", f.MaxHeight, 60, 0)
	approx("max altitude (m MSL)", f.MaxAlt, 94, 0)
	approx("max speed (m/s)", f.MaxSpeed, 8, 0)
	approx("battery at start (%)", f.BatteryStart, 100-10.0/4, 1e-9)
	approx("battery at end (%)", f.BatteryEnd, 100-115.0/4, 1e-9)
	if f.StartPos.Lat != 52.5 || f.StartPos.Lon != 13.4 || math.Abs(f.EndPos.Lon-reps[115].Lon) > 1e-12 {
		t.Errorf("start %+v end %+v", f.StartPos, f.EndPos)
	}
	// The same flight but the drone: in-order and shuffled agree exactly.
	ignore := cmpopts.IgnoreFields(flights.Flight{}, "ID", "DroneID")
	if diff := cmp.Diff(in[0], f, opts, ignore); diff != "" {
		t.Errorf("shuffled differs from in-order (-in order +shuffled):\n%s", diff)
	}
	got, err := s.Flight(ctx, "acme", f.ID)
	must(t, "Flight", err)
	if diff := cmp.Diff(f, got, opts); diff != "" {
		t.Errorf("Flight differs from the listed one (-list +get):\n%s", diff)
	}
}

func flight(tenantID, droneID string, i int) flights.Flight {
	start := at(i * 100)
	return flights.Flight{ID: flights.ID(droneID, start), TenantID: tenantID, DroneID: droneID, Rule: flights.RuleMotion,
		Start: start, End: start.Add(50 * time.Second), DurationSecs: 50, DistanceM: float64(i), MaxHeight: new(10.0 + float64(i)),
		StartPos: events.Position{Lat: 1, Lon: 2, Alt: new(3.0)}, EndPos: events.Position{Lat: 1.1, Lon: 2.1}, Points: 51}
}

func testFlightsUpsertReplaceAndList(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "acme")
	mkTenant(t, s, "other")
	mkDrone(t, s, "acme", "d1")
	mkDrone(t, s, "acme", "d2")
	mkDrone(t, s, "other", "x1")
	put := func(tenantID, droneID string, ch flights.Changes, head time.Time) {
		t.Helper()
		d, err := s.UpdateFlights(ctx, tenantID, droneID, func(prev flights.Detector) (flights.Detector, flights.Changes, bool) {
			if prev.TenantID != tenantID || prev.DroneID != droneID {
				t.Errorf("new detector ids %q %q", prev.TenantID, prev.DroneID)
			}
			prev.Head = head
			return prev, ch, true
		})
		must(t, "UpdateFlights", err)
		if !d.Head.Equal(head) {
			t.Errorf("stored head %s, want %s", d.Head, head)
		}
	}
	put("acme", "d1", flights.Changes{Upsert: []flights.Flight{flight("acme", "d1", 1), flight("acme", "d1", 2), flight("acme", "d1", 3)}}, at(400))
	put("acme", "d2", flights.Changes{Upsert: []flights.Flight{flight("acme", "d2", 2)}}, at(300))
	put("other", "x1", flights.Changes{Upsert: []flights.Flight{flight("other", "x1", 2)}}, at(300))

	// A replay from flight 2's start found one flight there, starting later.
	moved := flight("acme", "d1", 2)
	moved.Start = moved.Start.Add(5 * time.Second)
	moved.ID = flights.ID("d1", moved.Start)
	from := at(200)
	put("acme", "d1", flights.Changes{Upsert: []flights.Flight{moved}, ReplaceFrom: &from}, at(500))

	list := func(q store.FlightQuery) []string {
		t.Helper()
		fs, err := s.ListFlights(ctx, q)
		must(t, "ListFlights", err)
		var ids []string
		for _, f := range fs {
			ids = append(ids, f.ID)
		}
		return ids
	}
	all := store.FlightQuery{TenantID: "acme", From: at(0), To: at(10000)}
	want := []string{moved.ID, flight("acme", "d2", 2).ID, flight("acme", "d1", 1).ID}
	if diff := cmp.Diff(want, list(all)); diff != "" {
		t.Errorf("fleet flights newest first (-want +got):\n%s", diff)
	}
	d1 := all
	d1.DroneID = "d1"
	if diff := cmp.Diff([]string{moved.ID, flight("acme", "d1", 1).ID}, list(d1)); diff != "" {
		t.Errorf("drone flights after replace (-want +got):\n%s", diff)
	}
	if _, err := s.Flight(ctx, "acme", flight("acme", "d1", 3).ID); err == nil {
		t.Error("a flight the replay did not find again is still stored")
	}
	d1.From, d1.To = at(100), at(203) // [from, to) on the start: flight 1 (100) in, the moved one (205) out
	if diff := cmp.Diff([]string{flight("acme", "d1", 1).ID}, list(d1)); diff != "" {
		t.Errorf("range (-want +got):\n%s", diff)
	}
	all.Limit = 2
	if got := list(all); len(got) != 2 || got[0] != moved.ID {
		t.Errorf("limit 2: %v", got)
	}
	got, err := s.Flight(ctx, "acme", moved.ID)
	must(t, "Flight", err)
	if diff := cmp.Diff(moved, got, opts); diff != "" {
		t.Errorf("flight round trip (-want +got):\n%s", diff)
	}

	// Isolation.
	x := flight("other", "x1", 2)
	_, err = s.Flight(ctx, "acme", x.ID)
	wantErr(t, "another tenant's flight", err, store.ErrNotFound)
	if got := list(store.FlightQuery{TenantID: "acme", DroneID: "x1", From: at(0), To: at(10000)}); len(got) != 0 {
		t.Errorf("another tenant's drone listed flights %v", got)
	}
	if got := list(store.FlightQuery{TenantID: "other", From: at(0), To: at(10000)}); len(got) != 1 || got[0] != x.ID {
		t.Errorf("other tenant's fleet: %v", got)
	}
	_, err = s.UpdateFlights(ctx, "acme", "x1", func(prev flights.Detector) (flights.Detector, flights.Changes, bool) {
		t.Error("fn ran for another tenant's drone")
		return prev, flights.Changes{}, true
	})
	wantErr(t, "UpdateFlights on another tenant's drone", err, store.ErrNotFound)
	_, err = s.UpdateFlights(ctx, "acme", "nope", func(prev flights.Detector) (flights.Detector, flights.Changes, bool) {
		return prev, flights.Changes{}, false
	})
	wantErr(t, "UpdateFlights on a missing drone", err, store.ErrNotFound)
	// fn saying no writes nothing.
	d, err := s.UpdateFlights(ctx, "acme", "d2", func(prev flights.Detector) (flights.Detector, flights.Changes, bool) {
		prev.Head = at(9999)
		return prev, flights.Changes{Upsert: []flights.Flight{flight("acme", "d2", 7)}}, false
	})
	must(t, "UpdateFlights no-op", err)
	if !d.Head.Equal(at(300)) {
		t.Errorf("a refused update changed the head to %s", d.Head)
	}
	if _, err := s.Flight(ctx, "acme", flight("acme", "d2", 7).ID); err == nil {
		t.Error("a refused update stored a flight")
	}
}

func testFlightSettings(t *testing.T, s store.Store) {
	ctx := context.Background()
	got, err := s.FlightSettings(ctx, "acme")
	must(t, "FlightSettings", err)
	if got != flights.DefaultSettings() {
		t.Errorf("settings before any put = %+v, want the defaults", got)
	}
	want := flights.Settings{MinSpeed: 1, MinHeight: 5, StartSecs: 3, StopSecs: 20, MaxGapSecs: 120}
	must(t, "PutFlightSettings", s.PutFlightSettings(ctx, "acme", want))
	if got, _ = s.FlightSettings(ctx, "acme"); got != want {
		t.Errorf("settings = %+v, want %+v", got, want)
	}
	if got, _ = s.FlightSettings(ctx, "other"); got != flights.DefaultSettings() {
		t.Errorf("another tenant's settings = %+v, want the defaults", got)
	}
}

func testFlightReplaysOwed(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "acme")
	mkTenant(t, s, "beta")
	mkDrone(t, s, "acme", "inorder")
	mkDrone(t, s, "acme", "late")
	mkDrone(t, s, "beta", "late2")
	reps := armedFlight()
	write := func(tenantID, droneID string, b []events.Report, now time.Time) *flightupdate.Pass {
		t.Helper()
		pts := make([]store.TrackPoint, len(b))
		for i, r := range b {
			pts[i] = store.TrackPoint{TenantID: tenantID, DroneID: droneID, Report: r}
		}
		must(t, "AppendTrack", s.AppendTrack(ctx, pts))
		p := flightupdate.NewPass(flights.DefaultSettings(), b, now)
		_, err := s.UpdateFlights(ctx, tenantID, droneID, p.Apply)
		must(t, "UpdateFlights", err)
		return p
	}
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	for i := 0; i < len(reps); i += 10 {
		write("acme", "inorder", reps[i:min(i+10, len(reps))], t0)
	}
	// The first and last thirds, then the middle: late, so owed.
	for _, d := range []struct{ tenant, drone string }{{"acme", "late"}, {"beta", "late2"}} {
		if p := write(d.tenant, d.drone, reps[:40], t0); p.NeedsReplay() {
			t.Fatalf("%s: the first batch owes a replay", d.drone)
		}
		write(d.tenant, d.drone, reps[80:], t0)
		if p := write(d.tenant, d.drone, reps[40:80], t0.Add(time.Second)); !p.NeedsReplay() {
			t.Fatalf("%s: a late batch owes no replay", d.drone)
		}
	}
	// The detector as stored keeps what is owed.
	det, err := s.UpdateFlights(ctx, "acme", "late", func(prev flights.Detector) (flights.Detector, flights.Changes, bool) {
		return prev, flights.Changes{}, false
	})
	must(t, "UpdateFlights (read)", err)
	if det.Owed == nil || !det.Owed.Since.Equal(t0.Add(time.Second)) || det.LateSeq != 1 || det.Owed.From.After(reps[40].TS) {
		t.Fatalf("stored detector owes %+v after %d late batches; want a replay from before %s since %s, after 1", det.Owed, det.LateSeq, reps[40].TS, t0.Add(time.Second))
	}
	// OwedReplay: the stored detector's, to the drone's tenant only.
	got, err := s.OwedReplay(ctx, "acme", "late")
	must(t, "OwedReplay", err)
	if got == nil || !got.From.Equal(det.Owed.From) || !got.Since.Equal(det.Owed.Since) {
		t.Errorf("OwedReplay(acme, late) = %+v, want the detector's %+v", got, det.Owed)
	}
	if got, err := s.OwedReplay(ctx, "acme", "inorder"); err != nil || got != nil {
		t.Errorf("OwedReplay of a drone written in order = %+v, %v; want nil, nil", got, err)
	}
	_, err = s.OwedReplay(ctx, "beta", "late")
	wantErr(t, "OwedReplay of another tenant's drone", err, store.ErrNotFound)
	_, err = s.OwedReplay(ctx, "acme", "nope")
	wantErr(t, "OwedReplay of a missing drone", err, store.ErrNotFound)
	owed := func(before time.Time, limit int) []store.DroneRef {
		t.Helper()
		refs, err := s.OwedReplays(ctx, before, limit)
		must(t, "OwedReplays", err)
		slices.SortFunc(refs, func(a, b store.DroneRef) int { return strings.Compare(a.DroneID, b.DroneID) })
		return refs
	}
	want := []store.DroneRef{{TenantID: "acme", DroneID: "late"}, {TenantID: "beta", DroneID: "late2"}}
	if got := owed(t0.Add(time.Minute), 0); !slices.Equal(got, want) {
		t.Fatalf("OwedReplays = %v, want %v", got, want)
	}
	if got := owed(t0.Add(time.Second), 0); len(got) != 0 {
		t.Errorf("OwedReplays before the replays were owed = %v, want none", got)
	}
	if got := owed(t0.Add(time.Minute), 1); len(got) != 1 {
		t.Errorf("OwedReplays limited to 1 = %v", got)
	}
	res, err := flightupdate.Replay(ctx, s, flights.DefaultSettings(), "acme", "late", time.Now())
	must(t, "Replay", err)
	if !res.Replayed || res.Owed || res.Points != len(reps) {
		t.Errorf("Replay = %+v; want all %d points replayed, nothing owed after", res, len(reps))
	}
	if got := owed(t0.Add(time.Minute), 0); !slices.Equal(got, want[1:]) {
		t.Errorf("OwedReplays after acme's replay = %v, want %v", got, want[1:])
	}
	if got, err := s.OwedReplay(ctx, "acme", "late"); err != nil || got != nil {
		t.Errorf("OwedReplay after the replay = %+v, %v; want nil, nil", got, err)
	}
	list := func(tenant, drone string) []flights.Flight {
		fs, err := s.ListFlights(ctx, store.FlightQuery{TenantID: tenant, DroneID: drone, From: at(0).Add(-time.Hour), To: at(0).Add(time.Hour)})
		must(t, "ListFlights "+drone, err)
		return fs
	}
	in, late, unpaid := list("acme", "inorder"), list("acme", "late"), list("beta", "late2")
	ignore := cmpopts.IgnoreFields(flights.Flight{}, "ID", "DroneID")
	if len(in) != 1 || len(late) != 1 {
		t.Fatalf("flights: %d in order, %d replayed; want one each", len(in), len(late))
	}
	if diff := cmp.Diff(in[0], late[0], opts, ignore); diff != "" {
		t.Errorf("replayed differs from in-order (-in order +replayed):\n%s", diff)
	}
	// Unpaid, the flight lacks the late reports: the owed replay is what
	// puts them in.
	if len(unpaid) == 1 && unpaid[0].Points == in[0].Points {
		t.Errorf("beta's flight has every point before its replay: the late batch was not late")
	}
	// A replay with nothing owed does nothing.
	res, err = flightupdate.Replay(ctx, s, flights.DefaultSettings(), "acme", "late", time.Now())
	if err != nil || res.Replayed {
		t.Errorf("a second Replay = %+v, %v; want nothing done", res, err)
	}
}
