package function

import (
	"context"
	"io"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	dto "github.com/prometheus/client_model/go"

	"github.com/dronetrack/dronetrack/events"
)

// BenchmarkProcessReport: one single-report event per op through the real
// handler and a bolt store (temp dir), 32 deliveries in flight, drones spread
// so state coalescing never waits. Sub-benchmarks compare the history
// group commit's linger (BatchWait); points/flush is the mean batch size.
func BenchmarkProcessReport(b *testing.B) {
	for _, wait := range []time.Duration{0, 2 * time.Millisecond, 20 * time.Millisecond} {
		b.Run("wait="+wait.String(), func(b *testing.B) {
			drones := make([]string, 256)
			for i := range drones {
				drones[i] = "b" + string(rune('a'+i%26)) + string(rune('a'+i/26))
			}
			e := newEnv(b, Options{StateInterval: time.Nanosecond, BatchWait: wait}, drones...)
			var seq atomic.Int64
			// The broker keeps many deliveries in flight per trigger.
			b.SetParallelism(32)
			b.ResetTimer()
			cpu0 := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					ev, _ := events.NewTelemetryReceived(received(drones[i%len(drones)],
						events.Report{TS: base.Add(time.Duration(seq.Add(1)) * time.Millisecond), Lat: 1, Lon: 1}))
					req, _ := cehttp.NewHTTPRequestFromEvent(context.Background(), "/", ev)
					w := httptest.NewRecorder()
					e.h.ServeHTTP(w, req)
					if w.Code/100 != 2 {
						b.Errorf("status %d", w.Code)
					}
					io.Copy(io.Discard, w.Body)
				}
			})
			b.StopTimer()
			// CPU per report (user + system, this process): the pipeline's
			// per-report budget counts CPU, not the wall time above.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			var m dto.Metric
			if err := e.h.m.flushSize.Write(&m); err == nil && m.Histogram.GetSampleCount() > 0 {
				b.ReportMetric(m.Histogram.GetSampleSum()/float64(m.Histogram.GetSampleCount()), "points/flush")
			}
			// Parallel senders interleave a drone's reports: some arrive
			// after a newer one and make flight detection replay.
			var r dto.Metric
			if err := e.h.m.flightReplays.Write(&r); err == nil {
				b.ReportMetric(r.Counter.GetValue()/float64(b.N), "flight-replays/op")
			}
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
