package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// Expired history is deleted by a sweeper, the embedded counterpart of
// Firestore's TTL policy on expireAt. To find due points without reading
// the whole history, AppendTrack keeps an index in the same transaction as
// the point:
//
//	trackExpiry: expKey(ExpireAt) | tsKey(Report.TS) | droneID -> empty
//
// so a sweep is a range scan from the start of the index up to now. Points
// without ExpireAt never expire and are not indexed. Stores written before
// the index existed are indexed by a one-time backfill that the sweeper runs
// in the same bounded batches (progress kept in the meta bucket, so a
// restart resumes it); until it finishes, reads still hide expired points.
var (
	bucketTrackExpiry = []byte("trackExpiry")
	bucketMeta        = []byte("meta")

	// metaExpiryIndexed marks a store whose every expiring point is indexed.
	metaExpiryIndexed = []byte("trackExpiryIndexed")
	// metaBackfillAt is where the backfill stopped: droneID 0x00 tsKey.
	metaBackfillAt = []byte("trackExpiryBackfillAt")
)

const (
	// DefaultPruneEvery is how often the sweeper looks for expired history.
	// Reads hide expired points anyway, so this only bounds how long dead
	// points occupy the file: at 50 drones x 1 Hz, 10 minutes is 30 000
	// points, a few batches.
	DefaultPruneEvery = 10 * time.Minute

	// defaultPruneBatch bounds the points deleted (or backfilled) in one
	// write transaction, so the sweeper holds bbolt's single writer lock
	// only briefly and ingest's writes interleave between batches.
	// In BenchmarkPrune 1000 holds the lock about as long as a few
	// AppendTrack group commits and still deletes a day of 50 drones at
	// 1 Hz in seconds of batches (figures in docs/performance.md).
	defaultPruneBatch = 1000

	// firstPruneAfter delays the first sweep after Open, so startup (and
	// short-lived admin commands) do not compete with it.
	firstPruneAfter = time.Minute
)

// Option configures Open.
type Option func(*config)

type config struct {
	pruneEvery time.Duration
	pruneBatch int
	mmapSize   int // bbolt InitialMmapSize; tests pin it to avoid remaps
	// syncFreelist writes bbolt's freelist with every commit (bbolt's
	// default) instead of rebuilding it on open; tests compare the two.
	syncFreelist bool
	commitGap    time.Duration // groupCommit.gap
	maxCommitGap time.Duration // groupCommit.maxGap
	// faultAround leaves the kernel's fault-around on for the store
	// file's mapping (faultaround_linux.go); benchmarks compare the two.
	faultAround bool
	trimBudget  int64 // groupCommit.budget
}

// WithFaultAround leaves the kernel's fault-around on for the store file's
// mapping; by default the store turns it off where the kernel lets it
// (faultaround_linux.go).
func WithFaultAround() Option { return func(c *config) { c.faultAround = true } }

// WithPruneEvery sets how often the background sweeper deletes expired
// history (default DefaultPruneEvery). Zero or less disables the sweeper;
// Prune still works.
func WithPruneEvery(d time.Duration) Option {
	return func(c *config) { c.pruneEvery = d }
}

// PruneStats says what one Prune did.
type PruneStats struct {
	Deleted    int // expired points deleted
	Backfilled int // points of an older store visited to build the expiry index
	Batches    int // write transactions used
}

