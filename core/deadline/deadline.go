// Package deadline bounds a call with a deadline whose timer is armed only
// if the callee waits on it.
//
// context.WithTimeout starts a runtime timer for every call and stops it
// after, a timer-heap insert and delete under a lock, plus the context's
// allocations. On the hot paths of `up` (the coalesced state write of
// every report, alerts' store call of every state) the callee is the bolt
// store, which never waits on its context: the timer was pure cost. A
// callee that does wait (Firestore's gRPC client calls Done) gets exactly
// what WithTimeout gives it.
package deadline

import (
	"context"
	"sync"
	"time"
)

// WithTimeout is context.WithTimeout(parent, d), except that its timer is
// started at the first call of Done or Value (by the callee or by a context
// derived from it). Until then Err is worked out when called: the parent's error,
// Canceled once cancel was called, DeadlineExceeded once the deadline has
// passed. cancel must be called, as with context.WithTimeout.
func WithTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	c := &lazy{Context: parent, deadline: time.Now().Add(d)}
	if pd, ok := parent.Deadline(); ok && pd.Before(c.deadline) {
		c.deadline = pd
	}
	return c, c.cancel
}

type lazy struct {
	context.Context // the parent

	deadline time.Time

	mu       sync.Mutex
	armed    context.Context // context.WithDeadline's, once Done was called
	stop     context.CancelFunc
	canceled bool
}

func (c *lazy) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *lazy) Done() <-chan struct{} { return c.arm().Done() }

// Value arms the context too: context.Cause finds a context's cause
// through Value, and a bolt call asks for none, so only a callee that
// reads values (gRPC's, which waits on Done anyway) pays for the timer.
func (c *lazy) Value(key any) any { return c.arm().Value(key) }

// arm starts the deadline's timer, once, and returns the context
// context.WithDeadline made for it.
func (c *lazy) arm() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.armed == nil {
		c.armed, c.stop = context.WithDeadline(c.Context, c.deadline)
		if c.canceled {
			c.stop()
		}
	}
	return c.armed
}

func (c *lazy) Err() error {
	c.mu.Lock()
	armed, canceled := c.armed, c.canceled
	c.mu.Unlock()
	if armed != nil {
		return armed.Err()
	}
	if err := c.Context.Err(); err != nil {
		return err
	}
	if canceled {
		return context.Canceled
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *lazy) cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.canceled {
		return
	}
	c.canceled = true
	if c.stop != nil {
		c.stop()
	}
}

// String names the context as context.WithDeadline's String does.
func (c *lazy) String() string {
	return "deadline.WithTimeout(" + c.deadline.String() + ")"
}
