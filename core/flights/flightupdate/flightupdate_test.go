package flightupdate_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/flights"
	"github.com/dronetrack/dronetrack/core/flights/flightupdate"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/bolt"
	"github.com/dronetrack/dronetrack/events"
)

// BenchmarkUpdateBolt is flight detection's whole cost per report on one
// machine, fast path: one report per batch of a drone in flight, the
// detector read, applied and written back in a bbolt transaction (history
// is written by process before and not counted).
func BenchmarkUpdateBolt(b *testing.B) {
	b.Run("drones=1", func(b *testing.B) { benchUpdateBolt(b, 1) })
	// Many drones at once, as process flushes them: bbolt's group commit
	// shares one transaction and fsync between concurrent updates.
	b.Run("drones=64", func(b *testing.B) { benchUpdateBolt(b, 64) })
}

func benchUpdateBolt(b *testing.B, drones int) {
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(b.TempDir(), "store.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateTenant(ctx, store.Tenant{ID: "t"}); err != nil {
		b.Fatal(err)
	}
	for d := range drones {
		id := fmt.Sprint("d", d)
		if err := st.CreateDrone(ctx, store.Drone{ID: id, TenantID: "t", KeyHash: "h" + id}); err != nil {
			b.Fatal(err)
		}
	}
	s := flights.DefaultSettings()
	t0 := time.Now().Add(-time.Hour)
	armed, h, v, batt, alt := true, 40.0, 8.0, 80.0, 520.0
	b.ReportAllocs()
	cpu0 := cpuTime()
	var next atomic.Int64
	var wg sync.WaitGroup
	for d := range drones {
		wg.Go(func() {
			id := fmt.Sprint("d", d)
			batch := make([]events.Report, 1)
			for i := 0; next.Add(1) <= int64(b.N); i++ {
				batch[0] = events.Report{TS: t0.Add(time.Duration(i) * time.Second), Lat: 47 + float64(i)*1e-5, Lon: 8,
					Armed: &armed, Height: &h, Speed: &v, Battery: &batt, Alt: &alt}
				res, err := flightupdate.Update(ctx, st, s, "t", id, batch, time.Now())
				if err != nil || res.Replayed {
					b.Errorf("update %s %d: %+v %v", id, i, res, err)
					return
				}
			}
		})
	}
	wg.Wait()
	// CPU (user + system, fsync included) per report: the figure the
	// pipeline's per-report budget counts, unlike the wall time above,
	// which is mostly waiting for the disk.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
