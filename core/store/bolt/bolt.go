// Package bolt is the embedded store for one-machine mode: a single bbolt
// file holding the same model as Firestore (tenants, drones with their latest
// state, a key-hash index, per-drone history ordered by time).
//
// History points carry ExpireAt (process sets report time + HISTORY_TTL).
// Reads hide expired points; a background sweeper started by Open deletes
// them in bounded batches, through an index by expiry (prune.go), as
// Firestore's TTL policy does in the cluster. bbolt reuses the freed pages,
// so the file stops growing once the oldest history expires, but it never
// shrinks: a file that grew before pruning keeps its size (its free pages
// are reused first); compact it offline (`bbolt compact`) to give space
// back.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var (
	bucketTenants = []byte("tenants")
	bucketDrones  = []byte("drones")
	bucketKeys    = []byte("droneKeys")
	bucketTrack   = []byte("track") // one sub-bucket per drone id
)

// lockTimeout bounds the wait for bbolt's exclusive file lock: a second
// process opening the same file fails fast with a clear error instead of
// hanging.
const lockTimeout = 2 * time.Second

// Store is a store.Store on one bbolt file.
type Store struct {
	db    *bbolt.DB
	now   func() time.Time
	group *groupCommit
	cfg   config

	pruneMu   sync.Mutex // one sweep at a time
	stopPrune context.CancelFunc
	pruneDone chan struct{} // closed when the sweeper has returned
	closeOnce sync.Once
	closeErr  error

	// written is the last stored bytes of each drone's document, flight
	// detector and alert tracker that WriteDrone and EvaluateAlerts wrote
	// or read (prepared.go), so the next write of the drone works out its
	// values before its transaction without a read transaction.
	written lastWritten

	// trackers holds alert trackers whose only change is the drone's
	// signs of life, until they are written together (trackers.go).
	trackers *deferredTrackers
}

var _ store.Store = (*Store)(nil)

// Open opens (creating when missing) the store file at path and starts the
// sweeper that deletes expired history (see WithPruneEvery and Prune).
// bbolt reuses the pages of deleted points, so under a steady load the
// file stops growing once history older than its expiry is being deleted;
// it does not shrink (bbolt never returns space to the file system).
func Open(path string, opts ...Option) (*Store, error) {
	cfg := config{pruneEvery: DefaultPruneEvery, pruneBatch: defaultPruneBatch, commitGap: commitGap, maxCommitGap: maxCommitGap, trimBudget: trimBudget}
	for _, o := range opts {
		o(&cfg)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: lockTimeout, InitialMmapSize: cfg.mmapSize,
		// No freelist page written and synced with every commit: bbolt
		// rebuilds the list by walking the file's pages when it opens it
		// instead. The hashmap freelist keeps allocation cheap when the
		// list is long (pruned history frees many pages).
		NoFreelistSync: !cfg.syncFreelist, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("open store %s: locked by another process (is `dronetrack up` running on this data dir?): %w", path, err)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range append([][]byte{bucketTenants, bucketDrones, bucketKeys, bucketTrack, bucketTrackExpiry, bucketMeta},
			slices.Concat(accountBuckets, alertBuckets, linkBuckets, channelBuckets, flightBuckets, [][]byte{bucketRIDTests})...) {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return initExpiryIndex(tx)
	})
	if err == nil {
		err = migrateAdjuncts(db)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init store %s: %w", path, err)
	}
	// Batch waits this long for company: short, so a lone write is not
	// held back noticeably, long enough to merge a burst.
	db.MaxBatchDelay = 2 * time.Millisecond
	g := &groupCommit{db: db, gap: cfg.commitGap, maxGap: cfg.maxCommitGap, full: make(chan struct{}, 1),
		faults: newFaultAround(cfg.faultAround), rss: openFileRSS(), budget: cfg.trimBudget}
	g.unmapResident() // and turns fault-around off for the mapping
	s := &Store{db: db, now: time.Now, group: g, cfg: cfg, pruneDone: make(chan struct{}), trackers: newDeferredTrackers()}
	go s.flushLoop()
	ctx, cancel := context.WithCancel(context.Background())
	s.stopPrune = cancel
	if cfg.pruneEvery > 0 {
		go s.pruneLoop(ctx, cfg.pruneEvery)
	} else {
		close(s.pruneDone)
	}
	return s, nil
}

