package bolt_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/bolt"
	"github.com/dronetrack/dronetrack/events"
)

// evalState evaluates the drone's state at t0+sec with the given battery,
// as the alerts function does.
func evalState(t *testing.T, st *bolt.Store, t0 time.Time, sec int, battery float64) alerting.Tracker {
	t.Helper()
	ts := t0.Add(time.Duration(sec) * time.Second)
	state := events.DroneState{TS: ts, UpdatedAt: ts, Lat: 47, Lon: 8, Battery: &battery}
	tr, err := st.EvaluateAlerts(context.Background(), "acme", "d1",
		func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool) {
			return alerting.EvaluateState(prev, state, alerting.DefaultSettings(), nil, ts)
		})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func rawTracker(t *testing.T, st *bolt.Store) alerting.Tracker {
	t.Helper()
	tr, ok, err := bolt.RawTracker(st, "acme", "d1")
	if err != nil || !ok {
		t.Fatalf("stored tracker: found %v, %v", ok, err)
	}
	return tr
}

// A state that only moves the drone's signs of life on is held back and
// written with the others later (or at Close), while every reader sees it
// at once; one that raises an alert is written at once.
func TestTrackerLivenessHeldBack(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	st, err := bolt.Open(path, bolt.WithPruneEvery(0))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { st.Close() }()
	if err := st.CreateTenant(ctx, store.Tenant{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateDrone(ctx, store.Drone{ID: "d1", TenantID: "acme", Name: "d1"}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

	evalState(t, st, t0, 0, 80) // the drone's first tracker: written at once
	if got := rawTracker(t, st).LastTS; !got.Equal(at(0)) {
		t.Fatalf("first tracker stored with LastTS %v, want %v", got, at(0))
	}
	for sec := 1; sec <= 5; sec++ {
		if tr := evalState(t, st, t0, sec, 80); !tr.LastTS.Equal(at(sec)) {
			t.Fatalf("evaluation %d returned LastTS %v", sec, tr.LastTS)
		}
	}
	if got := rawTracker(t, st).LastTS; !got.Equal(at(0)) {
		t.Errorf("signs of life written at once (stored LastTS %v): not held back", got)
	}
	// Readers see the newest: the link check's scan, and the next evaluation.
	stale, err := st.StaleTrackers(ctx, at(3))
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) != 0 {
		t.Errorf("drone seen at +5s listed as not seen since +3s: %+v", stale)
	}
	if stale, _ = st.StaleTrackers(ctx, at(6)); len(stale) != 1 || !stale[0].LastSeen.Equal(at(5)) {
		t.Errorf("stale trackers before +6s: %+v, want d1 seen at +5s", stale)
	}
	// A redelivered older state changes nothing.
	if tr := evalState(t, st, t0, 2, 10); !tr.LastTS.Equal(at(5)) || len(tr.Open) != 0 {
		t.Errorf("an older state redelivered moved the tracker: LastTS %v, open %v", tr.LastTS, tr.Open)
	}

	// Battery low: raised and written at once, with the signs of life.
	tr := evalState(t, st, t0, 6, 10)
	raw := rawTracker(t, st)
	if len(tr.Open) != 1 || len(raw.Open) != 1 || !raw.LastTS.Equal(at(6)) {
		t.Fatalf("battery low: evaluated open %v, stored open %v at %v; want one open alert stored at %v", tr.Open, raw.Open, raw.LastTS, at(6))
	}
	alerts, err := st.ListAlerts(ctx, "acme", t0, 0)
	if err != nil || len(alerts) != 1 {
		t.Fatalf("alerts stored: %+v, %v; want the one raised", alerts, err)
	}

	evalState(t, st, t0, 7, 10) // still low, nothing new: held back
	if got := rawTracker(t, st).LastTS; !got.Equal(at(6)) {
		t.Errorf("stored LastTS %v after a state that changed nothing but liveness, want %v", got, at(6))
	}
	if err := bolt.FlushTrackers(st); err != nil {
		t.Fatal(err)
	}
	if got := rawTracker(t, st); !got.LastTS.Equal(at(7)) || len(got.Open) != 1 {
		t.Errorf("after the flush: stored LastTS %v with %d open, want %v with 1", got.LastTS, len(got.Open), at(7))
	}

	evalState(t, st, t0, 8, 10)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err = bolt.Open(path, bolt.WithPruneEvery(0)); err != nil {
		t.Fatal(err)
	}
	if got := rawTracker(t, st).LastTS; !got.Equal(at(8)) {
		t.Errorf("after Close and Open: stored LastTS %v, want %v (Close writes what it held back)", got, at(8))
	}
}

// Evaluations of one drone from many goroutines with flushes between them
// leave the newest state's time, and the stored tracker ends there too.
func TestTrackerLivenessConcurrent(t *testing.T) {
	st := openStore(t, "d1")
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	evalState(t, st, t0, 0, 80)
	var wg sync.WaitGroup
	const workers, each = 8, 50
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				evalState(t, st, t0, 1+i*workers+w, 80)
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if err := bolt.FlushTrackers(st); err != nil {
				t.Error(err)
			}
			time.Sleep(time.Millisecond)
		}
	})
	wg.Wait()
	want := t0.Add(workers * each * time.Second)
	if tr := evalState(t, st, t0, 0, 80); !tr.LastTS.Equal(want) {
		t.Errorf("newest LastTS %v after concurrent evaluations, want %v", tr.LastTS, want)
	}
	if err := bolt.FlushTrackers(st); err != nil {
		t.Fatal(err)
	}
	if got := rawTracker(t, st).LastTS; !got.Equal(want) {
		t.Errorf("stored LastTS %v after the last flush, want %v", got, want)
	}
}
