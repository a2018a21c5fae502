package function

import (
	"context"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/bolt"
	"github.com/dronetrack/dronetrack/events"
)

// separateWrites hides the bolt store's WriteDrone, so the handler writes
// history, state and flights apart, as on a store that is no DroneWriter.
type separateWrites struct{ Store }

// The handler stores the same history, state and flights, and answers the
// same, whether the store writes a batch together (bolt's WriteDrone) or
// apart: events shuffled, duplicated and for an unknown drone.
func TestTogetherWritesAsSeparate(t *testing.T) {
	together := newEnv(t, Options{}, "d1", "d2")
	apart := newEnvWith(t, Options{}, func(st *bolt.Store) Store { return separateWrites{st} }, "d1", "d2")
	if !together.h.together || apart.h.together {
		t.Fatal("the handlers do not take the two paths")
	}
	var evs []events.TelemetryReceived
	for s := range 90 {
		armed := s >= 5 && s < 80
		h, v := 0.0, 0.0
		if s >= 15 && s < 70 {
			h, v = 30, 6
		}
		for _, d := range []string{"d1", "d2"} {
			r := rep(s, 47+float64(s)*5e-5, 8, 100-float64(s)/3)
			r.Armed, r.Height, r.Speed = &armed, &h, &v
			evs = append(evs, received(d, r))
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range evs { // mostly in order, some late
		if j := i + rng.IntN(5); j < len(evs) {
			evs[i], evs[j] = evs[j], evs[i]
		}
	}
	evs = append(evs, evs[10], evs[40], received("ghost", rep(1, 1, 1, 50)))
	for i, ev := range evs {
		r1, su1 := together.post(t, ev)
		r2, su2 := apart.post(t, ev)
		if r1.StatusCode != r2.StatusCode || (su1 == nil) != (su2 == nil) {
			t.Fatalf("event %d (%s at %v): together %d %v, apart %d %v", i, ev.DroneID, ev.Reports[0].TS,
				r1.StatusCode, su1, r2.StatusCode, su2)
		}
		if su1 != nil && !su1.State.TS.Equal(su2.State.TS) {
			t.Fatalf("event %d: together announces %v, apart %v", i, su1.State.TS, su2.State.TS)
		}
		if r1.StatusCode != http.StatusOK && r1.StatusCode != http.StatusAccepted {
			t.Fatalf("event %d: %d", i, r1.StatusCode)
		}
	}
	ctx := context.Background()
	for _, d := range []string{"d1", "d2"} {
		if got, want := together.track(t, d), apart.track(t, d); len(got) != 90 || !cmp.Equal(got, want) {
			t.Errorf("%s history: together %d points, apart %d, want the same 90", d, len(got), len(want))
		}
		s1, err1 := together.st.LatestState(ctx, "t1", d)
		s2, err2 := apart.st.LatestState(ctx, "t1", d)
		if err1 != nil || err2 != nil || !s1.TS.Equal(base.Add(89*time.Second)) || !s1.TS.Equal(s2.TS) {
			t.Errorf("%s state: together %v %v, apart %v %v", d, s1.TS, err1, s2.TS, err2)
		}
		q := store.FlightQuery{TenantID: "t1", DroneID: d, From: base.Add(-time.Hour), To: base.Add(time.Hour)}
		f1, err1 := together.st.ListFlights(ctx, q)
		f2, err2 := apart.st.ListFlights(ctx, q)
		if err1 != nil || err2 != nil || len(f1) != 1 || !cmp.Equal(f1, f2) {
			t.Errorf("%s flights: together %+v %v, apart %+v %v, want the same one", d, f1, err1, f2, err2)
		}
	}
}
