package bolt

import (
	"bytes"
	"hash/maphash"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// A drone's alert tracker changes with every state the alerts function
// evaluates, and for most states only in LastTS and LastSeen, its signs of
// life (alerting.LivenessOnly). Written each time, that was a group-commit
// call and a page of a commit per report: alerts evaluates a state after
// process's commit of it, so the tracker's leaf is dirtied in a commit of
// its own. The store keeps such changes in memory instead (deferredTrackers)
// and writes them all in one call every trackerFlushEvery, and when it is
// closed; a change that opens, closes or updates an alert, or touches the
// outbox or its claims, is written at once, as before.
//
// Readers see the newest tracker either way: EvaluateAlerts starts from
// the deferred bytes when there are any, and StaleTrackers reads them over
// the stored ones. What a crash loses is at most trackerFlushEvery of
// LastTS and LastSeen: a state evaluated again for it changes nothing (its
// alerts were written when they changed), and the link check's clock
// starts from a LastSeen that much older, well inside the shortest
// threshold a tenant sets in practice (link.lost is for drones silent for
// tens of seconds; up restarting takes longer than the window anyway).
const trackerFlushEvery = 5 * time.Second

type deferredTrackers struct {
	// locks serialise the evaluations of a drone (by its key's hash) with
	// each other and with the flush's bookkeeping for it, as a write
	// transaction would: a deferred tracker is the newest only while no
	// other evaluation of the drone runs beside the one that read it.
	locks [trackerLocks]sync.Mutex
	seed  maphash.Seed

	mu sync.Mutex
	m  map[string]deferredTracker

	stop chan struct{}
	done chan struct{}
}

type deferredTracker struct {
	v []byte // the tracker's newest stored form
	// stored is what the bucket held when v was deferred (never nil: a
	// drone's first tracker is written at once). The flush writes v only
	// over it.
	stored []byte
}

// trackerLocks is how many locks the drones' evaluations are spread over.
const trackerLocks = 256

func newDeferredTrackers() *deferredTrackers {
	return &deferredTrackers{seed: maphash.MakeSeed(), m: map[string]deferredTracker{},
		stop: make(chan struct{}), done: make(chan struct{})}
}

// lock takes the lock of key k's drone and returns its unlock.
func (d *deferredTrackers) lock(k []byte) func() {
	l := &d.locks[maphash.Bytes(d.seed, k)%trackerLocks]
	l.Lock()
	return l.Unlock
}

func (d *deferredTrackers) put(k string, t deferredTracker) {
	d.mu.Lock()
	d.m[k] = t
	d.mu.Unlock()
}

func (d *deferredTrackers) drop(k string) {
	d.mu.Lock()
	delete(d.m, k)
	d.mu.Unlock()
}

func (d *deferredTrackers) get(k string) (deferredTracker, bool) {
	d.mu.Lock()
	t, ok := d.m[k]
	d.mu.Unlock()
	return t, ok
}

// snapshot is a copy of what is deferred now.
func (d *deferredTrackers) snapshot() map[string]deferredTracker {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.m) == 0 {
		return nil
	}
	out := make(map[string]deferredTracker, len(d.m))
	for k, t := range d.m {
		out[k] = t
	}
	return out
}

// flushLoop writes the deferred trackers every trackerFlushEvery until
// closeTrackers.
func (s *Store) flushLoop() {
	defer close(s.trackers.done)
	tick := time.NewTicker(trackerFlushEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			_ = s.flushTrackers() // failed: they stay deferred for the next
		case <-s.trackers.stop:
			return
		}
	}
}

// closeTrackers stops the flush loop and writes what is deferred.
func (s *Store) closeTrackers() error {
	close(s.trackers.stop)
	<-s.trackers.done
	return s.flushTrackers()
}

// flushTrackers writes the deferred trackers in one group-commit call, each
// over the bytes it was deferred over (a tracker written since by an
// evaluation is newer than what was deferred: it stays), and forgets those
// that did not change meanwhile.
func (s *Store) flushTrackers() error {
	snap := s.trackers.snapshot()
	if len(snap) == 0 {
		return nil
	}
	written := map[string]bool{}
	err := s.batch("write deferred alert trackers", func(tx *bbolt.Tx) error {
		clear(written) // the group commit may run this again
		b := tx.Bucket(bucketAlertTrackers)
		for k, t := range snap {
			if !bytes.Equal(b.Get([]byte(k)), t.stored) {
				continue
			}
			if err := b.Put([]byte(k), t.v); err != nil {
				return err
			}
			written[k] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	for k, was := range snap {
		unlock := s.trackers.lock([]byte(k))
		t, ok := s.trackers.get(k)
		switch {
		case written[k] && ok && sameBytes(t.stored, was.stored):
			// No evaluation wrote the tracker since the snapshot (one
			// that did dropped it, and one deferring after that deferred
			// over what it wrote): the bucket holds was.v.
			s.written.put("alerts\x00"+k, was.v)
			if sameBytes(t.v, was.v) {
				s.trackers.drop(k)
			} else {
				t.stored = was.v // deferred again since: over what is stored now
				s.trackers.put(k, t)
			}
		case !written[k] && ok && sameBytes(t.v, was.v):
			// The bucket no longer holds what it was deferred over (an
			// evaluation wrote it): it is not the newest any more.
			s.trackers.drop(k)
		}
		unlock()
	}
	return nil
}

// sameBytes says a and b are the same slice (not merely equal bytes).
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
