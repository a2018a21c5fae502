package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/flights"
	"github.com/dronetrack/dronetrack/core/remoteid"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
	bbolt "go.etcd.io/bbolt"
)

// report writes one report of drone id of tenant as the pipeline does:
// WriteDrone (state and flights) and then EvaluateAlerts on its state.
func report(t testing.TB, s *Store, tenant, id string, i int) {
	t.Helper()
	ctx := context.Background()
	rep := events.Report{TS: t0.Add(time.Duration(i) * time.Second), Lat: 52.5, Lon: 13.4 + float64(i)*1e-4,
		Armed: new(true), Height: new(40.0), Speed: new(8.0), Battery: new(80.0)}
	reps := []events.Report{rep}
	cur, _, err := s.WriteDrone(ctx, store.DroneWrite{TenantID: tenant, DroneID: id,
		State: func(prev *events.DroneState) (events.DroneState, bool) {
			st := events.DroneState{TS: rep.TS, Lat: rep.Lat, Lon: rep.Lon, Battery: rep.Battery, UpdatedAt: rep.TS}
			return st, true
		},
		Flights: func(prev flights.Detector) (flights.Detector, flights.Changes, bool) {
			d := prev.Clone()
			ch := d.Apply(flights.DefaultSettings(), reps)
			return d, ch, true
		}})
	if err != nil {
		t.Fatalf("WriteDrone %s/%s: %v", tenant, id, err)
	}
	evaluateState(t, s, tenant, id, cur)
}

// evaluate evaluates alerts on a state at t0+i s of tenant's drone id,
// which need not exist.
func evaluate(t testing.TB, s *Store, tenant, id string, i int) alerting.Tracker {
	t.Helper()
	ts := t0.Add(time.Duration(i) * time.Second)
	return evaluateState(t, s, tenant, id, events.DroneState{TS: ts, Lat: 52.5, Lon: 13.4, Battery: new(80.0), UpdatedAt: ts})
}

func evaluateState(t testing.TB, s *Store, tenant, id string, st events.DroneState) alerting.Tracker {
	t.Helper()
	tr, err := s.EvaluateAlerts(context.Background(), tenant, id, func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool) {
		return alerting.EvaluateState(prev, st, alerting.DefaultSettings(), nil, st.UpdatedAt)
	})
	if err != nil {
		t.Fatalf("EvaluateAlerts %s/%s: %v", tenant, id, err)
	}
	return tr
}

