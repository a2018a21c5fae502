package function

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/testenv"
)

func TestRedisKilledMidTest(t *testing.T) {
	// A private redis-server on a free port, which this test kills.
	addr, stop := testenv.StartRedis(t)
	fx := newFixture(t, "redis://"+addr+"/0", nil)
	want := []string{fx.tenant + "-a", fx.tenant + "-b", fx.tenant + "-c"}
	check := func(stage, wantSource string) {
		t.Helper()
		r := get(t, fx.url+"/api/v1/drones")
		if r.status != http.StatusOK || r.header.Get(CacheHeader) != wantSource {
			t.Fatalf("%s: list %d from %q, want 200 from %q: %s", stage, r.status, r.header.Get(CacheHeader), wantSource, r.body)
		}
		if diff := cmp.Diff(want, ids(decode[droneList](t, r))); diff != "" {
			t.Errorf("%s: fleet (-want +got):\n%s", stage, diff)
		}
		d := get(t, fx.url+"/api/v1/drones/"+fx.tenant+"-a")
		if d.status != http.StatusOK || d.header.Get(CacheHeader) != wantSource {
			t.Fatalf("%s: detail %d from %q, want 200 from %q", stage, d.status, d.header.Get(CacheHeader), wantSource)
		}
		bb := get(t, fx.url+"/api/v1/drones?bbox=8.4,47.3,8.7,47.5")
		if diff := cmp.Diff([]string{fx.tenant + "-a"}, ids(decode[droneList](t, bb))); bb.status != 200 || diff != "" {
			t.Errorf("%s: bbox %d (-want +got):\n%s", stage, bb.status, diff)
		}
	}
	check("redis up", "cache")
	stream := openStream(t, fx.url+"/api/v1/stream")

	stop()
	check("redis killed", "bypass")
	check("redis still down", "bypass")

	// Redis returns (empty: it had no persistence); serve-map goes back to
	// the cache by itself and refills it from the store.
	testenv.RestartRedis(t, addr)
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := get(t, fx.url+"/api/v1/drones")
		if r.header.Get(CacheHeader) == "cache" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %q 30 s after Redis returned", r.header.Get(CacheHeader))
		}
		time.Sleep(50 * time.Millisecond)
	}
	check("redis back", "cache")

	// The live stream survived the outage: its subscription reconnected.
	deadline = time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		fx.put(t, fx.tenant+"-a", state(1000+i, 8.55, 47.45))
		select {
		case ev := <-stream:
			if ev.event != "drone" {
				t.Fatalf("event %+v", ev)
			}
			return
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no live update after Redis returned")
		}
	}
}
