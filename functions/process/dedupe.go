package function

import (
	"strings"
	"sync"
)

// recentIDs remembers the last n completed event ids (FIFO eviction), so a
// redelivered or retried event is acknowledged without touching the store.
// It is only a fast path: the store writes are idempotent, so an id it has
// forgotten (or another replica saw) is still processed correctly.
type recentIDs struct {
	mu   sync.Mutex
	set  map[string]struct{}
	ring []string
	next int
}

func newRecentIDs(n int) *recentIDs {
	return &recentIDs{set: make(map[string]struct{}, n), ring: make([]string, n)}
}

func (r *recentIDs) Seen(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.set[id]
	return ok
}

func (r *recentIDs) Add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[id]; ok {
		return
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	// A copy: the id of a delivered event is a substring of the string
	// holding all its attributes (core/broker's batch records), which
	// kept ten times the id's bytes alive for each remembered id.
	id = strings.Clone(id)
	r.ring[r.next] = id
	r.set[id] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
}
