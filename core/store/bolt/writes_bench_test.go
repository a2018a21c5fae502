package bolt_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/flights"
	"github.com/dronetrack/dronetrack/core/flights/flightupdate"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/bolt"
	"github.com/dronetrack/dronetrack/core/telemetry"
	"github.com/dronetrack/dronetrack/events"
)

// BenchmarkReportWrites is what the store costs per report in one-machine
// mode, as process writes it: one report per drone batch, 64 drones at
// once (their writes share group commits), each report's history point,
// latest state and flights. "separate" is AppendTrack, UpdateState and
// UpdateFlights one after the other (three group-commit calls, the
// Firestore path); "together" is WriteDrone (one call) and then, as the
// alerts function does with the state event each report brings,
// EvaluateAlerts (a second call): a report's whole store work. freelist=sync is
// bbolt's default of writing its freelist with every commit; gap is the
// time between group commits (fixed, or Open's adaptive gap). cpu-µs/op counts
// user and system time, fsyncs included; calls/commit is the mean group
// size.
func BenchmarkReportWrites(b *testing.B) {
	for _, c := range []struct {
		name                   string
		together, syncFreelist bool
		gap                    time.Duration
		pruned                 int
	}{
		{"separate/freelist=sync/gap=0", false, true, 0, 0}, // main before round 3
		{"together/freelist=sync/gap=0", true, true, 0, 0},
		{"together/freelist=nosync/gap=0", true, false, 0, 0},
		{"together/freelist=nosync/gap=2ms", true, false, 2 * time.Millisecond, 0},
		{"together/freelist=nosync/gap=adaptive", true, false, openGap, 0}, // Open's settings
		// A store that pruned history: its file has many free pages, so the
		// freelist bbolt writes with each commit by default is long.
		{"together/pruned/freelist=sync/gap=2ms", true, true, 2 * time.Millisecond, 200_000},
		{"together/pruned/freelist=nosync/gap=2ms", true, false, 2 * time.Millisecond, 200_000},
	} {
		b.Run(c.name, func(b *testing.B) {
			benchReportWrites(b, 64, 0, false, false, c.together, c.syncFreelist, c.gap, c.pruned)
		})
	}
	// A fleet the size of BenchmarkPipeline's at 2,500/s whose drones have
	// a history already (100 points each: a bucket of a branch page and
	// leaves, as a store that has run a while), with Open's settings.
	b.Run("together/fleet=2500/aged=100", func(b *testing.B) {
		benchReportWrites(b, 2500, 100, false, false, true, false, openGap, 0)
	})
	// The same with the kernel's fault-around on for the store file's
	// mapping, as before the store turned it off: each fault then maps the
	// cached pages around the one read too.
	b.Run("together-faultaround/fleet=2500/aged=100", func(b *testing.B) {
		benchReportWrites(b, 2500, 100, false, false, true, false, openGap, 0, bolt.WithFaultAround())
	})
	// The same fleet reporting at 1 Hz (2,500 reports/s, open loop: a
	// report is written when it is due, whatever the store's pace), with
	// the commit gap fixed at 2 ms and with Open's adaptive gap: how large
	// the groups get, and so what a report costs, depends on the gap only
	// when the writes come spread out like this.
	b.Run("paced/fleet=2500/aged=100/gap=2ms", func(b *testing.B) {
		benchReportWrites(b, 2500, 100, true, false, true, false, 2*time.Millisecond, 0)
	})
	b.Run("paced/fleet=2500/aged=100/gap=adaptive", func(b *testing.B) {
		benchReportWrites(b, 2500, 100, true, false, true, false, openGap, 0)
	})
	// Paced, the drones' reports due in an order unrelated to their ids (a
	// fleet whose drones started at random times, as `dronetrack load`'s):
	// a group commit then carries drones spread over the whole key space,
	// not neighbours sharing leaves, as in the cases above.
	b.Run("paced-spread/fleet=2500/aged=100/gap=adaptive", func(b *testing.B) {
		benchReportWrites(b, 2500, 100, true, true, true, false, openGap, 0)
	})
	b.Run("paced-spread/fleet=5000/aged=100/gap=adaptive", func(b *testing.B) {
		benchReportWrites(b, 5000, 100, true, true, true, false, openGap, 0)
	})
	b.Run("paced-faultaround/fleet=2500/aged=100/gap=adaptive", func(b *testing.B) {
		benchReportWrites(b, 2500, 100, true, false, true, false, openGap, 0, bolt.WithFaultAround())
	})
}

// openGap stands for Open's commit gap (adaptive) in benchReportWrites.
const openGap = time.Duration(-1)

