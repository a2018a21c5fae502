package function

import (
	"context"
	"sync"
	"time"

	"github.com/dronetrack/dronetrack/core/deadline"
	"github.com/dronetrack/dronetrack/core/publish"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/workers"
	"github.com/dronetrack/dronetrack/events"
)

// flushWorkers runs the flushes due by timer on goroutines reused across
// flushes. A timer's function runs on a goroutine of its own, started
// with the smallest stack, and a flush (the store write: folding,
// encoding, sorting) grows it every time: the stack copies were a few
// percent of up's CPU at 5,000 reports/s (docs/performance.md, Round 12).
var flushWorkers = workers.New(time.Second)

// StateWriter is the store call the coalescer makes: an atomic newer-wins
// write of a batch of reports (store.UpdateState with telemetry.Fold) and,
// on a store that writes them together (store.DroneWriter), the batch's
// history points.
type StateWriter func(ctx context.Context, tenantID, droneID string, reports []events.Report, points []store.TrackPoint) (events.DroneState, bool, error)

// stateResult is what a waiter learns: the state stored after the write that
// covered its reports, and whether that write changed it.
type stateResult struct {
	state events.DroneState
	wrote bool
	err   error
}

// coalescer limits writes of a drone's latest-state document to one per
// interval (Firestore sustains about one write per second per document).
// The first update of a quiet drone writes at once; updates arriving sooner
// than interval after its last write are merged and written once at the
// trailing edge. Every caller still waits until a write covering its
// reports is durable, so acknowledging after Submit keeps at-least-once.
// The cost: a drone reporting faster than 1/interval waits up to interval
// longer for its acknowledgement; a drone reporting at 1 Hz waits no longer.
// A drone's writes are at least 0.9 interval apart (the interval less a
// tenth of it, slackDiv), not exactly one: a write is due as soon as that
// has passed since the last.
type coalescer struct {
	write    StateWriter
	interval time.Duration
	timeout  time.Duration // bound of one store write

	flushes sync.WaitGroup // scheduled or running flushes, awaited by Close

	mu        sync.Mutex
	drones    map[droneKey]*pending
	lastSweep time.Time
	closed    bool
}

type droneKey struct{ tenant, drone string }

type pending struct {
	writeMu   sync.Mutex  // one write of a drone at a time
	lastWrite time.Time   // start of the last write
	queued    bool        // a flush is owed: by timer, or by the caller that found the drone due
	timer     *time.Timer // the queued flush's timer; nil when its caller writes
	reports   []events.Report
	points    []store.TrackPoint
	waiters   []chan stateResult
	holds     int // exclusive callers: the sweep keeps the entry
}

// slackDiv sets the slack of a drone's spacing: its writes are at least
// interval - interval/slackDiv apart.
const slackDiv = 10

func newCoalescer(write StateWriter, interval, timeout time.Duration) *coalescer {
	return &coalescer{write: write, interval: interval, timeout: timeout, drones: map[droneKey]*pending{}}
}

// Submit queues reports for the drone's state (and points for its history,
// when the writer writes them) and waits for the write that covers them.
// ctx bounds the wait only: the write itself goes on, and a caller that
// gave up is answered by redelivery (the write is idempotent). A caller
// whose drone is due for a write does it itself, bounded by the store
// timeout rather than ctx.
func (c *coalescer) Submit(ctx context.Context, tenantID, droneID string, reports []events.Report, points []store.TrackPoint) (events.DroneState, bool, error) {
	done := make(chan stateResult, 1)
	k := droneKey{tenantID, droneID}
	now := time.Now()

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return events.DroneState{}, false, errClosed
	}
	c.sweep(now)
	p := c.drones[k]
	if p == nil {
		p = &pending{}
		c.drones[k] = p
	}
	p.reports = append(p.reports, reports...)
	p.points = append(p.points, points...)
	p.waiters = append(p.waiters, done)
	inline := false
	if !p.queued {
		p.queued = true
		delay := c.wait(p.lastWrite, now)
		c.flushes.Add(1)
		if delay > 0 {
			p.timer = time.AfterFunc(delay, func() {
				flushWorkers.Go(func() { defer c.flushes.Done(); c.flush(k, p) })
			})
		} else {
			// Due now: this caller writes, instead of a timer's goroutine
			// while it waits (under a backlog that was a third of the
			// goroutines parked in process). Until the write takes the
			// batch, the drone's next reports join it.
			inline = true
		}
	}
	// A caller whose reports wait for the drone's timer (not for a write
	// in progress) is held on purpose: its sender in process may count it
	// apart from the deliveries that wait for work (core/broker's bound).
	held := p.timer != nil
	c.mu.Unlock()
	if held && !publish.Hold(ctx) {
		// The sender lets no more deliveries wait apart from its bound:
		// as many as it allows wait for timers already. Held, this one
		// would take a place of the deliveries being worked on, and a
		// backlog whose deliveries are all held (a drone's buffered
		// reports arriving together) would drain at about the allowance
		// per interval whatever the store can do. So the drone is
		// written now: its timer's flush becomes this caller's, and the
		// drone's reports held so far go with it.
		c.mu.Lock()
		if p.timer != nil && p.timer.Stop() {
			p.timer, inline = nil, true
		}
		c.mu.Unlock()
	}
	if inline {
		c.flush(k, p)
		c.flushes.Done()
	}

	select {
	case r := <-done:
		return r.state, r.wrote, r.err
	case <-ctx.Done():
		return events.DroneState{}, false, ctx.Err()
	}
}

