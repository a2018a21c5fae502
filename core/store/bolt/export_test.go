package bolt

// GroupStats returns how many group commits s made and how many calls
// they carried.
func GroupStats(s *Store) (commits, calls int64) {
	return s.group.commits.Load(), s.group.calls.Load()
}

// WithFreelistSync makes bbolt write its freelist with every commit.
func WithFreelistSync() Option { return func(c *config) { c.syncFreelist = true } }
