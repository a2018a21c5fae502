package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/flights"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
	bbolt "go.etcd.io/bbolt"
)

// sec is a point of tenant's drone id at t0 + s seconds (fractions too),
// expiring a day later.
func sec(tenant, id string, s float64) store.TrackPoint {
	ts := t0.Add(time.Duration(s * float64(time.Second)))
	p := pt(tenant, id, ts, ts.Add(24*time.Hour))
	p.Report.Speed = new(8.5)
	return p
}

// writePoints stores pts of tenant's drone id as process does, through
// WriteDrone (the state unchanged).
func writePoints(t testing.TB, s *Store, tenant, id string, pts ...store.TrackPoint) {
	t.Helper()
	_, _, err := s.WriteDrone(context.Background(), store.DroneWrite{TenantID: tenant, DroneID: id, Points: pts,
		State: func(prev *events.DroneState) (events.DroneState, bool) { return events.DroneState{}, false }})
	if err != nil {
		t.Fatalf("WriteDrone %s/%s: %v", tenant, id, err)
	}
}

// where is the report times (in seconds after t0) of drone id's points in
// its history bucket and in its tail, as stored.
func where(t testing.TB, s *Store, id string) (bucket, tail []float64) {
	t.Helper()
	secs := func(k []byte) float64 { return float64(int64(binary.BigEndian.Uint64(k)^(1<<63))-t0.UnixNano()) / 1e9 }
	if err := s.db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(bucketTrack).Bucket([]byte(id)); b != nil {
			if err := b.ForEach(func(k, _ []byte) error {
				bucket = append(bucket, secs(k))
				return nil
			}); err != nil {
				return err
			}
		}
		entries, err := readTail(tx, id)
		for _, e := range entries {
			tail = append(tail, secs(e.key))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return bucket, tail
}

// trackSecs is what Track answers for q, as seconds after t0.
func trackSecs(t testing.TB, s *Store, q store.TrackQuery) []float64 {
	t.Helper()
	pts, err := s.Track(context.Background(), q)
	if err != nil {
		t.Fatalf("Track %+v: %v", q, err)
	}
	out := []float64{}
	for _, p := range pts {
		out = append(out, p.Report.TS.Sub(t0).Seconds())
	}
	return out
}

func secsRange(from, to int) []float64 {
	out := []float64{}
	for i := from; i < to; i++ {
		out = append(out, float64(i))
	}
	return out
}

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// fixedTailLimit makes every tail hold tailPoints before it is flushed
// for the rest of the test, so the test can say where each point is.
func fixedTailLimit(t *testing.T) {
	old := tailLimit
	tailLimit = func(string, []byte) int { return tailPoints }
	t.Cleanup(func() { tailLimit = old })
}

// Points written one a report stay in the tail until it holds tailPoints,
// then move into the history bucket together; reads see both, in order.
func TestHistoryTailFlushAndMerge(t *testing.T) {
	fixedTailLimit(t)
	s, _ := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	setup(t, s, map[string]string{"d1": "acme"})
	for i := range tailPoints - 1 {
		writePoints(t, s, "acme", "d1", sec("acme", "d1", float64(i)))
	}
	if b, tl := where(t, s, "d1"); len(b) != 0 || !slices.Equal(tl, secsRange(0, tailPoints-1)) {
		t.Fatalf("before the flush: bucket %v, tail %v; want all in the tail", b, tl)
	}
	for i := tailPoints - 1; i < 40; i++ {
		writePoints(t, s, "acme", "d1", sec("acme", "d1", float64(i)))
	}
	b, tl := where(t, s, "d1")
	if !slices.Equal(b, secsRange(0, tailPoints)) || !slices.Equal(tl, secsRange(tailPoints, 40)) {
		t.Fatalf("after 40: bucket %v, tail %v; want %d flushed, the rest in the tail", b, tl, tailPoints)
	}
	if raw(t, s, bucketDrones, adjunctKey("d1", adjunctHistory)) == nil {
		t.Fatal("no tail beside the document")
	}
	q := store.TrackQuery{TenantID: "acme", DroneID: "d1"}
	for _, c := range []struct {
		name string
		q    store.TrackQuery
		want []float64
	}{
		{"all", q, secsRange(0, 40)},
		{"limit in the bucket", store.TrackQuery{TenantID: "acme", DroneID: "d1", Limit: 3}, secsRange(0, 3)},
		{"limit across", store.TrackQuery{TenantID: "acme", DroneID: "d1", From: at(30), Limit: 5}, secsRange(30, 35)},
		{"from in the tail", store.TrackQuery{TenantID: "acme", DroneID: "d1", From: at(35)}, secsRange(35, 40)},
		{"to in the bucket", store.TrackQuery{TenantID: "acme", DroneID: "d1", To: at(5)}, secsRange(0, 5)},
		{"to in the tail", store.TrackQuery{TenantID: "acme", DroneID: "d1", From: at(28), To: at(36)}, secsRange(28, 36)},
		{"after across", store.TrackQuery{TenantID: "acme", DroneID: "d1", From: at(20), After: at(31), To: at(35)}, secsRange(32, 35)},
		{"after the last", store.TrackQuery{TenantID: "acme", DroneID: "d1", After: at(39)}, []float64{}},
		{"another tenant", store.TrackQuery{TenantID: "other", DroneID: "d1"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			pts, err := s.Track(context.Background(), c.q)
			if c.want == nil {
				if err == nil {
					t.Fatalf("another tenant read %d points", len(pts))
				}
				return
			}
			if got := trackSecs(t, s, c.q); !slices.Equal(got, c.want) {
				t.Errorf("Track = %v, want %v", got, c.want)
			}
		})
	}
	points, index := stored(t, s)
	if points["d1"] != 40 || index != 40 {
		t.Errorf("stored %d points, %d index entries; want 40, 40", points["d1"], index)
	}
}

// Redeliveries store each time once, whether it is in the tail or in the
// bucket, and write nothing when the bytes are the same; a changed point
// replaces the stored one and its expiry entry. Late points older than the
// bucket's newest go into the bucket, the others into the tail in order.
func TestHistoryTailDuplicatesAndLatePoints(t *testing.T) {
	fixedTailLimit(t)
	s, _ := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	setup(t, s, map[string]string{"d1": "acme"})
	var all []store.TrackPoint
	for i := range 40 {
		all = append(all, sec("acme", "d1", float64(i)))
		writePoints(t, s, "acme", "d1", all[i])
	}
	p0 := pageBytes(s)
	writePoints(t, s, "acme", "d1", all[3], all[20], all[33], all[39]) // in the bucket and in the tail
	writePoints(t, s, "acme", "d1", all[36])
	if n := pageBytes(s) - p0; n != 0 {
		t.Errorf("redelivering stored points wrote %d page bytes, want 0", n)
	}
	// Late points: one among the bucket's, one between the bucket's newest
	// and the tail's oldest, and one inside the tail; with a redelivery in
	// the same write.
	writePoints(t, s, "acme", "d1", sec("acme", "d1", 10.5), sec("acme", "d1", 31.5), sec("acme", "d1", 37.5), all[38])
	// A newer point, then older ones in one write, out of order.
	writePoints(t, s, "acme", "d1", sec("acme", "d1", 45), sec("acme", "d1", 42), sec("acme", "d1", 41))
	b, tl := where(t, s, "d1")
	wantB := append(secsRange(0, 11), 10.5)
	slices.Sort(wantB)
	wantB = append(wantB, secsRange(11, 32)...)
	wantT := append([]float64{31.5}, secsRange(32, 38)...)
	wantT = append(append(wantT, 37.5), 38, 39, 41, 42, 45)
	slices.Sort(wantT)
	if !slices.Equal(b, wantB) || !slices.Equal(tl, wantT) {
		t.Errorf("bucket %v\n tail %v\nwant bucket %v\n tail %v", b, tl, wantB, wantT)
	}
	want := append(slices.Clone(wantB), wantT...)
	if got := trackSecs(t, s, store.TrackQuery{TenantID: "acme", DroneID: "d1"}); !slices.Equal(got, want) {
		t.Errorf("Track = %v\nwant %v", got, want)
	}
	// A changed point in the tail replaces it, with its expiry entry.
	moved := all[35]
	moved.ExpireAt = moved.ExpireAt.Add(time.Hour)
	writePoints(t, s, "acme", "d1", moved)
	points, index := stored(t, s)
	if points["d1"] != len(want) || index != len(want) {
		t.Errorf("stored %d points, %d index entries; want %d each", points["d1"], index, len(want))
	}
	if err := s.db.View(func(tx *bbolt.Tx) error {
		k := tsKey(moved.Report.TS)
		if tx.Bucket(bucketTrackExpiry).Get(expiryKey(moved.ExpireAt, k[:], []byte("d1"))) == nil {
			t.Error("the changed point's new expiry is not indexed")
		}
		if tx.Bucket(bucketTrackExpiry).Get(expiryKey(all[35].ExpireAt, k[:], []byte("d1"))) != nil {
			t.Error("the replaced point's expiry is still indexed")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// AppendTrack (any drone, any time) moves the tail into the bucket
	// first: a redelivery through it stays one point.
	if err := s.AppendTrack(context.Background(), []store.TrackPoint{all[39], sec("acme", "d1", 46)}); err != nil {
		t.Fatal(err)
	}
	b, tl = where(t, s, "d1")
	if len(tl) != 0 || len(b) != len(want)+1 {
		t.Errorf("after AppendTrack: %d in the bucket, tail %v; want %d, none", len(b), tl, len(want)+1)
	}
	if got := trackSecs(t, s, store.TrackQuery{TenantID: "acme", DroneID: "d1"}); !slices.Equal(got, append(want, 46)) {
		t.Errorf("Track after AppendTrack = %v", got)
	}
}

// The sweeper deletes expired points wherever they are, and reads hide
// them before it runs; a tail left empty is deleted.
func TestHistoryTailPruned(t *testing.T) {
	fixedTailLimit(t)
	s, clk := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	setup(t, s, map[string]string{"d1": "acme", "d2": "acme"})
	// d1: 40 points (32 in the bucket, 8 in the tail), each expiring an
	// hour after its time plus i minutes; d2: 5 points in its tail, all
	// expiring at one time.
	for i := range 40 {
		p := sec("acme", "d1", float64(i))
		p.ExpireAt = at(float64(i)).Add(time.Hour + time.Duration(i)*time.Minute)
		writePoints(t, s, "acme", "d1", p)
	}
	for i := range 5 {
		p := sec("acme", "d2", float64(i))
		p.ExpireAt = t0.Add(2 * time.Hour)
		writePoints(t, s, "acme", "d2", p)
	}
	// At t0 + 1h + 35.5min: d1's points 0-35 have expired (32 in the
	// bucket, 4 in the tail), d2's not.
	clk.set(t0.Add(time.Hour + 35*time.Minute + 40*time.Second))
	if got := trackSecs(t, s, store.TrackQuery{TenantID: "acme", DroneID: "d1"}); !slices.Equal(got, secsRange(36, 40)) {
		t.Fatalf("Track before the sweep = %v, want 36-39", got)
	}
	if st := mustPrune(t, s); st.Deleted != 36 {
		t.Errorf("Prune deleted %d points, want 36", st.Deleted)
	}
	b, tl := where(t, s, "d1")
	if len(b) != 0 || !slices.Equal(tl, secsRange(36, 40)) {
		t.Errorf("after the sweep: bucket %v, tail %v", b, tl)
	}
	if got := trackSecs(t, s, store.TrackQuery{TenantID: "acme", DroneID: "d1"}); !slices.Equal(got, secsRange(36, 40)) {
		t.Errorf("Track after the sweep = %v", got)
	}
	clk.set(t0.Add(3 * time.Hour))
	if st := mustPrune(t, s); st.Deleted != 9 {
		t.Errorf("second Prune deleted %d points, want 9", st.Deleted)
	}
	for _, id := range []string{"d1", "d2"} {
		if raw(t, s, bucketDrones, adjunctKey(id, adjunctHistory)) != nil {
			t.Errorf("%s: an empty tail is still stored", id)
		}
	}
	points, index := stored(t, s)
	if points["d1"]+points["d2"] != 0 || index != 0 {
		t.Errorf("left %v points, %d index entries", points, index)
	}
	// The drone writes on afterwards.
	writePoints(t, s, "acme", "d2", sec("acme", "d2", 3*3600))
	if got := trackSecs(t, s, store.TrackQuery{TenantID: "acme", DroneID: "d2"}); !slices.Equal(got, []float64{3 * 3600}) {
		t.Errorf("Track after = %v", got)
	}
}

// The tail goes with its drone: a drone created again with a retired id,
// by another tenant or the same, has no history; a tail found without its
// document is dropped when a drone of that id is created.
func TestHistoryTailRetired(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	setup(t, s, map[string]string{"d1": "acme", "x": "other"})
	for i := range 40 {
		writePoints(t, s, "acme", "d1", sec("acme", "d1", float64(i)))
	}
	if err := s.RetireDrone(ctx, "acme", "d1"); err != nil {
		t.Fatal(err)
	}
	if raw(t, s, bucketDrones, adjunctKey("d1", adjunctHistory)) != nil {
		t.Fatal("the retired drone's tail is still stored")
	}
	for _, tenant := range []string{"other", "acme"} {
		if err := s.CreateDrone(ctx, store.Drone{ID: "d1", TenantID: tenant}); err != nil {
			t.Fatal(err)
		}
		if got := trackSecs(t, s, store.TrackQuery{TenantID: tenant, DroneID: "d1"}); len(got) != 0 {
			t.Errorf("%s's new drone d1 reads %v", tenant, got)
		}
		writePoints(t, s, tenant, "d1", sec(tenant, "d1", 100))
		if got := trackSecs(t, s, store.TrackQuery{TenantID: tenant, DroneID: "d1"}); !slices.Equal(got, []float64{100}) {
			t.Errorf("%s's new drone d1 reads %v after a write", tenant, got)
		}
		if err := s.RetireDrone(ctx, tenant, "d1"); err != nil {
			t.Fatal(err)
		}
	}
	// A stray tail (no document) is not taken over by a new drone.
	stray := sec("acme", "d1", 5)
	v, err := encodeTrackPoint(stray)
	if err != nil {
		t.Fatal(err)
	}
	k := tsKey(stray.Report.TS)
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketDrones).Put(adjunctKey("d1", adjunctHistory), encodeTail([]tailEntry{{k[:], v}}))
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateDrone(ctx, store.Drone{ID: "d1", TenantID: "acme"}); err != nil {
		t.Fatal(err)
	}
	if got := trackSecs(t, s, store.TrackQuery{TenantID: "acme", DroneID: "d1"}); len(got) != 0 {
		t.Errorf("a new drone read a stray tail: %v", got)
	}
	if got := trackSecs(t, s, store.TrackQuery{TenantID: "other", DroneID: "x"}); len(got) != 0 {
		t.Errorf("other's drone reads %v", got)
	}
}

// The tail is part of the file: it reads the same after a reopen, and the
// writes go on from it.
func TestHistoryTailReopen(t *testing.T) {
	fixedTailLimit(t)
	path := filepath.Join(t.TempDir(), "s.db")
	s, _ := openTest(t, path)
	setup(t, s, map[string]string{"d1": "acme"})
	for i := range 40 {
		writePoints(t, s, "acme", "d1", sec("acme", "d1", float64(i)))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, _ = openTest(t, path)
	if got := trackSecs(t, s, store.TrackQuery{TenantID: "acme", DroneID: "d1"}); !slices.Equal(got, secsRange(0, 40)) {
		t.Fatalf("after reopening: %v", got)
	}
	for i := 40; i < 70; i++ {
		writePoints(t, s, "acme", "d1", sec("acme", "d1", float64(i)))
	}
	b, tl := where(t, s, "d1")
	if !slices.Equal(b, secsRange(0, 64)) || !slices.Equal(tl, secsRange(64, 70)) {
		t.Errorf("bucket %v, tail %v; want 0-63, 64-69", b, tl)
	}
	if got := trackSecs(t, s, store.TrackQuery{TenantID: "acme", DroneID: "d1"}); !slices.Equal(got, secsRange(0, 70)) {
		t.Errorf("Track = %v", got)
	}
}

// The history bucket of a drone reporting one point a write is written
// once per chunk of tailLimit reports: its root page, copied on write,
// changes only then.
func TestHistoryTailBucketWrittenOncePerChunk(t *testing.T) {
	s, _ := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	setup(t, s, map[string]string{"d1": "acme"})
	// An aged history: 100 points in a bucket of its own pages.
	var aged []store.TrackPoint
	for i := range 100 {
		aged = append(aged, sec("acme", "d1", float64(i-200)))
	}
	if err := s.AppendTrack(context.Background(), aged); err != nil {
		t.Fatal(err)
	}
	root := func() (pgid uint64) {
		if err := s.db.View(func(tx *bbolt.Tx) error {
			pgid = uint64(tx.Bucket(bucketTrack).Bucket([]byte("d1")).Root())
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return pgid
	}
	if root() == 0 {
		t.Fatal("the aged history is inline: the test needs it in pages")
	}
	const reports = 4*tailPoints + 5
	var written []int
	for i := range reports {
		before := root()
		report(t, s, "acme", "d1", i) // the detector and tracker too, as the pipeline
		writePoints(t, s, "acme", "d1", sec("acme", "d1", float64(i)))
		if root() != before {
			written = append(written, i)
		}
	}
	// Each chunk is tailLimit points of the tail it flushed: the first
	// starts at report 0.
	var want []int
	for first := 0; ; {
		k := tsKey(at(float64(first)))
		last := first + tailLimit("d1", k[:]) - 1
		if last >= reports {
			break
		}
		want = append(want, last)
		first = last + 1
	}
	if len(want) < 3 || !slices.Equal(written, want) {
		t.Errorf("the history bucket was written by reports %v, want %v (at least 3)", written, want)
	}
	if points, index := stored(t, s); points["d1"] != 100+reports || index != 100+reports {
		t.Errorf("stored %d points, %d index entries; want %d", points["d1"], index, 100+reports)
	}
}

// A drone's tail is stored right after its document and detector, on
// their leaf: a leaf boundary can fall between them, but then only one
// drone's (at most one drone per boundary), so nearly every drone's
// WriteDrone dirties one leaf for all three.
func TestHistoryTailSharesTheDocumentsLeaf(t *testing.T) {
	const drones = 300
	s, _ := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	fleet := map[string]string{}
	for d := range drones {
		fleet[fmt.Sprint("drone-", d)] = "acme"
	}
	setup(t, s, fleet)
	var wg sync.WaitGroup
	for d := range drones {
		id := fmt.Sprint("drone-", d)
		wg.Go(func() {
			for i := range 20 { // a tail of 20 points
				_, _, err := s.WriteDrone(context.Background(), store.DroneWrite{TenantID: "acme", DroneID: id,
					Points: []store.TrackPoint{fleetPoints(drones, i)[d]},
					State: func(prev *events.DroneState) (events.DroneState, bool) {
						return events.DroneState{TS: at(float64(i))}, true
					},
					Flights: func(prev flights.Detector) (flights.Detector, flights.Changes, bool) {
						det := prev.Clone()
						return det, det.Apply(flights.DefaultSettings(), []events.Report{fleetPoints(drones, i)[d].Report}), true
					}})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	leaf := leafOf(t, s)
	leaves := map[uint64]bool{}
	for _, id := range leaf {
		leaves[id] = true
	}
	split := 0
	for d := range drones {
		id := fmt.Sprint("drone-", d)
		doc, ok := leaf[id]
		f, okF := leaf[id+adjunctDetector]
		h, okH := leaf[id+adjunctHistory]
		if !ok || !okF || !okH {
			t.Fatalf("%s: document %v, detector %v, tail %v stored", id, ok, okF, okH)
		}
		if h != doc || f != doc {
			split++
		}
	}
	if split > len(leaves)-1 {
		t.Errorf("%d drones have records on two leaves, more than the %d boundaries between %d leaves", split, len(leaves)-1, len(leaves))
	}
	t.Logf("%d drones, %d leaves, %d drones' records across a boundary", drones, len(leaves), split)
	points, index := stored(t, s)
	for d := range drones {
		if n := points[fmt.Sprint("drone-", d)]; n != 20 {
			t.Fatalf("drone-%d has %d points, want 20", d, n)
		}
	}
	if index != drones*20 {
		t.Errorf("index holds %d entries, want %d", index, drones*20)
	}
}

// The chunk sizes are spread around tailPoints, differ between drones
// whose tails start at the same time (a fleet started together flushes
// over many commits, not in one), and differ between a drone's chunks.
func TestTailLimitSpread(t *testing.T) {
	k := tsKey(t0)
	seen, sum := map[int]int{}, 0
	const drones = 1000
	for d := range drones {
		n := tailLimit(fmt.Sprint("d", d), k[:])
		if n < tailPoints*3/4 || n >= tailPoints*5/4 {
			t.Fatalf("d%d: limit %d outside [%d, %d)", d, n, tailPoints*3/4, tailPoints*5/4)
		}
		seen[n]++
		sum += n
	}
	if len(seen) < tailPoints/2-2 {
		t.Errorf("%d drones starting together draw %d limits: %v", drones, len(seen), seen)
	}
	if mean := float64(sum) / drones; mean < tailPoints-1.5 || mean > tailPoints+0.5 {
		t.Errorf("mean limit %.1f, want about %d", mean, tailPoints)
	}
	chunks := map[int]bool{}
	for c := range 20 {
		k := tsKey(t0.Add(time.Duration(c*tailPoints) * time.Second))
		chunks[tailLimit("d1", k[:])] = true
	}
	if len(chunks) < 5 {
		t.Errorf("20 chunks of one drone drew %d limits", len(chunks))
	}
}

// A malformed tail is an error for its readers, not points made up.
func TestParseTailRefusesMalformed(t *testing.T) {
	good := encodeTail([]tailEntry{{bytes.Repeat([]byte{1}, 8), []byte("ab")}, {bytes.Repeat([]byte{2}, 8), []byte("c")}})
	if e, err := parseTail(good); err != nil || len(e) != 2 || string(e[1].val) != "c" {
		t.Fatalf("parseTail(good) = %v, %v", e, err)
	}
	unordered := encodeTail([]tailEntry{{bytes.Repeat([]byte{2}, 8), []byte("ab")}, {bytes.Repeat([]byte{1}, 8), []byte("c")}})
	for name, b := range map[string][]byte{"truncated": good[:len(good)-1], "short key": good[:5], "unordered": unordered} {
		if _, err := parseTail(b); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

// A drone reporting in time order has its points appended to the stored
// tail as they are (appendAfterTail), one or several a write: the tail is
// then exactly the form encodeTail gives its entries, holds every point
// once, and is flushed at the limit as when it is decoded and encoded
// again.
func TestHistoryTailAppendedAsStored(t *testing.T) {
	fixedTailLimit(t)
	s, _ := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	setup(t, s, map[string]string{"d1": "acme"})
	next := 0.0
	for _, n := range []int{1, 1, 3, 1, 5, 2, 1, 4, 1, 1, 7, 1, 2, 1} { // 31 points: one short of the limit
		var pts []store.TrackPoint
		for range n {
			pts = append(pts, sec("acme", "d1", next))
			next++
		}
		writePoints(t, s, "acme", "d1", pts...)
		tail := raw(t, s, bucketDrones, adjunctKey("d1", adjunctHistory))
		entries, err := parseTail(tail)
		if err != nil {
			t.Fatalf("after %v points: stored tail: %v", next, err)
		}
		if again := encodeTail(entries); !bytes.Equal(again, tail) {
			t.Fatalf("after %v points: the stored tail is not encodeTail's form of its %d entries", next, len(entries))
		}
		if b, tl := where(t, s, "d1"); len(b) != 0 || !slices.Equal(tl, secsRange(0, int(next))) {
			t.Fatalf("after %v points: bucket %v, tail %v; want every point in the tail", next, b, tl)
		}
	}
	writePoints(t, s, "acme", "d1", sec("acme", "d1", next), sec("acme", "d1", next+1))
	if b, tl := where(t, s, "d1"); !slices.Equal(b, secsRange(0, 33)) || len(tl) != 0 {
		t.Fatalf("past the limit: bucket %v, tail %v; want all 33 flushed", b, tl)
	}
	if points, index := stored(t, s); points["d1"] != 33 || index != 33 {
		t.Errorf("stored %d points, %d index entries; want 33, 33", points["d1"], index)
	}
}
