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
	function "github.com/dronetrack/dronetrack/functions/ingest"
)

// TestRotatedAndRevokedKeysRejected: ingest caches a key's identity for
// KEY_CACHE_TTL (30 s by default), so a rotated, revoked or retired drone's
// old key keeps working at most that long and is refused after it; a new
// key works at once. The test uses a 200 ms TTL and checks the answer once
// the TTL has passed (no timing assertion: expiry is by the cache's clock).
func TestRotatedAndRevokedKeysRejected(t *testing.T) {
	ctx := context.Background()
	storeURL := "bolt://" + filepath.Join(t.TempDir(), "ingest.db")
	admin, err := storeurl.Open(ctx, storeURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.CreateTenant(ctx, store.Tenant{ID: "t", Name: "T", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	mk := func(id string) string {
		k, _ := keys.Generate()
		if err := admin.CreateDrone(ctx, store.Drone{ID: id, TenantID: "t", Name: id, KeyHash: keys.Hash(pepper, k), CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		return k
	}
	rotated, revoked, retired := mk("rotated"), mk("revoked"), mk("retired")

	const ttl = 200 * time.Millisecond
	s := &sink{}
	sinkSrv := httptest.NewServer(s)
	defer sinkSrv.Close()
	f := function.New()
	if err := f.Start(ctx, map[string]string{"STORE_URL": storeURL, "K_SINK": sinkSrv.URL,
		"DRONE_KEY_PEPPER": string(pepper), "LOG_LEVEL": "error", "KEY_CACHE_TTL": ttl.String()}); err != nil {
		t.Fatal(err)
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
	for _, k := range []string{rotated, revoked, retired} {
		if got := post(k); got != http.StatusAccepted { // now cached
			t.Fatalf("key before the change: %d", got)
		}
	}
	fresh, _ := keys.Generate()
	if err := admin.SetDroneKey(ctx, "t", "rotated", keys.Hash(pepper, fresh)); err != nil {
		t.Fatal(err)
	}
	if err := admin.SetDroneKey(ctx, "t", "revoked", ""); err != nil {
		t.Fatal(err)
	}
	if err := admin.RetireDrone(ctx, "t", "retired"); err != nil {
		t.Fatal(err)
	}
	if got := post(fresh); got != http.StatusAccepted {
		t.Errorf("the rotated-in key: %d, want 202 at once", got)
	}
	time.Sleep(ttl + 50*time.Millisecond)
	for name, k := range map[string]string{"rotated": rotated, "revoked": revoked, "retired": retired} {
		if got := post(k); got != http.StatusUnauthorized {
			t.Errorf("%s drone's old key after KEY_CACHE_TTL: %d, want 401", name, got)
		}
	}
	if got := post(fresh); got != http.StatusAccepted {
		t.Errorf("the rotated-in key later: %d, want 202", got)
	}
}
