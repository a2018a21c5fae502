package function

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/cache"
	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/events"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func redisAddr(t testing.TB) string { return testenv.Redis(t) }

func uniq(p string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return p + "-" + hex.EncodeToString(b)
}

func start(t *testing.T, cacheURL string) *httptest.Server {
	t.Helper()
	f := New()
	if err := f.Start(context.Background(), map[string]string{"CACHE_URL": cacheURL, "LOG_LEVEL": "error"}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(f.Handle))
	t.Cleanup(func() { srv.Close(); f.Stop(context.Background()) })
	return srv
}

var t0 = time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)

func stateEvent(t testing.TB, tenant, drone string, sec int, lat float64) cloudevents.Event {
	t.Helper()
	ts := t0.Add(time.Duration(sec) * time.Second)
	e, err := events.NewStateUpdated(events.StateUpdated{TenantID: tenant, DroneID: drone,
		State: events.DroneState{TS: ts, Lat: lat, Lon: 8.5, UpdatedAt: ts}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// send posts an event in binary content mode, as the broker does.
func send(t testing.TB, url string, e cloudevents.Event) int {
	t.Helper()
	return testenv.PostEvent(t, url, e).StatusCode
}

func cachedLat(t *testing.T, url, tenant, drone string) float64 {
	t.Helper()
	c, err := cache.Open(context.Background(), url, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, err := c.Drone(context.Background(), tenant, drone)
	if err != nil {
		t.Fatal(err)
	}
	var v cache.DroneView
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v.State.Lat
}

func TestStateUpdatedReachesCache(t *testing.T) {
	for _, mode := range []string{"redis", "local", "local-in-process"} {
		t.Run(mode, func(t *testing.T) {
			url := "local://" + uniq("cr")
			if mode == "redis" {
				url = "redis://" + redisAddr(t) + "/0"
			}
			srv := start(t, url)
			send := send
			if mode == "local-in-process" {
				// As `up` delivers: the event from the delivery, no HTTP
				// encoding (the function's handler behind the test server).
				send = func(t testing.TB, _ string, e cloudevents.Event) int {
					resp, _ := testenv.DeliverInProcess(t, srv.Config.Handler, "/", e)
					return resp.StatusCode
				}
			}
			tenant := uniq("tenant")
			c, err := cache.Open(context.Background(), url, cache.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sub, err := c.Subscribe(context.Background(), tenant)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			time.Sleep(100 * time.Millisecond) // SUBSCRIBE is asynchronous in Redis

			if got := send(t, srv.URL, stateEvent(t, tenant, "d1", 10, 47.1)); got != http.StatusNoContent {
				t.Fatalf("status = %d, want 204", got)
			}
			// A late event is handled (204) but does not overwrite.
			if got := send(t, srv.URL, stateEvent(t, tenant, "d1", 5, 10)); got != http.StatusNoContent {
				t.Fatalf("stale: status = %d, want 204", got)
			}
			if got := cachedLat(t, url, tenant, "d1"); got != 47.1 {
				t.Errorf("cached lat = %v, want 47.1 (the newer state)", got)
			}
			select {
			case n := <-sub.C:
				if n.DroneID != "d1" {
					t.Errorf("notice for %q, want d1", n.DroneID)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no notice published")
			}
			select {
			case n := <-sub.C:
				t.Errorf("stale event published a notice: %+v", n)
			case <-time.After(100 * time.Millisecond):
			}
		})
	}
}

func TestRejectsMalformed(t *testing.T) {
	srv := start(t, "local://"+uniq("cr"))
	tenant := uniq("tenant")
	wrongType := stateEvent(t, tenant, "d", 1, 1)
	wrongType.SetType(events.TypeTelemetryReceived)
	noDrone := stateEvent(t, tenant, "", 1, 1)
	badLat := stateEvent(t, tenant, "d", 1, 91)
	otherTenant := stateEvent(t, tenant, "d", 1, 1)
	otherTenant.SetExtension(events.ExtTenantID, "someone-else")
	badJSON := stateEvent(t, tenant, "d", 1, 1)
	_ = badJSON.SetData(cloudevents.ApplicationJSON, []byte(`{"tenantId":`))
	for name, e := range map[string]cloudevents.Event{
		"wrong type": wrongType, "no drone": noDrone, "lat 91": badLat,
		"tenant mismatch": otherTenant, "bad json": badJSON,
	} {
		if got := send(t, srv.URL, e); got != http.StatusBadRequest {
			t.Errorf("%s: status = %d, want 400", name, got)
		}
	}
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("plain JSON: status %d, type %q; want 400 problem", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestCacheDownIs503(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := start(t, "redis://"+addr+"/0")
	if got := send(t, srv.URL, stateEvent(t, "t", "d", 1, 1)); got != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503 so the broker redelivers", got)
	}
}

func TestUnstartedIs503(t *testing.T) {
	f := New()
	rec := httptest.NewRecorder()
	f.Handle(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503 before Start", rec.Code)
	}
}

// TestParallelSendersAllComplete guards the decoding path against the hang
// seen with sdk-go's receive handler under parallel senders.
func TestParallelSendersAllComplete(t *testing.T) {
	url := "redis://" + redisAddr(t) + "/0"
	srv := start(t, url)
	tenant := uniq("tenant")
	var wg sync.WaitGroup
	codes := make([]int, 32*20)
	for s := range 32 {
		wg.Go(func() {
			for i := range 20 {
				codes[s*20+i] = send(t, srv.URL, stateEvent(t, tenant, "d"+strings.Repeat("x", s%4), s*20+i, 1))
			}
		})
	}
	wg.Wait()
	want := make([]int, len(codes))
	for i := range want {
		want[i] = http.StatusNoContent
	}
	if diff := cmp.Diff(want, codes); diff != "" {
		t.Errorf("status codes (-want +got):\n%s", diff)
	}
}
