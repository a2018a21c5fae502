package broker

import (
	"context"
	"sync"
	"time"
)

// turn orders a Trigger's messages as they take delivery slots: each
// message waits until the one the consumer handed out before it has taken
// slots for all of its events. Without it the messages in dispatch took
// slots in whatever order their goroutines ran, so under a backlog (many
// messages waiting for slots at once) a drone's report could be delivered
// before the one it sent a second earlier, and process replayed the drone's
// history to redo its flights.
type turn struct {
	prev <-chan struct{} // closed when the previous message has its slots
	done chan struct{}   // closed by pass
	once sync.Once
}

// nextTurn is the next message's turn. Called in the consumer's callback,
// which runs in the order the messages were fetched, under b.mu.
func (r *route) nextTurn() *turn {
	t := &turn{prev: r.lastTurn, done: make(chan struct{})}
	r.lastTurn = t.done
	return t
}

// wait blocks until the previous message has taken its slots. It reports
// false when ctx ends first.
func (t *turn) wait(ctx context.Context) bool {
	if t.prev == nil {
		return true
	}
	select {
	case <-t.prev:
		return true
	case <-ctx.Done():
		return false
	}
}

// pass lets the next message take slots. It may be called more than once.
func (t *turn) pass() { t.once.Do(func() { close(t.done) }) }

// limiter bounds a Trigger's events in delivery. Its limit is fixed
// (Config.MaxInFlight) unless Config.MinInFlight is lower, and then it
// adapts between the two to what the subscriber takes: deliveries beyond
// that wait in the subscriber (for a store's single writer, say) as
// goroutines whose stacks the collector scans and whose events stay in the
// heap, and they add latency but no throughput.
//
// The adaptation climbs the throughput curve, as .NET's thread pool sizes
// itself: while deliveries wait for a slot, it measures the completion
// rate over a window (at least one turnover of the slots) and steps the
// limit by a factor, keeping the direction while growing buys more than
// the noise margin and shrinking costs less than it, turning round
// otherwise; at a bound it stays, stepping away every few windows to
// see whether the subscriber has changed. A latency signal alone would not do: process holds a
// delivery on purpose (its STATE_INTERVAL) when a drone reports faster
// than that, and there the completion rate grows with the limit however
// long each delivery takes.
type limiter struct {
	min, max int
	maxHeld  int // deliveries held on purpose that may leave their slots (Config.MaxHeld)

	mu       sync.Mutex
	inflight int
	parked   int // deliveries held on purpose without a slot (slot.hold)
	limit    int
	wake     chan struct{} // the one waiter (the turn's holder), cap 1

	// The current window, while deliveries wait for slots.
	waited    bool
	completed int
	since     time.Time
	prevRate  float64 // the previous saturated window's rate; 0: none
	grow      bool    // the direction of the last step
	moved     bool    // the last step changed the limit
	held      int     // windows the limit was held at a bound
}

const (
	limitStep   = 1.25 // factor of one step
	limitMargin = 0.05 // a change of the rate within it is noise
	limitWindow = 250 * time.Millisecond
	// limitProbeEvery is how many windows the limit stays at a bound
	// before it tries a step away from it.
	limitProbeEvery = 4
)

func newLimiter(minLimit, maxLimit int) *limiter {
	maxLimit = max(maxLimit, 1)
	if minLimit <= 0 || minLimit > maxLimit {
		minLimit = maxLimit
	}
	return &limiter{min: minLimit, max: maxLimit, limit: maxLimit, wake: make(chan struct{}, 1), since: time.Now()}
}

// acquire takes a slot, waiting while the Trigger is at its limit. Only the
// holder of the Trigger's turn calls it. It reports false when ctx ends
// first.
func (l *limiter) acquire(ctx context.Context) bool {
	for {
		l.mu.Lock()
		if l.inflight < l.limit {
			l.inflight++
			l.mu.Unlock()
			return true
		}
		l.waited = true
		l.mu.Unlock()
		select {
		case <-l.wake:
		case <-ctx.Done():
			return false
		}
	}
}

