package function

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/dronetrack/dronetrack/core/publish"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// TestCoalescerSpacesWritesPerDrone: 40 updates of one drone arriving at
// once become a handful of writes (first at once, the rest merged at the
// trailing edge), every caller gets the state that covers its report, and
// another drone is not held back.
func TestCoalescerSpacesWritesPerDrone(t *testing.T) {
	var writes atomic.Int64
	var mu sync.Mutex
	seen := map[string]int{} // reports written per drone
	c := newCoalescer(func(_ context.Context, _, drone string, reports []events.Report, _ []store.TrackPoint) (events.DroneState, bool, error) {
		writes.Add(1)
		mu.Lock()
		seen[drone] += len(reports)
		mu.Unlock()
		newest := reports[0].TS
		for _, r := range reports {
			if r.TS.After(newest) {
				newest = r.TS
			}
		}
		return events.DroneState{TS: newest}, true, nil
	}, 200*time.Millisecond, 30*time.Second)
	defer c.Close()

	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			ts := base.Add(time.Duration(i) * time.Second)
			st, wrote, err := c.Submit(context.Background(), "t1", "busy", []events.Report{{TS: ts}}, nil)
			if err != nil || !wrote || st.TS.Before(ts) {
				t.Errorf("update %d: state %v wrote %v err %v, want a state at or after its report", i, st.TS, wrote, err)
			}
		})
	}
	wg.Wait()
	if _, _, err := c.Submit(context.Background(), "t1", "quiet", []events.Report{{TS: base}}, nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["busy"] != 40 || seen["quiet"] != 1 {
		t.Errorf("reports written %v, want busy 40 and quiet 1", seen)
	}
	// 40 concurrent updates: the first writes alone, the rest are merged
	// into one or two trailing writes (goroutine start-up may straddle one).
	if n := writes.Load() - 1; n > 4 {
		t.Errorf("%d writes for the busy drone, want at most a few (coalesced)", n)
	}
}

func TestCoalescerRefusesAfterClose(t *testing.T) {
	c := newCoalescer(func(context.Context, string, string, []events.Report, []store.TrackPoint) (events.DroneState, bool, error) {
		return events.DroneState{}, false, nil
	}, time.Millisecond, 30*time.Second)
	c.Close()
	if _, _, err := c.Submit(context.Background(), "t", "d", []events.Report{{TS: base}}, nil); err != errClosed {
		t.Errorf("Submit after Close: %v, want errClosed", err)
	}
}

func TestRecentIDsEvictsOldest(t *testing.T) {
	r := newRecentIDs(2)
	r.Add("a")
	r.Add("b")
	r.Add("a") // already known: no eviction
	r.Add("c") // evicts a
	if r.Seen("a") || !r.Seen("b") || !r.Seen("c") {
		t.Errorf("after a,b,c in a ring of 2: a=%v b=%v c=%v, want false true true", r.Seen("a"), r.Seen("b"), r.Seen("c"))
	}
}