// FaultAround is why the kernel's fault-around is still on for the store
// file's mapping against the store's wish (a kernel before Linux 6.7, a
// seccomp filter refusing userfaultfd): up then holds more of the file
// resident between trims. Nil when it is off, or left on by choice
// (WithFaultAround).
func (s *Store) FaultAround() error { return s.group.faults.reason() }

// Close stops the sweeper (an interrupted sweep loses nothing: each batch
// is its own transaction), writes the alert trackers it holds back
// (trackers.go) and releases the file. Closing twice is a no-op.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stopPrune()
		<-s.pruneDone
		flushErr := s.closeTrackers()
		s.closeErr = errors.Join(flushErr, s.db.Close())
		s.group.faults.Close()
		s.group.rss.Close()
	})
	return s.closeErr
}

// CreateTenant implements store.Store.
func (s *Store) CreateTenant(_ context.Context, t store.Tenant) error {
	return s.update("create tenant "+t.ID, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketTenants)
		if b.Get([]byte(t.ID)) != nil {
			return fmt.Errorf("tenant %s: %w", t.ID, store.ErrAlreadyExists)
		}
		return putJSON(b, []byte(t.ID), t)
	})
}

// Tenant implements store.Store.
func (s *Store) Tenant(_ context.Context, id string) (store.Tenant, error) {
	var t store.Tenant
	err := s.view("get tenant "+id, func(tx *bbolt.Tx) error {
		return getJSON(tx.Bucket(bucketTenants), []byte(id), &t, "tenant "+id)
	})
	return t, err
}

// CreateDrone implements store.Store. Drone ids holding a NUL are refused:
// the key of a drone's detector beside its document is its id, a NUL and
// a letter (adjunct.go).
func (s *Store) CreateDrone(_ context.Context, d store.Drone) error {
	if d.ID == "" || strings.IndexByte(d.ID, 0) >= 0 {
		return fmt.Errorf("create drone %q: a drone id must be non-empty and hold no NUL byte", d.ID)
	}
	return s.update("create drone "+d.ID, func(tx *bbolt.Tx) error {
		drones, keys := tx.Bucket(bucketDrones), tx.Bucket(bucketKeys)
		if drones.Get([]byte(d.ID)) != nil {
			return fmt.Errorf("drone %s: %w", d.ID, store.ErrAlreadyExists)
		}
		if d.KeyHash != "" {
			if keys.Get([]byte(d.KeyHash)) != nil {
				return fmt.Errorf("drone key: %w", store.ErrAlreadyExists)
			}
			if err := keys.Put([]byte(d.KeyHash), []byte(d.ID)); err != nil {
				return err
			}
		}
		if err := putJSON(drones, []byte(d.ID), d); err != nil {
			return err
		}
		// A history tail goes with its drone (RetireDrone deletes it): one
		// found without its document belongs to no drone of this tenant.
		if err := drones.Delete(adjunctKey(d.ID, adjunctHistory)); err != nil {
			return err
		}
		// The detector of a drone of this tenant and id retired earlier
		// goes beside the document, where it is read from now.
		return moveAdjunctsIn(tx, d.TenantID, d.ID)
	})
}

// Drone implements store.Store.
func (s *Store) Drone(_ context.Context, tenantID, droneID string) (store.Drone, error) {
	var d store.Drone
	err := s.view("get drone "+droneID, func(tx *bbolt.Tx) error {
		var err error
		d, err = droneOf(tx, tenantID, droneID)
		return err
	})
	return d, err
}

// DroneByKeyHash implements store.Store.
func (s *Store) DroneByKeyHash(_ context.Context, keyHash string) (store.Drone, error) {
	var d store.Drone
	err := s.view("find drone by key", func(tx *bbolt.Tx) error {
		id := tx.Bucket(bucketKeys).Get([]byte(keyHash))
		if id == nil {
			return fmt.Errorf("drone key: %w", store.ErrNotFound)
		}
		return getJSON(tx.Bucket(bucketDrones), id, &d, "drone "+string(id))
	})
	return d, err
}

