package function

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/bolt"
	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/events"
)

// TestFunctionLifecycle runs the func-go contract: 503 before Start, events
// processed after it, and Stop writing the coalesced state still pending
// before it closes the store (the file reopens with the state in it).
func TestFunctionLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	seed, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := seed.CreateTenant(ctx, store.Tenant{ID: "t1", Name: "T1"}); err != nil {
		t.Fatal(err)
	}
	if err := seed.CreateDrone(ctx, store.Drone{ID: "d1", TenantID: "t1", Name: "d1", KeyHash: "h-d1"}); err != nil {
		t.Fatal(err)
	}
	seed.Close()

	f := New()
	srv := httptest.NewServer(http.HandlerFunc(f.Handle))
	defer srv.Close()
	send := func(r events.Report) int {
		t.Helper()
		ev, err := events.NewTelemetryReceived(received("d1", r))
		if err != nil {
			t.Fatal(err)
		}
		return testenv.PostEvent(t, srv.URL+"/", ev).StatusCode
	}

	if code := send(rep(0, 1, 1, 50)); code != http.StatusServiceUnavailable {
		t.Errorf("before Start: %d, want 503", code)
	}
	if ready, _ := f.Ready(ctx); ready {
		t.Error("ready before Start")
	}
	for _, bad := range []map[string]string{
		{},
		{EnvStoreURL: "bolt://" + path, EnvStateInterval: "soon"},
		{EnvStoreURL: "nosuch://x"},
		{EnvStoreURL: "bolt://" + path, EnvStoreTimeout: "0s"},
		// A state write may wait out the interval: a store timeout not
		// longer than it would time out every busy drone.
		{EnvStoreURL: "bolt://" + path, EnvStateInterval: "5s", EnvStoreTimeout: "5s"},
		{EnvStoreURL: "bolt://" + path, EnvStateInterval: "1h"},
	} {
		if err := New().Start(ctx, bad); err == nil {
			t.Errorf("Start(%v) succeeded, want a config error", bad)
		}
	}
	if err := f.Start(ctx, map[string]string{EnvStoreURL: "bolt://" + path, EnvStateInterval: "1h", EnvStoreTimeout: "2h"}); err != nil {
		t.Fatal(err)
	}
	if ready, _ := f.Ready(ctx); !ready {
		t.Error("not ready after Start")
	}
	if code := send(rep(0, 1, 1, 50)); code != http.StatusOK {
		t.Fatalf("first report after Start: %d, want 200", code)
	}
	// The second update lands within the (1 h) interval: parked until Stop.
	parked := make(chan int, 1)
	go func() { parked <- send(rep(1, 2, 2, 49)) }()
	h := f.handler.Load()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		h.states.mu.Lock()
		n := 0
		for _, p := range h.states.drones {
			n += len(p.waiters)
		}
		h.states.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("second update never reached the coalescer")
		}
	}
	if err := f.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if code := <-parked; code != http.StatusOK {
		t.Errorf("parked update answered %d, want 200 after Stop's flush", code)
	}
	if code := send(rep(2, 3, 3, 48)); code != http.StatusServiceUnavailable {
		t.Errorf("after Stop: %d, want 503", code)
	}

	// Stop closed the store: the file opens again and holds the parked state.
	st, err := bolt.Open(path)
	if err != nil {
		t.Fatalf("store not closed by Stop: %v", err)
	}
	defer st.Close()
	got, err := st.LatestState(ctx, "t1", "d1")
	if err != nil || got.Lat != 2 || !got.TS.Equal(base.Add(time.Second)) {
		t.Errorf("state after Stop = lat %v at %v (%v), want the parked update (lat 2)", got.Lat, got.TS, err)
	}
	pts, err := st.Track(ctx, store.TrackQuery{TenantID: "t1", DroneID: "d1"})
	if err != nil || len(pts) != 2 {
		t.Errorf("history after Stop: %d points (%v), want 2", len(pts), err)
	}
}
