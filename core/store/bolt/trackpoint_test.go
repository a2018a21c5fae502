package bolt

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bbolt "go.etcd.io/bbolt"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// putJSONPoints writes points as a store of data dir format 3 did: their
// encoding/json bytes, and (index) their expiry index entries.
func putJSONPoints(t *testing.T, s *Store, index bool, points ...store.TrackPoint) {
	t.Helper()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		for _, p := range points {
			b, err := tx.Bucket(bucketTrack).CreateBucketIfNotExists([]byte(p.DroneID))
			if err != nil {
				return err
			}
			raw, err := json.Marshal(p)
			if err != nil {
				return err
			}
			k := tsKey(p.Report.TS)
			if err := b.Put(k[:], raw); err != nil {
				return err
			}
			if index && !p.ExpireAt.IsZero() {
				if err := tx.Bucket(bucketTrackExpiry).Put(expiryKey(p.ExpireAt, k[:], []byte(p.DroneID)), []byte{}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// forms counts the stored points of drone by their form's first byte.
func forms(t *testing.T, s *Store, drone string) map[byte]int {
	t.Helper()
	n := map[byte]int{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketTrack).Bucket([]byte(drone)).ForEach(func(_, v []byte) error {
			n[v[0]]++
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A drone's history written by an earlier release (JSON points) and
// continued by this one (compact points) reads as one, is pruned through
// the expiry index whichever form a point has, and a JSON point
// redelivered is rewritten once in the compact form, its index entry kept
// exact; redelivered again it writes nothing.
func TestJSONPointsReadPrunedAndRewrittenOnce(t *testing.T) {
	ctx := context.Background()
	s, clk := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	setup(t, s, map[string]string{"d1": "acme", "d2": "other"})
	var old, cur []store.TrackPoint
	for i := range 10 {
		ts := t0.Add(time.Duration(i) * time.Second)
		old = append(old, pt("acme", "d1", ts, ts.Add(time.Hour)))
		cur = append(cur, pt("acme", "d1", ts.Add(10*time.Second), ts.Add(10*time.Second+time.Hour)))
	}
	old[3].ExpireAt = time.Time{} // never expires
	alt, mode := 520.5, "AUTO.MISSION"
	old[4].Report.Alt, old[4].Report.Mode = &alt, &mode
	// Another tenant's point in d1's bucket (ids reused across a drone's
	// deletion, say): reads of acme still skip it, in either form.
	stray := pt("other", "d1", t0.Add(20*time.Second), t0.Add(20*time.Second+time.Hour))
	putJSONPoints(t, s, true, append(old, stray)...)
	if err := s.AppendTrack(ctx, append(cur, pt("other", "d1", t0.Add(21*time.Second), t0.Add(21*time.Second+time.Hour)))); err != nil {
		t.Fatal(err)
	}
	if got := forms(t, s, "d1"); got['{'] != 11 || got[trackPointV1] != 11 {
		t.Fatalf("stored forms %v, want 11 JSON and 11 compact", got)
	}
	got, err := s.Track(ctx, store.TrackQuery{TenantID: "acme", DroneID: "d1"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(append(append([]store.TrackPoint(nil), old...), cur...), got); diff != "" {
		t.Fatalf("history of JSON and compact points (-want +got):\n%s", diff)
	}

	// Redelivered: each JSON point is rewritten in the compact form once,
	// the index keeps one entry per expiring point.
	_, index0 := stored(t, s)
	if err := s.AppendTrack(ctx, old); err != nil {
		t.Fatal(err)
	}
	if got := forms(t, s, "d1"); got['{'] != 1 || got[trackPointV1] != 21 {
		t.Fatalf("after redelivery: stored forms %v, want the stray JSON point and 21 compact", got)
	}
	points, index := stored(t, s)
	if points["d1"] != 22 || index != index0 {
		t.Fatalf("after redelivery: %d points, %d index entries; want 22, %d", points["d1"], index, index0)
	}
	p0 := pageBytes(s)
	if err := s.AppendTrack(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.WriteDrone(ctx, store.DroneWrite{TenantID: "acme", DroneID: "d1", Points: cur,
		State: func(*events.DroneState) (events.DroneState, bool) { return events.DroneState{}, false }}); err != nil {
		t.Fatal(err)
	}
	if n := pageBytes(s) - p0; n != 0 {
		t.Errorf("redelivering compact points wrote %d page bytes, want 0", n)
	}
	if got, err := s.Track(ctx, store.TrackQuery{TenantID: "acme", DroneID: "d1"}); err != nil || len(got) != 20 {
		t.Fatalf("after redelivery: %d points, %v; want 20", len(got), err)
	}

	// Pruned through the index, JSON point or compact: all but old[3]
	// expire by t0+20s+1h.
	putJSONPoints(t, s, true, pt("acme", "d1", t0.Add(30*time.Second), t0.Add(30*time.Second+time.Hour)))
	clk.set(t0.Add(time.Hour + 30*time.Second))
	if st := mustPrune(t, s); st.Deleted != 22 {
		t.Errorf("Prune = %+v, want 22 deleted (20 compact, 2 JSON; one never expires)", st)
	}
	points, index = stored(t, s)
	if points["d1"] != 1 || index != 0 {
		t.Errorf("after prune: %d points, %d index entries; want the one that never expires, 0", points["d1"], index)
	}
}

// A store of format 3 and older without the expiry index, its history in
// JSON, is backfilled and pruned as before; compact points written since
// are too.
func TestBackfillReadsBothForms(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	s, _ := openTest(t, path)
	setup(t, s, map[string]string{"d1": "a"})
	var pts []store.TrackPoint
	for i := range 20 {
		ts := t0.Add(time.Duration(i) * time.Second)
		pts = append(pts, pt("a", "d1", ts, ts.Add(time.Hour)))
	}
	putJSONPoints(t, s, false, pts[:10]...)
	if err := s.AppendTrack(ctx, pts[10:]); err != nil {
		t.Fatal(err)
	}
	dropExpiryIndex(t, s)
	s.Close()
	s, clk := openTest(t, path)
	clk.set(t0.Add(time.Hour + 4*time.Second)) // points 0..4 (JSON) have expired
	if st := mustPrune(t, s); st.Deleted != 5 || st.Backfilled != 20 {
		t.Errorf("first Prune = %+v, want 5 deleted of 20 backfilled", st)
	}
	clk.set(t0.Add(time.Hour + 14*time.Second)) // then 5..9 (JSON) and 10..14 (compact)
	if st := mustPrune(t, s); st.Deleted != 10 || st.Backfilled != 0 {
		t.Errorf("second Prune = %+v, want 10 deleted through the index", st)
	}
	if got, err := s.Track(ctx, store.TrackQuery{TenantID: "a", DroneID: "d1"}); err != nil || len(got) != 5 {
		t.Errorf("left %d points, %v; want 5", len(got), err)
	}
}
