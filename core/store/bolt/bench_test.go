package bolt_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/bolt"
	"github.com/dronetrack/dronetrack/events"
)

// BenchmarkAppendTrack writes batches of 100 new points over 4 drones, the
// shape process flushes; points/s is the figure to compare with Firestore's
// BenchmarkAppendTrack. "parallel" runs one writer per GOMAXPROCS, where
// bbolt's Batch merges concurrent calls into one fsync.
func BenchmarkAppendTrack(b *testing.B) {
	for _, parallel := range []bool{false, true} {
		name := "serial"
		if parallel {
			name = "parallel"
		}
		b.Run(name, func(b *testing.B) {
			s, err := bolt.Open(filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			batch := func(n int) []store.TrackPoint {
				pts := make([]store.TrackPoint, 100)
				for j := range pts {
					ts := base.Add(time.Duration(n*100+j) * time.Millisecond)
					pts[j] = store.TrackPoint{TenantID: "t", DroneID: fmt.Sprintf("d%d", j%4),
						Report: events.Report{TS: ts, Lat: 1, Lon: 2}, ExpireAt: ts.Add(720 * time.Hour)}
				}
				return pts
			}
			b.ResetTimer()
			if !parallel {
				for i := 0; i < b.N; i++ {
					if err := s.AppendTrack(ctx, batch(i)); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				var seq atomicCounter
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := s.AppendTrack(ctx, batch(seq.next())); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "points/s")
		})
	}
}

type atomicCounter struct{ n atomic.Int64 }

func (c *atomicCounter) next() int { return int(c.n.Add(1)) }