// Drones implements store.Store. It scans every drone: one-machine fleets
// are small enough, and the cache serves the hot path.
func (s *Store) Drones(_ context.Context, tenantID string) ([]store.Drone, error) {
	var out []store.Drone
	err := s.view("list drones", func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketDrones).ForEach(func(k, v []byte) error {
			if isAdjunct(k) {
				return nil // a drone's detector (adjunct.go)
			}
			var d store.Drone
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode drone %s: %w", k, err)
			}
			if d.TenantID == tenantID {
				out = append(out, d)
			}
			return nil
		})
	})
	return out, err
}

// LatestState implements store.Store.
func (s *Store) LatestState(_ context.Context, tenantID, droneID string) (events.DroneState, error) {
	var st events.DroneState
	err := s.view("get state "+droneID, func(tx *bbolt.Tx) error {
		d, err := droneOf(tx, tenantID, droneID)
		if err != nil {
			return err
		}
		if d.State == nil {
			return fmt.Errorf("state of drone %s: %w", droneID, store.ErrNotFound)
		}
		st = *d.State
		return nil
	})
	return st, err
}

// UpdateState implements store.Store in one bbolt write transaction, which
// bbolt serialises, so concurrent updates cannot lose each other.
func (s *Store) UpdateState(_ context.Context, tenantID, droneID string,
	next func(prev *events.DroneState) (events.DroneState, bool)) (events.DroneState, bool, error) {
	var (
		cur   events.DroneState
		wrote bool
	)
	err := s.batch("update state "+droneID, func(tx *bbolt.Tx) error {
		cur, wrote = events.DroneState{}, false // Batch may rerun this function
		d, raw, err := droneDoc(tx, tenantID, droneID)
		if err != nil {
			return err
		}
		cur, wrote, err = updateState(tx, d, raw, next)
		return err
	})
	return cur, wrote, err
}

// updateState is UpdateState's write on the drone d just read from raw.
func updateState(tx *bbolt.Tx, d store.Drone, raw []byte, next func(prev *events.DroneState) (events.DroneState, bool)) (events.DroneState, bool, error) {
	sw, err := prepareState(d, next)
	if err != nil {
		return sw.cur, false, err
	}
	return sw.cur, sw.wrote, sw.apply(tx, d.ID, raw)
}

// stateWrite is what updateState writes, worked out by prepareState from
// the drone's document without a transaction (WriteDrone runs it before its
// group-commit call).
type stateWrite struct {
	cur   events.DroneState
	wrote bool
	doc   []byte      // the drone's document with cur, when wrote
	drone store.Drone // doc decoded, when wrote
}

// prepareState runs next on d's state and encodes d with its result.
func prepareState(d store.Drone, next func(prev *events.DroneState) (events.DroneState, bool)) (stateWrite, error) {
	st, ok := next(d.State)
	if !ok {
		if d.State != nil {
			return stateWrite{cur: *d.State}, nil
		}
		return stateWrite{}, nil
	}
	d.State = &st
	doc, err := encodeDrone(d)
	if err != nil {
		return stateWrite{}, err
	}
	return stateWrite{cur: st, wrote: true, doc: doc, drone: d}, nil
}

// apply writes sw over the drone's document old (read in tx).
func (sw *stateWrite) apply(tx *bbolt.Tx, droneID string, old []byte) error {
	if !sw.wrote {
		return nil
	}
	return putOver(tx.Bucket(bucketDrones), []byte(droneID), old, sw.doc)
}

