package function

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dronetrack/dronetrack/core/flights"
	"github.com/dronetrack/dronetrack/core/flights/flightupdate"
	"github.com/dronetrack/dronetrack/events"
)

// flightSettingsTTL is how long process uses a tenant's flight settings
// before reading them again: a change applies within it, and a busy
// tenant costs one settings read per TTL, not one per batch.
const flightSettingsTTL = 30 * time.Second

// flightKeeper updates a drone's stored flights after its state write,
// with the same coalesced batch of reports (see flightupdate).
//
// Replays (a batch with a late report reads the drone's history and
// rewrites its flights) run apart from the deliveries that ask for them:
// at most cap(slots) at once, one per drone at a time, and the requests
// that arrive while a drone's replay runs share the one after it, from the
// earliest checkpoint any of them needs (their batches are written before
// they ask, so its history read holds them all). A delivery waits for the
// replay that covers it within its own deadline, and answers 503 past it;
// the replay goes on, holding its slot until the store answers. After a
// store outage nearly every drone's redelivered reports are late: each
// batch's replay used to query the drone's history at once with all the
// others, give up at the deadline while the store went on with the query,
// and its redelivery queried again. On the Firestore emulator, whose
// queries cost in proportion to the whole database, that ran hundreds of
// queries at a time and filled its heap.
type flightKeeper struct {
	st      Store
	now     func() time.Time
	timeout time.Duration // bound of one replay, slot wait excluded
	onDone  func(flightupdate.Result, error)
	slots   chan struct{} // a slot per replay running

	mu       sync.Mutex
	settings map[string]cachedSettings
	drones   map[droneKey]*droneReplays
	running  sync.WaitGroup
	stop     context.Context // ends the replays at close
	cancel   context.CancelFunc
}

type cachedSettings struct {
	s  flights.Settings
	at time.Time
}

// droneReplays is a drone's replay in progress (if any) and the one owed
// after it.
type droneReplays struct {
	next *replayRun
}

// replayRun is one replay of a drone's flights and the deliveries it
// answers.
type replayRun struct {
	pass *flightupdate.Pass // the earliest-starting of the requests
	done chan struct{}      // closed with res and err set
	res  flightupdate.Result
	err  error
}

func newFlightKeeper(st Store, now func() time.Time, replays int, timeout time.Duration,
	onDone func(flightupdate.Result, error)) *flightKeeper {
	stop, cancel := context.WithCancel(context.Background())
	return &flightKeeper{st: st, now: now, timeout: timeout, onDone: onDone, slots: make(chan struct{}, replays),
		settings: map[string]cachedSettings{}, drones: map[droneKey]*droneReplays{}, stop: stop, cancel: cancel}
}

// update brings the drone's flights up to date with reports, on a store
// that writes them apart from the state (not a store.DroneWriter).
func (k *flightKeeper) update(ctx context.Context, tenantID, droneID string, reports []events.Report) error {
	s, err := k.tenantSettings(ctx, tenantID)
	if err != nil {
		return err
	}
	pass := flightupdate.NewPass(s, reports)
	if _, err := k.st.UpdateFlights(ctx, tenantID, droneID, pass.Apply); err != nil {
		return err
	}
	return k.finish(ctx, pass, tenantID, droneID)
}

// finish completes pass once its detector write is committed: when the
// batch calls for a replay, it waits for one that covers it, as long as
// ctx allows.
func (k *flightKeeper) finish(ctx context.Context, pass *flightupdate.Pass, tenantID, droneID string) error {
	if !pass.NeedsReplay() {
		_, err := pass.Finish(ctx, k.st, tenantID, droneID, k.now())
		return err
	}
	run := k.request(droneKey{tenantID, droneID}, pass)
	select {
	case <-run.done:
		return run.err
	case <-ctx.Done():
		return fmt.Errorf("wait for the flights replay of drone %s: %w", droneID, ctx.Err())
	}
}

// request returns the drone's owed replay, with pass's batch in it, and
// starts the drone's replays if none runs.
func (k *flightKeeper) request(key droneKey, pass *flightupdate.Pass) *replayRun {
	k.mu.Lock()
	defer k.mu.Unlock()
	d := k.drones[key]
	start := d == nil
	if start {
		d = &droneReplays{}
		k.drones[key] = d
	}
	if d.next == nil {
		d.next = &replayRun{pass: pass, done: make(chan struct{})}
	} else if pass.ReplaysFrom(d.next.pass) {
		d.next.pass = pass
	}
	run := d.next
	if start {
		k.running.Add(1)
		go k.replays(key, d)
	}
	return run
}

// replays runs the drone's owed replays one after the other until none is
// owed.
func (k *flightKeeper) replays(key droneKey, d *droneReplays) {
	defer k.running.Done()
	for {
		k.mu.Lock()
		run := d.next
		d.next = nil
		if run == nil {
			delete(k.drones, key)
			k.mu.Unlock()
			return
		}
		k.mu.Unlock()
		select {
		case k.slots <- struct{}{}:
			ctx, cancel := context.WithTimeout(k.stop, k.timeout)
			run.res, run.err = run.pass.Finish(ctx, k.st, key.tenant, key.drone, k.now())
			cancel()
			<-k.slots
		case <-k.stop.Done():
			run.res, run.err = flightupdate.Result{Replaying: true}, fmt.Errorf("flights replay of drone %s: %w", key.drone, k.stop.Err())
		}
		k.onDone(run.res, run.err)
		close(run.done)
	}
}

// close ends the replays in progress and owed, and waits for them: each
// is idempotent, and the deliveries that asked for them were answered 503
// or are redelivered to the next replica, whose replay does the work.
func (k *flightKeeper) close() {
	k.cancel()
	k.running.Wait()
}

func (k *flightKeeper) tenantSettings(ctx context.Context, tenantID string) (flights.Settings, error) {
	now := time.Now()
	k.mu.Lock()
	c, ok := k.settings[tenantID]
	k.mu.Unlock()
	if ok && now.Sub(c.at) < flightSettingsTTL {
		return c.s, nil
	}
	s, err := k.st.FlightSettings(ctx, tenantID)
	if err != nil {
		return flights.Settings{}, err
	}
	k.mu.Lock()
	k.settings[tenantID] = cachedSettings{s: s, at: now}
	k.mu.Unlock()
	return s, nil
}
