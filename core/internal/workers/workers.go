// Package workers runs short functions on goroutines that outlive them for
// a while, so the next function reuses a goroutine whose stack has already
// grown. The broker starts a goroutine per delivery and the in-process
// transport one per request; each went through the same deep call chain
// (CloudEvents binding, HTTP handlers, the store) and had to grow a fresh
// stack every time: runtime.newstack/copystack were 6% of the pipeline's
// CPU in BenchmarkPipeline.
package workers

import "time"

// Pool hands functions to idle goroutines, starting one when none is idle.
// A goroutine idle for longer than the pool's idle time exits. The zero
// Pool is not usable; use New.
type Pool struct {
	work chan func()
	idle time.Duration
}

// New returns a pool whose goroutines wait idle at most idle for more work.
func New(idle time.Duration) *Pool {
	return &Pool{work: make(chan func()), idle: idle}
}

// Go runs f on a goroutine of the pool, at once: it never waits for a busy
// goroutine, and there is no bound on how many run.
func (p *Pool) Go(f func()) {
	select {
	case p.work <- f:
	default:
		go p.run(f)
	}
}

func (p *Pool) run(f func()) {
	f()
	t := time.NewTimer(p.idle)
	defer t.Stop()
	for {
		select {
		case f := <-p.work:
			f()
			t.Reset(p.idle)
		case <-t.C:
			return
		}
	}
}
