package function

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/storeurl"
	"github.com/dronetrack/dronetrack/core/testenv"
)

// A hung store (the Firestore emulator frozen with SIGSTOP: connections
// stay open and calls never answer) makes alerts answer 503 with
// Retry-After once STORE_TIMEOUT passes, for a state.updated delivery and
// for a link check, so the broker redelivers instead of waiting on a stuck
// delivery; after the thaw the same delivery is taken.
func TestFaultFrozenFirestoreAnswers503(t *testing.T) {
	project := testenv.NewProjectID(t)
	fs := testenv.StartFirestore(t, project)
	t.Setenv("FIRESTORE_EMULATOR_HOST", fs.Host())
	ctx := context.Background()
	seed, err := storeurl.Open(ctx, "firestore://"+project)
	if err != nil {
		t.Fatal(err)
	}
	if err := seed.CreateTenant(ctx, store.Tenant{ID: "acme", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	if err := seed.CreateDrone(ctx, store.Drone{ID: "d1", TenantID: "acme", Name: "d1", KeyHash: "h-d1"}); err != nil {
		t.Fatal(err)
	}
	seed.Close()

	sinkSrv := httptest.NewServer(&sink{})
	t.Cleanup(sinkSrv.Close)
	if err := New().Start(ctx, map[string]string{EnvStoreURL: "bolt://" + filepath.Join(t.TempDir(), "s.db"),
		EnvSink: sinkSrv.URL, EnvStoreTimeout: "soon"}); err == nil {
		t.Errorf("Start with %s=soon succeeded, want a config error", EnvStoreTimeout)
	}
	f := New()
	if err := f.Start(ctx, map[string]string{EnvStoreURL: "firestore://" + project, EnvSink: sinkSrv.URL,
		EnvStoreTimeout: "2s"}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(f.Handle))
	t.Cleanup(func() { srv.Close(); _ = f.Stop(ctx) })
	// The client allows minutes: the test sees what alerts answered, never
	// a client-side timeout.
	deliver := func(ev cloudevents.Event) (int, string) {
		t.Helper()
		resp := testenv.PostEvent(t, srv.URL+"/", ev)
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}

	if code, _ := deliver(droneStateEvent(t, "d1", 1, 10, 10, 80)); code != http.StatusAccepted {
		t.Fatalf("state 1 with the store up: %d, want 202", code)
	}
	fs.Freeze()
	stateCode, stateRetry := deliver(droneStateEvent(t, "d1", 2, 10, 10, 80))
	pingCode, pingRetry := deliver(pingEvent())
	fs.Thaw()
	if stateCode != http.StatusServiceUnavailable || stateRetry == "" {
		t.Errorf("state 2 with the store frozen: %d, Retry-After %q; want 503 with Retry-After", stateCode, stateRetry)
	}
	if pingCode != http.StatusServiceUnavailable || pingRetry == "" {
		t.Errorf("link check with the store frozen: %d, Retry-After %q; want 503 with Retry-After", pingCode, pingRetry)
	}
	code, n := testenv.Redeliver(t, "state 2 redelivered after the thaw", time.Minute, func() (int, http.Header) {
		resp := testenv.PostEvent(t, srv.URL+"/", droneStateEvent(t, "d1", 2, 10, 10, 80))
		return resp.StatusCode, resp.Header
	})
	if code != http.StatusAccepted {
		t.Errorf("state 2 redelivered after the thaw: %d, want 202", code)
	}
	t.Logf("state 2 taken at delivery %d after the thaw", n)
}