func benchReportWrites(b *testing.B, drones, aged int, paced, spread, together, syncFreelist bool, gap time.Duration, pruned int, more ...bolt.Option) {
	ctx := context.Background()
	opts := append([]bolt.Option{bolt.WithPruneEvery(0)}, more...)
	if gap != openGap {
		opts = append(opts, bolt.WithCommitGap(gap))
	}
	if syncFreelist {
		opts = append(opts, bolt.WithFreelistSync())
	}
	st, err := bolt.Open(filepath.Join(b.TempDir(), "store.db"), opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateTenant(ctx, store.Tenant{ID: "t"}); err != nil {
		b.Fatal(err)
	}
	for d := range drones {
		id := fmt.Sprint("d", d)
		if err := st.CreateDrone(ctx, store.Drone{ID: id, TenantID: "t", Name: id, KeyHash: "h" + id}); err != nil {
			b.Fatal(err)
		}
	}
	s := flights.DefaultSettings()
	alertSettings := alerting.DefaultSettings()
	t0 := time.Now().Add(-time.Hour).UTC()
	for i := 0; i < pruned; i += 5000 {
		pts := make([]store.TrackPoint, 5000)
		for j := range pts {
			ts := t0.Add(-time.Duration(i+j) * time.Second)
			pts[j] = store.TrackPoint{TenantID: "t", DroneID: fmt.Sprint("d", j%drones), ExpireAt: ts,
				Report: events.Report{TS: ts, Lat: 47, Lon: 8}}
		}
		if err := st.AppendTrack(ctx, pts); err != nil {
			b.Fatal(err)
		}
	}
	if pruned > 0 {
		if _, err := st.Prune(ctx); err != nil {
			b.Fatal(err)
		}
	}
	for r := range aged {
		pts := make([]store.TrackPoint, drones)
		for d := range pts {
			ts := t0.Add(-time.Duration(aged-r) * time.Second)
			pts[d] = store.TrackPoint{TenantID: "t", DroneID: fmt.Sprint("d", d), ExpireAt: ts.Add(24 * time.Hour),
				Report: events.Report{TS: ts, Lat: 47, Lon: 8}}
		}
		if err := st.AppendTrack(ctx, pts); err != nil {
			b.Fatal(err)
		}
	}
	armed, h, v, batt, alt := true, 40.0, 8.0, 80.0, 520.0
	// write stores drone id's report i (at t0 + i s).
	write := func(id string, i int) error {
		rep := events.Report{TS: t0.Add(time.Duration(i) * time.Second), Lat: 47 + float64(i)*1e-5, Lon: 8,
			Armed: &armed, Height: &h, Speed: &v, Battery: &batt, Alt: &alt}
		reports := []events.Report{rep}
		pts := []store.TrackPoint{{TenantID: "t", DroneID: id, Report: rep, ExpireAt: rep.TS.Add(24 * time.Hour)}}
		now := time.Now()
		fold := func(prev *events.DroneState) (events.DroneState, bool) { return telemetry.Fold(prev, reports, now) }
		var err error
		if together {
			pass := flightupdate.NewPass(s, reports, time.Now())
			var cur events.DroneState
			if cur, _, err = st.WriteDrone(ctx, store.DroneWrite{TenantID: "t", DroneID: id, Points: pts,
				State: fold, Flights: pass.Apply}); err == nil {
				_, err = pass.Finish(ctx, st, "t", id, now)
			}
			if err == nil {
				_, err = st.EvaluateAlerts(ctx, "t", id, func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool) {
					return alerting.EvaluateState(prev, cur, alertSettings, nil, now)
				})
			}
		} else {
			if err = st.AppendTrack(ctx, pts); err == nil {
				if _, _, err = st.UpdateState(ctx, "t", id, fold); err == nil {
					_, err = flightupdate.Update(ctx, st, s, "t", id, reports, now)
				}
			}
		}
		return err
	}
	// An aged store has run a while: its drones have their flight
	// detector and alert tracker already.
	if aged > 0 && together {
		var wg sync.WaitGroup
		for d := range drones {
			wg.Go(func() {
				if err := write(fmt.Sprint("d", d), -1); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	// The timed writes run under the pprof label phase=timed, and so does
	// the group commit's writer goroutine, which the first of them starts
	// once the setup's has gone idle (it stops when nothing is pending):
	// `go tool pprof -tagfocus phase=timed` shows what the reports cost
	// the writer without the setup's history writes.
	time.Sleep(time.Second)
	timed := pprof.Labels("phase", "timed")
	b.ReportAllocs()
	commits0, calls0 := bolt.GroupStats(st)
	pages0 := bolt.PageBytes(st)
	cpu0, flt0 := cpuTime()
	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for d := range drones {
		wg.Go(func() {
			pprof.Do(ctx, timed, func(ctx context.Context) {
				id := fmt.Sprint("d", d)
				for i := 0; next.Add(1) <= int64(b.N); i++ {
					if paced { // drone d's report i is due at i s + phase/drones s
						phase := d
						if spread { // a permutation of 0..drones-1 (7919 is a prime dividing no fleet size here)
							phase = d * 7919 % drones
						}
						time.Sleep(time.Until(start.Add(time.Duration(i)*time.Second + time.Duration(phase)*time.Second/time.Duration(drones))))
					}
					err := write(id, i)
					if err != nil {
						b.Errorf("report %s %d: %v", id, i, err)
						return
					}
				}
			})
		})
	}
	wg.Wait()
	b.StopTimer()
	commits, calls := bolt.GroupStats(st)
	cpu, flt := cpuTime()
	b.ReportMetric(float64((cpu-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(flt-flt0)/float64(b.N), "minflt/op")
	b.ReportMetric(float64(calls-calls0)/float64(max(1, commits-commits0)), "calls/commit")
	b.ReportMetric(float64(b.N)/float64(max(1, commits-commits0)), "reports/commit")
	b.ReportMetric(float64(bolt.PageBytes(st)-pages0)/float64(b.N), "page-B/op")
}

// cpuTime is the process's user and system time so far, and its minor
// page faults (most of them first reads of the store file's pages through
// bbolt's mapping, after a trim or when bbolt moved a page).
func cpuTime() (time.Duration, int64) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ru.Minflt
}
