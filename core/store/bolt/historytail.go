package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"

	bbolt "go.etcd.io/bbolt"
)

// A drone's newest history points are kept packed in one value beside its
// document (its history tail, adjunct key id\0h in the drones bucket), and
// moved into the drone's history bucket in chunks of about tailPoints. A point put
// straight into the history bucket dirtied, in the commit of each report,
// the bucket's last leaf and its root branch page, two pages a report; the
// tail is rewritten in the same WriteDrone commit as the document and the
// flight detector, on their leaf, which that commit writes anyway. So the
// history bucket's pages are written once per tailPoints reports on
// average.
//
// Invariant: every key in the tail is after every key in the history
// bucket. A point older than the bucket's newest (a late report) goes into
// the bucket as before; any other goes into the tail, in key order. A flush
// moves the whole tail into the bucket. Readers (Track, the sweeper) take
// the bucket's points, then the tail's; each time is stored once, in one of
// the two.
//
// Only WriteDrone, which has checked the drone's document, writes the
// tail. AppendTrack, which may write any drone id, flushes a drone's tail
// into its bucket before writing the bucket (flushTailOf), so the
// invariant holds and a point it redelivers replaces the stored one.
//
// Tenant safety: each point names its tenant (Track filters on it, as for
// the bucket's points), and the tail goes with the drone: RetireDrone
// deletes it with the history bucket, and CreateDrone deletes any tail
// left at the id, so a drone created with a retired id starts without one.
//
// Layout: entries in increasing key order, each the point's 8-byte key
// (tsKey), a uvarint length and the point's stored bytes (encodeTrackPoint).
const adjunctHistory = "\x00h"

// A tail is flushed when it holds tailLimit points, tailPoints on average,
// or tailBytes bytes. A drone's document and detector take about 1.5 KiB
// of a 4 KiB leaf; 32 points of history (about 1.5 KiB) make the history
// bucket's two pages 1/16 of a page a report.
const (
	tailPoints = 32
	tailBytes  = 2048
)

// tailLimit is how many points drone id's tail whose oldest key is first
// holds before it is flushed: from 3/4 to 5/4 of tailPoints, drawn from a
// hash of the two. A fleet whose drones started together (a load test, a
// fleet switched on at once) would otherwise flush every drone's tail in
// the same commits, every tailPoints reports; drawn anew for each chunk,
// the flushes spread out from the first one on. The draw depends on the
// stored tail only, so a rerun or a redelivery flushes alike.
var tailLimit = func(id string, first []byte) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	h.Write(first)
	return tailPoints - tailPoints/4 + int(h.Sum32()%(tailPoints/2))
}

// tailEntry is one point of a history tail: its key and stored bytes.
type tailEntry struct {
	key []byte // 8 bytes
	val []byte
}

var errBadTail = errors.New("malformed history tail")

// parseTail decodes a stored tail; the entries alias raw.
func parseTail(raw []byte) ([]tailEntry, error) {
	var out []tailEntry
	if err := walkTail(raw, func(k, v []byte) { out = append(out, tailEntry{k, v}) }); err != nil {
		return nil, err
	}
	return out, nil
}

// walkTail calls fn with each entry of a stored tail in order (key and
// value alias raw), checking the layout and the keys' order; it returns
// errBadTail, having called fn for a prefix, when they are wrong.
func walkTail(raw []byte, fn func(k, v []byte)) error {
	var last []byte
	for len(raw) > 0 {
		if len(raw) < 9 {
			return errBadTail
		}
		k := raw[:8]
		n, w := binary.Uvarint(raw[8:])
		if w <= 0 || uint64(len(raw)-8-w) < n {
			return errBadTail
		}
		if last != nil && bytes.Compare(last, k) >= 0 {
			return errBadTail
		}
		fn(k, raw[8+w:8+w+int(n)])
		last = k
		raw = raw[8+w+int(n):]
	}
	return nil
}

// encodeTail is the stored form of entries (in key order).
func encodeTail(entries []tailEntry) []byte {
	n := 0
	for _, e := range entries {
		n += 8 + binary.MaxVarintLen32 + len(e.val)
	}
	b := make([]byte, 0, n)
	for _, e := range entries {
		b = append(b, e.key...)
		b = binary.AppendUvarint(b, uint64(len(e.val)))
		b = append(b, e.val...)
	}
	return b
}

