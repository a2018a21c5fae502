package firestore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/events"
)

// replicas are two stores on one database, as two instances of the
// alerts function are, with tenant acme and its drone d1.
func replicas(t *testing.T) (*Store, *Store) {
	t.Helper()
	testenv.Firestore(t)
	ctx := context.Background()
	project := testenv.NewProjectID(t)
	var out [2]*Store
	for i := range out {
		s, err := Open(ctx, project, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out[i] = s
	}
	if err := out[0].CreateTenant(ctx, store.Tenant{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	if err := out[0].CreateDrone(ctx, store.Drone{ID: "d1", TenantID: "acme", KeyHash: "h-d1"}); err != nil {
		t.Fatal(err)
	}
	return out[0], out[1]
}

func batteryState(t0 time.Time, i int, battery float64) events.DroneState {
	at := t0.Add(time.Duration(i) * time.Second)
	return events.DroneState{TS: at, UpdatedAt: at, Lat: 47, Lon: 8, Battery: &battery}
}

// evaluate is alerts' evaluation of a state, as functions/alerts runs it.
func evaluate(ctx context.Context, s *Store, st events.DroneState, between func()) (alerting.Tracker, error) {
	return s.EvaluateAlerts(ctx, "acme", "d1", func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool) {
		if between != nil {
			between()
		}
		return alerting.EvaluateState(prev, st, alerting.DefaultSettings(), nil, st.UpdatedAt)
	})
}

// An evaluation that moves only the signs of life writes the tracker
// without a transaction, but only over what it read: another replica
// that opens an alert in between (here an older state evaluated late, by
// the other store, inside the first evaluation's read-to-write window)
// makes the write fail its precondition, and the evaluation runs again on
// top of that (read again, then, as it now closes an alert, in the
// transaction), closing the alert its newer state no longer supports. A blind write would have dropped the open alert from
// the tracker while its record stayed open.
func TestEvaluateAlertsLivenessWriteRefusedAfterAnotherReplica(t *testing.T) {
	ctx := context.Background()
	a, b := replicas(t)
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	if _, err := evaluate(ctx, a, batteryState(t0, 0, 80), nil); err != nil {
		t.Fatal(err)
	}
	calls := 0
	tr, err := evaluate(ctx, a, batteryState(t0, 2, 80), func() {
		calls++
		if calls > 1 {
			return
		}
		tb, err := evaluate(ctx, b, batteryState(t0, 1, 5), nil)
		if err != nil || len(tb.Open) != 1 {
			t.Errorf("the other replica's evaluation of the low battery: %v, open %v", err, tb.Open)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 3 {
		t.Errorf("the evaluation ran %d times, want 3 (read and refused write, read again, the transaction)", calls)
	}
	if !tr.LastTS.Equal(t0.Add(2*time.Second)) || len(tr.Open) != 0 {
		t.Errorf("tracker after both: last %v, open %v; want the newest state's, none open", tr.LastTS, tr.Open)
	}
	alerts, err := a.ListAlerts(ctx, "acme", t0.Add(-time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 1 || alerts[0].ClosedAt == nil || !alerts[0].ClosedAt.Equal(t0.Add(2*time.Second)) {
		t.Errorf("alerts: %+v; want the battery alert, closed by the newer state", alerts)
	}
}

// The first tracker of a drone is created, not set: two replicas creating
// it at once, one fails and evaluates again on top of the other's (read
// again; closing the other's alert takes the transaction: 3 calls).
func TestEvaluateAlertsFirstTrackerRace(t *testing.T) {
	ctx := context.Background()
	a, b := replicas(t)
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	calls := 0
	tr, err := evaluate(ctx, a, batteryState(t0, 2, 80), func() {
		calls++
		if calls > 1 {
			return
		}
		if _, err := evaluate(ctx, b, batteryState(t0, 1, 5), nil); err != nil {
			t.Error(err)
		}
	})
	if err != nil || calls != 3 || !tr.LastTS.Equal(t0.Add(2*time.Second)) || len(tr.Open) != 0 {
		t.Errorf("after the race: %v, %d calls, last %v, open %v", err, calls, tr.LastTS, tr.Open)
	}
}

// Two replicas evaluate every state of a drone (a broker redelivering to
// either), racing: the tracker ends at the newest state with the alerts it
// supports, and no record says otherwise.
func TestEvaluateAlertsReplicasRace(t *testing.T) {
	ctx := context.Background()
	a, b := replicas(t)
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	const n = 60
	states := make([]events.DroneState, n)
	for i := range states {
		battery := 80.0
		if (i/10)%2 == 1 {
			battery = 5 // low for ten states, fine for ten, ...
		}
		states[i] = batteryState(t0, i, battery)
	}
	var wg sync.WaitGroup
	for _, s := range []*Store{a, b} {
		wg.Go(func() {
			for _, st := range states {
				if _, err := evaluate(ctx, s, st, nil); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	tr, err := evaluate(ctx, a, states[n-1], nil) // changes nothing: reads the tracker
	if err != nil {
		t.Fatal(err)
	}
	if !tr.LastTS.Equal(states[n-1].TS) || len(tr.Open) != 1 {
		t.Fatalf("tracker: last %v, open %v; want the last state's, battery low open", tr.LastTS, tr.Open)
	}
	alerts, err := a.ListAlerts(ctx, "acme", t0.Add(-time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	open := 0
	for _, al := range alerts {
		if al.ClosedAt == nil {
			open++
			if want := tr.Open[alerting.Key(alerting.KindBatteryLow, "")]; al.ID != want.ID {
				t.Errorf("open record %s is not the tracker's %s", al.ID, want.ID)
			}
		}
	}
	if open != 1 || len(alerts) != 3 {
		t.Errorf("%d records, %d open; want 3 episodes, the last open", len(alerts), open)
	}
}
