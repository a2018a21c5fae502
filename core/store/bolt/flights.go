package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/dronetrack/dronetrack/core/flights"
	"github.com/dronetrack/dronetrack/core/store"
)

// Flight buckets, keyed like the alert buckets (tenant first).
var (
	// bucketFlightDetectors held the detectors before they moved beside
	// their drones' documents (adjunct.go): the detectors of retired
	// drones stay here.
	bucketFlightDetectors = []byte("flightDetectors") // tenant\0drone -> flights.Detector
	bucketFlights         = []byte("flights")         // tenant\0id -> flights.Flight
	// bucketDroneFlights indexes a drone's flights by start time, for the
	// per-drone list and a replay's replacement.
	bucketDroneFlights  = []byte("droneFlights")   // tenant\0drone\0start(8) -> id
	bucketFlightSetting = []byte("flightSettings") // tenant -> flights.Settings
)

var flightBuckets = [][]byte{bucketFlightDetectors, bucketFlights, bucketDroneFlights, bucketFlightSetting}

func startKey(tenantID, droneID string, start time.Time) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(start.UnixMicro())^(1<<63))
	return append(tkey(tenantID, droneID), k[:]...)
}

// UpdateFlights implements store.Flights in one bbolt write transaction.
func (s *Store) UpdateFlights(_ context.Context, tenantID, droneID string,
	fn func(prev flights.Detector) (flights.Detector, flights.Changes, bool)) (flights.Detector, error) {
	var cur flights.Detector
	err := s.batch("update flights of "+droneID, func(tx *bbolt.Tx) error {
		if err := droneIsTenants(tx, tenantID, droneID); err != nil {
			return err
		}
		var err error
		cur, err = updateFlights(tx, tenantID, droneID, fn)
		return err
	})
	return cur, err
}

// updateFlights is UpdateFlights's write, the drone's tenant checked: the
// detector is beside the drone's document (adjunct.go).
func updateFlights(tx *bbolt.Tx, tenantID, droneID string,
	fn func(prev flights.Detector) (flights.Detector, flights.Changes, bool)) (flights.Detector, error) {
	raw := tx.Bucket(bucketDrones).Get(adjunctKey(droneID, adjunctDetector))
	fw, err := prepareFlights(tenantID, droneID, raw, fn)
	if err != nil {
		return fw.next, err
	}
	return fw.next, fw.apply(tx, tenantID, droneID, raw)
}

// flightWrite is what updateFlights writes, worked out from the detector's
// stored bytes by prepareFlights, which needs no transaction: WriteDrone
// runs it before its group-commit call and apply then does only lookups
// and puts, on the writer goroutine.
type flightWrite struct {
	next     flights.Detector
	ch       flights.Changes
	ok       bool     // fn changed the detector
	detector []byte   // next's stored form
	records  [][]byte // key, value of each flight of ch.Upsert (nil value: left as stored, liveFlight)
}

// prepareFlights runs fn on the detector stored as raw (nil: none yet) and
// encodes what it changed.
func prepareFlights(tenantID, droneID string, raw []byte,
	fn func(prev flights.Detector) (flights.Detector, flights.Changes, bool)) (flightWrite, error) {
	prev := flights.Detector{TenantID: tenantID, DroneID: droneID}
	if raw != nil {
		if err := decodeDetector(raw, &prev); err != nil {
			return flightWrite{next: prev}, fmt.Errorf("decode flight detector %s: %w", droneID, err)
		}
	}
	var storedOpen string // the flight in progress as stored, whatever fn does to prev
	if prev.Open != nil {
		storedOpen = prev.Open.ID
	}
	next, ch, ok := fn(prev)
	fw := flightWrite{next: next, ch: ch, ok: ok}
	if !ok {
		fw.next = prev
		return fw, nil
	}
	for _, f := range ch.Upsert {
		if ch.ReplaceFrom == nil && f.InProgress && storedOpen == f.ID && next.Open != nil && next.Open.ID == f.ID {
			// The flight in progress, stored when it began: its record
			// is the detector's Open, which readers take (liveFlight).
			fw.records = append(fw.records, nil, nil)
			continue
		}
		v, err := json.Marshal(f)
		if err != nil {
			return fw, fmt.Errorf("encode flight %s: %w", f.ID, err)
		}
		fw.records = append(fw.records, tkey(tenantID, f.ID), v)
	}
	var err error
	// About the size of the stored form it replaces: growing the buffer
	// from empty allocated it twice over.
	if fw.detector, err = next.AppendBinary(make([]byte, 0, len(raw)+64)); err != nil {
		if fw.detector, err = json.Marshal(next); err != nil {
			return fw, fmt.Errorf("encode flight detector %s: %w", droneID, err)
		}
	}
	return fw, nil
}

