package firestore

// Flights model: flights/{id} (tenantId, droneId, start and the flight as
// JSON in data), flightDetectors/{droneId} (tenantId, data) and
// flightSettings/{tenantId}. Flight ids hash the drone and the start, so
// they are global like drone ids; every read checks tenantId.
//
// Composite indexes the queries need in production (the emulator enforces
// none): flights (droneId, start desc) and flights (tenantId, start desc).

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	fs "cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dronetrack/dronetrack/core/flights"
	"github.com/dronetrack/dronetrack/core/store"
)

type flightDoc struct {
	TenantID string    `firestore:"tenantId"`
	DroneID  string    `firestore:"droneId"`
	Start    time.Time `firestore:"start"`
	Data     string    `firestore:"data"`
}

func toFlightDoc(f flights.Flight) (flightDoc, error) {
	raw, err := json.Marshal(f)
	if err != nil {
		return flightDoc{}, fmt.Errorf("encode flight %s: %w", f.ID, err)
	}
	return flightDoc{TenantID: f.TenantID, DroneID: f.DroneID, Start: f.Start, Data: string(raw)}, nil
}

func decodeFlight(snap *fs.DocumentSnapshot, tenantID, what string) (flights.Flight, error) {
	var d flightDoc
	if err := snap.DataTo(&d); err != nil {
		return flights.Flight{}, fmt.Errorf("%s: decode: %w", what, err)
	}
	return decodeData[flights.Flight](d.TenantID, d.Data, tenantID, what)
}

// UpdateFlights implements store.Flights: the drone and its detector read
// in one call, the flights a replay replaces read by a query, then one
// commit whose precondition on the detector (its update time as read, or
// its absence) refuses it if another writer changed the drone's flights in
// between; every flight write comes with a detector write, so the
// precondition covers the flights the query read. Retried while another
// replica wins the race, then a transaction, as WriteDrone does. A
// transaction would lock the detector, and on the emulator its flights
// query locks the flights of other drones too: under the redeliveries that
// follow a killed process replica (each redelivered report is late, so
// each batch replays), those transactions held every drone's commits until
// the store timeout, and their redeliveries replayed again.
func (s *Store) UpdateFlights(ctx context.Context, tenantID, droneID string,
	fn func(prev flights.Detector) (flights.Detector, flights.Changes, bool)) (flights.Detector, error) {
	what := "update flights of drone " + droneID
	if !validID(droneID) {
		return flights.Detector{}, notFound(what)
	}
	ref := s.coll("flightDetectors").Doc(droneID)
	for attempt := range optimisticAttempts {
		if err := optimisticPause(ctx, attempt); err != nil {
			return flights.Detector{}, mapErr(what, err)
		}
		if cur, done, err := s.updateFlightsOptimistic(ctx, tenantID, droneID, ref, fn, what); done || err != nil {
			return cur, err
		}
	}
	var cur flights.Detector
	err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *fs.Transaction) error {
		snaps, err := tx.GetAll([]*fs.DocumentRef{s.drones().Doc(droneID), ref}) // one call for both
		if err != nil {
			return err
		}
		if _, err := droneExists(snaps[0], tenantID); err != nil {
			return err
		}
		prev, err := decodeDetector(snaps[1], tenantID, droneID, what)
		if err != nil {
			return err
		}
		next, write, err := s.planFlights(tx, tenantID, droneID, prev, fn)
		if err != nil || write == nil {
			cur = prev
			return err
		}
		cur = next
		return write()
	}, fs.MaxAttempts(txAttempts))
	if err != nil {
		return flights.Detector{}, mapErr(what, err)
	}
	return cur, nil
}

// updateFlightsOptimistic is UpdateFlights without a transaction. Not done
// (nothing written: the caller tries again, then runs the transaction)
// when the commit was refused.
func (s *Store) updateFlightsOptimistic(ctx context.Context, tenantID, droneID string, ref *fs.DocumentRef,
	fn func(prev flights.Detector) (flights.Detector, flights.Changes, bool), what string) (flights.Detector, bool, error) {
	snaps, err := s.client.GetAll(ctx, []*fs.DocumentRef{s.drones().Doc(droneID), ref})
	if err != nil {
		return flights.Detector{}, false, mapErr(what, err)
	}
	if _, err := droneExists(snaps[0], tenantID); err != nil {
		return flights.Detector{}, true, mapErr(what, err)
	}
	prev, err := decodeDetector(snaps[1], tenantID, droneID, what)
	if err != nil {
		return flights.Detector{}, true, err
	}
	next, ch, ok := fn(prev)
	if !ok {
		return prev, true, nil
	}
	var drop []*fs.DocumentRef
	if ch.ReplaceFrom != nil {
		if drop, err = flightsToDrop(s.replayedFlights(droneID, *ch.ReplaceFrom).Documents(ctx), ch); err != nil {
			return flights.Detector{}, false, mapErr(what, err)
		}
	}
	b := s.client.Batch() //nolint:staticcheck // a commit with preconditions; BulkWriter writes each document apart
	if err := s.batchFlights(b, tenantID, snaps[1], next, ch, drop); err != nil {
		return flights.Detector{}, true, err
	}
	if done, err := commitOptimistic(ctx, b, what); !done || err != nil {
		return flights.Detector{}, done, err
	}
	return next, true, nil
}

