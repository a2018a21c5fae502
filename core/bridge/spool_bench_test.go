package bridge_test

import (
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/bridge"
	"github.com/dronetrack/dronetrack/events"
)

// BenchmarkSpoolAppend measures one committed (fsynced) transaction per
// position, the bridge's worst case (positions arriving one at a time), and
// per 50 positions (a burst taken in one transaction).
func BenchmarkSpoolAppend(b *testing.B) {
	for _, n := range []int{1, 50} {
		b.Run(map[int]string{1: "1-per-commit", 50: "50-per-commit"}[n], func(b *testing.B) {
			sp, err := bridge.OpenSpool(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer sp.Close()
			alt, speed := 100.0, 5.0
			reps := make([]events.Report, n)
			for i := range reps {
				reps[i] = events.Report{TS: time.Now(), Lat: 47, Lon: 8, Alt: &alt, Speed: &speed}
			}
			for b.Loop() {
				if err := sp.Append(reps...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "positions/s")
		})
	}
}