// WriteDrone implements store.DroneWriter: the drone's history points,
// state and flights in one group-commit call, the drone read once there.
// The group commit runs every call's function on its one writer goroutine,
// which is what caps the store's write rate, so what needs no transaction
// is done before the call, on the caller's goroutine: the points are
// encoded, and the state and flights are worked out (folded, encoded) from
// the drone's document and detector as last written (s.written, or a read
// transaction when not known). The function then only compares those with
// what it reads and puts; should either differ (another write of the drone
// came first), it works that part out again from what it reads, as before.
func (s *Store) WriteDrone(_ context.Context, w store.DroneWrite) (events.DroneState, bool, error) {
	var (
		cur   events.DroneState
		wrote bool
	)
	var mismatch error
	for _, p := range w.Points {
		if p.TenantID != w.TenantID || p.DroneID != w.DroneID {
			mismatch = fmt.Errorf("history point of drone %s/%s in the write of %s/%s", p.TenantID, p.DroneID, w.TenantID, w.DroneID)
			break
		}
	}
	var pts []encodedPoint
	if mismatch == nil {
		var err error
		if pts, err = encodePoints(w.Points); err != nil {
			return cur, false, fmt.Errorf("write drone %s: %w", w.DroneID, err)
		}
	}
	pre := s.prepareDrone(w)
	detKey := tkey(w.TenantID, w.DroneID) // the detector's key in s.written
	var afterDoc, afterDet []byte         // what the transaction leaves stored
	var afterDrone *store.Drone           // afterDoc decoded
	err := s.batch("write drone "+w.DroneID, func(tx *bbolt.Tx) error {
		cur, wrote = events.DroneState{}, false // the group commit may rerun this function
		raw := tx.Bucket(bucketDrones).Get([]byte(w.DroneID))
		fresh := pre != nil && raw != nil && bytes.Equal(raw, pre.doc)
		var d store.Drone
		if !fresh {
			var err error
			if d, raw, err = droneDoc(tx, w.TenantID, w.DroneID); err != nil {
				return err
			}
		}
		if mismatch != nil {
			return mismatch
		}
		if err := appendTail(tx, w.DroneID, pts); err != nil {
			return err
		}
		sw := &stateWrite{}
		if fresh {
			sw = &pre.state
		} else {
			var err error
			if *sw, err = prepareState(d, w.State); err != nil {
				return err
			}
		}
		if err := sw.apply(tx, w.DroneID, raw); err != nil {
			return err
		}
		cur, wrote = sw.cur, sw.wrote
		if afterDoc = sw.doc; sw.wrote {
			// A copy: &sw.drone would keep pre alive, and with it the
			// drone kept by the write before, and so on.
			dr := sw.drone
			afterDrone = &dr
		} else {
			afterDoc = bytes.Clone(raw)
			if afterDrone = &d; fresh {
				afterDrone = pre.drone
			}
		}
		if w.Flights == nil {
			return nil
		}
		det := tx.Bucket(bucketDrones).Get(adjunctKey(w.DroneID, adjunctDetector))
		fw := &flightWrite{}
		if fresh && (det == nil) == (pre.detector == nil) && bytes.Equal(det, pre.detector) {
			fw = &pre.flights
		} else {
			var err error
			if *fw, err = prepareFlights(w.TenantID, w.DroneID, det, w.Flights); err != nil {
				return err
			}
		}
		if afterDet = fw.detector; !fw.ok {
			afterDet = bytes.Clone(det)
		}
		return fw.apply(tx, w.TenantID, w.DroneID, det)
	})
	if err == nil {
		s.written.putDecoded("drone\x00"+w.DroneID, afterDoc, afterDrone)
		if w.Flights != nil {
			s.written.put("flights\x00"+string(detKey), afterDet)
		}
	}
	return cur, wrote, err
}

// preparedDrone is WriteDrone's state and flights worked out before its
// transaction, from the drone's document doc and its flight detector
// (nil: none yet) as stored then.
type preparedDrone struct {
	doc, detector []byte
	drone         *store.Drone // doc decoded
	state         stateWrite
	flights       flightWrite
}

// prepareDrone works out the write of w's state and flights from the
// drone's document and detector as last written (a read transaction when
// either is not known); nil when any of it fails (WriteDrone then does all
// of it in its transaction, where the failure is reported).
func (s *Store) prepareDrone(w store.DroneWrite) *preparedDrone {
	var pre preparedDrone
	detKey := string(tkey(w.TenantID, w.DroneID))
	doc, docVal, okDoc := s.written.getDecoded("drone\x00" + w.DroneID)
	det, okDet := s.written.get("flights\x00" + detKey)
	if okDoc && (okDet || w.Flights == nil) {
		pre.doc, pre.detector = doc, det
		pre.drone, _ = docVal.(*store.Drone)
	} else if err := s.view("read drone "+w.DroneID, func(tx *bbolt.Tx) error {
		pre.doc = bytes.Clone(tx.Bucket(bucketDrones).Get([]byte(w.DroneID)))
		if w.Flights != nil {
			pre.detector = bytes.Clone(tx.Bucket(bucketDrones).Get(adjunctKey(w.DroneID, adjunctDetector)))
		}
		return nil
	}); err != nil {
		return nil
	}
	if pre.doc == nil {
		return nil
	}
	if pre.drone == nil {
		// Not kept by the last write (read above, or a write that failed):
		// decoded here, once.
		var d store.Drone
		if !readDrone(pre.doc, &d) {
			d = store.Drone{}
			if json.Unmarshal(pre.doc, &d) != nil {
				return nil
			}
		}
		pre.drone = &d
	}
	d := *pre.drone // prepareState sets its copy's state
	if d.TenantID != w.TenantID {
		return nil
	}
	var err error
	if pre.state, err = prepareState(d, w.State); err != nil {
		return nil
	}
	if w.Flights != nil {
		if pre.flights, err = prepareFlights(w.TenantID, w.DroneID, pre.detector, w.Flights); err != nil {
			return nil
		}
	}
	return &pre
}

