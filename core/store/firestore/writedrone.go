package firestore

import (
	"context"
	"fmt"
	"time"

	fs "cloud.google.com/go/firestore"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// droneExists checks a drone's snapshot from a transaction's GetAll (a
// missing document is a snapshot that does not exist, not an error) and
// returns the drone; another tenant's is ErrNotFound.
func droneExists(snap *fs.DocumentSnapshot, tenantID string) (droneDoc, error) {
	if !snap.Exists() {
		return droneDoc{}, store.ErrNotFound
	}
	return getDrone(snap, nil, tenantID)
}

// WriteDrone implements store.DroneWriter: a batch's history points, the
// drone's state and its flights in one commit, after reading the drone and
// its detector in one call; the commit's preconditions stand in for a
// transaction (writeDroneOptimistic), which runs only when they keep
// failing or for a flights replay. Written apart (AppendTrack, UpdateState,
// UpdateFlights) that is two transactions, three reads and a share of a
// history commit per batch, and on Firestore each transaction (begin, read,
// commit) costs more than the documents it writes.
//
// A batch whose documents would not fit in one commit (maxBatchWrites)
// writes its points first with AppendTrack, after checking the drone
// exists, then the state and flights; a drone deleted in between keeps
// those points until their TTL, as when written apart.
func (s *Store) WriteDrone(ctx context.Context, w store.DroneWrite) (events.DroneState, bool, error) {
	what := "write drone " + w.DroneID
	if !validID(w.DroneID) {
		return events.DroneState{}, false, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	for _, p := range w.Points {
		if p.TenantID != w.TenantID || p.DroneID != w.DroneID {
			return events.DroneState{}, false, fmt.Errorf("%s: history point of drone %s/%s in the write of %s/%s",
				what, p.TenantID, p.DroneID, w.TenantID, w.DroneID)
		}
	}
	points, err := s.trackWrites(what, w.Points)
	if err != nil {
		return events.DroneState{}, false, err
	}
	// The state, the detector and a few flights besides the points.
	if len(points)+8 > maxBatchWrites {
		if _, err := s.Drone(ctx, w.TenantID, w.DroneID); err != nil {
			return events.DroneState{}, false, fmt.Errorf("%s: %w", what, err)
		}
		if err := s.AppendTrack(ctx, w.Points); err != nil {
			return events.DroneState{}, false, err
		}
		points = nil
	}
	droneRef := s.drones().Doc(w.DroneID)
	refs := []*fs.DocumentRef{droneRef}
	if w.Flights != nil {
		refs = append(refs, s.coll("flightDetectors").Doc(w.DroneID))
	}
	// Without a transaction first, and again while another writer of the
	// drone (a second process replica) wins the race: a transaction holds
	// its documents locked while it runs, and one whose replica is killed
	// keeps them locked until Firestore drops the abandoned lock (a minute
	// idle), which stalls every later write of those drones.
	for attempt := range optimisticAttempts {
		if err := optimisticPause(ctx, attempt); err != nil {
			return events.DroneState{}, false, mapErr(what, err)
		}
		if cur, wrote, done, err := s.writeDroneOptimistic(ctx, w, points, refs, what); done || err != nil {
			return cur, wrote, err
		}
	}
	var (
		cur   events.DroneState
		wrote bool
	)
	err = s.client.RunTransaction(ctx, func(ctx context.Context, tx *fs.Transaction) error {
		cur, wrote = events.DroneState{}, false
		snaps, err := tx.GetAll(refs)
		if err != nil {
			return err
		}
		d, err := droneExists(snaps[0], w.TenantID)
		if err != nil {
			return err
		}
		prev := d.State.state()
		st, ok := w.State(prev)
		if ok {
			cur, wrote = st, true
		} else if prev != nil {
			cur = *prev
		}
		var writeFlights func() error
		if w.Flights != nil {
			det, err := decodeDetector(snaps[1], w.TenantID, w.DroneID, what)
			if err != nil {
				return err
			}
			if _, writeFlights, err = s.planFlights(tx, w.TenantID, w.DroneID, det, w.Flights); err != nil {
				return err
			}
		}
		// Reads done: the writes.
		for _, p := range points {
			if err := tx.Set(p.ref, p.doc); err != nil {
				return err
			}
		}
		if ok {
			if err := tx.Update(droneRef, []fs.Update{{Path: "state", Value: toStateDoc(st)}}); err != nil {
				return err
			}
		}
		if writeFlights != nil {
			return writeFlights()
		}
		return nil
	}, fs.MaxAttempts(txAttempts))
	if err != nil {
		return events.DroneState{}, false, mapErr(what, err)
	}
	return cur, wrote, nil
}

// optimisticAttempts is how many times WriteDrone tries its commit with
// preconditions before it runs the transaction; optimisticBackoff times the
// attempt is the pause before each retry.
const (
	optimisticAttempts = 4
	optimisticBackoff  = 5 * time.Millisecond
)

// optimisticPause waits before an optimistic write's attempt (not before
// the first): ctx's error if it ends first.
func optimisticPause(ctx context.Context, attempt int) error {
	if attempt == 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Duration(attempt) * optimisticBackoff):
		return nil
	}
}

