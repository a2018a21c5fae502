package flightupdate_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
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

// flying is drone d of tenant t on a bolt store, armed and in flight, one
// report a second from an hour ago.
type flying struct {
	t  *testing.T
	st *bolt.Store
	s  flights.Settings
	t0 time.Time
}

func newFlying(t *testing.T) *flying {
	return &flying{t: t, st: openBolt(t, "d"), s: flights.DefaultSettings(), t0: time.Now().Add(-time.Hour).Truncate(time.Second)}
}

// rep is the drone's report at second i.
func (f *flying) rep(i int) events.Report {
	armed, h, v := true, 40.0, 8.0
	return events.Report{TS: f.t0.Add(time.Duration(i) * time.Second), Lat: 47 + float64(i)*1e-4, Lon: 8,
		Armed: &armed, Height: &h, Speed: &v}
}

// write writes report i as process does: history, then the detector's
// pass (a replay it owes is left owed).
func (f *flying) write(i int) *flightupdate.Pass {
	f.t.Helper()
	ctx := context.Background()
	if err := f.st.AppendTrack(ctx, []store.TrackPoint{{TenantID: "t", DroneID: "d", Report: f.rep(i)}}); err != nil {
		f.t.Fatal(err)
	}
	p := flightupdate.NewPass(f.s, []events.Report{f.rep(i)}, time.Now())
	if _, err := f.st.UpdateFlights(ctx, "t", "d", p.Apply); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// writeAll writes reports [0, n) but those skipped.
func (f *flying) writeAll(n int, skip ...int) {
	f.t.Helper()
	for i := range n {
		if !slices.Contains(skip, i) {
			f.write(i)
		}
	}
}

// flight is the drone's one flight.
func (f *flying) flight() flights.Flight {
	f.t.Helper()
	fl, err := f.st.ListFlights(context.Background(), store.FlightQuery{TenantID: "t", DroneID: "d",
		From: f.t0.Add(-time.Hour), To: f.t0.Add(time.Hour)})
	if err != nil || len(fl) != 1 {
		f.t.Fatalf("flights %+v, %v; want one", fl, err)
	}
	return fl[0]
}

// meddling is a store whose next history read is followed by before: a
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
// reads the newer reports, and the flights and detector hold every report.
func TestReplayReadsAgainOverAReportAppliedMeanwhile(t *testing.T) {
	f := newFlying(t)
	f.writeAll(20, 5)
	// Report 5 comes late; while its replay reads history, report 20 is
	// applied by another writer, which leaves the replay its drone owes to
	// the one running (as process does: it pays owed replays apart).
	if !f.write(5).NeedsReplay() {
		t.Fatal("report 5 came late and owes no replay")
	}
	m := &meddling{Store: f.st, before: func() {
		if f.write(20).NeedsReplay() != true {
			t.Error("report 20: the owed replay is no longer owed")
		}
	}}
	res, err := flightupdate.Replay(context.Background(), m, f.s, "t", "d", time.Now())
	if err != nil || !res.Replayed || res.Points != 21 {
		t.Errorf("late report: %+v, %v; want a replay over 21 points (read again after report 20)", res, err)
	}
	det, err := f.st.UpdateFlights(context.Background(), "t", "d", func(prev flights.Detector) (flights.Detector, flights.Changes, bool) {
		return prev, flights.Changes{}, false
	})
	if err != nil {
		t.Fatal(err)
	}
	if !det.Head.Equal(f.rep(20).TS) || det.Owed != nil {
		t.Errorf("detector head at %v, owing %+v; want report 20's %v and nothing owed (the replay wrote over it)",
			det.Head.Sub(f.t0), det.Owed, f.rep(20).TS.Sub(f.t0))
	}
	if n := f.flight().Points; n != 21 {
		t.Errorf("flight of %d points; want 21", n)
	}
}

// A late batch written while a replay runs (after its read of history)
// leaves the replay owed after it: the first replay cannot have read the
// late report, the second pays what is owed and puts it in the flight.
func TestReplayLeavesOwedALateBatchWrittenMeanwhile(t *testing.T) {
	ctx := context.Background()
	f := newFlying(t)
	f.writeAll(20, 5, 7)
	if !f.write(5).NeedsReplay() {
		t.Fatal("report 5 came late and owes no replay")
	}
	if n := f.flight().Points; n != 18 {
		t.Fatalf("before the replay the flight has %d points; want 18 (5 and 7 missing: late and not yet sent)", n)
	}
	m := &meddling{Store: f.st, before: func() { f.write(7) }}
	res, err := flightupdate.Replay(ctx, m, f.s, "t", "d", time.Now())
	if err != nil || !res.Replayed || !res.Owed || res.Points != 19 {
		t.Fatalf("replay with report 7 written after its read: %+v, %v; want 19 points read and a replay still owed", res, err)
	}
	if n := f.flight().Points; n != 19 {
		t.Errorf("after the first replay the flight has %d points; want 19 (7 missing)", n)
	}
	refs, err := f.st.OwedReplays(ctx, time.Now().Add(time.Second), 0)
	if err != nil || len(refs) != 1 || refs[0] != (store.DroneRef{TenantID: "t", DroneID: "d"}) {
		t.Fatalf("OwedReplays = %v, %v; want drone d", refs, err)
	}
	res, err = flightupdate.Replay(ctx, f.st, f.s, "t", "d", time.Now())
	if err != nil || !res.Replayed || res.Owed || res.Points != 20 {
		t.Fatalf("second replay: %+v, %v; want 20 points read and nothing owed", res, err)
	}
	if n := f.flight().Points; n != 20 {
		t.Errorf("after the second replay the flight has %d points; want 20", n)
	}
}

// A replay that finds, at its write, the debt paid by another replay since
// its read writes nothing and says so: it is not counted as a replay.
func TestReplayFindingTheDebtPaidIsNoReplay(t *testing.T) {
	ctx := context.Background()
	f := newFlying(t)
	f.writeAll(20, 5)
	if !f.write(5).NeedsReplay() {
		t.Fatal("report 5 came late and owes no replay")
	}
	var other flightupdate.Result
	m := &meddling{Store: f.st, before: func() {
		var err error
		if other, err = flightupdate.Replay(ctx, f.st, f.s, "t", "d", time.Now()); err != nil || !other.Replayed {
			t.Errorf("the other replay: %+v, %v; want it to pay the debt", other, err)
		}
	}}
	res, err := flightupdate.Replay(ctx, m, f.s, "t", "d", time.Now())
	if err != nil || res.Replayed || res.Owed {
		t.Errorf("replay finding the debt paid: %+v, %v; want no replay and nothing owed", res, err)
	}
	if n := f.flight().Points; n != 20 {
		t.Errorf("flight of %d points; want 20 (the other replay's)", n)
	}
}

// reporting is a store whose first n history reads are each followed by
// next: a drone reporting on while a replay runs.
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
	f := newFlying(t)
	f.writeAll(20, 5)
	f.write(5) // late: owes a replay
	next := 20
	r := &reporting{Store: f.st, n: 3, next: func() { f.write(next); next++ }}
	res, err := flightupdate.Replay(context.Background(), r, f.s, "t", "d", time.Now())
	if err != nil || res.Owed || res.Points != 23 {
		t.Fatalf("replay while the drone reported three times: %+v, %v; want 23 points read, nothing owed", res, err)
	}
	if len(r.reads) != 4 || !r.reads[1].After.Equal(f.rep(19).TS) || !r.reads[3].After.Equal(f.rep(21).TS) {
		t.Errorf("history reads %+v; want all of it, then each time what is newer than the last read", r.reads)
	}
	if n := f.flight().Points; n != 23 {
		t.Fatalf("flight of %d points; want 23", n)
	}
}