var _ store.DroneWriter = (*Store)(nil)

// AppendTrack implements store.Store: keys are the big-endian sample time,
// so a duplicate overwrites itself and range scans come out in time order.
// The expiry index the sweeper scans is written in the same transaction.
func (s *Store) AppendTrack(_ context.Context, points []store.TrackPoint) error {
	if len(points) == 0 {
		return nil
	}
	what := fmt.Sprintf("append %d track points", len(points))
	pts, err := encodePoints(points)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return s.batch(what, func(tx *bbolt.Tx) error {
		return appendTrack(tx, pts)
	})
}

// encodedPoint is a history point as appendTrack writes it: its drone's
// bucket, its key there, its value and its expiry index key (nil: it
// never expires).
type encodedPoint struct {
	drone []byte
	key   [8]byte
	val   []byte
	exp   []byte
}

// encodePoints encodes points for appendTrack, outside the transaction.
func encodePoints(points []store.TrackPoint) ([]encodedPoint, error) {
	out := make([]encodedPoint, len(points))
	var drone []byte
	for i, p := range points {
		if drone == nil || string(drone) != p.DroneID {
			drone = []byte(p.DroneID)
		}
		raw, err := encodeTrackPoint(p)
		if err != nil {
			return nil, err
		}
		e := encodedPoint{drone: drone, key: tsKey(p.Report.TS), val: raw}
		if !p.ExpireAt.IsZero() {
			e.exp = expiryKey(p.ExpireAt, e.key[:], drone)
		}
		out[i] = e
	}
	return out, nil
}

// appendTrack is AppendTrack's write: only lookups and puts, the points
// encoded already. It writes the drones' history buckets, after moving
// their tails there (WriteDrone writes a drone's tail: appendTail).
func appendTrack(tx *bbolt.Tx, points []encodedPoint) error {
	if len(points) == 0 {
		return nil
	}
	track, idx := tx.Bucket(bucketTrack), tx.Bucket(bucketTrackExpiry)
	idx.FillPercent = appendFill
	var (
		b      *bbolt.Bucket
		lastID []byte
	)
	for i := range points {
		p := &points[i]
		if b == nil || string(p.drone) != string(lastID) {
			// The drone's newest points may be in its tail beside its
			// document (historytail.go): they go into the bucket first.
			if err := flushTailOf(tx, p.drone); err != nil {
				return err
			}
			var err error
			if b, err = track.CreateBucketIfNotExists(p.drone); err != nil {
				return err
			}
			b.FillPercent = appendFill
			lastID = p.drone
			if err := packTrackLeaf(track, b, string(lastID)); err != nil {
				return err
			}
		}
		old := b.Get(p.key[:])
		if old != nil && bytes.Equal(old, p.val) {
			continue // a redelivered point: its page and index entry stay as they are
		}
		if err := reindexPoint(idx, old, p.key[:], p.drone, p.exp); err != nil {
			return err
		}
		if err := b.Put(p.key[:], p.val); err != nil {
			return err
		}
	}
	return nil
}

