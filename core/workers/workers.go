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
type Pool struct {
	idleFor time.Duration

	mu   sync.Mutex
	idle []*worker // most recently idle last

	live atomic.Int64 // goroutines of the pool, busy or idle
}

type worker struct{ work chan func() }

// New returns a pool whose goroutines wait idle at most idle for more work.
func New(idle time.Duration) *Pool {
	return &Pool{idleFor: idle}
}

// Go runs f on a goroutine of the pool, at once: it never waits for a busy
// goroutine, and there is no bound on how many run.
func (p *Pool) Go(f func()) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.work <- f // buffered: never blocks
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
	t := time.NewTimer(p.idleFor)
	defer t.Stop()
	for {
		f()
		p.mu.Lock()
		p.idle = append(p.idle, w)
		p.mu.Unlock()
		t.Reset(p.idleFor)
		select {
		case f = <-w.work:
			continue
		case <-t.C:
		}
		// Idle too long: leave, unless Go has just taken this goroutine
		// off the idle list, in which case its function is on the way.
		p.mu.Lock()
		i := 0
		for i < len(p.idle) && p.idle[i] != w {
			i++ // the longest idle are first: found near the start
		}
		if i < len(p.idle) {
			copy(p.idle[i:], p.idle[i+1:])
			p.idle[len(p.idle)-1] = nil
			p.idle = p.idle[:len(p.idle)-1]
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		f = <-w.work
	}
}
