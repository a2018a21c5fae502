package cache_test

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/cache"
	"github.com/dronetrack/dronetrack/core/store"
)

// benchFleet fills a tenant with n drones through the store path; the first
// `inside` of them sit in box, the rest elsewhere.
func benchFleet(b *testing.B, url string, n, inside int, box cache.BBox) (*cache.Cache, string) {
	b.Helper()
	tenant := uniq("bench")
	l := newFakeLoader()
	rng := mrand.New(mrand.NewPCG(3, 4))
	for i := range n {
		lon, lat := -100+rng.Float64()*50, -40+rng.Float64()*30
		if i < inside {
			lon = box.MinLon + rng.Float64()*(box.MaxLon-box.MinLon)
			lat = box.MinLat + rng.Float64()*(box.MaxLat-box.MinLat)
		}
		st := state(i, lon, lat)
		st.Alt, st.Speed, st.Heading, st.GroundSpeed, st.Course = new(120.5), new(12.25), new(271.0), new(12.1), new(270.4)
		l.add(store.Drone{ID: fmt.Sprintf("drone-%05d", i), TenantID: tenant, Name: fmt.Sprintf("Drone %d", i), State: &st})
	}
	c := open(b, url, l)
	if _, err := c.Fleet(context.Background(), tenant); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Invalidate(context.Background(), tenant) })
	return c, tenant
}

// timed runs op b.N times and reports the median latency besides the mean.
func timed(b *testing.B, op func() int) {
	b.Helper()
	durs := make([]time.Duration, 0, b.N)
	bytes := 0
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		bytes = op()
		durs = append(durs, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(durs)
	b.ReportMetric(float64(durs[len(durs)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(bytes), "body-bytes")
}

var benchBox = cache.BBox{MinLon: 8, MinLat: 47, MaxLon: 9, MaxLat: 48}

func BenchmarkFleet10k(b *testing.B) { benchFleetRead(b, 10_000) }

func BenchmarkFleet1k(b *testing.B) { benchFleetRead(b, 1_000) }

// benchFleetRead reads a fleet of n drones from the cache, unchanged and
// after one drone moved.
func benchFleetRead(b *testing.B, n int) {
	for _, mode := range []string{"redis", "local"} {
		url := "local://" + uniq("bench")
		if mode == "redis" {
			url = "redis://" + redisAddr(b) + "/0"
		}
		ctx := context.Background()
		c, tenant := benchFleet(b, url, n, n/10, benchBox)
		// unchanged: the list version did not move; served from the rendered list.
		b.Run(mode+"/unchanged", func(b *testing.B) {
			timed(b, func() int {
				f, err := c.Fleet(ctx, tenant)
				if err != nil {
					b.Fatal(err)
				}
				return len(f.JSON)
			})
		})
		// changed: a drone moved before every read, so the list is rebuilt
		// from the cache backend (the put is outside the timing).
		b.Run(mode+"/changed", func(b *testing.B) {
			i := 0
			durs := make([]time.Duration, 0, b.N)
			for b.Loop() {
				b.StopTimer()
				i++
				if _, err := c.Put(ctx, tenant, "drone-00001", state(100_000+i, 8.5, 47.5)); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				if _, err := c.Fleet(ctx, tenant); err != nil {
					b.Fatal(err)
				}
				durs = append(durs, time.Since(start))
			}
			slices.Sort(durs)
			b.ReportMetric(float64(durs[len(durs)/2].Microseconds())/1000, "p50-ms")
		})
	}
}

func BenchmarkBBox1kOf10k(b *testing.B) {
	for _, mode := range []string{"redis", "local"} {
		url := "local://" + uniq("bench")
		if mode == "redis" {
			url = "redis://" + redisAddr(b) + "/0"
		}
		ctx := context.Background()
		c, tenant := benchFleet(b, url, 10_000, 1000, benchBox)
		b.Run(mode+"/unchanged", func(b *testing.B) {
			timed(b, func() int {
				f, err := c.FleetInBox(ctx, tenant, benchBox)
				if err != nil {
					b.Fatal(err)
				}
				return len(f.JSON)
			})
		})
		// changed: a drone moved before every read, so the query runs
		// against the geo index each time (the put is outside the timing).
		b.Run(mode+"/changed", func(b *testing.B) {
			i := 0
			durs := make([]time.Duration, 0, b.N)
			for b.Loop() {
				b.StopTimer()
				i++
				if _, err := c.Put(ctx, tenant, "drone-00001", state(100_000+i, 8.5, 47.5)); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				if _, err := c.FleetInBox(ctx, tenant, benchBox); err != nil {
					b.Fatal(err)
				}
				durs = append(durs, time.Since(start))
			}
			slices.Sort(durs)
			b.ReportMetric(float64(durs[len(durs)/2].Microseconds())/1000, "p50-ms")
		})
	}
}

func BenchmarkPut(b *testing.B) {
	for _, mode := range []string{"redis", "local"} {
		url := "local://" + uniq("bench")
		if mode == "redis" {
			url = "redis://" + redisAddr(b) + "/0"
		}
		c := open(b, url, nil)
		tenant := uniq("bench")
		b.Run(mode, func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				if _, err := c.Put(context.Background(), tenant, fmt.Sprintf("d%d", i%1000), state(i, 8.5, 47.5)); err != nil {
					b.Fatal(err)
				}
			}
		})
		_ = c.Invalidate(context.Background(), tenant)
	}
}