// Track implements store.Store: the drone's history bucket's points, then
// its tail's (historytail.go: every tail key is after every bucket key; a
// key in both, which the writes never leave, is read once, from the tail).
func (s *Store) Track(_ context.Context, q store.TrackQuery) ([]store.TrackPoint, error) {
	var out []store.TrackPoint
	now := s.now()
	err := s.view("read track of "+q.DroneID, func(tx *bbolt.Tx) error {
		if _, err := droneOf(tx, q.TenantID, q.DroneID); err != nil {
			return err
		}
		tail, err := readTail(tx, q.DroneID)
		if err != nil {
			return err
		}
		start := tsKey(q.From)
		if !q.After.IsZero() && !q.After.Before(q.From) {
			k := tsKey(q.After)
			binary.BigEndian.PutUint64(start[:], binary.BigEndian.Uint64(k[:])+1)
		}
		var end []byte
		if !q.To.IsZero() {
			e := tsKey(q.To)
			end = e[:]
		}
		// take adds the point stored as v when the query wants it; false
		// when the query has all it wants.
		take := func(v []byte) (bool, error) {
			var p store.TrackPoint
			if err := decodeTrackPoint(v, q.DroneID, &p); err != nil {
				return false, err
			}
			if p.TenantID != q.TenantID || (!p.ExpireAt.IsZero() && !p.ExpireAt.After(now)) {
				return true, nil
			}
			out = append(out, p)
			return q.Limit <= 0 || len(out) < q.Limit, nil
		}
		// The tail's entries from start on, before end.
		t := 0
		for t < len(tail) && bytes.Compare(tail[t].key, start[:]) < 0 {
			t++
		}
		if b := tx.Bucket(bucketTrack).Bucket([]byte(q.DroneID)); b != nil {
			c := b.Cursor()
			for k, v := c.Seek(start[:]); k != nil; k, v = c.Next() {
				if end != nil && bytes.Compare(k, end) >= 0 {
					break
				}
				for t < len(tail) && bytes.Compare(tail[t].key, k) < 0 {
					if more, err := take(tail[t].val); err != nil || !more {
						return err
					}
					t++
				}
				if t < len(tail) && bytes.Equal(tail[t].key, k) {
					continue // the tail's is read below
				}
				if more, err := take(v); err != nil || !more {
					return err
				}
			}
		}
		for ; t < len(tail); t++ {
			if end != nil && bytes.Compare(tail[t].key, end) >= 0 {
				break
			}
			if more, err := take(tail[t].val); err != nil || !more {
				return err
			}
		}
		return nil
	})
	return out, err
}

// packTrackLeaf lets bbolt merge the track bucket's leaf holding drone
// id's history bucket b into a neighbour, once b lives in pages of its own.
// A new drone's history starts inline (stored inside the track bucket's
// leaf, up to a quarter page); drones that start together fill the track
// bucket with inline buckets and split it into leaves of two or three
// drones each. When the buckets move out of line their entries shrink to
// a header each, but bbolt merges a sparse leaf only when a key is deleted
// from it, so those leaves stay nearly empty and every commit writing
// history for many drones rewrites all of them. Putting and deleting a
// key next to id marks the leaf for bbolt's rebalance at commit; b's
// sequence (unused otherwise) records that it was done, so it costs one
// write per drone, and drone buckets of an existing file get it once too.
func packTrackLeaf(track, b *bbolt.Bucket, id string) error {
	if b.Root() == 0 || b.Sequence() != 0 {
		return nil // still inline, or done
	}
	probe := append([]byte(id), 0)
	if track.Get(probe) == nil && track.Bucket(probe) == nil {
		if err := track.Put(probe, nil); err != nil {
			return err
		}
		if err := track.Delete(probe); err != nil {
			return err
		}
	}
	return b.SetSequence(1)
}

// appendFill is how full bbolt packs a page it splits in the history and
// expiry buckets. Both are written in (nearly) increasing key order, so
// bbolt's default of half-full pages would leave the left half of every
// split empty for good: packing them nearly full about halves the file per
// point (figures in docs/performance.md). The slack left absorbs late
// reports, which land inside earlier pages.
const appendFill = 0.9

// tsKey orders keys by time, including times before 1970.
func tsKey(t time.Time) [8]byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(t.UnixNano())^(1<<63))
	return k
}

func droneOf(tx *bbolt.Tx, tenantID, droneID string) (store.Drone, error) {
	d, _, err := droneDoc(tx, tenantID, droneID)
	return d, err
}