// commitOptimistic commits a batch written with preconditions. Not done
// (nothing written) when a precondition refused it: another writer wrote
// one of its documents since they were read.
func commitOptimistic(ctx context.Context, b *fs.WriteBatch, what string) (bool, error) { //nolint:staticcheck // see Batch
	_, err := b.Commit(ctx)
	switch status.Code(err) {
	case codes.OK:
		return true, nil
	case codes.FailedPrecondition, codes.AlreadyExists, codes.NotFound, codes.Aborted:
		return false, nil
	default:
		return true, mapErr(what, err)
	}
}

// batchFlights adds a detector change to b: the flights it upserts, the
// ones it drops, and the detector itself with a precondition on what was
// read (det: its update time, or its absence).
func (s *Store) batchFlights(b *fs.WriteBatch, tenantID string, det *fs.DocumentSnapshot, //nolint:staticcheck // see Batch
	next flights.Detector, ch flights.Changes, drop []*fs.DocumentRef) error {
	for _, f := range ch.Upsert {
		fd, err := toFlightDoc(f)
		if err != nil {
			return err
		}
		b.Set(s.coll("flights").Doc(f.ID), fd)
	}
	for _, r := range drop {
		b.Delete(r)
	}
	dd, err := toDetectorDoc(tenantID, next)
	if err != nil {
		return err
	}
	if det.Exists() {
		var owed any = fs.Delete
		if dd.ReplayOwedSince != nil {
			owed = *dd.ReplayOwedSince
		}
		b.Update(det.Ref, []fs.Update{{Path: "tenantId", Value: dd.TenantID}, {Path: "data", Value: dd.Data},
			{Path: "replayOwedSince", Value: owed}}, fs.LastUpdateTime(det.UpdateTime))
	} else {
		b.Create(det.Ref, dd)
	}
	return nil
}

// detectorDoc is a drone's detector: the detector as JSON in data, and
// beside it when a replay is owed since (flights.Detector.Owed), which
// OwedReplays queries (a single-field index, which Firestore keeps by
// default).
type detectorDoc struct {
	TenantID        string     `firestore:"tenantId"`
	ReplayOwedSince *time.Time `firestore:"replayOwedSince,omitempty"`
	Data            string     `firestore:"data"`
}

func toDetectorDoc(tenantID string, d flights.Detector) (detectorDoc, error) {
	rd, err := encode(tenantID, d)
	if err != nil {
		return detectorDoc{}, err
	}
	dd := detectorDoc{TenantID: rd.TenantID, Data: rd.Data}
	if d.Owed != nil {
		since := d.Owed.Since
		dd.ReplayOwedSince = &since
	}
	return dd, nil
}

// OwedReplays implements store.Flights with one query on the owed time.
func (s *Store) OwedReplays(ctx context.Context, before time.Time, limit int) ([]store.DroneRef, error) {
	what := "list owed flights replays"
	q := s.coll("flightDetectors").Where("replayOwedSince", "<", before).OrderBy("replayOwedSince", fs.Asc)
	if limit > 0 {
		q = q.Limit(limit)
	}
	var out []store.DroneRef
	err := forEachDoc(ctx, q, what, func(snap *fs.DocumentSnapshot) error {
		var d detectorDoc
		if err := snap.DataTo(&d); err != nil {
			return fmt.Errorf("%s: decode: %w", what, err)
		}
		out = append(out, store.DroneRef{TenantID: d.TenantID, DroneID: snap.Ref.ID})
		return nil
	})
	return out, err
}

// OwedReplay implements store.Flights with one read of the drone and its
// detector.
func (s *Store) OwedReplay(ctx context.Context, tenantID, droneID string) (*flights.Owed, error) {
	what := "read owed flights replay of drone " + droneID
	if !validID(droneID) {
		return nil, notFound(what)
	}
	snaps, err := s.client.GetAll(ctx, []*fs.DocumentRef{s.drones().Doc(droneID), s.coll("flightDetectors").Doc(droneID)})
	if err != nil {
		return nil, mapErr(what, err)
	}
	if _, err := droneExists(snaps[0], tenantID); err != nil {
		return nil, mapErr(what, err)
	}
	d, err := decodeDetector(snaps[1], tenantID, droneID, what)
	if err != nil {
		return nil, err
	}
	return d.Owed, nil
}