// tailSize is the length of entries' stored form.
func tailSize(entries []tailEntry) int {
	n := 0
	for _, e := range entries {
		n += 8 + uvarintLen(uint64(len(e.val))) + len(e.val)
	}
	return n
}

func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// readTail is drone droneID's history tail as stored in tx (nil: none).
// The entries alias the transaction's memory.
func readTail(tx *bbolt.Tx, droneID string) ([]tailEntry, error) {
	raw := tx.Bucket(bucketDrones).Get(adjunctKey(droneID, adjunctHistory))
	if raw == nil {
		return nil, nil
	}
	entries, err := parseTail(raw)
	if err != nil {
		return nil, fmt.Errorf("history tail of drone %s: %w", droneID, err)
	}
	return entries, nil
}

// historyBucket opens drone id's history bucket for writing (created when
// missing), packed as appendTrack does.
func historyBucket(tx *bbolt.Tx, id []byte) (*bbolt.Bucket, error) {
	track := tx.Bucket(bucketTrack)
	b, err := track.CreateBucketIfNotExists(id)
	if err != nil {
		return nil, err
	}
	b.FillPercent = appendFill
	if err := packTrackLeaf(track, b, string(id)); err != nil {
		return nil, err
	}
	return b, nil
}

// flushTail moves drone id's history tail (entries, as stored) into its
// history bucket and deletes it. The expiry index names a point by drone
// and key, not by where it is, so it stays as it is.
func flushTail(tx *bbolt.Tx, id []byte, entries []tailEntry) error {
	b, err := historyBucket(tx, id)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := b.Put(bytes.Clone(e.key), bytes.Clone(e.val)); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketDrones).Delete(adjunctKey(string(id), adjunctHistory))
}

// flushTailOf flushes drone id's tail, when it has one (AppendTrack's
// first step for each drone it writes).
func flushTailOf(tx *bbolt.Tx, id []byte) error {
	entries, err := readTail(tx, string(id))
	if err != nil || entries == nil {
		return err
	}
	return flushTail(tx, id, entries)
}

// appendTail is WriteDrone's history write: points (all of drone id, whose
// document the caller has read) go into the drone's tail, or into its
// history bucket when older than the bucket's newest point (see
// adjunctHistory); a point whose key is stored already replaces it only
// when its bytes differ, and the expiry index follows as in appendTrack.
// The tail is flushed when it reaches tailLimit points or tailBytes.
func appendTail(tx *bbolt.Tx, id string, points []encodedPoint) error {
	if len(points) == 0 {
		return nil
	}
	drones, idx := tx.Bucket(bucketDrones), tx.Bucket(bucketTrackExpiry)
	idx.FillPercent = appendFill
	tk := adjunctKey(id, adjunctHistory)
	raw := drones.Get(tk)
	if done, err := appendAfterTail(drones, idx, tk, id, raw, points); done || err != nil {
		return err
	}
	stored, err := parseTail(raw)
	if err != nil {
		return fmt.Errorf("history tail of drone %s: %w", id, err)
	}
	// entries is the tail being written; it aliases stored until changed.
	entries, changed := stored, false
	var (
		sub     *bbolt.Bucket // the history bucket once needed (nil: none)
		subLast []byte        // its newest key (nil: empty or none)
		opened  bool
	)
	for i := range points {
		p := &points[i]
		k := p.key[:]
		if len(entries) == 0 || bytes.Compare(k, entries[0].key) < 0 {
			if !opened {
				opened = true
				if sub = tx.Bucket(bucketTrack).Bucket([]byte(id)); sub != nil {
					subLast, _ = sub.Cursor().Last()
				}
			}
			if subLast != nil && bytes.Compare(k, subLast) <= 0 {
				// A late point among the bucket's: stored there, as before.
				sub.FillPercent = appendFill
				old := sub.Get(k)
				if old != nil && bytes.Equal(old, p.val) {
					continue
				}
				if err := reindexPoint(idx, old, k, p.drone, p.exp); err != nil {
					return err
				}
				if err := sub.Put(bytes.Clone(k), p.val); err != nil {
					return err
				}
				continue
			}
		}
		// The tail's place for k: the first entry not before it.
		at := len(entries)
		for j, e := range entries {
			if c := bytes.Compare(e.key, k); c >= 0 {
				at = j
				break
			}
		}
		var old []byte
		if at < len(entries) && bytes.Equal(entries[at].key, k) {
			if old = entries[at].val; bytes.Equal(old, p.val) {
				continue // a redelivered point
			}
		}
		if err := reindexPoint(idx, old, k, p.drone, p.exp); err != nil {
			return err
		}
		if !changed {
			entries, changed = append(make([]tailEntry, 0, len(stored)+len(points)), stored...), true
		}
		if old != nil {
			entries[at].val = p.val
		} else {
			entries = append(entries, tailEntry{})
			copy(entries[at+1:], entries[at:])
			entries[at] = tailEntry{key: bytes.Clone(k), val: p.val}
		}
	}
	if !changed {
		return nil
	}
	if len(entries) >= tailLimit(id, entries[0].key) || tailSize(entries) >= tailBytes {
		return flushTail(tx, []byte(id), entries)
	}
	return drones.Put(tk, encodeTail(entries))
}