// droneDoc is droneOf that also returns the document's stored bytes, which
// a write of the drone in the same transaction compares with its own
// (putDrone) instead of reading them again.
func droneDoc(tx *bbolt.Tx, tenantID, droneID string) (store.Drone, []byte, error) {
	var d store.Drone
	raw := tx.Bucket(bucketDrones).Get([]byte(droneID))
	if raw == nil {
		return d, nil, fmt.Errorf("drone %s: %w", droneID, store.ErrNotFound)
	}
	if !readDrone(raw, &d) {
		d = store.Drone{}
		if err := json.Unmarshal(raw, &d); err != nil {
			return d, nil, fmt.Errorf("decode drone %s: %w", droneID, err)
		}
	}
	if d.TenantID != tenantID {
		// Another tenant's drone is indistinguishable from a missing one.
		return store.Drone{}, nil, fmt.Errorf("drone %s: %w", droneID, store.ErrNotFound)
	}
	return d, raw, nil
}

// encodeDrone is a drone document's stored form, putJSON's bytes, in the
// state write's form (no Remote ID, plain strings and times) without
// reflection: it is written with every state batch of every drone.
func encodeDrone(d store.Drone) ([]byte, error) {
	raw, ok := appendDrone(make([]byte, 0, 512), d)
	if !ok {
		var err error
		if raw, err = json.Marshal(d); err != nil {
			return nil, fmt.Errorf("encode drone %s: %w", d.ID, err)
		}
	}
	return raw, nil
}

// putChanged puts k=v unless k already holds v: bbolt rewrites the page of
// every key Put, even with the bytes it had, and commits write the page
// (and its parents) again. A redelivered batch often writes what is there.
func putChanged(b *bbolt.Bucket, k, v []byte) error {
	return putOver(b, k, nil, v)
}

// putOver is putChanged for a key whose bytes old the caller read in this
// transaction and has not written since (nil: read them here), which saves
// the lookup.
func putOver(b *bbolt.Bucket, k, old, v []byte) error {
	if old == nil {
		old = b.Get(k)
	}
	if old != nil && bytes.Equal(old, v) {
		return nil
	}
	return b.Put(k, v)
}

// appendDrone appends json.Marshal's bytes for d; false when d is not in
// the form it writes (then json.Marshal must).
func appendDrone(b []byte, d store.Drone) ([]byte, bool) {
	if d.RemoteID != nil || !plainJSON(d.ID) || !plainJSON(d.TenantID) || !plainJSON(d.Name) || !plainJSON(d.KeyHash) {
		return b, false
	}
	if !plainTime(d.CreatedAt) {
		return b, false
	}
	b = append(b, `{"id":"`...)
	b = append(b, d.ID...)
	b = append(b, `","tenantId":"`...)
	b = append(b, d.TenantID...)
	b = append(b, `","name":"`...)
	b = append(b, d.Name...)
	b = append(b, `","keyHash":"`...)
	b = append(b, d.KeyHash...)
	b = append(b, `","createdAt":"`...)
	b = d.CreatedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if d.State != nil {
		b = append(b, `,"state":`...)
		var err error
		if b, err = d.State.AppendJSON(b); err != nil {
			return b, false
		}
	}
	return append(b, '}'), true
}

// readDrone decodes the form appendDrone writes (members in its order,
// strings without escapes, a state that decodes by itself) and reports
// whether the document was in it; the caller decodes any other with
// encoding/json. The state transaction reads the drone with every batch.
func readDrone(raw []byte, d *store.Drone) bool {
	rest := raw
	str := func(prefix string) (string, bool) {
		var ok bool
		if rest, ok = bytes.CutPrefix(rest, []byte(prefix)); !ok {
			return "", false
		}
		end := bytes.IndexByte(rest, '"')
		if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
			return "", false
		}
		v := string(rest[:end])
		rest = rest[end+1:]
		return v, true
	}
	var ok [4]bool
	d.ID, ok[0] = str(`{"id":"`)
	d.TenantID, ok[1] = str(`,"tenantId":"`)
	d.Name, ok[2] = str(`,"name":"`)
	d.KeyHash, ok[3] = str(`,"keyHash":"`)
	if ok != [4]bool{true, true, true, true} {
		return false
	}
	var found bool
	if rest, found = bytes.CutPrefix(rest, []byte(`,"createdAt":`)); !found {
		return false
	}
	end := bytes.IndexByte(rest[min(1, len(rest)):], '"') + 2
	if len(rest) == 0 || rest[0] != '"' || end < 2 || d.CreatedAt.UnmarshalJSON(rest[:end]) != nil {
		return false
	}
	rest = rest[end:]
	if string(rest) == "}" {
		return true
	}
	if rest, found = bytes.CutPrefix(rest, []byte(`,"state":`)); !found || len(rest) < 2 || rest[0] != '{' || rest[len(rest)-1] != '}' {
		return false
	}
	var st events.DroneState
	if st.UnmarshalJSON(rest[:len(rest)-1]) != nil {
		return false
	}
	d.State = &st
	return true
}

