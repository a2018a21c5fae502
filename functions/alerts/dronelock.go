package function

import (
	"context"
	"sync"
	"time"

	"github.com/dronetrack/dronetrack/core/alerting"
)

// droneLocks serialises alerts' work on one drone within an instance: a
// drone's tracker is one document (one bbolt key), and the broker delivers
// a drone's state.updated events in parallel. Concurrent transactions on
// one Firestore document contend for its lock (server SDKs lock
// pessimistically; the emulator holds the losers until a lock timeout),
// so without this a burst of one drone's events answers 503 past
// STORE_TIMEOUT until the broker dead-letters them. Waiting here instead
// costs one transaction's time per event ahead. Other drones are never
// held up: there is no global lock, only one per (tenant, drone).
//
// Memory is bounded by the deliveries in flight: an entry exists only while
// someone holds or waits for it, and goes when the last one leaves.
// Instances do not coordinate; the transaction stays what makes the
// evaluation correct, this only keeps one instance from contending with
// itself.
type droneLocks struct {
	mu sync.Mutex
	m  map[droneKey]*droneLock
}

type droneKey struct{ tenantID, droneID string }

// droneLock is one drone's lock. sem (capacity 1) is held by the one
// evaluating; refs counts holders and waiters, guarded by droneLocks.mu.
type droneLock struct {
	sem  chan struct{}
	refs int
	// evaluated is the LastTS of the drone's tracker as the previous
	// holder left it, when that holder's evaluation succeeded and left
	// nothing in the outbox; zero when unknown. Guarded by sem. It lives
	// only as long as the entry, that is while events of the drone queue
	// here, which is when it saves transactions.
	evaluated time.Time
}

func newDroneLocks() *droneLocks { return &droneLocks{m: map[droneKey]*droneLock{}} }

// lock waits for the drone's lock, or until ctx ends (then it returns
// ctx's error and holds nothing). The caller unlocks what it got.
func (l *droneLocks) lock(ctx context.Context, tenantID, droneID string) (*droneLock, error) {
	k := droneKey{tenantID, droneID}
	l.mu.Lock()
	e := l.m[k]
	if e == nil {
		e = &droneLock{sem: make(chan struct{}, 1)}
		l.m[k] = e
	}
	e.refs++
	l.mu.Unlock()
	select {
	case e.sem <- struct{}{}:
		return e, nil
	case <-ctx.Done():
		l.leave(k, e)
		return nil, ctx.Err()
	}
}

// unlock releases a lock that lock returned.
func (l *droneLocks) unlock(tenantID, droneID string, e *droneLock) {
	<-e.sem
	l.leave(droneKey{tenantID, droneID}, e)
}

func (l *droneLocks) leave(k droneKey, e *droneLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.refs--; e.refs == 0 {
		delete(l.m, k)
	}
}

// size is how many drones have an entry (tests check none is left behind).
func (l *droneLocks) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// evaluate records the tracker a successful evaluation left stored: states
// up to its LastTS are known to change nothing, as long as its outbox is
// empty (otherwise a later delivery, even of an older state, is what
// claims and publishes the entries again, and must run).
func (e *droneLock) evaluate(tr alerting.Tracker) {
	e.evaluated = time.Time{}
	if len(tr.Outbox) == 0 {
		e.evaluated = tr.LastTS
	}
}
