package bolt

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
	bbolt "go.etcd.io/bbolt"
)

// trackLeafPages is how many leaf pages the track bucket's own tree (the
// drones' bucket headers, not their history) spans.
func trackLeafPages(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	err := s.db.View(func(tx *bbolt.Tx) error {
		track := tx.Bucket(bucketTrack)
		n = track.Stats().LeafPageN
		return track.ForEach(func(k, _ []byte) error {
			n -= track.Bucket(k).Stats().LeafPageN
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func fleetPoints(drones, round int) []store.TrackPoint {
	var pts []store.TrackPoint
	for d := range drones {
		p := pt("acme", fmt.Sprint("drone-", d), t0.Add(time.Duration(round)*time.Second), t0.Add(24*time.Hour))
		p.Report.Alt, p.Report.Speed, p.Report.Battery = new(520.5), new(8.25), new(81.5)
		pts = append(pts, p)
	}
	return pts
}

// A fleet starting together fills the track bucket with inline history
// buckets, splitting it into many leaves; once the buckets move out of
// line, those leaves are merged, so a commit writing every drone's history
// does not rewrite a near-empty leaf per two or three drones.
func TestTrackLeavesPackedAfterFleetStart(t *testing.T) {
	const drones = 64
	s, _ := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	fleet := map[string]string{}
	for d := range drones {
		fleet[fmt.Sprint("drone-", d)] = "acme"
	}
	setup(t, s, fleet)
	ctx := context.Background()
	for round := range 30 {
		if err := s.AppendTrack(ctx, fleetPoints(drones, round)); err != nil {
			t.Fatal(err)
		}
	}
	if n := trackLeafPages(t, s); n > 2 {
		t.Errorf("track bucket spans %d leaf pages for %d drone headers, want at most 2", n, drones)
	}
	points, index := stored(t, s)
	for d, n := range points {
		if n != 30 {
			t.Errorf("%s has %d points, want 30", d, n)
		}
	}
	if index != 30*drones {
		t.Errorf("index has %d entries, want %d", index, 30*drones)
	}
}

// A file written before the packing (sparse track leaves, history buckets
// without the mark) is packed by the next history write of its drones.
func TestTrackLeavesOfOlderFilePacked(t *testing.T) {
	const drones = 64
	path := filepath.Join(t.TempDir(), "s.db")
	s, _ := openTest(t, path)
	fleet := map[string]string{}
	for d := range drones {
		fleet[fmt.Sprint("drone-", d)] = "acme"
	}
	setup(t, s, fleet)
	// The layout an older version leaves: history written round by round
	// without packTrackLeaf.
	for round := range 30 {
		err := s.db.Update(func(tx *bbolt.Tx) error {
			for _, p := range fleetPoints(drones, round) {
				b, err := tx.Bucket(bucketTrack).CreateBucketIfNotExists([]byte(p.DroneID))
				if err != nil {
					return err
				}
				k := tsKey(p.Report.TS)
				if err := putJSON(b, k[:], p); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	before := trackLeafPages(t, s)
	if before <= 2 {
		t.Fatalf("the older layout spans %d leaf pages; the test needs it sparse", before)
	}
	if err := s.AppendTrack(context.Background(), fleetPoints(drones, 30)); err != nil {
		t.Fatal(err)
	}
	if n := trackLeafPages(t, s); n > 2 {
		t.Errorf("track bucket spans %d leaf pages after a write (%d before), want at most 2", n, before)
	}
	points, _ := stored(t, s)
	for d, n := range points {
		if n != 31 {
			t.Errorf("%s has %d points, want 31", d, n)
		}
	}
}

func pageBytes(s *Store) int64 { return PageBytes(s) }

// A redelivered write that stores what is there writes no pages; a changed
// value is still written (and its expiry re-indexed).
func TestUnchangedWritesWriteNoPages(t *testing.T) {
	s, _ := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	setup(t, s, map[string]string{"d1": "acme"})
	ctx := context.Background()
	pts := []store.TrackPoint{pt("acme", "d1", t0, t0.Add(time.Hour)), pt("acme", "d1", t0.Add(time.Second), t0.Add(time.Hour))}
	if err := s.AppendTrack(ctx, pts); err != nil {
		t.Fatal(err)
	}
	st := events.DroneState{TS: t0, Lat: 52.5, Lon: 13.4}
	same := func(*events.DroneState) (events.DroneState, bool) { return st, true }
	if _, _, err := s.UpdateState(ctx, "acme", "d1", same); err != nil {
		t.Fatal(err)
	}

	p0 := pageBytes(s)
	if err := s.AppendTrack(ctx, pts); err != nil {
		t.Fatal(err)
	}
	if _, wrote, err := s.UpdateState(ctx, "acme", "d1", same); err != nil || !wrote {
		t.Fatalf("UpdateState: wrote %v, %v", wrote, err)
	}
	if n := pageBytes(s) - p0; n != 0 {
		t.Errorf("rewriting the same point and state wrote %d page bytes, want 0", n)
	}
	if got, err := s.LatestState(ctx, "acme", "d1"); err != nil || !got.TS.Equal(t0) {
		t.Errorf("LatestState = %v, %v", got, err)
	}

	moved := pts[1]
	moved.ExpireAt = t0.Add(2 * time.Hour)
	if err := s.AppendTrack(ctx, []store.TrackPoint{moved}); err != nil {
		t.Fatal(err)
	}
	if pageBytes(s) == p0 {
		t.Error("a changed point wrote no pages")
	}
	points, index := stored(t, s)
	if points["d1"] != 2 || index != 2 {
		t.Errorf("stored %d points, %d index entries; want 2, 2", points["d1"], index)
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		k := tsKey(moved.Report.TS)
		if tx.Bucket(bucketTrackExpiry).Get(expiryKey(moved.ExpireAt, k[:], []byte("d1"))) == nil {
			t.Error("the changed point's new expiry is not indexed")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