// plainTime: encoding/json writes t as t.AppendFormat(RFC3339Nano) between
// quotes (it refuses years outside 0-9999 and offsets of a day or more, and
// RFC 3339 has no seconds in an offset).
func plainTime(t time.Time) bool {
	if y := t.Year(); y < 0 || y > 9999 {
		return false
	}
	_, off := t.Zone()
	return off%60 == 0 && off > -24*3600 && off < 24*3600
}

// plainJSON: s is quoted by encoding/json as itself between quotes.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

func putJSON(b *bbolt.Bucket, k []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", k, err)
	}
	return b.Put(k, raw)
}

func getJSON(b *bbolt.Bucket, k []byte, v any, what string) error {
	raw := b.Get(k)
	if raw == nil {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode %s: %w", what, err)
	}
	return nil
}

func (s *Store) update(what string, fn func(*bbolt.Tx) error) error {
	if err := s.db.Update(fn); err != nil {
		return fmt.Errorf("%s: %w", what, mapErr(err))
	}
	return nil
}

// batch is update for the hot writes (history, latest state, alerts):
// concurrent calls share one transaction and one fsync (groupCommit), which
// is most of the embedded store's write throughput. fn may run more than once.
func (s *Store) batch(what string, fn func(*bbolt.Tx) error) error {
	if err := s.group.do(fn); err != nil {
		return fmt.Errorf("%s: %w", what, mapErr(err))
	}
	return nil
}

func (s *Store) view(what string, fn func(*bbolt.Tx) error) error {
	err := s.db.View(fn)
	s.group.afterRead()
	if err != nil {
		return fmt.Errorf("%s: %w", what, mapErr(err))
	}
	return nil
}

// mapErr turns failures of the medium (closed database, full disk, I/O
// errors) into store.ErrUnavailable so callers answer 503 and the broker
// retries; everything else (not found, duplicates, decode errors) passes.
func mapErr(err error) error {
	var errno syscall.Errno
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) || errors.Is(err, bolterrors.ErrTxClosed) || errors.As(err, &errno) ||
		growFailed(err) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// growFailed recognises bbolt's failures to extend the file, which it
// formats with %s and so loses the errno (bbolt v1.5 DB.grow): a file
// system refusing to grow or sync the file is the medium failing too.
func growFailed(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "file resize error: ") || strings.HasPrefix(msg, "file sync error: ")
}

// Snapshot is a consistent point-in-time view of the whole store file for
// a hot backup: a bbolt read transaction, which writers do not disturb.
// It is not part of store.Store: Firestore backs up through its managed
// export (docs/operations.md).
type Snapshot struct{ tx *bbolt.Tx }

// BeginSnapshot starts a Snapshot; writes go on meanwhile. Close it soon
// after copying: while it is open bbolt cannot reuse the pages later
// writes free, and a write that must grow the file's memory map waits for
// it.
func (s *Store) BeginSnapshot() (*Snapshot, error) {
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("store snapshot: %w", err)
	}
	return &Snapshot{tx: tx}, nil
}

// Size is the length in bytes WriteTo writes.
func (sn *Snapshot) Size() int64 { return sn.tx.Size() }

// WriteTo copies the store file as of BeginSnapshot to w (bbolt's Tx.WriteTo
// hot backup): a valid bbolt file that Open takes as is.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) { return sn.tx.WriteTo(w) }

// Close ends the snapshot's read transaction.
func (sn *Snapshot) Close() error { return sn.tx.Rollback() }