// raw is what bucket holds at key (nil: nothing).
func raw(t testing.TB, s *Store, bucket, key []byte) []byte {
	t.Helper()
	var v []byte
	if err := s.db.View(func(tx *bbolt.Tx) error {
		v = bytes.Clone(tx.Bucket(bucket).Get(key))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

// leafOf maps every key of the drones bucket to the leaf page holding it,
// read from the file's pages as bbolt lays them out (page header: id u64,
// flags u16, count u16, overflow u32; branch elements: pos u32, ksize u32,
// pgid u64; leaf elements: flags u32, pos u32, ksize u32, vsize u32; pos
// counted from the element).
func leafOf(t *testing.T, s *Store) map[string]uint64 {
	t.Helper()
	var root uint64
	if err := s.db.View(func(tx *bbolt.Tx) error {
		root = uint64(tx.Bucket(bucketDrones).Root())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if root == 0 {
		t.Fatal("the drones bucket is inline: the test needs a fleet of leaves")
	}
	file, err := os.ReadFile(s.db.Path())
	if err != nil {
		t.Fatal(err)
	}
	ps := s.db.Info().PageSize
	out := map[string]uint64{}
	var walk func(id uint64)
	walk = func(id uint64) {
		p := file[int(id)*ps:]
		flags, count := binary.LittleEndian.Uint16(p[8:]), int(binary.LittleEndian.Uint16(p[10:]))
		for i := range count {
			e := p[16+i*16:]
			switch flags {
			case 0x01: // branch
				walk(binary.LittleEndian.Uint64(e[8:]))
			case 0x02: // leaf
				pos, ksize := binary.LittleEndian.Uint32(e[4:]), binary.LittleEndian.Uint32(e[8:])
				out[string(e[pos:pos+ksize])] = id
			default:
				t.Fatalf("page %d of the drones bucket has flags %#x", id, flags)
			}
		}
	}
	walk(root)
	return out
}

// A drone's tracker and detector are stored right after its document, on
// its leaf: a leaf boundary can fall between a drone's records, but then
// only one drone's (at most one drone per boundary is split), so nearly
// every drone's report dirties one leaf for the three.
func TestDroneRecordsShareALeaf(t *testing.T) {
	const drones = 300
	s, _ := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	fleet := map[string]string{}
	for d := range drones {
		fleet[fmt.Sprint("drone-", d)] = "acme"
	}
	setup(t, s, fleet)
	for i := range 3 {
		for d := range drones {
			report(t, s, "acme", fmt.Sprint("drone-", d), i)
		}
	}
	leaf := leafOf(t, s)
	leaves := map[uint64]bool{}
	for _, id := range leaf {
		leaves[id] = true
	}
	if len(leaf) != 3*drones {
		t.Fatalf("the drones bucket holds %d keys, want %d (a document, a tracker and a detector a drone)", len(leaf), 3*drones)
	}
	split := 0
	for d := range drones {
		id := fmt.Sprint("drone-", d)
		doc, ok := leaf[id]
		a, okA := leaf[id+adjunctTracker]
		f, okF := leaf[id+adjunctDetector]
		if !ok || !okA || !okF {
			t.Fatalf("%s: document %v, tracker %v, detector %v stored beside it", id, ok, okA, okF)
		}
		if a != doc || f != doc {
			split++
		}
	}
	if split > len(leaves)-1 {
		t.Errorf("%d drones have records on two leaves, more than the %d boundaries between %d leaves: the records are not adjacent", split, len(leaves)-1, len(leaves))
	}
	t.Logf("%d drones, %d leaves, %d drones' records across a boundary", drones, len(leaves), split)
	// Nothing in the old buckets.
	if err := s.db.View(func(tx *bbolt.Tx) error {
		for _, a := range adjuncts {
			if n := tx.Bucket(a.old).Stats().KeyN; n != 0 {
				t.Errorf("%s holds %d records; want them beside the drones", a.old, n)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// The adjuncts are no drones: listings skip them; the link check finds
// the trackers beside the drones and those of pairs without their drone.
func TestAdjunctsInListings(t *testing.T) {
	s, _ := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	setup(t, s, map[string]string{"d1": "acme", "d10": "acme", "d2": "other"})
	ctx := context.Background()
	for _, id := range []string{"d1", "d10"} {
		report(t, s, "acme", id, 1)
	}
	report(t, s, "other", "d2", 1)
	evaluate(t, s, "acme", "ghost", 1) // alerts of a drone that does not exist
	ds, err := s.Drones(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	if strings.Join(ids, ",") != "d1,d10" {
		t.Errorf("Drones(acme) = %v; want d1, d10", ids)
	}
	stale, err := s.StaleTrackers(ctx, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tr := range stale {
		got = append(got, tr.TenantID+"/"+tr.DroneID)
	}
	if strings.Join(got, ",") != "acme/d1,acme/d10,other/d2,acme/ghost" {
		t.Errorf("StaleTrackers = %v; want the three drones' and ghost's (alerts of a pair without its drone)", got)
	}
}

// A tracker of a tenant and drone id whose drone is another tenant's (or
// missing) stays in the old bucket, keyed by the tenant: never beside the
// other tenant's drone.
func TestTrackerOfAnotherTenantsDroneStaysApart(t *testing.T) {
	s, _ := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	setup(t, s, map[string]string{"d1": "other"})
	mine := evaluate(t, s, "acme", "d1", 1)
	theirs := evaluate(t, s, "other", "d1", 5)
	if v := raw(t, s, bucketAlertTrackers, tkey("acme", "d1")); v == nil {
		t.Error("acme's tracker of d1 (other's drone) is not in alertTrackers")
	}
	if v := raw(t, s, bucketAlertTrackers, tkey("other", "d1")); v != nil {
		t.Errorf("other's tracker of its own drone in alertTrackers: %s", v)
	}
	v := raw(t, s, bucketDrones, adjunctKey("d1", adjunctTracker))
	var beside alerting.Tracker
	if v == nil || !readTracker(v, &beside) || beside.TenantID != "other" {
		t.Fatalf("beside d1: %s; want other's tracker", v)
	}
	// Each evaluation goes on from its own tracker.
	if again := evaluate(t, s, "acme", "d1", 2); !again.LastTS.After(mine.LastTS) || again.TenantID != "acme" {
		t.Errorf("acme's tracker went %+v -> %+v", mine, again)
	}
	if again := evaluate(t, s, "other", "d1", 6); !again.LastTS.After(theirs.LastTS) || again.TenantID != "other" {
		t.Errorf("other's tracker went %+v -> %+v", theirs, again)
	}
	// Flights of d1 for acme are refused as before (the drone is not acme's).
	_, err := s.UpdateFlights(context.Background(), "acme", "d1", func(prev flights.Detector) (flights.Detector, flights.Changes, bool) {
		return prev, flights.Changes{}, true
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateFlights of another tenant's drone: %v; want ErrNotFound", err)
	}
}

// Retiring a drone moves its tracker and detector back to the old buckets
// under its tenant: no drone of another tenant created with its id finds
// them, and a drone of its tenant created with its id again does, as
// before the records moved beside the drones.
func TestRetireMovesAdjunctsOut(t *testing.T) {
	s, _ := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	setup(t, s, map[string]string{"d1": "acme", "d2": "other"})
	ctx := context.Background()
	report(t, s, "acme", "d1", 1)
	tracker := raw(t, s, bucketDrones, adjunctKey("d1", adjunctTracker))
	detector := raw(t, s, bucketDrones, adjunctKey("d1", adjunctDetector))
	if tracker == nil || detector == nil {
		t.Fatalf("beside d1: tracker %q, detector %q", tracker, detector)
	}
	if err := s.RetireDrone(ctx, "acme", "d1"); err != nil {
		t.Fatal(err)
	}
	for _, sfx := range []string{adjunctTracker, adjunctDetector} {
		if v := raw(t, s, bucketDrones, adjunctKey("d1", sfx)); v != nil {
			t.Errorf("adjunct %q of a retired drone still beside it: %q", sfx, v)
		}
	}
	if v := raw(t, s, bucketAlertTrackers, tkey("acme", "d1")); !bytes.Equal(v, tracker) {
		t.Errorf("retired tracker in alertTrackers: %q; want %q", v, tracker)
	}
	if v := raw(t, s, bucketFlightDetectors, tkey("acme", "d1")); !bytes.Equal(v, detector) {
		t.Errorf("retired detector in flightDetectors: %q; want %q", v, detector)
	}

	// Another tenant's drone of that id starts afresh.
	if err := s.CreateDrone(ctx, store.Drone{ID: "d1", TenantID: "other", KeyHash: "k-other-d1"}); err != nil {
		t.Fatal(err)
	}
	var saw alerting.Tracker
	if _, err := s.EvaluateAlerts(ctx, "other", "d1", func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool) {
		saw = prev
		return prev, nil, false
	}); err != nil {
		t.Fatal(err)
	}
	if !saw.LastTS.IsZero() || saw.TenantID != "other" {
		t.Errorf("other's new d1 got tracker %+v; want a new one", saw)
	}
	if err := s.RetireDrone(ctx, "other", "d1"); err != nil {
		t.Fatal(err)
	}

	// acme's drone d1 again: its records move back beside it.
	if err := s.CreateDrone(ctx, store.Drone{ID: "d1", TenantID: "acme", KeyHash: "k-d1-again"}); err != nil {
		t.Fatal(err)
	}
	if v := raw(t, s, bucketDrones, adjunctKey("d1", adjunctTracker)); !bytes.Equal(v, tracker) {
		t.Errorf("tracker beside acme's d1 created again: %q; want %q", v, tracker)
	}
	if v := raw(t, s, bucketDrones, adjunctKey("d1", adjunctDetector)); !bytes.Equal(v, detector) {
		t.Errorf("detector beside acme's d1 created again: %q; want %q", v, detector)
	}
	if v := raw(t, s, bucketAlertTrackers, tkey("acme", "d1")); v != nil {
		t.Errorf("tracker left in alertTrackers too: %q", v)
	}
	report(t, s, "acme", "d1", 2)
}

// A tracker written for a drone before the drone existed moves beside it
// when it is created (and the cached bytes of the prepared path stay
// right: the next evaluation goes on from it).
func TestCreateDroneMovesEarlierTrackerIn(t *testing.T) {
	s, _ := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	setup(t, s, map[string]string{"d2": "acme"})
	first := evaluate(t, s, "acme", "d1", 1)
	if err := s.CreateDrone(context.Background(), store.Drone{ID: "d1", TenantID: "acme", KeyHash: "k-d1"}); err != nil {
		t.Fatal(err)
	}
	if v := raw(t, s, bucketAlertTrackers, tkey("acme", "d1")); v != nil {
		t.Errorf("tracker still in alertTrackers: %q", v)
	}
	var saw alerting.Tracker
	if _, err := s.EvaluateAlerts(context.Background(), "acme", "d1", func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool) {
		saw = prev
		return prev, nil, false
	}); err != nil {
		t.Fatal(err)
	}
	if !saw.LastTS.Equal(first.LastTS) {
		t.Errorf("after CreateDrone the tracker is %+v; want the one written before (%v)", saw, first.LastTS)
	}
}

// Writes of the drone's document (rename, key, Remote ID identity, state)
// leave its tracker and detector as they are.
func TestDroneDocWritesKeepAdjuncts(t *testing.T) {
	s, _ := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	setup(t, s, map[string]string{"d1": "acme"})
	ctx := context.Background()
	report(t, s, "acme", "d1", 1)
	tracker := raw(t, s, bucketDrones, adjunctKey("d1", adjunctTracker))
	detector := raw(t, s, bucketDrones, adjunctKey("d1", adjunctDetector))
	if err := s.RenameDrone(ctx, "acme", "d1", "renamed"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDroneKey(ctx, "acme", "d1", "k-new"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDroneIdentity(ctx, "acme", "d1", &remoteid.Identity{SerialNumber: "MFR1C123456789ABC", UAType: "Helicopter"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.UpdateState(ctx, "acme", "d1", func(*events.DroneState) (events.DroneState, bool) {
		return events.DroneState{TS: t0.Add(time.Hour), Lat: 1, Lon: 2}, true
	}); err != nil {
		t.Fatal(err)
	}
	if v := raw(t, s, bucketDrones, adjunctKey("d1", adjunctTracker)); !bytes.Equal(v, tracker) {
		t.Errorf("tracker after the document's writes: %q; want %q", v, tracker)
	}
	if v := raw(t, s, bucketDrones, adjunctKey("d1", adjunctDetector)); !bytes.Equal(v, detector) {
		t.Errorf("detector after the document's writes: %q; want %q", v, detector)
	}
	d, err := s.Drone(ctx, "acme", "d1")
	if err != nil || d.Name != "renamed" || d.KeyHash != "k-new" || d.RemoteID == nil {
		t.Errorf("Drone = %+v, %v", d, err)
	}
}

// A drone id holding a NUL would take an adjunct's key: refused.
func TestCreateDroneRefusesNUL(t *testing.T) {
	s, _ := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	setup(t, s, map[string]string{"d1": "acme"})
	err := s.CreateDrone(context.Background(), store.Drone{ID: "d1\x00a", TenantID: "acme"})
	if err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Errorf("CreateDrone of an id with a NUL: %v; want it refused", err)
	}
	if v := raw(t, s, bucketDrones, adjunctKey("d1", adjunctTracker)); v != nil {
		t.Errorf("d1's tracker key written: %q", v)
	}
}

// A store an earlier release wrote (trackers and detectors in buckets of
// their own) is upgraded by Open, in batches, once: each record of a drone
// that exists and is its tenant's moves beside the drone's document, the
// others stay, and the writes go on from the moved records.
func TestOpenMovesRecordsOfEarlierStore(t *testing.T) {
	defer func(n int) { migrateBatch = n }(migrateBatch)
	migrateBatch = 2 // several transactions for each bucket
	path := filepath.Join(t.TempDir(), "s.db")
	s, _ := openTest(t, path)
	fleet := map[string]string{"d2": "other"}
	for d := range 7 {
		fleet[fmt.Sprint("d", d+3)] = "acme"
	}
	setup(t, s, fleet)
	for d := range 7 {
		report(t, s, "acme", fmt.Sprint("d", d+3), 1)
	}
	evaluate(t, s, "acme", "d2", 1)    // other's drone: stays
	evaluate(t, s, "acme", "ghost", 1) // no drone: stays
	// The layout of the earlier release: everything in the old buckets,
	// and no mark.
	want := map[string][]byte{}
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		drones := tx.Bucket(bucketDrones)
		var ks [][]byte
		if err := drones.ForEach(func(k, v []byte) error {
			if isAdjunct(k) {
				ks = append(ks, bytes.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range ks {
			id, sfx := string(k[:bytes.IndexByte(k, 0)]), string(k[bytes.IndexByte(k, 0):])
			old := bucketAlertTrackers
			if sfx == adjunctDetector {
				old = bucketFlightDetectors
			}
			v := bytes.Clone(drones.Get(k))
			want[string(k)] = v
			if err := tx.Bucket(old).Put(tkey("acme", id), v); err != nil {
				return err
			}
			if err := drones.Delete(k); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Delete(metaAdjuncts)
	}); err != nil {
		t.Fatal(err)
	}
	if len(want) != 14 {
		t.Fatalf("set up %d records of the earlier layout, want 14", len(want))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, _ = openTest(t, path)
	for k, v := range want {
		if got := raw(t, s, bucketDrones, []byte(k)); !bytes.Equal(got, v) {
			t.Errorf("%q after Open: %q; want %q", k, got, v)
		}
	}
	for _, a := range adjuncts {
		if err := s.db.View(func(tx *bbolt.Tx) error {
			return tx.Bucket(a.old).ForEach(func(k, _ []byte) error {
				if k := string(k); k != string(tkey("acme", "d2")) && k != string(tkey("acme", "ghost")) {
					t.Errorf("%s still holds %q", a.old, k)
				}
				return nil
			})
		}); err != nil {
			t.Fatal(err)
		}
	}
	if raw(t, s, bucketAlertTrackers, tkey("acme", "d2")) == nil || raw(t, s, bucketAlertTrackers, tkey("acme", "ghost")) == nil {
		t.Error("trackers of pairs without their drone did not stay")
	}
	if raw(t, s, bucketMeta, metaAdjuncts) == nil {
		t.Error("the store is not marked upgraded")
	}
	// The writes go on from the moved records: the detector's flight and
	// the tracker's last state.
	var sawDet flights.Detector
	if _, err := s.UpdateFlights(context.Background(), "acme", "d3", func(prev flights.Detector) (flights.Detector, flights.Changes, bool) {
		sawDet = prev
		return prev, flights.Changes{}, false
	}); err != nil {
		t.Fatal(err)
	}
	if sawDet.Head.IsZero() {
		t.Errorf("d3's detector after the upgrade is empty: %+v", sawDet)
	}
	if tr := evaluate(t, s, "acme", "d3", 2); !tr.LastTS.Equal(t0.Add(2 * time.Second)) {
		t.Errorf("d3's tracker after the upgrade: %+v", tr)
	}
	report(t, s, "acme", "d4", 2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A second Open finds the mark and moves nothing.
	s, _ = openTest(t, path)
	if raw(t, s, bucketAlertTrackers, tkey("acme", "ghost")) == nil {
		t.Error("the ghost's tracker went on the second Open")
	}
}
