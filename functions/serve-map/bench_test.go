package function

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/store"
)

// BenchmarkHTTPFleet10k measures GET /api/v1/drones over loopback HTTP for a
// 10,000-drone tenant served from the cache (rendered list current).
func BenchmarkHTTPFleet10k(b *testing.B) {
	for _, mode := range []string{"redis", "local"} {
		b.Run(mode, func(b *testing.B) {
			cacheURL := "local://" + uniq("bench")
			if mode == "redis" {
				cacheURL = "redis://" + redisAddr(b) + "/0"
			}
			st := newTestStore(b)
			tenant := uniq("bench")
			for i := range 10_000 {
				s := state(i, 8+float64(i%1000)/1000, 47+float64(i/1000)/10)
				if err := st.CreateDrone(context.Background(), store.Drone{ID: fmt.Sprintf("drone-%05d", i), TenantID: tenant,
					Name: fmt.Sprintf("Drone %d", i), State: &s}); err != nil {
					b.Fatal(err)
				}
			}
			f := New()
			if err := f.start(context.Background(), map[string]string{"CACHE_URL": cacheURL,
				"LOG_LEVEL": "error"}, st); err != nil {
				b.Fatal(err)
			}
			defer f.Stop(context.Background())
			srv := newBenchServer(b, f, sessionCookie(b, st, tenant, store.RoleViewer))
			for _, q := range []string{"", "?bbox=8,47,9,47.1"} { // all, and 1,000 of them
				name := "all"
				if q != "" {
					name = "bbox1k"
				}
				b.Run(name, func(b *testing.B) {
					durs := make([]time.Duration, 0, b.N)
					for b.Loop() {
						start := time.Now()
						resp, err := http.Get(srv + "/api/v1/drones" + q)
						if err != nil {
							b.Fatal(err)
						}
						n, _ := io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 || n < 1000 {
							b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
						}
						durs = append(durs, time.Since(start))
					}
					slices.Sort(durs)
					b.ReportMetric(float64(durs[len(durs)/2].Microseconds())/1000, "p50-ms")
				})
			}
		})
	}
}

func newBenchServer(b *testing.B, f *Function, c *http.Cookie) string {
	b.Helper()
	srv := httptest.NewServer(withSession(c, http.HandlerFunc(f.Handle)))
	b.Cleanup(srv.Close)
	return srv.URL
}