// Prune deletes every track point whose ExpireAt has passed, in write
// transactions of a bounded number of points, and returns what it did. The
// background sweeper calls it periodically; tests call it directly. A sweep
// with nothing due costs one read transaction and one index seek. It stops
// early, with ctx's error, when ctx ends.
func (s *Store) Prune(ctx context.Context) (PruneStats, error) {
	s.pruneMu.Lock()
	defer s.pruneMu.Unlock()
	var st PruneStats
	now := s.now()

	indexed := false
	if err := s.view("check expiry index", func(tx *bbolt.Tx) error {
		indexed = tx.Bucket(bucketMeta).Get(metaExpiryIndexed) != nil
		return nil
	}); err != nil {
		return st, err
	}
	for !indexed {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		n, del, done, err := s.backfillBatch(now)
		st.Backfilled += n
		st.Deleted += del
		st.Batches++
		if err != nil {
			return st, err
		}
		indexed = done
	}

	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		// Look before taking the writer lock: an idle sweep writes nothing.
		due := false
		if err := s.view("check expired history", func(tx *bbolt.Tx) error {
			k, _ := tx.Bucket(bucketTrackExpiry).Cursor().First()
			due = k != nil && expiryDue(k, now)
			return nil
		}); err != nil || !due {
			return st, err
		}
		n, full, err := s.pruneBatch(now)
		st.Deleted += n
		st.Batches++
		if err != nil || !full {
			return st, err
		}
	}
}

// pruneBatch deletes up to s.cfg.pruneBatch due points in one transaction;
// full says the batch was filled, so more may be due.
func (s *Store) pruneBatch(now time.Time) (deleted int, full bool, err error) {
	err = s.update("prune expired history", func(tx *bbolt.Tx) error {
		deleted, full = 0, false
		idx, track := tx.Bucket(bucketTrackExpiry), tx.Bucket(bucketTrack)
		var due [][]byte
		c := idx.Cursor()
		for k, _ := c.First(); k != nil && expiryDue(k, now); k, _ = c.Next() {
			if len(due) == s.cfg.pruneBatch {
				full = true
				break
			}
			due = append(due, bytes.Clone(k))
		}
		drones := map[string]*bbolt.Bucket{}
		for _, k := range due {
			if err := idx.Delete(k); err != nil {
				return err
			}
			ts, drone := k[8:16], string(k[16:])
			b, ok := drones[drone]
			if !ok {
				b = track.Bucket([]byte(drone)) // nil when the drone was retired
				drones[drone] = b
			}
			// The index is kept exact by the writes, but deleting history
			// is irreversible: only a point that reads would hide goes.
			expired := func(raw []byte) bool {
				exp, ok := trackPointExpiry(raw)
				return ok && !exp.After(now)
			}
			var raw []byte
			if b != nil {
				raw = b.Get(ts)
			}
			if raw == nil {
				// A point of the drone's tail beside its document
				// (historytail.go), or gone.
				gone, err := deleteTailPoint(tx, drone, ts, expired)
				if err != nil {
					return err
				}
				if gone {
					deleted++
				}
				continue
			}
			if !expired(raw) {
				continue
			}
			if err := b.Delete(ts); err != nil {
				return err
			}
			deleted++
		}
		return nil
	})
	return deleted, full, err
}

// backfillBatch indexes (or, when already expired, deletes) up to
// s.cfg.pruneBatch points of a store written before the expiry index,
// resuming where the previous batch stopped. done says every point is now
// indexed.
func (s *Store) backfillBatch(now time.Time) (visited, deleted int, done bool, err error) {
	err = s.update("backfill expiry index", func(tx *bbolt.Tx) error {
		visited, deleted, done = 0, 0, false
		meta, idx, track := tx.Bucket(bucketMeta), tx.Bucket(bucketTrackExpiry), tx.Bucket(bucketTrack)
		var fromDrone, fromKey []byte
		if at := meta.Get(metaBackfillAt); at != nil {
			i := bytes.IndexByte(at, 0)
			fromDrone, fromKey = bytes.Clone(at[:i]), bytes.Clone(at[i+1:])
		}
		type del struct {
			b *bbolt.Bucket
			k []byte
		}
		var (
			dels     []del
			atDrone  []byte
			atKey    []byte
			finished = true
		)
		dc := track.Cursor()
		dk, _ := dc.First()
		if fromDrone != nil {
			dk, _ = dc.Seek(fromDrone)
		}
	drones:
		for ; dk != nil; dk, _ = dc.Next() {
			b := track.Bucket(dk)
			if b == nil {
				continue // not a drone bucket
			}
			pc := b.Cursor()
			k, v := pc.First()
			if fromKey != nil && bytes.Equal(dk, fromDrone) {
				k, v = pc.Seek(fromKey)
				if k != nil && bytes.Equal(k, fromKey) {
					k, v = pc.Next() // fromKey was done by the previous batch
				}
			}
			for ; k != nil; k, v = pc.Next() {
				if visited == s.cfg.pruneBatch {
					finished = false
					break drones
				}
				visited++
				atDrone, atKey = dk, k
				exp, ok := trackPointExpiry(v)
				if !ok || exp.IsZero() {
					continue
				}
				if !exp.After(now) {
					dels = append(dels, del{b, bytes.Clone(k)})
					continue
				}
				ek := expiryKey(exp, k, dk)
				if err := idx.Put(ek[:], []byte{}); err != nil {
					return err
				}
			}
		}
		if finished {
			atDrone = nil
		} else {
			atDrone, atKey = bytes.Clone(atDrone), bytes.Clone(atKey)
		}
		for _, d := range dels {
			if err := d.b.Delete(d.k); err != nil {
				return err
			}
			deleted++
		}
		if finished {
			done = true
			if err := meta.Delete(metaBackfillAt); err != nil {
				return err
			}
			return meta.Put(metaExpiryIndexed, []byte{1})
		}
		return meta.Put(metaBackfillAt, append(append(atDrone, 0), atKey...))
	})
	return visited, deleted, done, err
}

