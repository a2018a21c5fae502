package bridge

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dronetrack/dronetrack/events"
)

// Spool is the bridge's on-disk queue: every report is committed (fsync)
// before it is sent, and deleted only after ingest acknowledged it, so a
// link cut, an ingest outage or a bridge restart loses nothing. Keys are a
// bbolt bucket sequence, so iteration order is arrival order and resending
// after an outage keeps the original order.
//
// Why bbolt and not a hand-rolled append-only file: the same guarantees
// (atomic commit, crash-safe, ordered keys, deletes that reclaim space)
// without writing a segment format, a checksum and a compactor; it is
// already a dependency of the embedded store.
type Spool struct {
	db *bolt.DB
}

var (
	bucketPending  = []byte("pending")
	bucketRejected = []byte("rejected") // batches ingest refused as invalid, kept for inspection
)

// Queued is one spooled report and its sequence number.
type Queued struct {
	Seq    uint64
	Report events.Report
}

// OpenSpool opens (or creates) the spool in dir.
func OpenSpool(dir string) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("bridge spool dir: %w", err)
	}
	path := filepath.Join(dir, "bridge-spool.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open bridge spool %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketPending, bucketRejected} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init bridge spool: %w", err)
	}
	return &Spool{db: db}, nil
}

// Close closes the spool file.
func (s *Spool) Close() error { return s.db.Close() }

// Append commits reports to the end of the queue, giving each the next
// sequence number (also written into Report.Seq, so ingest and the tests
// can see the bridge's order).
func (s *Spool) Append(reps ...events.Report) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPending)
		for _, r := range reps {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			r.Seq = &seq
			v, err := json.Marshal(r)
			if err != nil {
				return fmt.Errorf("encode report: %w", err)
			}
			if err := b.Put(key(seq), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// Peek returns up to n of the oldest queued reports, oldest first.
func (s *Spool) Peek(n int) ([]Queued, error) {
	var out []Queued
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketPending).Cursor()
		for k, v := c.First(); k != nil && len(out) < n; k, v = c.Next() {
			var r events.Report
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode spooled report %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, Queued{Seq: binary.BigEndian.Uint64(k), Report: r})
		}
		return nil
	})
	return out, err
}

// Len is the number of queued reports.
func (s *Spool) Len() (int, error) {
	var n int
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketPending).Stats().KeyN
		return nil
	})
	return n, err
}

// Ack deletes the queued reports with sequence numbers up to and including
// seq (everything a successful send covered).
func (s *Spool) Ack(seq uint64) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketPending).Cursor()
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= seq; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
}

// Reject moves the queued reports up to seq to the rejected bucket: ingest
// answered that they are invalid, resending cannot help, and keeping them in
// the queue would block every later report.
func (s *Spool) Reject(seq uint64) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		rej := tx.Bucket(bucketRejected)
		c := tx.Bucket(bucketPending).Cursor()
		for k, v := c.First(); k != nil && binary.BigEndian.Uint64(k) <= seq; k, v = c.First() {
			if err := rej.Put(append([]byte(nil), k...), append([]byte(nil), v...)); err != nil {
				return err
			}
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
}

// Rejected is the number of reports set aside as invalid.
func (s *Spool) Rejected() (int, error) {
	var n int
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketRejected).Stats().KeyN
		return nil
	})
	return n, err
}

func key(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// RejectSeqs moves the named queued reports to the rejected bucket.
func (s *Spool) RejectSeqs(seqs []uint64) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		pend, rej := tx.Bucket(bucketPending), tx.Bucket(bucketRejected)
		for _, seq := range seqs {
			k := key(seq)
			v := pend.Get(k)
			if v == nil {
				continue
			}
			if err := rej.Put(k, append([]byte(nil), v...)); err != nil {
				return err
			}
			if err := pend.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}