// replayedFlights is the query of the drone's flights a replay from from
// replaces.
func (s *Store) replayedFlights(droneID string, from time.Time) fs.Query {
	return s.coll("flights").Where("droneId", "==", droneID).Where("start", ">=", from).OrderBy("start", fs.Desc)
}

// flightsToDrop reads a replay's flights (it, from replayedFlights) and
// returns those the replay does not upsert again.
func flightsToDrop(it *fs.DocumentIterator, ch flights.Changes) ([]*fs.DocumentRef, error) {
	defer it.Stop()
	keep := map[string]bool{}
	for _, f := range ch.Upsert {
		keep[f.ID] = true
	}
	var drop []*fs.DocumentRef
	for {
		snap, err := it.Next()
		if err == iterator.Done {
			return drop, nil
		}
		if err != nil {
			return nil, err
		}
		if !keep[snap.Ref.ID] {
			drop = append(drop, snap.Ref)
		}
	}
}

// decodeDetector is the drone's detector from its snapshot in a
// transaction (GetAll: a missing one is a new detector).
func decodeDetector(snap *fs.DocumentSnapshot, tenantID, droneID, what string) (flights.Detector, error) {
	if !snap.Exists() {
		return flights.Detector{TenantID: tenantID, DroneID: droneID}, nil
	}
	return decodeSnap[flights.Detector](snap, nil, tenantID, what)
}

// planFlights runs fn on the drone's detector prev in tx and does the
// transaction's reads (the flights a replay replaces). It returns the
// detector and what writes it, nil when fn changed nothing: Firestore
// transactions read everything before they write, so a caller that
// writes more calls write after its own reads.
func (s *Store) planFlights(tx *fs.Transaction, tenantID, droneID string, prev flights.Detector,
	fn func(prev flights.Detector) (flights.Detector, flights.Changes, bool)) (flights.Detector, func() error, error) {
	next, ch, ok := fn(prev)
	if !ok {
		return prev, nil, nil
	}
	var drop []*fs.DocumentRef
	if ch.ReplaceFrom != nil {
		var err error
		if drop, err = flightsToDrop(tx.Documents(s.replayedFlights(droneID, *ch.ReplaceFrom)), ch); err != nil {
			return prev, nil, err
		}
	}
	return next, func() error {
		for _, f := range ch.Upsert {
			d, err := toFlightDoc(f)
			if err != nil {
				return err
			}
			if err := tx.Set(s.coll("flights").Doc(f.ID), d); err != nil {
				return err
			}
		}
		for _, r := range drop {
			if err := tx.Delete(r); err != nil {
				return err
			}
		}
		d, err := toDetectorDoc(tenantID, next)
		if err != nil {
			return err
		}
		return tx.Set(s.coll("flightDetectors").Doc(droneID), d)
	}, nil
}

// Flight implements store.Flights.
func (s *Store) Flight(ctx context.Context, tenantID, id string) (flights.Flight, error) {
	what := "get flight " + id
	if !validID(id) {
		return flights.Flight{}, notFound(what)
	}
	snap, err := s.coll("flights").Doc(id).Get(ctx)
	if err != nil {
		return flights.Flight{}, mapErr(what, err)
	}
	return decodeFlight(snap, tenantID, what)
}

// ListFlights implements store.Flights with one query on the start index.
func (s *Store) ListFlights(ctx context.Context, q store.FlightQuery) ([]flights.Flight, error) {
	what := "list flights"
	var base fs.Query
	if q.DroneID != "" {
		base = s.coll("flights").Where("droneId", "==", q.DroneID)
	} else {
		base = s.coll("flights").Where("tenantId", "==", q.TenantID)
	}
	fq := base.Where("start", ">=", q.From).Where("start", "<", q.To).OrderBy("start", fs.Desc)
	if q.Limit > 0 {
		fq = fq.Limit(q.Limit)
	}
	var out []flights.Flight
	err := forEachDoc(ctx, fq, what, func(snap *fs.DocumentSnapshot) error {
		f, err := decodeFlight(snap, "", what)
		if err == nil && f.TenantID == q.TenantID { // a drone id of another tenant finds nothing
			out = append(out, f)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FlightSettings implements store.Flights.
func (s *Store) FlightSettings(ctx context.Context, tenantID string) (flights.Settings, error) {
	return tenantSettings(ctx, s, "flightSettings", tenantID, flights.DefaultSettings(), "get flight settings of "+tenantID)
}

// PutFlightSettings implements store.Flights.
func (s *Store) PutFlightSettings(ctx context.Context, tenantID string, st flights.Settings) error {
	return s.putTenantSettings(ctx, "flightSettings", tenantID, st, "put flight settings of "+tenantID)
}

var _ store.Flights = (*Store)(nil)
