package function

import (
	"hash/maphash"
	"sync"
)

// recentIDs remembers the last n completed event ids (FIFO eviction), so a
// redelivered or retried event is counted (the duplicate outcome). It is
// only a fast path: the store writes are idempotent, so an id it has
// forgotten (or another replica saw) is still processed correctly.
//
// It keeps a 64-bit hash of each id, not the id: the collector scans a map
// of strings on every cycle (100,000 ids were ~10 MB of pointers, much of
// up's live heap), and a map of integers not at all. Two ids of the
// window colliding would count one event as a duplicate: with 100,000 ids
// a chance of about 1 in 10^14 per event.
type recentIDs struct {
	mu   sync.Mutex
	seed maphash.Seed
	set  map[uint64]struct{}
	ring []uint64
	next int
	full bool
}

func newRecentIDs(n int) *recentIDs {
	return &recentIDs{seed: maphash.MakeSeed(), set: make(map[uint64]struct{}, n), ring: make([]uint64, n)}
}

func (r *recentIDs) Seen(id string) bool {
	h := maphash.String(r.seed, id)
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.set[h]
	return ok
}

func (r *recentIDs) Add(id string) {
	h := maphash.String(r.seed, id)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[h]; ok {
		return
	}
	if r.full {
		delete(r.set, r.ring[r.next])
	}
	r.ring[r.next] = h
	r.set[h] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
	r.full = r.full || r.next == 0
}
