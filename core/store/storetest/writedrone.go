package storetest

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/flights"
	"github.com/dronetrack/dronetrack/core/flights/flightupdate"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/telemetry"
	"github.com/dronetrack/dronetrack/events"
)

// RunDroneWriter is the contract of store.DroneWriter: WriteDrone leaves
// what the separate writes leave, and writes nothing for a drone that is not
// the tenant's. open returns a fresh, empty store that is a DroneWriter;
// the suite closes it. Subtests run in parallel.
func RunDroneWriter(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	opened := func(t *testing.T) store.Store {
		s := open(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		if _, ok := s.(store.DroneWriter); !ok {
			t.Fatalf("%T is not a store.DroneWriter", s)
		}
		return s
	}
	for name, fn := range map[string]func(*testing.T, func(*testing.T) store.Store){
		"MatchesSeparateWrites":        testWriteDroneMatchesSeparateWrites,
		"WritesNothingForAnotherDrone": testWriteDroneWritesNothingForAnotherDrone,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, opened)
		})
	}
}

// WithDrones gives s the tenants acme and other and acme's drones, and
// returns it.
func WithDrones(t *testing.T, s store.Store, drones ...string) store.Store {
	t.Helper()
	ctx := context.Background()
	for _, tenant := range []string{"acme", "other"} {
		if err := s.CreateTenant(ctx, store.Tenant{ID: tenant}); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range drones {
		if err := s.CreateDrone(ctx, store.Drone{ID: d, TenantID: "acme", Name: d, KeyHash: "h-" + d}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// FlightReports is two minutes of a drone taking off and landing, a flight
// for the flight detector; the backends' own WriteDrone tests use it too.
func FlightReports() []events.Report { return armedFlight() }

// WriteDrone leaves the store as AppendTrack, UpdateState and
// flightupdate.Update do, one after the other, for the same batches:
// shuffled, duplicated and redelivered, late reports replaying history.
func testWriteDroneMatchesSeparateWrites(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	reps := FlightReports()
	var batches [][]events.Report
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(reps); {
		n := 1 + rng.IntN(3)
		batches = append(batches, reps[i:min(i+n, len(reps))])
		i += n
	}
	for i := range batches { // near order, a few late
		if j := i + rng.IntN(3); j < len(batches) {
			batches[i], batches[j] = batches[j], batches[i]
		}
	}
	batches = append(batches, batches[3], batches[17]) // redeliveries
	now := reps[len(reps)-1].TS.Add(time.Minute)
	s := flights.DefaultSettings()

	sep, tog := WithDrones(t, open(t), "d1"), WithDrones(t, open(t), "d1")
	replays := 0
	for _, b := range batches {
		pts := make([]store.TrackPoint, len(b))
		for i, r := range b {
			pts[i] = store.TrackPoint{TenantID: "acme", DroneID: "d1", Report: r}
		}
		fold := func(prev *events.DroneState) (events.DroneState, bool) { return telemetry.Fold(prev, b, now) }

		if err := sep.AppendTrack(ctx, pts); err != nil {
			t.Fatal(err)
		}
		sepState, sepWrote, err := sep.UpdateState(ctx, "acme", "d1", fold)
		if err != nil {
			t.Fatal(err)
		}
		sepRes, err := flightupdate.Update(ctx, sep, s, "acme", "d1", b, now)
		if err != nil {
			t.Fatal(err)
		}

		pass := flightupdate.NewPass(s, b, time.Now())
		togState, togWrote, err := tog.(store.DroneWriter).WriteDrone(ctx, store.DroneWrite{TenantID: "acme", DroneID: "d1",
			Points: pts, State: fold, Flights: pass.Apply})
		if err != nil {
			t.Fatal(err)
		}
		togRes, err := pass.Finish(ctx, tog, "acme", "d1", now)
		if err != nil {
			t.Fatal(err)
		}
		if togRes.Replayed {
			replays++
		}
		if diff := cmp.Diff(sepState, togState); diff != "" || sepWrote != togWrote || sepRes != togRes {
			t.Fatalf("batch at %v: together differs from separate (wrote %v/%v, %+v/%+v):\n%s",
				b[0].TS, sepWrote, togWrote, sepRes, togRes, diff)
		}
	}
	if replays == 0 {
		t.Error("no batch replayed history: the late reports did not test that path")
	}
	q := store.TrackQuery{TenantID: "acme", DroneID: "d1", From: reps[0].TS.Add(-time.Hour)}
	sepTrack, err1 := sep.Track(ctx, q)
	togTrack, err2 := tog.Track(ctx, q)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if len(togTrack) != len(reps) {
		t.Errorf("history holds %d points, want %d", len(togTrack), len(reps))
	}
	if diff := cmp.Diff(sepTrack, togTrack); diff != "" {
		t.Errorf("history differs:\n%s", diff)
	}
	fq := store.FlightQuery{TenantID: "acme", DroneID: "d1", From: q.From, To: now.Add(time.Hour)}
	sepFl, err1 := sep.ListFlights(ctx, fq)
	togFl, err2 := tog.ListFlights(ctx, fq)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if len(togFl) != 1 {
		t.Errorf("%d flights, want 1: %+v", len(togFl), togFl)
	}
	if diff := cmp.Diff(sepFl, togFl); diff != "" {
		t.Errorf("flights differ:\n%s", diff)
	}
	sepLatest, err1 := sep.LatestState(ctx, "acme", "d1")
	togLatest, err2 := tog.LatestState(ctx, "acme", "d1")
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sepLatest, togLatest); diff != "" || !togLatest.TS.Equal(reps[len(reps)-1].TS) {
		t.Errorf("latest state differs or is not the newest report's:\n%s", diff)
	}
}

// A write for a drone that is missing or another tenant's is ErrNotFound
// and writes nothing, history included; so does one carrying another
// drone's point. Neither fails the writes running beside it (in bolt: sharing its group commit).
func testWriteDroneWritesNothingForAnotherDrone(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	st := WithDrones(t, open(t), "d1", "d2")
	rep := FlightReports()[0]
	write := func(tenant, drone string, pts ...store.TrackPoint) error {
		_, _, err := st.(store.DroneWriter).WriteDrone(ctx, store.DroneWrite{TenantID: tenant, DroneID: drone, Points: pts,
			State:   func(*events.DroneState) (events.DroneState, bool) { return events.DroneState{TS: rep.TS}, true },
			Flights: flightupdate.NewPass(flights.DefaultSettings(), []events.Report{rep}, time.Now()).Apply})
		return err
	}
	pt := func(tenant, drone string) store.TrackPoint {
		return store.TrackPoint{TenantID: tenant, DroneID: drone, Report: rep}
	}
	var wg sync.WaitGroup
	var errGhost, errOther, errMixed, errGood error
	wg.Go(func() { errGhost = write("acme", "ghost", pt("acme", "ghost")) })
	wg.Go(func() { errOther = write("other", "d1", pt("other", "d1")) })
	wg.Go(func() { errMixed = write("acme", "d1", pt("acme", "d1"), pt("acme", "d2")) })
	wg.Go(func() { errGood = write("acme", "d2", pt("acme", "d2")) })
	wg.Wait()
	if !errors.Is(errGhost, store.ErrNotFound) || !errors.Is(errOther, store.ErrNotFound) {
		t.Errorf("missing drone: %v; another tenant's: %v; want ErrNotFound", errGhost, errOther)
	}
	if errMixed == nil || errors.Is(errMixed, store.ErrNotFound) {
		t.Errorf("a point of another drone: %v, want a failure", errMixed)
	}
	if errGood != nil {
		t.Errorf("the good write: %v", errGood)
	}
	q := store.TrackQuery{TenantID: "acme", DroneID: "d1", From: rep.TS.Add(-time.Hour)}
	if pts, err := st.Track(ctx, q); err != nil || len(pts) != 0 {
		t.Errorf("d1's history after refused writes: %v %v, want none", pts, err)
	}
	if _, err := st.LatestState(ctx, "acme", "d1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("d1's state after refused writes: %v, want none", err)
	}
	q.DroneID = "d2"
	if pts, err := st.Track(ctx, q); err != nil || len(pts) != 1 {
		t.Errorf("d2's history: %v %v, want its one point", pts, err)
	}
	if _, err := st.Track(ctx, store.TrackQuery{TenantID: "other", DroneID: "d1", From: q.From}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("other tenant reads acme's drone: %v", err)
	}
}
