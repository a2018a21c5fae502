package function_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/keys"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/storeurl"
	"github.com/dronetrack/dronetrack/events"
	function "github.com/dronetrack/dronetrack/functions/ingest"
)

// TestWithBoltStore runs the default Function (New, Start with STORE_URL)
// against a real embedded store: a drone registered there authenticates by
// its key, an unregistered key does not.
func TestWithBoltStore(t *testing.T) {
	ctx := context.Background()
	storeURL := "bolt://" + filepath.Join(t.TempDir(), "ingest.db")

	// Register a tenant and a drone the way the admin command will. The
	// shared-handle opener lets the function open the same file meanwhile.
	admin, err := storeurl.Open(ctx, storeURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	key, _ := keys.Generate()
	if err := admin.CreateTenant(ctx, store.Tenant{ID: "tenant-b", Name: "B", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateDrone(ctx, store.Drone{ID: "drone-b", TenantID: "tenant-b", Name: "Bravo",
		KeyHash: keys.Hash(pepper, key), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}

	s := &sink{}
	sinkSrv := httptest.NewServer(s)
	defer sinkSrv.Close()
	f := function.New()
	if err := f.Start(ctx, map[string]string{
		"STORE_URL": storeURL, "K_SINK": sinkSrv.URL, "DRONE_KEY_PEPPER": string(pepper), "LOG_LEVEL": "error",
	}); err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer f.Stop(ctx)
	srv := httptest.NewServer(http.HandlerFunc(f.Handle))
	defer srv.Close()

	post := func(key string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+function.PathTelemetry,
			strings.NewReader(`[{"ts":"`+nowRFC3339()+`","lat":47.1,"lon":8.5}]`))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(key); got != http.StatusAccepted {
		t.Fatalf("registered key: %d, want 202", got)
	}
	stranger, _ := keys.Generate()
	if got := post(stranger); got != http.StatusUnauthorized {
		t.Fatalf("unregistered key: %d, want 401", got)
	}
	evs := s.got()
	if len(evs) != 1 {
		t.Fatalf("sink got %d events, want 1", len(evs))
	}
	data, err := events.Decode[events.TelemetryReceived](evs[0], events.TypeTelemetryReceived)
	if err != nil {
		t.Fatal(err)
	}
	if data.DroneID != "drone-b" || data.TenantID != "tenant-b" {
		t.Errorf("event identity %s/%s, want tenant-b/drone-b from the store", data.TenantID, data.DroneID)
	}
}
