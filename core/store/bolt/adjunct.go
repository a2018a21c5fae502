package bolt

import (
	"bytes"
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// A drone's flight detector is written with nearly every report, in the
// same transaction as its document (WriteDrone). Stored in a bucket of its
// own it sat on another leaf than the document, and a commit rewrote two
// pages for the drone; stored in the drones bucket right after the drone's
// document (its adjunct, key id\0f) both share a leaf, which a commit
// writes once. NUL sorts before every other byte and no drone id holds one
// (CreateDrone refuses them), so the adjunct comes straight after its
// document and no drone id can take its key.
//
// The alert tracker stays in its bucket: EvaluateAlerts writes it in
// another commit than the drone's document (the alerts function runs on
// the state event that WriteDrone's commit publishes), so beside the
// document it saved no page and made the drone's leaf, rewritten twice a
// report then, hold fewer drones (docs/performance.md, Round 8).
//
// Tenant safety: the adjunct's key does not name the tenant, the document
// does, and the detector is only read and written for a drone that exists
// and is the tenant's (WriteDrone, UpdateFlights check). So that a retired
// drone's detector never lands beside another tenant's drone of the same
// id, RetireDrone moves it back to the flightDetectors bucket under its
// tenant (where earlier releases left it) and CreateDrone moves the pair's
// detector from there beside the new document; Open moves those of
// existing drones once (migrateAdjuncts).
const adjunctDetector = "\x00f"

// adjuncts are the drones bucket's adjunct kinds with the bucket each was
// kept in before (and still is for a retired drone). The drone's history
// tail (adjunctHistory, historytail.go) is not among them: it had no
// bucket before, and it goes with the drone's history when it is retired.
var adjuncts = []struct {
	suffix string
	old    []byte
}{
	{adjunctDetector, bucketFlightDetectors},
}

// adjunctKey is the key of drone id's adjunct of the given kind.
func adjunctKey(droneID, suffix string) []byte {
	k := make([]byte, 0, len(droneID)+len(suffix))
	return append(append(k, droneID...), suffix...)
}

// isAdjunct tells an adjunct's key in the drones bucket from a drone's.
func isAdjunct(k []byte) bool { return bytes.IndexByte(k, 0) >= 0 }

// ownsDrone reports whether raw, a drone document (nil: none), is tenant
// tenantID's drone droneID.
func ownsDrone(raw []byte, tenantID, droneID string) (bool, error) {
	if raw == nil {
		return false, nil
	}
	if ok, known := ownedBy(raw, droneID, tenantID); known {
		return ok, nil
	}
	owner, err := topLevelString(raw, "tenantId")
	if err != nil {
		return false, fmt.Errorf("decode drone %s: %w", droneID, err)
	}
	return owner == tenantID, nil
}

// moveAdjunctsIn moves the records tenantID keeps for droneID in the old
// buckets (a retired drone's of the same tenant and id) beside the drone's
// document, which the caller has checked is tenantID's.
func moveAdjunctsIn(tx *bbolt.Tx, tenantID, droneID string) error {
	drones, k := tx.Bucket(bucketDrones), tkey(tenantID, droneID)
	for _, a := range adjuncts {
		old := tx.Bucket(a.old)
		v := old.Get(k)
		if v == nil {
			continue
		}
		if err := drones.Put(adjunctKey(droneID, a.suffix), bytes.Clone(v)); err != nil {
			return err
		}
		if err := old.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// moveAdjunctsOut moves droneID's adjuncts back to the old buckets under
// tenantID (the drone's tenant), before the drone's document goes: as
// before they lived beside it, a retired drone's detector stays (for a
// drone of the same tenant and id created again), but never where another
// tenant's drone of that id would find it.
func moveAdjunctsOut(tx *bbolt.Tx, tenantID, droneID string) error {
	drones, k := tx.Bucket(bucketDrones), tkey(tenantID, droneID)
	for _, a := range adjuncts {
		ak := adjunctKey(droneID, a.suffix)
		v := drones.Get(ak)
		if v == nil {
			continue
		}
		if err := tx.Bucket(a.old).Put(k, bytes.Clone(v)); err != nil {
			return err
		}
		if err := drones.Delete(ak); err != nil {
			return err
		}
	}
	return nil
}

// metaAdjuncts marks a store whose drones' detectors are all beside their
// documents (migrateAdjuncts has run, or the store began so).
var metaAdjuncts = []byte("dronesAdjuncts")

// migrateBatch bounds the records one transaction of migrateAdjuncts moves.
var migrateBatch = 2000

// migrateAdjuncts moves the detectors a store of an earlier release kept
// in a bucket of their own beside their drones' documents, once:
// Open runs it before anything else uses the file, in transactions of
// migrateBatch records (each record moves in one: an Open cut short
// leaves every record in one place, and the next Open goes on), and marks
// the store when done. Records of retired drones stay.
func migrateAdjuncts(db *bbolt.DB) error {
	done := false
	if err := db.View(func(tx *bbolt.Tx) error {
		done = tx.Bucket(bucketMeta).Get(metaAdjuncts) != nil
		return nil
	}); err != nil || done {
		return err
	}
	for _, a := range adjuncts {
		var from []byte // resume after this key
		for more := true; more; {
			err := db.Update(func(tx *bbolt.Tx) error {
				more = false
				old, drones := tx.Bucket(a.old), tx.Bucket(bucketDrones)
				var moves [][2][]byte // old key, new key
				c := old.Cursor()
				k, _ := c.First()
				if from != nil {
					if k, _ = c.Seek(from); k != nil && bytes.Equal(k, from) {
						k, _ = c.Next()
					}
				}
				for ; k != nil; k, _ = c.Next() {
					if len(moves) == migrateBatch {
						more = true
						break
					}
					from = bytes.Clone(k)
					tenantID, droneID, ok := splitTKey(k)
					if !ok {
						continue
					}
					owned, err := ownsDrone(drones.Get([]byte(droneID)), tenantID, droneID)
					if err != nil {
						return err
					}
					if owned {
						moves = append(moves, [2][]byte{bytes.Clone(k), adjunctKey(droneID, a.suffix)})
					}
				}
				for _, m := range moves {
					if err := drones.Put(m[1], bytes.Clone(old.Get(m[0]))); err != nil {
						return err
					}
					if err := old.Delete(m[0]); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("move %s beside their drones: %w", a.old, err)
			}
		}
	}
	return db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Put(metaAdjuncts, []byte{1}) })
}

// splitTKey splits tkey(tenant, drone); ok is false for any other form.
func splitTKey(k []byte) (tenantID, droneID string, ok bool) {
	parts := bytes.Split(k, []byte{0})
	if len(parts) != 3 || len(parts[2]) != 0 || len(parts[1]) == 0 {
		return "", "", false
	}
	return string(parts[0]), string(parts[1]), true
}
