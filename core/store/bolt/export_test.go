package bolt

import "time"

// GroupStats returns how many group commits s made and how many calls
// they carried.
func GroupStats(s *Store) (commits, calls int64) {
	return s.group.commits.Load(), s.group.calls.Load()
}

// WithFreelistSync makes bbolt write its freelist with every commit.
func WithFreelistSync() Option { return func(c *config) { c.syncFreelist = true } }

// WithCommitGap sets the least time between the end of a group commit and
// the start of the next (0: none).
func WithCommitGap(d time.Duration) Option { return func(c *config) { c.commitGap = d } }

// PageBytes is how many bytes of pages s's write transactions have
// allocated: what their commits wrote, freelist and meta pages aside.
func PageBytes(s *Store) int64 {
	st := s.db.Stats()
	return st.TxStats.GetPageAlloc()
}
