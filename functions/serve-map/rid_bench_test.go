package function

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/ridauth"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// BenchmarkRIDFlights10k measures GET /rid/v2/uss/flights over loopback
// HTTP (token checked, view parsed, geo index queried, flights mapped and
// encoded) for one Remote ID tenant of 10,000 fresh drones, with views of
// a 6.9 km diagonal (4.9 x 4.9 km, just under the 7 km limit) at random places, so most queries miss the
// rendered-list cache:
//   - spread: the fleet over ~67 x 68 km, ~55 drones per view;
//   - dense: the whole fleet inside 5 x 5 km, so every view holds thousands
//     (the worst case: a reply of several MB).
//
// It reports p50 and p99 in ms; the standard asks for p95 <= 1 s and p99 <= 3 s.
func BenchmarkRIDFlights10k(b *testing.B) {
	for _, mode := range []string{"redis", "local"} {
		for _, layout := range []struct {
			name             string
			spanLat, spanLng float64
		}{{"spread", 0.6, 0.9}, {"dense", 0.044, 0.064}} {
			b.Run(mode+"/"+layout.name, func(b *testing.B) {
				cacheURL := "local://" + uniq("bench")
				if mode == "redis" {
					cacheURL = "redis://" + redisAddr(b) + "/0"
				}
				ctx := context.Background()
				st := newTestStore(b)
				tenant := uniq("bench")
				if err := st.CreateTenant(ctx, store.Tenant{ID: tenant, Name: "bench", CreatedAt: time.Now()}); err != nil {
					b.Fatal(err)
				}
				if err := st.SetTenantRemoteID(ctx, tenant, true); err != nil {
					b.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(1, 2))
				now := time.Now().UTC()
				for i := range 10_000 {
					s := events.DroneState{TS: now, UpdatedAt: now, Lat: 47 + rng.Float64()*layout.spanLat,
						Lon: 8 + rng.Float64()*layout.spanLng, HAE: new(500.0), Height: new(40.0), Speed: new(8.0),
						Course: new(90.0), VSpeed: new(0.0), HAcc: new(3.0), VAcc: new(5.0), Armed: new(true)}
					if err := st.CreateDrone(ctx, store.Drone{ID: fmt.Sprintf("drone-%05d", i), TenantID: tenant,
						Name: fmt.Sprintf("Drone %d", i), State: &s}); err != nil {
						b.Fatal(err)
					}
				}
				auth, cfg := newRIDAuthority(b)
				cfg["CACHE_URL"], cfg["LOG_LEVEL"], cfg["RID_REFRESH"] = cacheURL, "error", "1s"
				f := New()
				if err := f.start(ctx, cfg, st); err != nil {
					b.Fatal(err)
				}
				defer f.Stop(ctx)
				// The server's clock stays a second after the states were
				// made, so a long run does not age them out of the 60 s
				// window (freshness is one comparison; the work is the same).
				f.srv.now = func() time.Time { return now.Add(time.Second) }
				srv := httptest.NewServer(http.HandlerFunc(f.Handle))
				defer srv.Close()
				tok, err := auth.Token(ridauth.ScopeDisplayProvider, ridAudience, "bench", time.Hour)
				if err != nil {
					b.Fatal(err)
				}
				views := make([]string, 1000)
				for i := range views {
					la := 47 + rng.Float64()*max(0, layout.spanLat-0.044)
					lo := 8 + rng.Float64()*max(0, layout.spanLng-0.064)
					views[i] = fmt.Sprintf("%.6f,%.6f,%.6f,%.6f", la, lo, la+0.044, lo+0.064)
				}
				client := &http.Client{Timeout: 30 * time.Second}
				get := func(view string) (int, int64) {
					req, _ := http.NewRequest(http.MethodGet, srv.URL+"/rid/v2/uss/flights?view="+view, nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					n, _ := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					return resp.StatusCode, n
				}
				if code, n := get(views[0]); code != 200 || n < 100 { // fills the cache from the store
					b.Fatalf("warm-up: %d, %d bytes", code, n)
				}
				durs := make([]time.Duration, 0, 4096)
				var bytes int64
				i := 0
				for b.Loop() {
					start := time.Now()
					code, n := get(views[i%len(views)])
					durs = append(durs, time.Since(start))
					if code != 200 {
						b.Fatalf("status %d", code)
					}
					bytes += n
					i++
				}
				slices.Sort(durs)
				b.ReportMetric(float64(durs[len(durs)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(durs[len(durs)*99/100].Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(bytes)/float64(len(durs))/1024, "KiB/reply")
			})
		}
	}
}