// wait is how long a drone whose last write started at lastWrite waits at
// now before its next: until the spacing (the interval less its slack)
// has passed. Without the slack a drone reporting once per interval
// waited for a timer on almost every report: its write starts a little
// after its report arrives, so its next report, one interval later, found
// the interval since that write not quite over. And a wait to the whole
// interval kept a drone that once fell behind its reports (a stall, a
// sender's late request) behind by as much for good: its write at
// report+d made its next report, an interval later, wait d again. Waiting
// to the spacing, it catches up by the slack with every report.
func (c *coalescer) wait(lastWrite, now time.Time) time.Duration {
	return max(0, lastWrite.Add(c.interval-c.interval/slackDiv).Sub(now))
}

// flush writes everything pending for one drone and answers its waiters.
func (c *coalescer) flush(k droneKey, p *pending) {
	p.writeMu.Lock()
	c.mu.Lock()
	reports, points, waiters := p.reports, p.points, p.waiters
	p.reports, p.points, p.waiters, p.queued, p.timer = nil, nil, nil, false, nil
	p.lastWrite = time.Now()
	c.mu.Unlock()
	if len(waiters) == 0 {
		p.writeMu.Unlock()
		return
	}
	// Detached from any caller: a waiter that gave up must not cancel a write
	// others wait on. The store timeout bounds it, so a hung store holds
	// this drone's writes for one timeout, not indefinitely. Its timer is
	// armed only if the store waits on the context (Firestore does; bolt
	// does not, and a timer per write was a cost of every report).
	ctx, cancel := deadline.WithTimeout(context.Background(), c.timeout)
	st, wrote, err := c.write(ctx, k.tenant, k.drone, reports, points)
	cancel()
	// Unlock before answering: a waiter that returns sees the drone idle.
	p.writeMu.Unlock()
	for _, w := range waiters {
		w <- stateResult{state: st, wrote: wrote, err: err}
	}
}

// exclusive holds the drone's writes while it runs fn: its batches queue
// meanwhile and are written after (a flights replay's last read and write,
// which a batch applied in between would send back to read again).
func (c *coalescer) exclusive(tenantID, droneID string, fn func()) {
	k := droneKey{tenantID, droneID}
	c.mu.Lock()
	p := c.drones[k]
	if p == nil {
		p = &pending{}
		c.drones[k] = p
	}
	p.holds++
	c.mu.Unlock()
	p.writeMu.Lock()
	defer func() {
		p.writeMu.Unlock()
		c.mu.Lock()
		p.holds--
		c.mu.Unlock()
	}()
	fn()
}

// sweep forgets drones idle for longer than the interval (their spacing no
// longer matters), at most once per ten intervals, so memory follows the active
// fleet. Called with c.mu held.
func (c *coalescer) sweep(now time.Time) {
	if now.Sub(c.lastSweep) < 10*c.interval {
		return
	}
	c.lastSweep = now
	for k, p := range c.drones {
		if p.queued || p.holds > 0 || now.Sub(p.lastWrite) <= c.interval {
			continue
		}
		// A write slower than the interval is still running: keep the entry,
		// or the drone's next update would write alongside it.
		if p.writeMu.TryLock() {
			p.writeMu.Unlock()
			delete(c.drones, k)
		}
	}
}

// Close writes everything still pending at once and refuses new work.
func (c *coalescer) Close() {
	c.mu.Lock()
	c.closed = true
	var due []func()
	for k, p := range c.drones {
		// A caller's own flush (no timer) is left to it; Close waits for it.
		if p.timer != nil && p.timer.Stop() {
			due = append(due, func() { defer c.flushes.Done(); c.flush(k, p) })
		}
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, f := range due {
		wg.Go(f)
	}
	wg.Wait()
	// Flushes whose timers already fired may not have taken writeMu yet:
	// wait for every one, so the caller can close the store after Close.
	c.flushes.Wait()
}
