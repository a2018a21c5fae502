package function

import (
	"context"
	"log/slog"
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
// with the same coalesced batch of reports (see flightupdate), and pays
// the replays late reports owe.
//
// A batch with a late report records, with its own write, that the drone
// owes a replay of its history (flights.Detector.Owed), and its delivery
// is acknowledged then: history and state are durable, and the flights
// follow. Replays run here, apart from the deliveries: at most cap(slots)
// at once, one per drone at a time, each until the store answers (bounded
// by timeout); a drone asked for again while its replay runs gets one more
// after it, which reads what is owed then. A replay that fails, or that a
// crash or a scale-down cut short, stays owed in the store: the drone's
// next batch asks again, and a sweep (at start, then every sweepEvery)
// lists the drones that owe one for longer than sweepEvery.
//
// Before replays were owed, a delivery waited for its replay: after a
// store outage nearly every drone's redelivered reports were late, each
// batch's replay queried the drone's history, gave up at the deadline
// while the store went on with the query, and its redelivery (late again,
// as the replay had not run) asked for another. On the Firestore emulator,
// whose queries cost in proportion to the whole database, that filled its
// heap; later, with replays apart, redeliveries waiting for them ran out of
// retries and were dead-lettered though their reports were stored.
type flightKeeper struct {
	st         Store
	now        func() time.Time
	timeout    time.Duration // bound of one replay, slot wait excluded
	sweepEvery time.Duration
	log        *slog.Logger
	onDone     func(flightupdate.Result, error)
	slots      chan struct{} // a slot per replay running
	// hold runs fn with the drone's state writes held (the coalescer's
	// exclusive): a replay's last read and write, when the drone's reports
	// kept coming in between.
	hold func(tenantID, droneID string, fn func())

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

// droneReplays is a drone whose replays run: again when it was asked for
// after the running one read what is owed.
type droneReplays struct {
	again bool
}

// replayRetry is how long a drone's replays pause after one failed before
// they try again (when asked again meanwhile; else the sweep retries),
// doubled for each failure in a row up to the sweep's period: a store that
// cannot answer a replay is not asked again at the drone's report rate.
const replayRetry = time.Second

// sweepLimit is the most drones one sweep asks replays for; the next sweep
// takes the rest.
const sweepLimit = 1000

func newFlightKeeper(st Store, now func() time.Time, replays int, timeout, sweepEvery time.Duration,
	log *slog.Logger, onDone func(flightupdate.Result, error)) *flightKeeper {
	stop, cancel := context.WithCancel(context.Background())
	k := &flightKeeper{st: st, now: now, timeout: timeout, sweepEvery: sweepEvery, log: log, onDone: onDone,
		slots: make(chan struct{}, replays), settings: map[string]cachedSettings{}, drones: map[droneKey]*droneReplays{},
		stop: stop, cancel: cancel}
	return k
}

// start starts the sweeps for owed replays, once hold is set.
func (k *flightKeeper) start() {
	k.running.Add(1)
	go k.sweeps()
}

// update brings the drone's flights up to date with reports, on a store
// that writes them apart from the state (not a store.DroneWriter).
func (k *flightKeeper) update(ctx context.Context, tenantID, droneID string, reports []events.Report) error {
	s, err := k.tenantSettings(ctx, tenantID)
	if err != nil {
		return err
	}
	pass := flightupdate.NewPass(s, reports, k.now())
	if _, err := k.st.UpdateFlights(ctx, tenantID, droneID, pass.Apply); err != nil {
		return err
	}
	k.written(pass, tenantID, droneID)
	return nil
}

// written follows pass's committed write: a replay the drone owes runs
// later, here.
func (k *flightKeeper) written(pass *flightupdate.Pass, tenantID, droneID string) {
	if pass.NeedsReplay() {
		k.request(droneKey{tenantID, droneID})
	}
}

// request asks for a replay of the drone's flights: it starts the drone's
// replays if none run, else one more after the running one.
func (k *flightKeeper) request(key droneKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stop.Err() != nil {
		return // closed: the replay stays owed in the store
	}
	if d := k.drones[key]; d != nil {
		d.again = true
		return
	}
	d := &droneReplays{}
	k.drones[key] = d
	k.running.Add(1)
	go k.replays(key, d)
}

// replays runs the drone's replays, one after the other, while one is
// owed: asked for again meanwhile, or left owed by late batches written
// during the last one.
func (k *flightKeeper) replays(key droneKey, d *droneReplays) {
	defer k.running.Done()
	fails := 0
	for {
		select {
		case k.slots <- struct{}{}:
		case <-k.stop.Done():
			k.forget(key)
			return
		}
		k.mu.Lock()
		d.again = false // a request from here on wants a replay that reads after this one
		k.mu.Unlock()
		res, err := k.replay(key)
		<-k.slots
		if k.stop.Err() != nil {
			k.forget(key) // cut short by close: it stays owed, for the next replica's sweep
			return
		}
		k.onDone(res, err)
		if err != nil {
			fails++
			pause := min(replayRetry<<min(fails-1, 16), k.sweepEvery)
			k.log.Warn("flights replay failed; it stays owed", "tenant_id", key.tenant, "drone_id", key.drone, "err", err,
				"retry_in", pause)
			select {
			case <-time.After(pause):
			case <-k.stop.Done():
			}
		} else {
			fails = 0
		}
		k.mu.Lock()
		if !d.again && (err != nil || !res.Owed) || k.stop.Err() != nil {
			delete(k.drones, key)
			k.mu.Unlock()
			return
		}
		k.mu.Unlock()
	}
}

// replay pays what the drone owes now.
func (k *flightKeeper) replay(key droneKey) (flightupdate.Result, error) {
	ctx, cancel := context.WithTimeout(k.stop, k.timeout)
	defer cancel()
	s, err := k.tenantSettings(ctx, key.tenant)
	if err != nil {
		return flightupdate.Result{Replaying: true}, err
	}
	var hold func(func())
	if k.hold != nil {
		hold = func(fn func()) { k.hold(key.tenant, key.drone, fn) }
	}
	return flightupdate.ReplayHolding(ctx, k.st, s, key.tenant, key.drone, k.now(), hold)
}

func (k *flightKeeper) forget(key droneKey) {
	k.mu.Lock()
	delete(k.drones, key)
	k.mu.Unlock()
}

// sweeps asks for the replays owed in the store: every one at start (a
// crash or a stop left them), then every sweepEvery those owed for longer
// than sweepEvery (failed, or their replica died; a replay owed for less
// is most likely running somewhere).
func (k *flightKeeper) sweeps() {
	defer k.running.Done()
	before := k.now()
	for {
		ctx, cancel := context.WithTimeout(k.stop, k.timeout)
		refs, err := k.st.OwedReplays(ctx, before, sweepLimit)
		cancel()
		switch {
		case err != nil && k.stop.Err() == nil:
			k.log.Warn("list owed flights replays", "err", err)
		case len(refs) > 0:
			k.log.Info("flights replays owed", "drones", len(refs))
		}
		for _, r := range refs {
			k.request(droneKey{r.TenantID, r.DroneID})
		}
		select {
		case <-time.After(k.sweepEvery):
			before = k.now().Add(-k.sweepEvery)
		case <-k.stop.Done():
			return
		}
	}
}

// owing is how many drones have replays running or waiting for a slot.
func (k *flightKeeper) owing() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.drones)
}

// close ends the sweeps and the replays running and waiting, and waits for
// them: each is idempotent and stays owed in the store, where the next
// replica's sweep finds it.
func (k *flightKeeper) close() {
	k.mu.Lock()
	k.cancel()
	k.mu.Unlock()
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