// appendAfterTail is appendTail's common case, a drone reporting in time
// order: every point is newer than the last in the stored tail raw (a
// non-empty tail: the bucket's points are all older still), and the tail
// does not reach its flush limit. The points' entries are appended to raw
// as stored, without decoding the tail into entries and encoding it again.
// It reports false, having written nothing, for any other case.
func appendAfterTail(drones, idx *bbolt.Bucket, tk []byte, id string, raw []byte, points []encodedPoint) (bool, error) {
	n, first, last, ok := scanTail(raw)
	if !ok || n == 0 || n+len(points) >= tailLimit(id, first) {
		return false, nil
	}
	size := len(raw)
	for i := range points {
		if bytes.Compare(points[i].key[:], last) <= 0 {
			return false, nil
		}
		last = points[i].key[:]
		size += 8 + uvarintLen(uint64(len(points[i].val))) + len(points[i].val)
	}
	if size >= tailBytes {
		return false, nil
	}
	b := make([]byte, len(raw), size)
	copy(b, raw)
	for i := range points {
		p := &points[i]
		if err := reindexPoint(idx, nil, p.key[:], p.drone, p.exp); err != nil {
			return true, err
		}
		b = append(b, p.key[:]...)
		b = binary.AppendUvarint(b, uint64(len(p.val)))
		b = append(b, p.val...)
	}
	return true, drones.Put(tk, b)
}

// scanTail is a stored tail's entry count and first and last keys (which
// alias raw), checked as parseTail checks it; ok is false for a malformed
// tail.
func scanTail(raw []byte) (n int, first, last []byte, ok bool) {
	err := walkTail(raw, func(k, _ []byte) {
		if first == nil {
			first = k
		}
		last = k
		n++
	})
	if err != nil {
		return 0, nil, nil, false
	}
	return n, first, last, true
}

// deleteTailPoint deletes the point at key k from drone id's tail when it
// is there and expired says it may go (the sweeper's check of its expiry),
// rewriting the tail, or deleting it when it is left empty.
func deleteTailPoint(tx *bbolt.Tx, id string, k []byte, expired func(raw []byte) bool) (deleted bool, err error) {
	entries, err := readTail(tx, id)
	if err != nil {
		return false, err
	}
	for i, e := range entries {
		if !bytes.Equal(e.key, k) {
			continue
		}
		if !expired(e.val) {
			return false, nil
		}
		rest := append(append(make([]tailEntry, 0, len(entries)-1), entries[:i]...), entries[i+1:]...)
		tk := adjunctKey(id, adjunctHistory)
		if len(rest) == 0 {
			return true, tx.Bucket(bucketDrones).Delete(tk)
		}
		return true, tx.Bucket(bucketDrones).Put(tk, encodeTail(rest))
	}
	return false, nil
}
