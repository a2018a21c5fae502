package workers

import (
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Every function runs exactly once, concurrently when needed (a blocked
// function does not hold up the next), and idle goroutines exit.
func TestPoolRunsEachOnceWithoutWaiting(t *testing.T) {
	p := New(20 * time.Millisecond)
	block := make(chan struct{})
	var ran atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	p.Go(func() { defer wg.Done(); <-block; ran.Add(1) })
	for range 100 {
		wg.Add(1)
		p.Go(func() { defer wg.Done(); ran.Add(1) })
	}
	deadline := time.Now().Add(10 * time.Second)
	for ran.Load() < 100 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := ran.Load(); n != 100 {
		t.Fatalf("%d of 100 functions ran while one was blocked", n)
	}
	close(block)
	wg.Wait()
	if n := ran.Load(); n != 101 {
		t.Errorf("ran %d, want 101", n)
	}
}

// The most recently idle goroutine gets the next function, so under
// steady work the goroutines of a burst beyond what the work needs stay
// idle and exit. Handed out in turn instead (a channel's waiters are
// served first come, first served), each goroutine of a burst got work
// often enough never to reach its idle time, and the pool kept the burst's
// size for as long as work flowed.
func TestPoolReusesTheMostRecentlyIdle(t *testing.T) {
	p := New(time.Hour)
	const burst = 5
	release := make([]chan struct{}, burst)
	ids := make([]string, burst)
	var started, done sync.WaitGroup
	started.Add(burst)
	for i := range burst {
		release[i] = make(chan struct{})
		p.Go(func() { ids[i] = goroutineID(); started.Done(); <-release[i] })
	}
	started.Wait()
	// Let them finish one by one, each idle before the next finishes.
	for i := range burst {
		close(release[i])
		for idle(p) != i+1 {
			runtime.Gosched()
		}
	}
	for range 10 {
		got := make(chan string)
		done.Add(1)
		p.Go(func() { defer done.Done(); got <- goroutineID() })
		if id := <-got; id != ids[burst-1] {
			t.Fatalf("ran on goroutine %s, want %s (the most recently idle; the burst's were %v)", id, ids[burst-1], ids)
		}
		done.Wait()
		for idle(p) != burst {
			runtime.Gosched()
		}
	}
	if n := p.Live(); n != burst {
		t.Errorf("%d goroutines, want %d", n, burst)
	}
}

func idle(p *Pool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// goroutineID is the calling goroutine's id, from its stack trace's header.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	f := strings.Fields(string(buf))
	return f[1] // "goroutine 123 [running]:"
}

// Idle goroutines exit once idle for about the idle time; a goroutine
// handed work more often than that stays, and one that just went idle
// again is not retired for its earlier idleness.
func TestPoolRetiresIdleGoroutines(t *testing.T) {
	const idleFor = 500 * time.Millisecond
	p := New(idleFor)
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 8 {
		wg.Add(1)
		p.Go(func() { defer wg.Done(); <-release })
	}
	close(release)
	wg.Wait()
	if n := p.Live(); n != 8 {
		t.Fatalf("%d goroutines after a burst of 8, want 8", n)
	}
	// One goroutine given work every idleFor/25 for 1.2 idle times: the
	// others exit, it stays (the same goroutine throughout).
	var first string
	for i := range 30 {
		got := make(chan string)
		p.Go(func() { got <- goroutineID() })
		id := <-got
		if i == 0 {
			first = id
		} else if id != first {
			t.Fatalf("work %d ran on goroutine %s, want %s: a goroutine in use was retired", i, id, first)
		}
		time.Sleep(idleFor / 25)
	}
	if n := p.Live(); n != 1 {
		t.Errorf("%d goroutines after 1.2 idle times of work for one, want 1", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.Live() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := p.Live(); n != 0 {
		t.Fatalf("%d goroutines left 10 s after the last work, want 0", n)
	}
	// The pool works after every goroutine has gone.
	done := make(chan struct{})
	p.Go(func() { close(done) })
	<-done
}
