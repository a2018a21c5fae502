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
	var ids []string
	for d := range drones {
		ids = append(ids, fmt.Sprint("d", d))
	}
	st := openBolt(b, ids...)
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

// openBolt is a bolt store with tenant t and its drones, closed at the end.
func openBolt(tb testing.TB, drones ...string) *bolt.Store {
	tb.Helper()
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(tb.TempDir(), "store.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	if err := st.CreateTenant(ctx, store.Tenant{ID: "t"}); err != nil {
		tb.Fatal(err)
	}
	for _, id := range drones {
		if err := st.CreateDrone(ctx, store.Drone{ID: id, TenantID: "t", KeyHash: "h" + id}); err != nil {
			tb.Fatal(err)
		}
	}
	return st
}

// meddling is a store whose next history read is preceded by before: a
// batch another writer commits between a replay's read and its write.
type meddling struct {
	*bolt.Store
	before func()
}

func (m *meddling) Track(ctx context.Context, q store.TrackQuery) ([]store.TrackPoint, error) {
	if f := m.before; f != nil {
		m.before = nil
		defer f() // after the read: the read misses what f writes
	}
	return m.Store.Track(ctx, q)
}

// A replay does not write over a report applied after it read history: it
// reads again, and the flights and detector hold every report.
func TestReplayReadsAgainOverAReportAppliedMeanwhile(t *testing.T) {
	ctx := context.Background()
	st := openBolt(t, "d")
	s := flights.DefaultSettings()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	armed, h, v := true, 40.0, 8.0
	rep := func(i int) events.Report {
		return events.Report{TS: t0.Add(time.Duration(i) * time.Second), Lat: 47 + float64(i)*1e-4, Lon: 8,
			Armed: &armed, Height: &h, Speed: &v}
	}
	deliver := func(st flightupdate.Store, w interface {
		AppendTrack(context.Context, []store.TrackPoint) error
	}, r events.Report) flightupdate.Result {
		t.Helper()
		if err := w.AppendTrack(ctx, []store.TrackPoint{{TenantID: "t", DroneID: "d", Report: r}}); err != nil {
			t.Fatal(err)
		}
		res, err := flightupdate.Update(ctx, st, s, "t", "d", []events.Report{r}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	for i := 0; i < 20; i++ {
		if i != 5 {
			deliver(st, st, rep(i))
		}
	}
	// Report 5 comes late; while its replay reads history, report 20 is
	// applied by another writer, which leaves the replay its drone owes to
	// the one running (as process does: it pays owed replays apart).
	m := &meddling{Store: st, before: func() {
		if err := st.AppendTrack(ctx, []store.TrackPoint{{TenantID: "t", DroneID: "d", Report: rep(20)}}); err != nil {
			t.Fatal(err)
		}
		p := flightupdate.NewPass(s, []events.Report{rep(20)}, time.Now())
		if _, err := st.UpdateFlights(ctx, "t", "d", p.Apply); err != nil || !p.NeedsReplay() {
			t.Fatalf("report 20: %v, needs replay %v; want the owed replay still owed", err, p.NeedsReplay())
		}
	}}
	res := deliver(m, st, rep(5))
	if !res.Replayed || res.Points != 21 {
		t.Errorf("late report: %+v; want a replay over 21 points (read again after report 20)", res)
	}
	det, err := st.UpdateFlights(ctx, "t", "d", func(prev flights.Detector) (flights.Detector, flights.Changes, bool) {
		return prev, flights.Changes{}, false
	})
	if err != nil {
		t.Fatal(err)
	}
	if !det.Head.Equal(rep(20).TS) {
		t.Errorf("detector head at %v; want report 20's %v (the replay wrote over it)", det.Head.Sub(t0), rep(20).TS.Sub(t0))
	}
	fl, err := st.ListFlights(ctx, store.FlightQuery{TenantID: "t", DroneID: "d", From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(fl) != 1 || fl[0].Points != 21 {
		t.Errorf("flights %+v; want one of 21 points", fl)
	}
}

// A late batch written while a replay runs (after its read of history)
// leaves the replay owed after it: the first replay cannot have read the
// late report, the second pays what is owed and puts it in the flight.
func TestReplayLeavesOwedALateBatchWrittenMeanwhile(t *testing.T) {
	ctx := context.Background()
	st := openBolt(t, "d")
	s := flights.DefaultSettings()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	armed, h, v := true, 40.0, 8.0
	rep := func(i int) events.Report {
		return events.Report{TS: t0.Add(time.Duration(i) * time.Second), Lat: 47 + float64(i)*1e-4, Lon: 8,
			Armed: &armed, Height: &h, Speed: &v}
	}
	write := func(i int) *flightupdate.Pass {
		t.Helper()
		if err := st.AppendTrack(ctx, []store.TrackPoint{{TenantID: "t", DroneID: "d", Report: rep(i)}}); err != nil {
			t.Fatal(err)
		}
		p := flightupdate.NewPass(s, []events.Report{rep(i)}, time.Now())
		if _, err := st.UpdateFlights(ctx, "t", "d", p.Apply); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for i := 0; i < 20; i++ {
		if i != 5 && i != 7 {
			write(i)
		}
	}
	if !write(5).NeedsReplay() {
		t.Fatal("report 5 came late and owes no replay")
	}
	points := func() int {
		t.Helper()
		fl, err := st.ListFlights(ctx, store.FlightQuery{TenantID: "t", DroneID: "d", From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
		if err != nil || len(fl) != 1 {
			t.Fatalf("flights %+v, %v; want one", fl, err)
		}
		return fl[0].Points
	}
	if n := points(); n != 18 {
		t.Fatalf("before the replay the flight has %d points; want 18 (5 and 7 missing: late and not yet sent)", n)
	}
	m := &meddling{Store: st, before: func() { write(7) }}
	res, err := flightupdate.Replay(ctx, m, s, "t", "d", time.Now())
	if err != nil || !res.Replayed || !res.Owed || res.Points != 19 {
		t.Fatalf("replay with report 7 written after its read: %+v, %v; want 19 points read and a replay still owed", res, err)
	}
	if n := points(); n != 19 {
		t.Errorf("after the first replay the flight has %d points; want 19 (7 missing)", n)
	}
	refs, err := st.OwedReplays(ctx, time.Now().Add(time.Second), 0)
	if err != nil || len(refs) != 1 || refs[0] != (store.DroneRef{TenantID: "t", DroneID: "d"}) {
		t.Fatalf("OwedReplays = %v, %v; want drone d", refs, err)
	}
	res, err = flightupdate.Replay(ctx, st, s, "t", "d", time.Now())
	if err != nil || !res.Replayed || res.Owed || res.Points != 20 {
		t.Fatalf("second replay: %+v, %v; want 20 points read and nothing owed", res, err)
	}
	if n := points(); n != 20 {
		t.Errorf("after the second replay the flight has %d points; want 20", n)
	}
}

// reporting is a store whose first n history reads are each followed by a
// newer report of the drone, written as process writes one (history, then
// the detector's fast path): a drone reporting on while a replay runs.
type reporting struct {
	*bolt.Store
	n     int
	reads []store.TrackQuery
	next  func()
}

func (r *reporting) Track(ctx context.Context, q store.TrackQuery) ([]store.TrackPoint, error) {
	r.reads = append(r.reads, q)
	if len(r.reads) <= r.n {
		defer r.next()
	}
	return r.Store.Track(ctx, q)
}

// A replay over a drone that goes on reporting while it reads catches up
// by reading only the newer reports, and writes a detector and flight that
// hold every report.
func TestReplayCatchesUpWithADroneReportingOn(t *testing.T) {
	ctx := context.Background()
	st := openBolt(t, "d")
	s := flights.DefaultSettings()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	armed, h, v := true, 40.0, 8.0
	rep := func(i int) events.Report {
		return events.Report{TS: t0.Add(time.Duration(i) * time.Second), Lat: 47 + float64(i)*1e-4, Lon: 8,
			Armed: &armed, Height: &h, Speed: &v}
	}
	write := func(i int) {
		t.Helper()
		if err := st.AppendTrack(ctx, []store.TrackPoint{{TenantID: "t", DroneID: "d", Report: rep(i)}}); err != nil {
			t.Fatal(err)
		}
		p := flightupdate.NewPass(s, []events.Report{rep(i)}, time.Now())
		if _, err := st.UpdateFlights(ctx, "t", "d", p.Apply); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 20; i++ {
		if i != 5 {
			write(i)
		}
	}
	write(5) // late: owes a replay
	next := 20
	r := &reporting{Store: st, n: 3, next: func() { write(next); next++ }}
	res, err := flightupdate.Replay(ctx, r, s, "t", "d", time.Now())
	if err != nil || res.Owed || res.Points != 23 {
		t.Fatalf("replay while the drone reported three times: %+v, %v; want 23 points read, nothing owed", res, err)
	}
	if len(r.reads) != 4 || !r.reads[1].After.Equal(rep(20-1).TS) || !r.reads[3].After.Equal(rep(21).TS) {
		t.Errorf("history reads %+v; want all of it, then each time what is newer than the last read", r.reads)
	}
	fl, err := st.ListFlights(ctx, store.FlightQuery{TenantID: "t", DroneID: "d", From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
	if err != nil || len(fl) != 1 || fl[0].Points != 23 {
		t.Fatalf("flights %+v, %v; want one of 23 points", fl, err)
	}
}

// A drone that reports after every read of history would keep a replay
// behind forever; with the drone's writes held for its last read and
// write (ReplayHolding, as process does), the replay lands on the third
// read and the held report is written after it.
func TestReplayHoldsTheDroneToCatchUp(t *testing.T) {
	ctx := context.Background()
	st := openBolt(t, "d")
	s := flights.DefaultSettings()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	armed, h, v := true, 40.0, 8.0
	rep := func(i int) events.Report {
		return events.Report{TS: t0.Add(time.Duration(i) * time.Second), Lat: 47 + float64(i)*1e-4, Lon: 8,
			Armed: &armed, Height: &h, Speed: &v}
	}
	write := func(i int) {
		t.Helper()
		if err := st.AppendTrack(ctx, []store.TrackPoint{{TenantID: "t", DroneID: "d", Report: rep(i)}}); err != nil {
			t.Fatal(err)
		}
		p := flightupdate.NewPass(s, []events.Report{rep(i)}, time.Now())
		if _, err := st.UpdateFlights(ctx, "t", "d", p.Apply); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 20; i++ {
		if i != 5 {
			write(i)
		}
	}
	write(5)
	next, held, queued := 20, false, []int{}
	r := &reporting{Store: st, n: 100, next: func() {
		if held {
			queued = append(queued, next) // the drone's batch waits for the hold
		} else {
			write(next)
		}
		next++
	}}
	holds := 0
	hold := func(fn func()) {
		holds++
		held = true
		fn()
		held = false
		for _, i := range queued {
			write(i)
		}
	}
	if _, err := flightupdate.Replay(ctx, r, s, "t", "d", time.Now()); err == nil {
		t.Fatal("without a hold the replay caught up with a drone reporting after every read")
	}
	r.reads, next = nil, 30
	for i := 25; i < 30; i++ {
		write(i) // reports 20-24 were the first replay's; the next come from 25
	}
	res, err := flightupdate.ReplayHolding(ctx, r, s, "t", "d", time.Now(), hold)
	if err != nil || res.Owed || holds != 1 || len(r.reads) != 3 {
		t.Fatalf("replay holding the drone: %+v, %v, %d holds, %d reads; want done on the third read within one hold", res, err, holds, len(r.reads))
	}
	fl, err := st.ListFlights(ctx, store.FlightQuery{TenantID: "t", DroneID: "d", From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
	if err != nil || len(fl) != 1 || fl[0].Points != next {
		t.Fatalf("flights %+v, %v; want one of %d points (the held report written after the replay)", fl, err, next)
	}
}
