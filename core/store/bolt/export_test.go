package bolt

import (
	"encoding/json"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/dronetrack/dronetrack/core/alerting"
)

// GroupStats returns how many group commits s made and how many calls
// they carried.
func GroupStats(s *Store) (commits, calls int64) {
	return s.group.commits.Load(), s.group.calls.Load()
}

// WithFreelistSync makes bbolt write its freelist with every commit.
func WithFreelistSync() Option { return func(c *config) { c.syncFreelist = true } }

// WithCommitGap sets the time between the end of a group commit and the
// start of the next to d after every commit (0: none), as before the gap
// adapted to the group's size.
func WithCommitGap(d time.Duration) Option {
	return func(c *config) { c.commitGap, c.maxCommitGap = d, d }
}

// WithAdaptiveCommitGap sets the gap after groups of two calls or more and
// its most after large ones (Open's default: commitGap, maxCommitGap).
func WithAdaptiveCommitGap(least, most time.Duration) Option {
	return func(c *config) { c.commitGap, c.maxCommitGap = least, most }
}

// PageBytes is how many bytes of pages s's write transactions have
// allocated: what their commits wrote, freelist and meta pages aside.
func PageBytes(s *Store) int64 {
	st := s.db.Stats()
	return st.TxStats.GetPageAlloc()
}

// WithTrimBudget sets how much resident file memory may grow before a busy
// writer trims.
func WithTrimBudget(n int64) Option { return func(c *config) { c.trimBudget = n } }

// RawTracker is the alert tracker as stored, without what the store holds
// back (trackers.go); ok is false when none is stored.
func RawTracker(s *Store, tenantID, droneID string) (tr alerting.Tracker, ok bool, err error) {
	err = s.view("raw tracker", func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucketAlertTrackers).Get(tkey(tenantID, droneID))
		if raw == nil {
			return nil
		}
		ok = true
		if !readTracker(raw, &tr) {
			return json.Unmarshal(raw, &tr)
		}
		return nil
	})
	return tr, ok, err
}

// FlushTrackers writes the trackers the store holds back now.
func FlushTrackers(s *Store) error { return s.flushTrackers() }