// writeDroneOptimistic is WriteDrone without a transaction: the drone and
// its detector read in one call, then one commit whose preconditions (each
// written document's update time as read, or the detector's absence)
// refuse it if either changed since: the transaction's effect in two calls
// instead of three, and as serialisable, since nothing is written that
// derives from what another writer changed in between. A document fn
// leaves as it was (a state not newer: a late or redelivered report;
// flights unchanged) is not written, so it needs no precondition: nothing
// written depends on it. Not done (nothing written: the caller tries again,
// then runs the transaction) when the commit was refused, or for a flights
// replay (ReplaceFrom), which reads more than the detector.
func (s *Store) writeDroneOptimistic(ctx context.Context, w store.DroneWrite, points []trackWrite,
	refs []*fs.DocumentRef, what string) (events.DroneState, bool, bool, error) {
	snaps, err := s.client.GetAll(ctx, refs)
	if err != nil {
		return events.DroneState{}, false, false, mapErr(what, err)
	}
	d, err := droneExists(snaps[0], w.TenantID)
	if err != nil {
		return events.DroneState{}, false, true, mapErr(what, err)
	}
	prev := d.State.state()
	st, ok := w.State(prev)
	var cur events.DroneState
	if ok {
		cur = st
	} else if prev != nil {
		cur = *prev
	}
	b := s.client.Batch() //nolint:staticcheck // a commit with preconditions; BulkWriter writes each document apart
	writes := len(points)
	if ok {
		b.Update(refs[0], []fs.Update{{Path: "state", Value: toStateDoc(st)}}, fs.LastUpdateTime(snaps[0].UpdateTime))
		writes++
	}
	if w.Flights != nil {
		prevDet, err := decodeDetector(snaps[1], w.TenantID, w.DroneID, what)
		if err != nil {
			return events.DroneState{}, false, false, nil
		}
		next, ch, changed := w.Flights(prevDet)
		if changed {
			if ch.ReplaceFrom != nil {
				return events.DroneState{}, false, false, nil
			}
			if err := s.batchFlights(b, w.TenantID, snaps[1], next, ch, nil); err != nil {
				return events.DroneState{}, false, true, err
			}
			writes++
		}
	}
	if writes == 0 {
		return cur, false, true, nil
	}
	for _, p := range points {
		b.Set(p.ref, p.doc)
	}
	if done, err := commitOptimistic(ctx, b, what); !done || err != nil {
		return events.DroneState{}, false, done, err
	}
	return cur, ok, true, nil
}

var _ store.DroneWriter = (*Store)(nil)
