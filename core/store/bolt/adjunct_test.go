package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
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
	"github.com/google/go-cmp/cmp"
	bbolt "go.etcd.io/bbolt"
)

// report writes one report of drone id of tenant as the pipeline does:
// WriteDrone (state and flights) and then EvaluateAlerts on its state.
func report(t testing.TB, s *Store, tenant, id string, i int) {
	t.Helper()
	reportArmed(t, s, tenant, id, i, true)
}

// reportArmed is report with the drone armed or not (a flight by the armed
// rule runs while it is).
func reportArmed(t testing.TB, s *Store, tenant, id string, i int, armed bool) {
	t.Helper()
	ctx := context.Background()
	rep := events.Report{TS: t0.Add(time.Duration(i) * time.Second), Lat: 52.5, Lon: 13.4 + float64(i)*1e-4,
		Armed: new(armed), Height: new(40.0), Speed: new(8.0), Battery: new(80.0)}
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

// A drone's detector is stored right after its document, on its leaf: a
// leaf boundary can fall between the two, but then only one drone's (at
// most one drone per boundary is split), so nearly every drone's
// WriteDrone dirties one leaf for both.
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
	if len(leaf) != 2*drones {
		t.Fatalf("the drones bucket holds %d keys, want %d (a document and a detector a drone)", len(leaf), 2*drones)
	}
	split := 0
	for d := range drones {
		id := fmt.Sprint("drone-", d)
		doc, ok := leaf[id]
		f, okF := leaf[id+adjunctDetector]
		if !ok || !okF {
			t.Fatalf("%s: document %v, detector %v stored beside it", id, ok, okF)
		}
		if f != doc {
			split++
		}
	}
	if split > len(leaves)-1 {
		t.Errorf("%d drones have records on two leaves, more than the %d boundaries between %d leaves: the records are not adjacent", split, len(leaves)-1, len(leaves))
	}
	t.Logf("%d drones, %d leaves, %d drones' records across a boundary", drones, len(leaves), split)
	// No detector in the old bucket; the trackers in theirs.
	if err := s.db.View(func(tx *bbolt.Tx) error {
		if n := tx.Bucket(bucketFlightDetectors).Stats().KeyN; n != 0 {
			t.Errorf("flightDetectors holds %d records; want them beside the drones", n)
		}
		if n := tx.Bucket(bucketAlertTrackers).Stats().KeyN; n != drones {
			t.Errorf("alertTrackers holds %d records; want %d", n, drones)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// The adjuncts are no drones: listings skip them; the link check finds
// the trackers as before.
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
	if strings.Join(got, ",") != "acme/d1,acme/d10,acme/ghost,other/d2" {
		t.Errorf("StaleTrackers = %v; want the three drones' and ghost's (alerts of a pair without its drone)", got)
	}
}

// Retiring a drone moves its detector back to the old bucket under its
// tenant: no drone of another tenant created with its id finds it, and a
// drone of its tenant created with its id again does, as before the
// detectors moved beside the drones.
func TestRetireMovesAdjunctsOut(t *testing.T) {
	s, _ := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	setup(t, s, map[string]string{"d1": "acme", "d2": "other"})
	ctx := context.Background()
	report(t, s, "acme", "d1", 1)
	detector := raw(t, s, bucketDrones, adjunctKey("d1", adjunctDetector))
	if detector == nil {
		t.Fatal("no detector beside d1")
	}
	if err := s.RetireDrone(ctx, "acme", "d1"); err != nil {
		t.Fatal(err)
	}
	if v := raw(t, s, bucketDrones, adjunctKey("d1", adjunctDetector)); v != nil {
		t.Errorf("detector of a retired drone still beside it: %q", v)
	}
	if v := raw(t, s, bucketFlightDetectors, tkey("acme", "d1")); !bytes.Equal(v, detector) {
		t.Errorf("retired detector in flightDetectors: %q; want %q", v, detector)
	}

	// Another tenant's drone of that id starts afresh.
	if err := s.CreateDrone(ctx, store.Drone{ID: "d1", TenantID: "other", KeyHash: "k-other-d1"}); err != nil {
		t.Fatal(err)
	}
	var saw flights.Detector
	if _, err := s.UpdateFlights(ctx, "other", "d1", func(prev flights.Detector) (flights.Detector, flights.Changes, bool) {
		saw = prev
		return prev, flights.Changes{}, false
	}); err != nil {
		t.Fatal(err)
	}
	if !saw.Head.IsZero() || saw.TenantID != "other" {
		t.Errorf("other's new d1 got detector %+v; want a new one", saw)
	}
	if err := s.RetireDrone(ctx, "other", "d1"); err != nil {
		t.Fatal(err)
	}

	// acme's drone d1 again: its detector moves back beside it.
	if err := s.CreateDrone(ctx, store.Drone{ID: "d1", TenantID: "acme", KeyHash: "k-d1-again"}); err != nil {
		t.Fatal(err)
	}
	if v := raw(t, s, bucketDrones, adjunctKey("d1", adjunctDetector)); !bytes.Equal(v, detector) {
		t.Errorf("detector beside acme's d1 created again: %q; want %q", v, detector)
	}
	if v := raw(t, s, bucketFlightDetectors, tkey("acme", "d1")); v != nil {
		t.Errorf("detector left in flightDetectors too: %q", v)
	}
	report(t, s, "acme", "d1", 2)
}

// Writes of the drone's document (rename, key, Remote ID identity, state)
// leave its detector as it is.
func TestDroneDocWritesKeepAdjuncts(t *testing.T) {
	s, _ := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	setup(t, s, map[string]string{"d1": "acme"})
	ctx := context.Background()
	report(t, s, "acme", "d1", 1)
	detector := raw(t, s, bucketDrones, adjunctKey("d1", adjunctDetector))
	if detector == nil {
		t.Fatal("no detector beside d1")
	}
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
	err := s.CreateDrone(context.Background(), store.Drone{ID: "d1\x00f", TenantID: "acme"})
	if err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Errorf("CreateDrone of an id with a NUL: %v; want it refused", err)
	}
	if v := raw(t, s, bucketDrones, adjunctKey("d1", adjunctDetector)); v != nil {
		t.Errorf("d1's detector key written: %q", v)
	}
}

// A store an earlier release wrote (detectors in a bucket of their own)
// is upgraded by Open, in batches, once: the detector of each drone that
// exists and is its tenant's moves beside the drone's document, the others
// (a retired drone's, one keyed by a tenant that does not own the drone of
// that id) stay, and the writes go on from the moved records.
func TestOpenMovesRecordsOfEarlierStore(t *testing.T) {
	defer func(n int) { migrateBatch = n }(migrateBatch)
	migrateBatch = 2 // several transactions
	path := filepath.Join(t.TempDir(), "s.db")
	s, _ := openTest(t, path)
	fleet := map[string]string{"d2": "other", "d20": "acme"}
	for d := range 7 {
		fleet[fmt.Sprint("d", d+3)] = "acme"
	}
	setup(t, s, fleet)
	for d := range 7 {
		report(t, s, "acme", fmt.Sprint("d", d+3), 1)
	}
	report(t, s, "acme", "d20", 1)
	if err := s.RetireDrone(context.Background(), "acme", "d20"); err != nil {
		t.Fatal(err)
	}
	retired := raw(t, s, bucketFlightDetectors, tkey("acme", "d20"))
	// The layout of the earlier release: the detectors in their bucket,
	// one under a tenant that does not own the drone of its id, no mark.
	want := map[string][]byte{}
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		drones, old := tx.Bucket(bucketDrones), tx.Bucket(bucketFlightDetectors)
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
			v := bytes.Clone(drones.Get(k))
			want[string(k)] = v
			if err := old.Put(tkey("acme", string(k[:bytes.IndexByte(k, 0)])), v); err != nil {
				return err
			}
			if err := drones.Delete(k); err != nil {
				return err
			}
		}
		if err := old.Put(tkey("acme", "d2"), []byte(`{"tenantId":"acme","droneId":"d2"}`)); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Delete(metaAdjuncts)
	}); err != nil {
		t.Fatal(err)
	}
	if len(want) != 7 || retired == nil {
		t.Fatalf("set up %d detectors of the earlier layout and the retired %q; want 7 and one", len(want), retired)
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
	stayed := func() {
		t.Helper()
		if err := s.db.View(func(tx *bbolt.Tx) error {
			var ks []string
			err := tx.Bucket(bucketFlightDetectors).ForEach(func(k, _ []byte) error {
				ks = append(ks, string(k))
				return nil
			})
			if want := []string{string(tkey("acme", "d2")), string(tkey("acme", "d20"))}; strings.Join(ks, ",") != strings.Join(want, ",") {
				t.Errorf("flightDetectors holds %q; want %q (other's drone, a retired drone)", ks, want)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if v := raw(t, s, bucketDrones, adjunctKey("d2", adjunctDetector)); v != nil {
			t.Errorf("acme's detector of d2 moved beside other's drone d2: %q", v)
		}
	}
	stayed()
	if raw(t, s, bucketMeta, metaAdjuncts) == nil {
		t.Error("the store is not marked upgraded")
	}
	// The writes go on from the moved records.
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
	report(t, s, "acme", "d4", 2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A second Open finds the mark and moves nothing.
	s, _ = openTest(t, path)
	stayed()
}

// A flight in progress is stored when it begins and when it ends, not with
// every report: readers take it from the drone's detector, which has it
// open, so they see it as of the last report.
func TestFlightInProgressReadFromDetector(t *testing.T) {
	s, _ := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	setup(t, s, map[string]string{"d1": "acme", "d2": "acme"})
	ctx := context.Background()
	for i := range 10 {
		report(t, s, "acme", "d1", i)
	}
	report(t, s, "acme", "d2", 0) // another drone's flight in the fleet list
	fs, err := s.ListFlights(ctx, store.FlightQuery{TenantID: "acme", DroneID: "d1", From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
	if err != nil || len(fs) != 1 {
		t.Fatalf("ListFlights(d1) = %+v, %v; want one flight", fs, err)
	}
	live := fs[0]
	if !live.InProgress || live.Points != 10 || !live.End.Equal(t0.Add(9*time.Second)) {
		t.Errorf("flight in progress listed as %+v; want 10 points, in progress, to the last report", live)
	}
	var stored flights.Flight
	if err := json.Unmarshal(raw(t, s, bucketFlights, tkey("acme", live.ID)), &stored); err != nil || stored.Points != 1 {
		t.Errorf("stored record of the flight in progress: %+v, %v; want the one written when it began", stored, err)
	}
	got, err := s.Flight(ctx, "acme", live.ID)
	if err != nil || !cmp.Equal(got, live) {
		t.Errorf("Flight = %+v, %v; want %+v", got, err, live)
	}
	if _, err := s.Flight(ctx, "other", live.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Flight of another tenant: %v; want ErrNotFound", err)
	}
	fleet, err := s.ListFlights(ctx, store.FlightQuery{TenantID: "acme", From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
	if err != nil || len(fleet) != 2 {
		t.Fatalf("fleet flights = %+v, %v; want two", fleet, err)
	}
	for _, f := range fleet {
		if f.ID == live.ID && !cmp.Equal(f, live) {
			t.Errorf("fleet list has %+v; want %+v", f, live)
		}
	}

	// A retired drone's flight reads from the detector it left.
	if err := s.RetireDrone(ctx, "acme", "d2"); err != nil {
		t.Fatal(err)
	}
	report(t, s, "acme", "d1", 10)
	fleet, err = s.ListFlights(ctx, store.FlightQuery{TenantID: "acme", From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
	if err != nil || len(fleet) != 2 {
		t.Fatalf("fleet flights after retiring d2 = %+v, %v; want two", fleet, err)
	}

	// Landed: the record is stored ended, and reads as stored.
	reportArmed(t, s, "acme", "d1", 11, false)
	var ended flights.Flight
	if err := json.Unmarshal(raw(t, s, bucketFlights, tkey("acme", live.ID)), &ended); err != nil || ended.InProgress || ended.Points != 12 {
		t.Errorf("stored record after landing: %+v, %v; want ended with 12 points (the disarmed report ends it)", ended, err)
	}
	if got, err := s.Flight(ctx, "acme", live.ID); err != nil || !cmp.Equal(got, ended) {
		t.Errorf("Flight after landing = %+v, %v; want %+v", got, err, ended)
	}
}
