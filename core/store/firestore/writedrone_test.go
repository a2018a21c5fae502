package firestore

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/flights"
	"github.com/dronetrack/dronetrack/core/flights/flightupdate"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/storetest"
	"github.com/dronetrack/dronetrack/core/telemetry"
	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/events"
)

// WriteDrone's contract is storetest.RunDroneWriter (TestContractDroneWriter);
// these tests are of how Firestore does it.

// openDrones is a store (a project of its own) with tenants acme and other
// and acme's drones.
func openDrones(t *testing.T, drones ...string) *Store {
	t.Helper()
	s := open(t)
	t.Cleanup(func() { s.Close() })
	storetest.WithDrones(t, s, drones...)
	return s
}

// twoReplicas is two clients of one project (as two process replicas),
// each counting its calls, with tenant acme and its drones.
func twoReplicas(t *testing.T, drones ...string) (a, b *Store, ctrA, ctrB *rpcCounter) {
	t.Helper()
	ctx := context.Background()
	host := testenv.Firestore(t)
	project := testenv.NewProjectID(t)
	ctrA, ctrB = newRPCCounter(), newRPCCounter()
	var err error
	if a, err = openWith(ctx, project, "", ctrA.options(t, host)...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if b, err = openWith(ctx, project, "", ctrB.options(t, host)...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	storetest.WithDrones(t, a, drones...)
	return a, b, ctrA, ctrB
}

// WriteDrone first folds the state and flights on what a read outside any
// transaction saw, and commits only if the drone and its detector are
// still as read. A write of the same drone that commits in between (here:
// made by WriteDrone's own functions on their first call, as another
// process replica would) is not lost: the precondition refuses the commit
// and the transaction folds again on top of what it reads.
func TestWriteDroneFoldsOnTopOfAWriteInBetween(t *testing.T) {
	ctx := context.Background()
	for _, part := range []string{"state", "flights"} {
		t.Run(part, func(t *testing.T) {
			st := openDrones(t, "d1")
			reps := storetest.FlightReports()
			prevTS := func(prev *events.DroneState) time.Time {
				if prev == nil {
					return time.Time{}
				}
				return prev.TS
			}
			// The state: the count of folds it has seen, kept in Lat.
			count := func(prev *events.DroneState, ts time.Time) events.DroneState {
				n := 0.0
				if prev != nil {
					n = prev.Lat
				}
				return events.DroneState{TS: ts, Lat: n + 1}
			}
			calls, between := 0, false
			pass := flightupdate.NewPass(flights.DefaultSettings(), reps[30:31], time.Now())
			w := store.DroneWrite{TenantID: "acme", DroneID: "d1",
				State: func(prev *events.DroneState) (events.DroneState, bool) {
					calls++
					if part == "state" && !between {
						between = true
						if _, _, err := st.UpdateState(ctx, "acme", "d1", func(prev *events.DroneState) (events.DroneState, bool) {
							return count(prev, reps[29].TS), true
						}); err != nil {
							t.Error(err)
						}
					}
					if !prevTS(prev).Before(reps[30].TS) {
						return events.DroneState{}, false
					}
					return count(prev, reps[30].TS), true
				},
				Flights: func(prev flights.Detector) (flights.Detector, flights.Changes, bool) {
					if part == "flights" && !between {
						between = true
						if _, err := flightupdate.Update(ctx, st, flights.DefaultSettings(), "acme", "d1", reps[10:30], time.Now()); err != nil {
							t.Error(err)
						}
					}
					return pass.Apply(prev)
				}}
			if part == "flights" {
				// The state has seen the reports before 30 already, the
				// detector those before 10 (so the write in between
				// updates a detector that exists).
				if _, _, err := st.UpdateState(ctx, "acme", "d1", func(prev *events.DroneState) (events.DroneState, bool) {
					return count(prev, reps[29].TS), true
				}); err != nil {
					t.Fatal(err)
				}
				if _, err := flightupdate.Update(ctx, st, flights.DefaultSettings(), "acme", "d1", reps[:10], time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			cur, wrote, err := st.WriteDrone(ctx, w)
			if err != nil || !wrote {
				t.Fatalf("WriteDrone: wrote %v, %v", wrote, err)
			}
			if !between {
				t.Fatal("the write in between did not happen")
			}
			if want := (events.DroneState{TS: reps[30].TS, Lat: 2}); !cur.TS.Equal(want.TS) || cur.Lat != want.Lat {
				t.Errorf("WriteDrone's state %+v, want %+v: folded on top of the write in between", cur, want)
			}
			if got, err := st.LatestState(ctx, "acme", "d1"); err != nil || got.Lat != 2 || !got.TS.Equal(reps[30].TS) {
				t.Errorf("stored state %+v, %v; want 2 folds, the last at report 30", got, err)
			}
			if part == "state" && calls < 2 {
				t.Errorf("the state was folded %d times, want again after the write in between", calls)
			}
			// The flights: the detector has seen reports 0..30 (the
			// take-off at 20 is a flight), whichever way they came; only
			// report 30 in the state's case.
			seen := reps[:31]
			if part == "state" {
				seen = reps[30:31]
			}
			want := openDrones(t, "d1")
			if _, err := flightupdate.Update(ctx, want, flights.DefaultSettings(), "acme", "d1", seen, time.Now()); err != nil {
				t.Fatal(err)
			}
			q := store.FlightQuery{TenantID: "acme", DroneID: "d1", From: reps[0].TS.Add(-time.Hour), To: reps[0].TS.Add(time.Hour)}
			gotF, err1 := st.ListFlights(ctx, q)
			wantF, err2 := want.ListFlights(ctx, q)
			if err1 != nil || err2 != nil || len(wantF) == 0 {
				t.Fatalf("flights: %v %v; want some: %d", err1, err2, len(wantF))
			}
			if diff := cmp.Diff(wantF, gotF); diff != "" {
				t.Errorf("flights after a write in between (-want +got):\n%s", diff)
			}
			detector := func(s *Store) flights.Detector {
				snap, err := s.coll("flightDetectors").Doc("d1").Get(ctx)
				d, err := decodeSnap[flights.Detector](snap, err, "acme", "read detector")
				if err != nil {
					t.Fatal(err)
				}
				return d
			}
			if diff := cmp.Diff(detector(want), detector(st)); diff != "" {
				t.Errorf("detector after a write in between (-want +got):\n%s", diff)
			}
		})
	}
}

// A batch with more points than one commit takes (a drone's backlog
// coalesced) is written whole: the points first, then state and flights.
func TestWriteDroneMoreThanOneCommit(t *testing.T) {
	ctx := context.Background()
	st := openDrones(t, "d1")
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	var reps []events.Report
	var pts []store.TrackPoint
	for i := range maxBatchWrites + 100 {
		r := events.Report{TS: t0.Add(time.Duration(i) * 100 * time.Millisecond), Lat: 47, Lon: 8}
		reps = append(reps, r)
		pts = append(pts, store.TrackPoint{TenantID: "acme", DroneID: "d1", Report: r})
	}
	now := reps[len(reps)-1].TS.Add(time.Minute)
	pass := flightupdate.NewPass(flights.DefaultSettings(), reps, time.Now())
	got, wrote, err := st.WriteDrone(ctx, store.DroneWrite{TenantID: "acme", DroneID: "d1", Points: pts,
		State:   func(prev *events.DroneState) (events.DroneState, bool) { return telemetry.Fold(prev, reps, now) },
		Flights: pass.Apply})
	if err != nil || !wrote || !got.TS.Equal(reps[len(reps)-1].TS) {
		t.Fatalf("WriteDrone: %v, wrote %v, state at %v; want the newest report's", err, wrote, got.TS)
	}
	stored, err := st.Track(ctx, store.TrackQuery{TenantID: "acme", DroneID: "d1", From: t0.Add(-time.Hour)})
	if err != nil || len(stored) != len(reps) {
		t.Fatalf("history: %d points, %v; want %d", len(stored), err, len(reps))
	}
	theirs := make([]store.TrackPoint, len(pts))
	for i, p := range pts {
		p.TenantID, p.Report.TS = "other", p.Report.TS.Add(time.Hour)
		theirs[i] = p
	}
	if _, _, err := st.WriteDrone(ctx, store.DroneWrite{TenantID: "other", DroneID: "d1", Points: theirs,
		State: func(prev *events.DroneState) (events.DroneState, bool) { return telemetry.Fold(prev, reps, now) }}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another tenant's drone, many points: %v, want ErrNotFound", err)
	}
	if after, err := st.Track(ctx, store.TrackQuery{TenantID: "acme", DroneID: "d1", From: t0.Add(-time.Hour),
		To: t0.Add(3 * time.Hour)}); err != nil || len(after) != len(reps) {
		t.Errorf("history after the refused write: %d points, %v; want %d", len(after), err, len(reps))
	}
}

// A late report, a redelivered batch and batches racing from two replicas
// are written without a transaction: a transaction locks the drone's
// documents while it runs, and a replica killed inside one leaves them
// locked for a minute (Firestore drops an abandoned lock only when it has
// been idle that long), stalling every later write of the drone.
func TestWriteDroneTakesNoLocks(t *testing.T) {
	ctx := context.Background()
	a, b, ctrA, ctrB := twoReplicas(t, "d1")
	reps := storetest.FlightReports()
	now := reps[len(reps)-1].TS.Add(time.Minute)
	settings := flights.DefaultSettings()
	write := func(s *Store, batch []events.Report) (events.DroneState, bool) {
		t.Helper()
		pts := make([]store.TrackPoint, len(batch))
		for i, r := range batch {
			pts[i] = store.TrackPoint{TenantID: "acme", DroneID: "d1", Report: r}
		}
		st, wrote, err := s.WriteDrone(ctx, store.DroneWrite{TenantID: "acme", DroneID: "d1", Points: pts,
			State:   func(prev *events.DroneState) (events.DroneState, bool) { return telemetry.Fold(prev, batch, now) },
			Flights: flightupdate.NewPass(settings, batch, time.Now()).Apply})
		if err != nil {
			t.Fatal(err)
		}
		return st, wrote
	}
	write(a, reps[10:12])
	ctrA.reset()
	// Late: older than the stored state.
	if st, wrote := write(a, reps[5:6]); wrote || !st.TS.Equal(reps[11].TS) {
		t.Errorf("late report: wrote %v, state of %v; want not written, the stored state of %v", wrote, st.TS, reps[11].TS)
	}
	// Redelivered: the stored state is its own.
	if st, wrote := write(a, reps[10:12]); wrote || !st.TS.Equal(reps[11].TS) {
		t.Errorf("redelivery: wrote %v, state of %v; want not written, the stored state of %v", wrote, st.TS, reps[11].TS)
	}
	if n := ctrA.rpcs["BeginTransaction"]; n != 0 {
		t.Errorf("late report and redelivery began %d transactions; want none", n)
	}
	// Two replicas race over the rest, one report each in turn.
	var wg sync.WaitGroup
	for r, s := range []*Store{a, b} {
		wg.Go(func() {
			for i := 12 + r; i < len(reps); i += 2 {
				write(s, reps[i:i+1])
			}
		})
	}
	wg.Wait()
	got, err := a.Track(ctx, store.TrackQuery{TenantID: "acme", DroneID: "d1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(reps)-10+1 {
		t.Errorf("%d history points; want %d (each written once)", len(got), len(reps)-10+1)
	}
	st, err := a.LatestState(ctx, "acme", "d1")
	if err != nil || !st.TS.Equal(reps[len(reps)-1].TS) {
		t.Errorf("state of %v (%v); want the newest report's %v", st.TS, err, reps[len(reps)-1].TS)
	}
	t.Logf("racing replicas: transactions begun %d and %d of %d writes each", ctrA.rpcs["BeginTransaction"],
		ctrB.rpcs["BeginTransaction"], (len(reps)-12)/2)
}

// A late report's replay (flightupdate's second pass: UpdateFlights with
// ReplaceFrom) takes no lock either: a transaction's flights query locks
// other drones' flights on the emulator, and a killed replica's lock stays
// until Firestore drops it. Two replicas replaying one drone's late
// reports at once leave the flights a single in-order pass makes.
func TestFlightReplaysTakeNoLocks(t *testing.T) {
	ctx := context.Background()
	a, b, ctrA, ctrB := twoReplicas(t, "d1", "d2")
	reps := storetest.FlightReports()
	now := reps[len(reps)-1].TS.Add(time.Minute)
	settings := flights.DefaultSettings()
	write := func(s *Store, drone string, batch []events.Report) flightupdate.Result {
		t.Helper()
		pts := make([]store.TrackPoint, len(batch))
		for i, r := range batch {
			pts[i] = store.TrackPoint{TenantID: "acme", DroneID: drone, Report: r}
		}
		pass := flightupdate.NewPass(settings, batch, time.Now())
		if _, _, err := s.WriteDrone(ctx, store.DroneWrite{TenantID: "acme", DroneID: drone, Points: pts,
			State:   func(prev *events.DroneState) (events.DroneState, bool) { return telemetry.Fold(prev, batch, now) },
			Flights: pass.Apply}); err != nil {
			t.Fatal(err)
		}
		res, err := pass.Finish(ctx, s, "acme", drone, now)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// d2, the reference: every report once, in order.
	for i := 0; i < len(reps); i += 10 {
		write(a, "d2", reps[i:min(i+10, len(reps))])
	}
	// d1: the flight without one report in ten, which come late.
	isLate := func(r events.Report) bool { return r.TS.Sub(reps[0].TS)%(10*time.Second) == 5*time.Second }
	var lates []events.Report
	for i := 0; i < len(reps); i += 10 {
		batch := slices.Clone(reps[i:min(i+10, len(reps))])
		lates = append(lates, batch[5])
		write(a, "d1", slices.DeleteFunc(batch, isLate))
	}
	ctrA.reset()
	if res := write(a, "d1", lates[len(lates)/2:len(lates)/2+1]); !res.Replayed {
		t.Fatalf("late report: %+v; want a replay", res)
	}
	if n := ctrA.rpcs["BeginTransaction"]; n != 0 {
		t.Errorf("a late report's write and replay began %d transactions; want none", n)
	}
	// The others reach both replicas at once, each replays.
	ctrA.reset()
	ctrB.reset()
	var wg sync.WaitGroup
	for r, s := range []*Store{a, b} {
		wg.Go(func() {
			for i := r; i < len(lates); i += 2 {
				if i != len(lates)/2 {
					write(s, "d1", lates[i:i+1])
				}
			}
		})
	}
	wg.Wait()
	t.Logf("racing replays: transactions begun %d and %d", ctrA.rpcs["BeginTransaction"], ctrB.rpcs["BeginTransaction"])
	list := func(drone string) []flights.Flight {
		t.Helper()
		fl, err := a.ListFlights(ctx, store.FlightQuery{TenantID: "acme", DroneID: drone,
			From: reps[0].TS.Add(-time.Hour), To: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		for i := range fl {
			fl[i].ID, fl[i].DroneID = "", "" // ids hash the drone
		}
		return fl
	}
	want := list("d2")
	if len(want) == 0 {
		t.Fatal("the reference drone has no flight: the test's reports do not fly")
	}
	if diff := cmp.Diff(want, list("d1")); diff != "" {
		t.Errorf("flights after late reports and racing replays differ from one in-order pass (-want +got):\n%s", diff)
	}
}
