package bolt

import (
	"runtime"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/store"
	bbolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// threadFaults is the minor page faults of the calling thread so far.
func threadFaults(t *testing.T) int64 {
	t.Helper()
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		t.Fatal(err)
	}
	return ru.Minflt
}

// prefault maps what a drone write's transaction reads: after a trim,
// the lookups WriteDrone's transaction makes (the drone's document, where
// its next point goes in its history, its flight detector) fault several
// pages in, and none once the write's pages were prefaulted.
func TestPrefaultMapsWhatTheWriteReads(t *testing.T) {
	s, _, t0 := openWithHistory(t, nil, "d1", "d2", "d3", "d4")
	requireFaultAroundOff(t, s)
	pts, err := encodePoints([]store.TrackPoint{pt("a", "d2", t0.Add(24*time.Hour), time.Time{})})
	if err != nil {
		t.Fatal(err)
	}
	detKey := tkey("a", "d2")
	// The writer's lookups, in a read transaction on this thread: the
	// faults they take (the thread's own, so no other goroutine's count).
	lookups := func() int64 {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tx, err := s.db.Begin(false)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback() }()
		before := threadFaults(t)
		tx.Bucket(bucketDrones).Get([]byte("d2"))
		h := tx.Bucket(bucketTrack).Bucket([]byte("d2"))
		if h.Root() == 0 {
			t.Fatal("d2's history is inline: no pages of its own to fault")
		}
		h.Get(pts[0].key[:])
		tx.Bucket(bucketFlightDetectors).Get(detKey)
		return threadFaults(t) - before
	}
	s.group.unmapResident()
	s.prefault(func(*pageWalk) {}) // maps the meta pages a transaction reads, only
	if n := lookups(); n < 3 {
		t.Fatalf("the write's lookups after a trim took %d page faults: want 3 or more for this test to show anything", n)
	}
	s.group.unmapResident()
	s.prefault(func(w *pageWalk) { w.droneWrite("a", "d2", pts, detKey, nil) })
	if n := lookups(); n > 0 {
		t.Errorf("the write's lookups after prefault took %d page faults, want none", n)
	}
}

var _ = bbolt.Tx{}
