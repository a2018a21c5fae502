package broker

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// TestDeliveriesStartInStreamOrder: with one delivery at a time and many
// stored messages waiting for it, the subscriber gets the events in the
// order they were stored. Before messages took slots in turn, the waiting
// messages raced for the slot and a later event was delivered before an
// earlier one (process then replayed a drone's history).
func TestDeliveriesStartInStreamOrder(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	sub := newSink(t, func(e event.Event, _ int, w http.ResponseWriter) {
		if e.ID() == "e000" {
			<-release // hold the only slot until every event is stored
		}
		w.WriteHeader(http.StatusAccepted)
	})
	_, ingress := openBroker(t, Config{
		Files:         []string{writeManifest(t, triggerYAML("t", "test.a", "sub", fastRetry))},
		Resolve:       resolver(map[string]string{"sub": sub.srv.URL}),
		MaxInFlight:   1,
		MaxAckPending: 32,
		BatchLinger:   -1,
	})
	defer once.Do(func() { close(release) })
	const n = 200
	for i := range n {
		// One at a time: each 202 means stored, so each event is a message
		// of its own (nothing else is waiting to be batched with it).
		mustSend(t, ingress.URL, newEvent(fmt.Sprintf("e%03d", i), "test.a"))
	}
	once.Do(func() { close(release) })
	eventually(t, "all events delivered", func() bool { return len(sub.delivered()) == n })
	got := sub.received()
	for i, e := range got {
		if want := fmt.Sprintf("e%03d", i); e.ID() != want {
			t.Fatalf("delivery %d is %s, want %s (stream order)", i, e.ID(), want)
		}
	}
}

// TestLimiterFollowsThroughput drives the adaptive limit with two
// subscribers' throughput curves, window by window, as deliveries waiting
// for slots would: one whose rate stops growing past a knee (a store's
// single writer) and one whose rate grows with the deliveries it holds (a
// subscriber that holds each delivery for a fixed time, as process does
// for a drone reporting faster than its state interval).
func TestLimiterFollowsThroughput(t *testing.T) {
	const lo, hi, knee = 16, 1024, 100
	run := func(rate func(limit int) float64) (limits []int) {
		l := newLimiter(lo, hi)
		now := time.Unix(0, 0)
		l.since = now
		for range 200 {
			l.mu.Lock()
			// A window lasts limitWindow and at least one turnover.
			r := rate(l.limit)
			dt := max(limitWindow, time.Duration(float64(l.limit)/r*float64(time.Second))+time.Millisecond)
			now = now.Add(dt)
			l.waited = true
			l.completed = int(r * dt.Seconds())
			l.adapt(now)
			limits = append(limits, l.limit)
			l.mu.Unlock()
		}
		return limits
	}

	writer := run(func(limit int) float64 { return 1000 * min(float64(limit), knee) / knee })
	for i, lim := range writer[50:] {
		if lim < knee/2 || lim > 3*knee {
			t.Fatalf("writer-bound: window %d: limit %d, want it near the knee (%d): %v", 50+i, lim, knee, writer)
		}
	}
	holding := run(func(limit int) float64 { return float64(limit) / 0.5 })
	atBound := 0
	for i, lim := range holding[50:] {
		if lim < hi/2 {
			t.Fatalf("holding subscriber: window %d: limit %d, want it near the bound (%d): %v", 50+i, lim, hi, holding)
		}
		if lim == hi {
			atBound++
		}
	}
	// At the bound it stays, but for a step away every few windows.
	if n := len(holding) - 50; atBound < n*3/4 {
		t.Errorf("holding subscriber: limit at the bound in %d of %d windows, want most: %v", atBound, n, holding)
	}
}

// TestLimiterFixedWithoutFloor: without MinInFlight the limit is
// MaxInFlight and never moves.
func TestLimiterFixedWithoutFloor(t *testing.T) {
	l := newLimiter(0, 64)
	ctx := context.Background()
	for range 64 {
		if !l.acquire(ctx) {
			t.Fatal("acquire failed below the limit")
		}
	}
	ctx2, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if l.acquire(ctx2) {
		t.Fatal("acquired a 65th slot of 64")
	}
	for range 64 {
		l.release(true)
	}
	if got := l.current(); got != 64 {
		t.Fatalf("limit %d, want 64", got)
	}
}