// A drone that reports after every read of history would keep a replay
// behind forever; with the drone's writes held for its last read and
// write (ReplayHolding, as process does), the replay lands on the third
// read and the held report is written after it.
func TestReplayHoldsTheDroneToCatchUp(t *testing.T) {
	ctx := context.Background()
	f := newFlying(t)
	f.writeAll(20, 5)
	f.write(5)
	next, held, queued := 20, false, []int{}
	r := &reporting{Store: f.st, n: 100, next: func() {
		if held {
			queued = append(queued, next) // the drone's batch waits for the hold
		} else {
			f.write(next)
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
			f.write(i)
		}
	}
	if _, err := flightupdate.Replay(ctx, r, f.s, "t", "d", time.Now()); err == nil {
		t.Fatal("without a hold the replay caught up with a drone reporting after every read")
	}
	r.reads, next = nil, 30
	for i := 25; i < 30; i++ {
		f.write(i) // reports 20-24 were the first replay's; the next come from 25
	}
	res, err := flightupdate.ReplayHolding(ctx, r, f.s, "t", "d", time.Now(), hold)
	if err != nil || res.Owed || holds != 1 || len(r.reads) != 3 {
		t.Fatalf("replay holding the drone: %+v, %v, %d holds, %d reads; want done on the third read within one hold", res, err, holds, len(r.reads))
	}
	if n := f.flight().Points; n != next {
		t.Fatalf("flight of %d points; want %d (the held report written after the replay)", n, next)
	}
}
