package knative

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"
)

// loadDuration is how long the fault tests' fleets report: seconds in
// make test, a minute with DRONETRACK_SOAK=1.
func loadDuration() time.Duration {
	if soak() {
		return time.Minute
	}
	return 5 * time.Second
}

// checkCodes fails the test on any answer a drone must not get from
// ingest: only 202, and 503 or 429 with Retry-After, are allowed.
func checkCodes(t *testing.T, l *fleetLoad) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("ingest answers: %v; %d reports accepted", l.codes, func() int {
		n := 0
		for _, a := range l.accepted {
			n += len(a)
		}
		return n
	}())
	for code, n := range l.codes {
		switch code {
		case http.StatusAccepted, http.StatusServiceUnavailable, http.StatusTooManyRequests:
		default:
			t.Errorf("drones got %d answers %d, want only 202, 503 or 429", n, code)
		}
	}
	if len(l.noRetry) > 0 {
		t.Errorf("%d answers without Retry-After: %v", len(l.noRetry), l.noRetry)
	}
}

// TestKillReplicasUnderLoad: with two replicas of every function and a
// fleet reporting, one replica of process, then of alerts, then of
// cache-refresh is killed with SIGKILL (and a new one started, as the
// kubelet restarts the container). Deliveries cut mid-way are redelivered
// by the broker to the surviving replica: no accepted report is lost or
// stored twice, no alert is raised twice, and once drained every drone's
// cached state equals its stored state.
func TestKillReplicasUnderLoad(t *testing.T) {
	f := newFixture(t)
	sys := up(t, f, map[string]int{"ingest": 2, "process": 2, "cache-refresh": 2, "alerts": 2, "serve-map": 1}, nil)
	load := newFleetLoad(t, f, 8)
	d := loadDuration()
	ctx, cancel := context.WithTimeout(context.Background(), d+time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		load.run(ctx, t, sys.Services["ingest"].URL(), 5, d)
	}()
	for i, name := range []string{"process", "alerts", "cache-refresh"} {
		time.Sleep(d / 5)
		victim := sys.Services[name].Replicas()[0]
		victim.Kill()
		t.Logf("%v: killed %s replica %s (pid %d) with SIGKILL", time.Duration(i+1)*d/5, name, victim.Addr, victim.Pid())
		if _, err := sys.Services[name].Start(ctx); err != nil {
			t.Fatalf("restart %s: %v", name, err)
		}
	}
	wg.Wait()
	checkCodes(t, load)
	// A replica killed inside a Firestore transaction leaves its documents
	// locked until Firestore drops the lock after 60 s idle (the emulator
	// as well), and the broker's next retry of the drone's events comes up
	// to 25.6 s after that: draining can take 90 s.
	load.checkDrained(t, sys, 150*time.Second)
}

// TestRollingRestartUnderLoad: with two replicas of every function and a
// fleet reporting, every function is rolled over to new replicas one after
// the other, as a new Knative revision replaces the old one (new replica
// ready, old one out of rotation, SIGTERM: func-go drains, then Stop).
// Drones get nothing but 202, or 503 with Retry-After; nothing is lost or
// stored twice.
func TestRollingRestartUnderLoad(t *testing.T) {
	f := newFixture(t)
	sys := up(t, f, map[string]int{"ingest": 2, "process": 2, "cache-refresh": 2, "alerts": 2, "serve-map": 2}, nil)
	load := newFleetLoad(t, f, 8)
	d := loadDuration()
	ctx, cancel := context.WithTimeout(context.Background(), d+2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		load.run(ctx, t, sys.Services["ingest"].URL(), 5, d+time.Minute) // until stopped
	}()
	time.Sleep(time.Second)
	// One round in make test; with DRONETRACK_SOAK=1 rounds for half the
	// load's minute (a round is what counts, not how long it took).
	began := time.Now()
	for round := 0; ; round++ {
		start := time.Now()
		for _, name := range Functions {
			if err := sys.Services[name].Restart(ctx, 30*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("rolling restart %d of every function: %v", round+1, time.Since(start).Round(time.Millisecond))
		if !soak() || ctx.Err() != nil || time.Since(began) > d/2 {
			break
		}
	}
	time.Sleep(time.Second) // the fleet reports on the new replicas for a while
	load.stop()
	wg.Wait()
	checkCodes(t, load)
	for _, name := range Functions {
		if n := sys.Services[name].Started(); n < 4 {
			t.Errorf("%s: %d replicas started, want at least 4 (2 + 2 new)", name, n)
		}
	}
	load.checkDrained(t, sys, time.Minute)
}