// release gives a slot back; delivered says an event's delivery ended
// (rather than a slot taken for an event that was then skipped), which
// counts towards the completion rate.
func (l *limiter) release(delivered bool) {
	l.mu.Lock()
	l.inflight--
	if delivered {
		l.completed++
		l.adapt(time.Now())
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// adapt ends the window when it is long enough and steps the limit.
// Called with l.mu held.
func (l *limiter) adapt(now time.Time) {
	if l.min == l.max {
		return
	}
	elapsed := now.Sub(l.since)
	if elapsed < limitWindow || l.completed < l.limit {
		return
	}
	rate := float64(l.completed) / elapsed.Seconds()
	saturated := l.waited
	l.completed, l.since, l.waited = 0, now, false
	if !saturated {
		// The subscriber kept up: the limit was not what bounded the rate,
		// so this window says nothing about it.
		l.prevRate = 0
		return
	}
	switch {
	case l.prevRate == 0:
		l.grow = false // fewer deliveries first: they cost memory and GC
	case !l.moved:
		// The last step was held at a bound: nothing to judge.
	case l.grow && rate <= l.prevRate*(1+limitMargin):
		l.grow = false // growing bought nothing
	case !l.grow && rate < l.prevRate*(1-limitMargin):
		l.grow = true // shrinking cost throughput
	}
	l.prevRate = rate
	next := l.step(l.grow)
	if next == l.limit {
		// At a bound: stay there, but step the other way now and then, in
		// case what the subscriber takes has changed.
		if l.held++; l.held >= limitProbeEvery {
			l.held, l.grow = 0, !l.grow
			next = l.step(l.grow)
		}
	} else {
		l.held = 0
	}
	l.moved = next != l.limit
	l.limit = next
}

// step is the limit one step up or down, within the bounds.
func (l *limiter) step(up bool) int {
	if up {
		return min(l.max, int(float64(l.limit)*limitStep)+1)
	}
	return max(l.min, int(float64(l.limit)/limitStep))
}

// current is the limit now.
func (l *limiter) current() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit
}

// slot is one event's place in its Trigger's limiter while it is
// delivered. A subscriber in this process that holds the delivery on
// purpose (publish.Hold: process waiting out a drone's STATE_INTERVAL to
// merge its reports into one write) gives the place back early, while
// fewer than Config.MaxHeld deliveries of the Trigger are held so: it
// waits for time to pass, not for the subscriber's work, so it need not
// count against the bound of deliveries the subscriber is working on, and
// the bound can be small (deliveries waiting in a store's single writer
// are goroutines whose stacks the collector scans) without capping what a
// fleet reporting faster than STATE_INTERVAL gets through. MaxHeld keeps
// a bound on all of them: under a backlog most deliveries of process are
// held, and without one they grew to tens of thousands of goroutines. A
// held delivery's end is not a completion for the adaptive limit.
type slot struct {
	l     *limiter
	mu    sync.Mutex
	state int // slotTaken, slotHeld (given back) or slotDone
}

const (
	slotTaken = iota
	slotHeld
	slotDone
)

// hold gives the slot back early (publish.Hold), if the Trigger may hold
// one more delivery without its slot, and reports whether the delivery is
// held without one. A false tells the subscriber that held, the delivery
// would keep its slot from the work behind it.
func (s *slot) hold() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == slotTaken && s.l.leave() {
		s.state = slotHeld
	}
	return s.state == slotHeld
}

// release gives the slot back as the delivery ends, or ends its hold.
func (s *slot) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case slotTaken:
		s.l.release(true)
	case slotHeld:
		s.l.mu.Lock()
		s.l.parked--
		s.l.mu.Unlock()
	}
	s.state = slotDone
}

// leave gives a held delivery's slot back, unless maxHeld deliveries are
// held so already.
func (l *limiter) leave() bool {
	l.mu.Lock()
	if l.parked >= l.maxHeld {
		l.mu.Unlock()
		return false
	}
	l.parked++
	l.inflight--
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return true
}
