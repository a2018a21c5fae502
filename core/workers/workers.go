// Package workers runs short functions on goroutines that outlive them for
// a while, so the next function reuses a goroutine whose stack has already
// grown. The broker starts a goroutine per delivery and the in-process
// transport one per request; each went through the same deep call chain
// (CloudEvents binding, HTTP handlers, the store) and had to grow a fresh
// stack every time: runtime.newstack/copystack were 6% of the pipeline's
// CPU in BenchmarkPipeline.
package workers

import (
	"sync"
	"sync/atomic"
	"time"
)

// Pool hands functions to idle goroutines, starting one when none is idle.
// A goroutine idle for longer than the pool's idle time exits. The most
// recently idle goroutine is handed the next function, so after a burst
// the pool shrinks back to what the work needs: handed out in turn (a
// channel's waiters are served first come, first served), every goroutine
// of the burst got work often enough never to reach its idle time, and
// thousands of idle goroutines, whose stacks the collector scans, stayed
// for as long as the work flowed. The zero Pool is not usable; use New.
//
// Idle goroutines wait on their own channel only; one timer per pool (armed
// while any goroutine is idle) retires those idle longer than the idle
// time, oldest first. A timer per goroutine, reset after every function
// and selected on with the channel, was a few percent of the pipeline's
// CPU (runtime.selectgo under Pool.run).
type Pool struct {
	idleFor time.Duration

	mu    sync.Mutex
	idle  []*worker // most recently idle last
	armed bool      // reaper is scheduled
	reap  *time.Timer

	live atomic.Int64 // goroutines of the pool, busy or idle
}

// worker is a goroutine of the pool. work carries its next function; nil
// tells it to exit (retire).
type worker struct {
	work  chan func()
	since time.Time // when it went idle (under Pool.mu)
}

// New returns a pool whose goroutines wait idle at most idle for more work
// (up to a tenth more).
func New(idle time.Duration) *Pool {
	p := &Pool{idleFor: idle}
	p.reap = time.AfterFunc(time.Hour, p.retire)
	p.reap.Stop()
	return p
}

// Go runs f on a goroutine of the pool, at once: it never waits for a busy
// goroutine, and there is no bound on how many run.
func (p *Pool) Go(f func()) {
	if f == nil {
		panic("workers: nil function")
	}
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.work <- f // buffered, and empty while idle: never blocks
		return
	}
	p.mu.Unlock()
	p.live.Add(1)
	go p.run(&worker{work: make(chan func(), 1)}, f)
}

// Live is how many goroutines the pool has, busy or idle.
func (p *Pool) Live() int { return int(p.live.Load()) }

func (p *Pool) run(w *worker, f func()) {
	defer p.live.Add(-1)
	for f != nil {
		f()
		p.mu.Lock()
		// Read under the lock, so the idle list stays in the order of
		// since (retire takes the oldest from its front).
		w.since = time.Now()
		p.idle = append(p.idle, w)
		if !p.armed {
			p.armed = true
			p.reap.Reset(p.idleFor)
		}
		p.mu.Unlock()
		f = <-w.work
	}
}

// retire tells the goroutines idle for idleFor or longer to exit, and
// schedules itself for the next one to reach it (no goroutine idle: not
// scheduled until one is).
func (p *Pool) retire() {
	p.mu.Lock()
	defer p.mu.Unlock()
	cut := time.Now().Add(-p.idleFor)
	n := 0
	for n < len(p.idle) && !p.idle[n].since.After(cut) {
		p.idle[n].work <- nil // idle: its channel is empty
		n++
	}
	if n > 0 {
		rest := copy(p.idle, p.idle[n:])
		clear(p.idle[rest:])
		p.idle = p.idle[:rest]
	}
	if len(p.idle) == 0 {
		p.armed = false
		return
	}
	// The oldest left goes idleFor after it went idle; waiting at least a
	// tenth of idleFor retires the goroutines of a burst together.
	p.reap.Reset(max(p.idle[0].since.Sub(cut), p.idleFor/10))
}