// pruneLoop is the background sweeper started by Open.
func (s *Store) pruneLoop(ctx context.Context, every time.Duration) {
	defer close(s.pruneDone)
	t := time.NewTimer(min(every, firstPruneAfter))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		st, err := s.Prune(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			// A full disk or closed file: reads still hide expired points,
			// so the next period simply tries again.
			slog.Warn("bolt store: pruning expired history failed", "path", s.db.Path(),
				"deleted", st.Deleted, "err", err)
		case st.Deleted > 0 || st.Backfilled > 0:
			slog.Info("bolt store: pruned expired history", "path", s.db.Path(), "deleted", st.Deleted,
				"backfilled", st.Backfilled, "batches", st.Batches, "took", time.Since(start).Round(time.Millisecond))
		}
		t.Reset(every)
	}
}

// expiryKey is the index key of a point: its expiry, then its own key in
// the drone's bucket, then the drone id.
func expiryKey(expireAt time.Time, ts []byte, droneID []byte) []byte {
	e := tsKey(expireAt)
	k := make([]byte, 0, 16+len(droneID))
	k = append(append(append(k, e[:]...), ts...), droneID...)
	return k
}

// expiryDue says whether the index key k expires at or before now (reads
// hide a point whose ExpireAt is not after now).
func expiryDue(k []byte, now time.Time) bool {
	n := tsKey(now)
	return len(k) >= 16 && binary.BigEndian.Uint64(k[:8]) <= binary.BigEndian.Uint64(n[:])
}

// reindexPoint keeps the expiry index exact when AppendTrack writes a
// point at key k of drone's bucket, where old is stored (nil: nothing): the
// entry of a point it replaces goes, the new point's own entry (expKey, nil
// when it does not expire) comes.
func reindexPoint(idx *bbolt.Bucket, old, k, drone, expKey []byte) error {
	if old != nil {
		if exp, ok := trackPointExpiry(old); ok && !exp.IsZero() {
			if err := idx.Delete(expiryKey(exp, k, drone)); err != nil {
				return fmt.Errorf("unindex replaced point: %w", err)
			}
		}
	}
	if expKey == nil {
		return nil
	}
	if err := idx.Put(expKey, []byte{}); err != nil {
		return fmt.Errorf("index point expiry: %w", err)
	}
	return nil
}

// initExpiryIndex runs in Open's init transaction: a store without history
// needs no backfill.
func initExpiryIndex(tx *bbolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta.Get(metaExpiryIndexed) != nil {
		return nil
	}
	if k, _ := tx.Bucket(bucketTrack).Cursor().First(); k != nil {
		return nil // history from before the index: the sweeper backfills
	}
	return meta.Put(metaExpiryIndexed, []byte{1})
}