// apply writes fw; old is what the detector holds now (read in tx). The
// drone must be tenantID's: the detector goes beside its document.
func (fw *flightWrite) apply(tx *bbolt.Tx, tenantID, droneID string, old []byte) error {
	if !fw.ok {
		return nil
	}
	recs, idx := tx.Bucket(bucketFlights), tx.Bucket(bucketDroneFlights)
	keep := map[string]bool{}
	for i, f := range fw.ch.Upsert {
		keep[f.ID] = true
		if fw.records[2*i] == nil {
			continue // in progress and stored already: see prepareFlights
		}
		if err := recs.Put(fw.records[2*i], fw.records[2*i+1]); err != nil {
			return err
		}
		// A flight in progress keeps its start: its index entry is there.
		if err := putChanged(idx, startKey(tenantID, droneID, f.Start), []byte(f.ID)); err != nil {
			return err
		}
	}
	if fw.ch.ReplaceFrom != nil {
		prefix := tkey(tenantID, droneID)
		var drop [][]byte
		c := idx.Cursor()
		for k, v := c.Seek(startKey(tenantID, droneID, *fw.ch.ReplaceFrom)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if !keep[string(v)] {
				drop = append(drop, slices.Clone(k), tkey(tenantID, string(v)))
			}
		}
		for i := 0; i < len(drop); i += 2 {
			if err := idx.Delete(drop[i]); err != nil {
				return err
			}
			if err := recs.Delete(drop[i+1]); err != nil {
				return err
			}
		}
	}
	return putOver(tx.Bucket(bucketDrones), adjunctKey(droneID, adjunctDetector), old, fw.detector)
}

// A drone's detector is read and written with every batch of its reports,
// so it is kept in its binary form (flights.Detector.AppendBinary), which
// costs a tenth of JSON's; detectors stored as JSON (by older versions, or
// holding a time the binary form cannot) are still read.
func decodeDetector(raw []byte, d *flights.Detector) error {
	if len(raw) > 0 && raw[0] == flights.DetectorCodec {
		return d.UnmarshalBinary(raw)
	}
	return json.Unmarshal(raw, d)
}

// A flight in progress changes with every report of its drone, and it is
// the drone's detector's Open (with InProgress set): its record is stored
// when the flight begins, when it ends, and by replays, not with every
// report (prepareFlights), which saved a page a report in flight. Readers
// take a record in progress from the detector (liveFlight).

// liveFlight replaces f, a stored record in progress, by the flight its
// drone's detector has open when that is f: the detector beside the
// drone's document when the drone is f's tenant's, else the one a retired
// drone left under its tenant in flightDetectors.
func liveFlight(tx *bbolt.Tx, f *flights.Flight) error {
	if !f.InProgress {
		return nil
	}
	drones := tx.Bucket(bucketDrones)
	owned, err := ownsDrone(drones.Get([]byte(f.DroneID)), f.TenantID, f.DroneID)
	if err != nil {
		return err
	}
	var raw []byte
	if owned {
		raw = drones.Get(adjunctKey(f.DroneID, adjunctDetector))
	} else {
		raw = tx.Bucket(bucketFlightDetectors).Get(tkey(f.TenantID, f.DroneID))
	}
	if raw == nil {
		return nil
	}
	var d flights.Detector
	if err := decodeDetector(raw, &d); err != nil {
		return fmt.Errorf("decode flight detector %s: %w", f.DroneID, err)
	}
	if d.Open != nil && d.Open.ID == f.ID {
		*f = *d.Open
		f.InProgress = true
	}
	return nil
}

// OwedReplays implements store.Flights by a scan of the detectors beside
// the drones (one machine's fleet; a retired drone's detector owes
// nothing anyone reads).
func (s *Store) OwedReplays(_ context.Context, before time.Time, limit int) ([]store.DroneRef, error) {
	var out []store.DroneRef
	err := s.view("list owed flights replays", func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketDrones).Cursor()
		for k, v := c.First(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			if !bytes.HasSuffix(k, []byte(adjunctDetector)) {
				continue
			}
			var d flights.Detector
			if err := decodeDetector(v, &d); err != nil {
				return fmt.Errorf("decode flight detector %q: %w", k, err)
			}
			if d.Owed != nil && d.Owed.Since.Before(before) {
				out = append(out, store.DroneRef{TenantID: d.TenantID, DroneID: d.DroneID})
			}
		}
		return nil
	})
	return out, err
}

// OwedReplay implements store.Flights from the detector beside the drone.
func (s *Store) OwedReplay(_ context.Context, tenantID, droneID string) (*flights.Owed, error) {
	var owed *flights.Owed
	err := s.view("read owed flights replay of drone "+droneID, func(tx *bbolt.Tx) error {
		drones := tx.Bucket(bucketDrones)
		owned, err := ownsDrone(drones.Get([]byte(droneID)), tenantID, droneID)
		if err != nil {
			return err
		}
		if !owned {
			return fmt.Errorf("drone %s: %w", droneID, store.ErrNotFound)
		}
		raw := drones.Get(adjunctKey(droneID, adjunctDetector))
		if raw == nil {
			return nil
		}
		var d flights.Detector
		if err := decodeDetector(raw, &d); err != nil {
			return fmt.Errorf("decode flight detector %s: %w", droneID, err)
		}
		owed = d.Owed
		return nil
	})
	return owed, err
}

