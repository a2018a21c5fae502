package bolt

import (
	"context"
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/events"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	bbolt "go.etcd.io/bbolt"
)

// TestDiskFull fills the file system under a store: writes that need space
// fail with store.ErrUnavailable (ingest answers 503, the broker retries),
// reads keep working, and once space is freed writes succeed again and
// everything acknowledged before is intact after a reopen.
func TestDiskFull(t *testing.T) {
	ctx := context.Background()
	dir := testenv.SmallDisk(t, 4<<20)
	path := filepath.Join(dir, "store.db")
	// A mapping larger than the disk: bbolt never needs to remap, which it
	// could not do while the reader pinned below is open.
	bigMmap := func(c *config) { c.mmapSize = 64 << 20 }
	s, err := Open(path, WithPruneEvery(0), bigMmap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() }) // the reopened one too, before the unmount
	setup(t, s, map[string]string{"d": "a"})

	// What the store acknowledged; all of it must survive.
	var acked []store.TrackPoint
	appendPoints := func(from, n int) error {
		pts := make([]store.TrackPoint, n)
		for i := range pts {
			ts := t0.Add(time.Duration(from+i) * time.Second)
			pts[i] = pt("a", "d", ts, time.Time{})
		}
		err := s.AppendTrack(ctx, pts)
		if err == nil {
			acked = append(acked, pts...)
		}
		return err
	}
	var lastState events.DroneState
	setState := func(i int) error {
		st := events.DroneState{TS: t0.Add(time.Duration(i) * time.Second), Lat: 52, Lon: 13, DistanceM: float64(i)}
		_, _, err := s.UpdateState(ctx, "a", "d", func(*events.DroneState) (events.DroneState, bool) { return st, true })
		if err == nil {
			lastState = st
		}
		return err
	}
	if err := appendPoints(0, 1000); err != nil {
		t.Fatal(err)
	}
	if err := setState(1); err != nil {
		t.Fatal(err)
	}

	freeDisk, err := testenv.FillDisk(dir)
	if err != nil {
		t.Fatal(err)
	}

	// bbolt writes into pages freed by earlier commits before it grows the
	// file, so a small write can still succeed on a full disk, which is
	// fine. An open reader keeps freed pages from being reused (as a long
	// Track does), so the writes below must soon need new space.
	pin, err := s.db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	wantUnavailable := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("%s on a full disk: %v; want an error wrapping store.ErrUnavailable and ENOSPC", what, err)
		}
	}
	wantUnavailable("AppendTrack of 2000 points", appendPoints(1000, 2000))
	var (
		stateErr error
		i        = 2
	)
	for ; i < 2000 && stateErr == nil; i++ {
		stateErr = setState(i)
	}
	wantUnavailable("UpdateState", stateErr)
	t.Logf("disk full: %d state updates fitted in freed pages before one needed new space", i-3)
	if err := pin.Rollback(); err != nil {
		t.Fatal(err)
	}

	// Reads work on the full disk.
	checkReads := func(s *Store, when string) {
		t.Helper()
		got, err := s.Track(ctx, store.TrackQuery{TenantID: "a", DroneID: "d"})
		if err != nil {
			t.Fatalf("%s: Track: %v", when, err)
		}
		if diff := cmp.Diff(reportTimes(acked), reportTimes(got)); diff != "" {
			t.Errorf("%s: history is not what was acknowledged (-want +got):\n%s", when, diff)
		}
		st, err := s.LatestState(ctx, "a", "d")
		if err != nil {
			t.Fatalf("%s: LatestState: %v", when, err)
		}
		if diff := cmp.Diff(lastState, st, cmpopts.EquateApproxTime(0)); diff != "" {
			t.Errorf("%s: latest state is not the last acknowledged (-want +got):\n%s", when, diff)
		}
	}
	checkReads(s, "disk full")

	// Space comes back: writes succeed again.
	if err := freeDisk(); err != nil {
		t.Fatal(err)
	}
	if err := appendPoints(5000, 500); err != nil {
		t.Fatalf("AppendTrack after freeing space: %v", err)
	}
	if err := setState(5000); err != nil {
		t.Fatalf("UpdateState after freeing space: %v", err)
	}
	checkReads(s, "after freeing space")

	// Reopen from the file: consistent pages, every acknowledged write.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, WithPruneEvery(0))
	if err != nil {
		t.Fatalf("reopen after the disk was full: %v", err)
	}
	if err := s.db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt consistency check: %v", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	checkReads(s, "after reopen")
}
