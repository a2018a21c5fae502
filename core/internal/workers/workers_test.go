package workers

import (
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