// TestCoalescerForgetsIdleDrones: memory follows the active fleet; entries
// of drones with nothing pending are dropped by the sweep.
func TestCoalescerForgetsIdleDrones(t *testing.T) {
	c := newCoalescer(func(context.Context, string, string, []events.Report, []store.TrackPoint) (events.DroneState, bool, error) {
		return events.DroneState{}, true, nil
	}, time.Second, 30*time.Second)
	defer c.Close()
	for i := range 100 {
		if _, _, err := c.Submit(context.Background(), "t1", fmt.Sprint("d", i), []events.Report{{TS: base}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.drones) != 100 {
		t.Fatalf("%d entries after 100 drones wrote, want 100 (still within the interval)", len(c.drones))
	}
	c.sweep(time.Now().Add(time.Hour))
	if len(c.drones) != 0 {
		t.Errorf("%d entries left after the drones went idle, want 0", len(c.drones))
	}
}

// A report that waits for its drone's STATE_INTERVAL to pass is held on
// purpose and says so to its sender in process (publish.Hold: the
// broker's bound of deliveries in flight then does not count it); one
// that is written at once is not held.
// heldSubmit submits a report of drone d1 at ts as a delivery would and
// returns how often the coalescer told its sender it is held.
func heldSubmit(t *testing.T, c *coalescer) func(ts time.Time) int {
	return func(ts time.Time) (held int) {
		t.Helper()
		e := cloudevents.New()
		ctx, d := publish.WithDelivery(context.Background(), &e, "process.local:1", "/")
		d.OnHold(func() bool { held++; return true })
		if _, _, err := c.Submit(ctx, "t1", "d1", []events.Report{{TS: ts}}, nil); err != nil {
			t.Fatal(err)
		}
		return held
	}
}

func TestCoalescerTellsSenderOfHold(t *testing.T) {
	c := newCoalescer(func(_ context.Context, _, _ string, reports []events.Report, _ []store.TrackPoint) (events.DroneState, bool, error) {
		return events.DroneState{TS: reports[len(reports)-1].TS}, true, nil
	}, 200*time.Millisecond, 30*time.Second)
	defer c.Close()
	submit := heldSubmit(t, c)
	if held := submit(base); held != 0 {
		t.Errorf("first report of a quiet drone (written at once): held %d times, want 0", held)
	}
	if held := submit(base.Add(time.Second)); held != 1 {
		t.Errorf("second report within the interval (waits for the timer): held %d times, want 1", held)
	}
}

// A report its sender will not let wait apart from the deliveries being
// worked on (publish.Hold answering false: the broker holds as many as it
// lets wait so already) is not held for the drone's interval: the drone is
// written now, with the reports held before it, in one write.
func TestCoalescerWritesNowWhenTheSenderRefusesTheHold(t *testing.T) {
	var mu sync.Mutex
	var batches [][]events.Report
	c := newCoalescer(func(_ context.Context, _, _ string, reports []events.Report, _ []store.TrackPoint) (events.DroneState, bool, error) {
		mu.Lock()
		batches = append(batches, reports)
		mu.Unlock()
		return events.DroneState{TS: reports[len(reports)-1].TS}, true, nil
	}, time.Hour, 30*time.Second) // no timer fires during the test
	defer c.Close()
	submit := func(ctx context.Context, freed bool, ts time.Time) error {
		e := cloudevents.New()
		ctx, d := publish.WithDelivery(ctx, &e, "process.local:1", "/")
		d.OnHold(func() bool { return freed })
		_, _, err := c.Submit(ctx, "t1", "d1", []events.Report{{TS: ts}}, nil)
		return err
	}
	if err := submit(context.Background(), true, base); err != nil {
		t.Fatal(err) // a quiet drone: written at once
	}
	// Held for the hour: answered only by the refused one's write.
	heldDone := make(chan error, 1)
	go func() { heldDone <- submit(context.Background(), true, base.Add(time.Second)) }()
	waiting := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		p := c.drones[droneKey{"t1", "d1"}]
		return p != nil && len(p.waiters) == 1 && p.timer != nil
	}
	for deadline := time.Now().Add(time.Minute); !waiting(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the second report is not waiting for the drone's timer")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := submit(ctx, false, base.Add(2*time.Second)); err != nil {
		t.Fatalf("report whose hold was refused: %v (held for the interval, want written now)", err)
	}
	select {
	case err := <-heldDone:
		if err != nil {
			t.Fatalf("held report: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the report held before the refused one was not answered by its write")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(batches) != 2 || len(batches[1]) != 2 {
		t.Fatalf("writes %v, want the first report alone, then the held and the refused one together", batches)
	}
}

// A drone reporting once per interval whose write once fell behind its
// report (a stall, a sender's late request) catches up: its writes come
// back to its reports' arrivals within a few reports, never closer than
// 0.9 interval to each other. Waiting for the whole interval since the
// last write, it stayed behind by the same lag for every report after.
func TestCoalescerDroneBehindItsReportsCatchesUp(t *testing.T) {
	const interval = time.Second
	c := newCoalescer(nil, interval, time.Minute)
	for _, lag := range []time.Duration{50 * time.Millisecond, 150 * time.Millisecond, 400 * time.Millisecond, 900 * time.Millisecond} {
		// Report k arrives at base+k s; report 0's write started lag late.
		lastWrite := base.Add(lag)
		caughtUp := -1
		for k := 1; k <= 20; k++ {
			arrival := base.Add(time.Duration(k) * interval)
			write := arrival.Add(c.wait(lastWrite, arrival))
			if gap := write.Sub(lastWrite); gap < interval-interval/slackDiv {
				t.Fatalf("lag %v, report %d: writes %v apart, want at least 0.9 interval", lag, k, gap)
			}
			if write.Equal(arrival) && caughtUp < 0 {
				caughtUp = k
			}
			if caughtUp > 0 && !write.Equal(arrival) {
				t.Fatalf("lag %v, report %d: written %v after arrival after catching up at report %d", lag, k, write.Sub(arrival), caughtUp)
			}
			lastWrite = write
		}
		// Behind by lag, a drone catches up by the slack (0.1 interval)
		// with every report.
		if want := int(lag/(interval/slackDiv)) + 1; caughtUp < 0 || caughtUp > want {
			t.Errorf("lag %v: written at its report's arrival from report %d, want by report %d", lag, caughtUp, want)
		}
	}
}

// TestCoalescerWritesAtOnceWithinTheSlack: a report arriving when the
// drone's interval is all but over (a drone reporting once per interval)
// is written at once, not held for a timer; one arriving early is held.
func TestCoalescerWritesAtOnceWithinTheSlack(t *testing.T) {
	const interval = 200 * time.Millisecond
	var writes atomic.Int64
	c := newCoalescer(func(_ context.Context, _, _ string, reports []events.Report, _ []store.TrackPoint) (events.DroneState, bool, error) {
		writes.Add(1)
		return events.DroneState{TS: reports[len(reports)-1].TS}, true, nil
	}, interval, 30*time.Second)
	defer c.Close()
	submit := heldSubmit(t, c)
	submit(base)
	// The write started before Submit returned: a sleep of 0.95 interval
	// leaves at most 0.05 interval of it, within the slack of 0.1.
	time.Sleep(interval - interval/20)
	if held := submit(base.Add(time.Second)); held != 0 {
		t.Errorf("report due within the slack: held %d times, want 0 (written at once)", held)
	}
	if held := submit(base.Add(2 * time.Second)); held != 1 {
		t.Errorf("report right after a write: held %d times, want 1 (waits for the interval)", held)
	}
	if n := writes.Load(); n != 3 {
		t.Errorf("%d writes, want 3", n)
	}
}

// While exclusive runs for a drone, its writes wait (and are written after);
// another drone's are not held, and the sweep keeps the held entry.
func TestCoalescerExclusiveHoldsTheDronesWrites(t *testing.T) {
	var written sync.Map // drone -> time of its write
	c := newCoalescer(func(_ context.Context, _, drone string, reports []events.Report, _ []store.TrackPoint) (events.DroneState, bool, error) {
		written.Store(drone, time.Now())
		return events.DroneState{TS: reports[0].TS}, true, nil
	}, time.Millisecond, 30*time.Second)
	defer c.Close()
	var released time.Time
	c.exclusive("t1", "held", func() {
		done := make(chan struct{})
		go func() {
			defer close(done)
			if _, _, err := c.Submit(context.Background(), "t1", "held", []events.Report{{TS: base}}, nil); err != nil {
				t.Errorf("held drone: %v", err)
			}
		}()
		if _, _, err := c.Submit(context.Background(), "t1", "free", []events.Report{{TS: base}}, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		c.mu.Lock()
		c.lastSweep = time.Time{}
		c.sweep(time.Now().Add(time.Hour))
		_, kept := c.drones[droneKey{"t1", "held"}]
		c.mu.Unlock()
		if !kept {
			t.Error("the sweep forgot a drone held by exclusive")
		}
		if _, ok := written.Load("held"); ok {
			t.Error("the held drone was written during exclusive")
		}
		released = time.Now()
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if at, ok := written.Load("held"); ok {
			if at.(time.Time).Before(released) {
				t.Errorf("held drone written at %v, before the hold ended at %v", at, released)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the held drone's write did not follow the hold")
		}
		time.Sleep(time.Millisecond)
	}
	if _, ok := written.Load("free"); !ok {
		t.Error("another drone's write waited for the hold")
	}
}
