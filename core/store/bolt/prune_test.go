package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
	"github.com/google/go-cmp/cmp"
	bbolt "go.etcd.io/bbolt"
)

var t0 = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// clock is a settable now for a store under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time)     { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }
func (c *clock) add(d time.Duration) { c.set(c.now().Add(d)) }

// openTest opens a store without the background sweeper (tests sweep with
// Prune) on a settable clock starting at t0.
func openTest(t testing.TB, path string, opts ...Option) (*Store, *clock) {
	t.Helper()
	s, err := Open(path, append([]Option{WithPruneEvery(0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c := &clock{t: t0}
	s.now = c.now
	return s, c
}

func setup(t testing.TB, s *Store, drones map[string]string) {
	t.Helper()
	ctx := context.Background()
	tenants := map[string]bool{}
	for d, tn := range drones {
		if !tenants[tn] {
			tenants[tn] = true
			if err := s.CreateTenant(ctx, store.Tenant{ID: tn}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CreateDrone(ctx, store.Drone{ID: d, TenantID: tn, KeyHash: "k-" + d}); err != nil {
			t.Fatal(err)
		}
	}
}

func pt(tenant, drone string, ts, expireAt time.Time) store.TrackPoint {
	return store.TrackPoint{TenantID: tenant, DroneID: drone, ExpireAt: expireAt,
		Report: events.Report{TS: ts, Lat: 52.5, Lon: 13.4}}
}

// stored counts what is physically in the file (not what reads show):
// track points per drone and expiry index entries.
func stored(t testing.TB, s *Store) (points map[string]int, index int) {
	t.Helper()
	points = map[string]int{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		track := tx.Bucket(bucketTrack)
		if err := track.ForEach(func(k, _ []byte) error {
			points[string(k)] = track.Bucket(k).Stats().KeyN
			return nil
		}); err != nil {
			return err
		}
		// and the drones' history tails beside their documents
		if err := tx.Bucket(bucketDrones).ForEach(func(k, v []byte) error {
			if id, ok := bytes.CutSuffix(k, []byte(adjunctHistory)); ok {
				entries, err := parseTail(v)
				if err != nil {
					return err
				}
				points[string(id)] += len(entries)
			}
			return nil
		}); err != nil {
			return err
		}
		index = tx.Bucket(bucketTrackExpiry).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return points, index
}

func mustPrune(t testing.TB, s *Store) PruneStats {
	t.Helper()
	st, err := s.Prune(context.Background())
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	return st
}

func TestPruneDeletesExpiredAcrossTenantsAndDrones(t *testing.T) {
	ctx := context.Background()
	s, clk := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	setup(t, s, map[string]string{"d1": "a", "d2": "a", "d3": "b"})
	var pts []store.TrackPoint
	for i := range 10 {
		ts := t0.Add(time.Duration(i) * time.Second)
		pts = append(pts,
			pt("a", "d1", ts, ts.Add(time.Hour)),   // expire over [1h, 1h9s]
			pt("a", "d2", ts, ts.Add(2*time.Hour)), // expire later
			pt("b", "d3", ts, ts.Add(time.Hour)),
		)
	}
	pts = append(pts, pt("b", "d3", t0.Add(time.Minute), time.Time{})) // never expires
	if err := s.AppendTrack(ctx, pts); err != nil {
		t.Fatal(err)
	}
	// A point rewritten with a later expiry must survive its first expiry,
	// and one rewritten to expire sooner must go at its new one.
	if err := s.AppendTrack(ctx, []store.TrackPoint{
		pt("a", "d1", t0, t0.Add(3*time.Hour)),
		pt("a", "d2", t0, t0.Add(time.Hour)),
	}); err != nil {
		t.Fatal(err)
	}

	if st := mustPrune(t, s); st.Deleted != 0 {
		t.Fatalf("Prune before any expiry deleted %d points", st.Deleted)
	}
	// Due: d1 and d3 points 0..4 (ExpireAt <= now is expired, as for reads),
	// except d1's rewritten point 0; plus d2's rewritten point 0.
	clk.set(t0.Add(time.Hour + 4*time.Second))
	if st := mustPrune(t, s); st.Deleted != 4+5+1 {
		t.Errorf("Prune deleted %d points, want 10", st.Deleted)
	}
	points, index := stored(t, s)
	if diff := cmp.Diff(map[string]int{"d1": 6, "d2": 9, "d3": 6}, points); diff != "" {
		t.Errorf("points left in the file (-want +got):\n%s", diff)
	}
	if index != 6+9+5 { // d3's point without expiry is not indexed
		t.Errorf("index entries = %d, want 20", index)
	}
	got, err := s.Track(ctx, store.TrackQuery{TenantID: "a", DroneID: "d1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Time{t0}
	for i := 5; i < 10; i++ {
		want = append(want, t0.Add(time.Duration(i)*time.Second))
	}
	if diff := cmp.Diff(want, reportTimes(got)); diff != "" {
		t.Errorf("d1 history after pruning (-want +got):\n%s", diff)
	}

	clk.set(t0.Add(10 * time.Hour))
	if st := mustPrune(t, s); st.Deleted != 20 {
		t.Errorf("final Prune deleted %d points, want 20", st.Deleted)
	}
	points, index = stored(t, s)
	if diff := cmp.Diff(map[string]int{"d1": 0, "d2": 0, "d3": 1}, points); diff != "" || index != 0 {
		t.Errorf("after everything expired: points (-want +got):\n%s\nindex entries %d, want 0", diff, index)
	}
}

func reportTimes(pts []store.TrackPoint) []time.Time {
	var out []time.Time
	for _, p := range pts {
		out = append(out, p.Report.TS.UTC())
	}
	return out
}

func TestPruneInBatches(t *testing.T) {
	ctx := context.Background()
	s, clk := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	s.cfg.pruneBatch = 7
	setup(t, s, map[string]string{"d": "a"})
	var pts []store.TrackPoint
	for i := range 50 {
		ts := t0.Add(time.Duration(i) * time.Second)
		pts = append(pts, pt("a", "d", ts, ts.Add(time.Hour)))
	}
	if err := s.AppendTrack(ctx, pts); err != nil {
		t.Fatal(err)
	}
	clk.set(t0.Add(time.Hour + 29*time.Second)) // 30 due
	st := mustPrune(t, s)
	if st.Deleted != 30 || st.Batches != 5 {
		t.Errorf("Prune = %+v, want 30 deleted in 5 batches of at most 7", st)
	}
	if points, _ := stored(t, s); points["d"] != 20 {
		t.Errorf("%d points left, want 20", points["d"])
	}
}

func TestIdlePruneWritesNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	setup(t, s, map[string]string{"d": "a"})
	var pts []store.TrackPoint
	for i := range 1000 {
		ts := t0.Add(time.Duration(i) * time.Second)
		pts = append(pts, pt("a", "d", ts, ts.Add(time.Hour)))
	}
	if err := s.AppendTrack(ctx, pts); err != nil {
		t.Fatal(err)
	}
	before := s.db.Stats()
	st := mustPrune(t, s)
	after := s.db.Stats()
	if st != (PruneStats{}) {
		t.Errorf("idle Prune = %+v, want nothing done", st)
	}
	// Nothing due costs a read transaction or two and no page write: the
	// writer lock, which ingest needs, is never taken.
	if w := after.TxStats.GetWrite() - before.TxStats.GetWrite(); w != 0 {
		t.Errorf("idle Prune wrote %d pages", w)
	}
	if n := after.TxN - before.TxN; n > 2 {
		t.Errorf("idle Prune used %d read transactions, want at most 2", n)
	}
}

// TestFileStopsGrowing writes and expires the same volume of history over
// and over: once expired points are deleted, bbolt reuses their pages and
// the file size settles.
func TestFileStopsGrowing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	s, clk := openTest(t, path)
	drones := map[string]string{}
	for i := range 5 {
		drones[fmt.Sprintf("d%d", i)] = "a"
	}
	setup(t, s, drones)
	const cycles, perCycle = 40, 5000
	sizes := make([]int64, cycles)
	ts := t0
	for c := range cycles {
		// One cycle: perCycle points that expire an hour after their time,
		// then two hours pass and the sweeper runs.
		for batch := 0; batch < perCycle; batch += 500 {
			pts := make([]store.TrackPoint, 0, 500)
			for i := range 500 {
				ts = ts.Add(time.Millisecond)
				pts = append(pts, pt("a", fmt.Sprintf("d%d", i%5), ts, ts.Add(time.Hour)))
			}
			if err := s.AppendTrack(ctx, pts); err != nil {
				t.Fatal(err)
			}
		}
		clk.set(ts.Add(2 * time.Hour))
		if st := mustPrune(t, s); st.Deleted != perCycle {
			t.Fatalf("cycle %d: Prune deleted %d, want %d", c, st.Deleted, perCycle)
		}
		ts = clk.now()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		sizes[c] = fi.Size()
	}
	t.Logf("file size per cycle: %v", sizes)
	// Without pruning the file would hold every point: make sure the test
	// writes far more than the file holds, or it proves nothing.
	raw, _ := json.Marshal(pt("a", "d0", ts, ts))
	if written := int64(cycles * perCycle * len(raw)); written < 5*sizes[cycles-1] {
		t.Fatalf("test writes %d bytes of points, too little against a %d-byte file", written, sizes[cycles-1])
	}
	// The first cycles may grow the file while the free list fills up;
	// the last two thirds must not grow it at all.
	if grown := sizes[cycles-1] - sizes[cycles/3]; grown > 0 {
		t.Errorf("file grew by %d bytes between cycle %d and %d of identical write+expire cycles; sizes %v",
			grown, cycles/3, cycles-1, sizes)
	}
}

// TestWritesDuringPrune writes from several goroutines while a large sweep
// runs: the sweep gives the writer lock up between batches, and every write
// must succeed and be readable.
func TestWritesDuringPrune(t *testing.T) {
	ctx := context.Background()
	s, clk := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	setup(t, s, map[string]string{"old": "a", "w0": "a", "w1": "a", "w2": "a", "w3": "a"})
	const expired = 20000
	for batch := 0; batch < expired; batch += 1000 {
		pts := make([]store.TrackPoint, 0, 1000)
		for i := range 1000 {
			ts := t0.Add(time.Duration(batch+i) * time.Millisecond)
			pts = append(pts, pt("a", "old", ts, ts.Add(time.Hour)))
		}
		if err := s.AppendTrack(ctx, pts); err != nil {
			t.Fatal(err)
		}
	}
	clk.set(t0.Add(2 * time.Hour))

	var (
		wg       sync.WaitGroup
		pruneSt  PruneStats
		pruneErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		pruneSt, pruneErr = s.Prune(ctx)
	}()
	const writers, writes = 4, 50
	errs := make(chan error, writers*writes*2)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			drone := fmt.Sprintf("w%d", w)
			for i := range writes {
				ts := t0.Add(2*time.Hour + time.Duration(i)*time.Second)
				if err := s.AppendTrack(ctx, []store.TrackPoint{pt("a", drone, ts, ts.Add(time.Hour))}); err != nil {
					errs <- fmt.Errorf("AppendTrack %s #%d: %w", drone, i, err)
				}
				_, _, err := s.UpdateState(ctx, "a", drone, func(*events.DroneState) (events.DroneState, bool) {
					return events.DroneState{TS: ts, Lat: 1, Lon: 2}, true
				})
				if err != nil {
					errs <- fmt.Errorf("UpdateState %s #%d: %w", drone, i, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if pruneErr != nil || pruneSt.Deleted != expired {
		t.Fatalf("Prune during writes = %+v, %v; want %d deleted", pruneSt, pruneErr, expired)
	}
	for w := range writers {
		got, err := s.Track(ctx, store.TrackQuery{TenantID: "a", DroneID: fmt.Sprintf("w%d", w)})
		if err != nil || len(got) != writes {
			t.Errorf("w%d history after concurrent prune: %d points, %v; want %d", w, len(got), err, writes)
		}
	}
}

// TestPruneBackfillsOlderStore opens a file written before the expiry index
// existed: the sweeper indexes it in batches (resuming across them), deletes
// what already expired, and later sweeps use the index.
func TestPruneBackfillsOlderStore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	s, _ := openTest(t, path)
	setup(t, s, map[string]string{"d1": "a", "d2": "a", "d3": "b"})
	var pts []store.TrackPoint
	for i := range 40 {
		ts := t0.Add(time.Duration(i) * time.Second)
		for _, d := range []struct{ tenant, drone string }{{"a", "d1"}, {"a", "d2"}, {"b", "d3"}} {
			pts = append(pts, pt(d.tenant, d.drone, ts, ts.Add(time.Hour)))
		}
		pts = append(pts, pt("a", "d2", ts.Add(time.Millisecond), time.Time{}))
	}
	if err := s.AppendTrack(ctx, pts); err != nil {
		t.Fatal(err)
	}
	// Make it look like an older file: no index, no marker.
	dropExpiryIndex(t, s)
	s.Close()

	s, clk := openTest(t, path)
	// Batches of 13 end inside drones and at their edges. Points 0..9 of
	// d1, d2 and d3 have expired.
	s.cfg.pruneBatch = 13
	clk.set(t0.Add(time.Hour + 9*time.Second))
	st := mustPrune(t, s)
	if st.Deleted != 30 || st.Backfilled != 160 || st.Batches != 13 {
		t.Errorf("first Prune of an older store = %+v, want 30 deleted, 160 visited in 13 batches", st)
	}
	points, index := stored(t, s)
	if diff := cmp.Diff(map[string]int{"d1": 30, "d2": 70, "d3": 30}, points); diff != "" || index != 90 {
		t.Errorf("after backfill: points (-want +got):\n%s\nindex entries %d, want 90", diff, index)
	}
	// From now on the index finds due points without visiting the rest.
	clk.set(t0.Add(time.Hour + 19*time.Second))
	if st := mustPrune(t, s); st.Deleted != 30 || st.Backfilled != 0 {
		t.Errorf("second Prune = %+v, want 30 deleted, no backfill", st)
	}
	// A reopen keeps the marker: no second backfill.
	s.Close()
	s, clk = openTest(t, path)
	clk.set(t0.Add(10 * time.Hour))
	if st := mustPrune(t, s); st.Deleted != 60 || st.Backfilled != 0 {
		t.Errorf("Prune after reopen = %+v, want the last 60 deleted through the index", st)
	}
	got, err := s.Track(ctx, store.TrackQuery{TenantID: "a", DroneID: "d2"})
	if err != nil || len(got) != 40 {
		t.Errorf("d2's points without expiry: %d, %v; want all 40 kept", len(got), err)
	}
}

// TestBackgroundSweeper checks that Open starts the sweeper and Close
// stops it.
func TestBackgroundSweeper(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "s.db"), WithPruneEvery(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	setup(t, s, map[string]string{"d": "a"})
	past := time.Now().Add(-time.Hour)
	var pts []store.TrackPoint
	for i := range 100 {
		ts := past.Add(time.Duration(i) * time.Millisecond)
		pts = append(pts, pt("a", "d", ts, ts.Add(time.Minute)))
	}
	if err := s.AppendTrack(ctx, pts); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if points, _ := stored(t, s); points["d"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background sweeper did not delete expired points within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close with the sweeper running: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// BenchmarkPrune measures one sweep batch (delete + commit with fsync)
// for several batch sizes; ms/batch is the time the sweeper holds bbolt's
// writer lock.
func BenchmarkPrune(b *testing.B) {
	for _, batch := range []int{250, 1000, 4000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s, clk := openTest(b, filepath.Join(b.TempDir(), "s.db"))
			s.cfg.pruneBatch = batch
			drones := map[string]string{}
			for i := range 50 {
				drones[fmt.Sprintf("d%02d", i)] = "a"
			}
			setup(b, s, drones)
			ctx := context.Background()
			total := b.N * batch
			ts := t0
			for n := 0; n < total; n += 1000 {
				pts := make([]store.TrackPoint, 0, 1000)
				for i := range min(1000, total-n) {
					// 50 drones at 1 Hz, as in the sizing of HISTORY_TTL.
					if i%50 == 0 {
						ts = ts.Add(time.Second)
					}
					pts = append(pts, pt("a", fmt.Sprintf("d%02d", i%50), ts, ts.Add(time.Hour)))
				}
				if err := s.AppendTrack(ctx, pts); err != nil {
					b.Fatal(err)
				}
			}
			clk.set(ts.Add(2 * time.Hour))
			b.ResetTimer()
			st := mustPrune(b, s)
			b.StopTimer()
			if st.Deleted != total {
				b.Fatalf("deleted %d, want %d", st.Deleted, total)
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(st.Batches), "ms/batch")
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "points/s")
		})
	}
}

// dropExpiryIndex makes s's file look like one of a release before the
// expiry index: no index, no marker (Prune backfills it).
func dropExpiryIndex(t *testing.T, s *Store) {
	t.Helper()
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(bucketTrackExpiry); err != nil {
			return err
		}
		return tx.DeleteBucket(bucketMeta)
	}); err != nil {
		t.Fatal(err)
	}
}