// Flight implements store.Flights.
func (s *Store) Flight(_ context.Context, tenantID, id string) (flights.Flight, error) {
	var f flights.Flight
	err := s.view("get flight "+id, func(tx *bbolt.Tx) error {
		if err := getJSON(tx.Bucket(bucketFlights), tkey(tenantID, id), &f, "flight "+id); err != nil {
			return err
		}
		return liveFlight(tx, &f)
	})
	return f, err
}

// ListFlights implements store.Flights: a drone's through its start index,
// the fleet's by a scan of the tenant's flights (one machine's fleet).
func (s *Store) ListFlights(_ context.Context, q store.FlightQuery) ([]flights.Flight, error) {
	var out []flights.Flight
	in := func(f flights.Flight) bool { return !f.Start.Before(q.From) && f.Start.Before(q.To) }
	err := s.view("list flights", func(tx *bbolt.Tx) error {
		recs := tx.Bucket(bucketFlights)
		if q.DroneID == "" {
			var err error
			if out, err = scanPrefix(recs, tkey(q.TenantID), in); err != nil {
				return err
			}
			for i := range out {
				if err := liveFlight(tx, &out[i]); err != nil {
					return err
				}
			}
			return nil
		}
		prefix := tkey(q.TenantID, q.DroneID)
		c := tx.Bucket(bucketDroneFlights).Cursor()
		for k, v := c.Seek(startKey(q.TenantID, q.DroneID, q.From)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var f flights.Flight
			if err := getJSON(recs, tkey(q.TenantID, string(v)), &f, "flight "+string(v)); err != nil {
				return err
			}
			if !f.Start.Before(q.To) {
				break
			}
			if err := liveFlight(tx, &f); err != nil {
				return err
			}
			out = append(out, f)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortFlightsNewestFirst(out)
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

func sortFlightsNewestFirst(fs []flights.Flight) {
	slices.SortStableFunc(fs, func(a, b flights.Flight) int {
		if c := b.Start.Compare(a.Start); c != 0 {
			return c
		}
		return bytes.Compare([]byte(a.ID), []byte(b.ID))
	})
}

// FlightSettings implements store.Flights.
func (s *Store) FlightSettings(_ context.Context, tenantID string) (flights.Settings, error) {
	st := flights.DefaultSettings()
	err := s.view("get flight settings of "+tenantID, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketFlightSetting)
		if b.Get([]byte(tenantID)) == nil {
			return nil
		}
		return getJSON(b, []byte(tenantID), &st, "flight settings of "+tenantID)
	})
	return st, err
}

// PutFlightSettings implements store.Flights.
func (s *Store) PutFlightSettings(_ context.Context, tenantID string, st flights.Settings) error {
	return s.update("put flight settings of "+tenantID, func(tx *bbolt.Tx) error {
		return putJSON(tx.Bucket(bucketFlightSetting), []byte(tenantID), st)
	})
}

var _ store.Flights = (*Store)(nil)

// droneIsTenants checks the drone exists and is the tenant's, decoding
// only its tenant id (droneOf decodes the whole drone, state included, and
// this runs once per batch).
func droneIsTenants(tx *bbolt.Tx, tenantID, droneID string) error {
	owned, err := ownsDrone(tx.Bucket(bucketDrones).Get([]byte(droneID)), tenantID, droneID)
	if err != nil {
		return err
	}
	if !owned {
		return fmt.Errorf("drone %s: %w", droneID, store.ErrNotFound)
	}
	return nil
}

// ownedBy answers from the bytes json.Marshal writes for a store.Drone
// whose ids need no escaping, `{"id":"<id>","tenantId":"<tenant>",`;
// known is false for any other form (the caller decodes then).
func ownedBy(raw []byte, droneID, tenantID string) (ok, known bool) {
	head := `{"id":"` + droneID + `","tenantId":"`
	rest, found := bytes.CutPrefix(raw, []byte(head))
	if !found || !plainJSON(droneID) || !plainJSON(tenantID) {
		return false, false
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return false, false
	}
	return string(rest[:end]) == tenantID, true
}

// topLevelString reads one string member of a JSON object, stopping there:
// the drone's tenantId comes second, before its state, so the check reads a
// few tokens instead of the whole document (json.Unmarshal into a struct
// of one field still scans and validates all of it). A missing member is "".
func topLevelString(raw []byte, name string) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", fmt.Errorf("not a JSON object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", err
		}
		if key, _ := t.(string); key == name {
			var v string
			err := dec.Decode(&v)
			return v, err
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", err
		}
	}
	return "", nil
}
