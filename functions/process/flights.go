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
// with the same coalesced batch of reports (see flightupdate). Replays
// (a batch with a late report reads the drone's history and rewrites its
// flights) take one of a few slots: a burst of late reports (redeliveries
// after a store outage) otherwise ran a history query for nearly every
// drone at once, each slower for the others, until all missed the store
// timeout and their redeliveries queried again.
type flightKeeper struct {
	st      Store
	now     func() time.Time
	replays chan struct{} // a slot per replay running

	mu       sync.Mutex
	settings map[string]cachedSettings
}

type cachedSettings struct {
	s  flights.Settings
	at time.Time
}

func newFlightKeeper(st Store, now func() time.Time, replays int) *flightKeeper {
	return &flightKeeper{st: st, now: now, replays: make(chan struct{}, replays), settings: map[string]cachedSettings{}}
}

// update brings the drone's flights up to date with reports, on a store
// that writes them apart from the state (not a store.DroneWriter).
func (k *flightKeeper) update(ctx context.Context, tenantID, droneID string, reports []events.Report) (flightupdate.Result, error) {
	s, err := k.tenantSettings(ctx, tenantID)
	if err != nil {
		return flightupdate.Result{}, err
	}
	pass := flightupdate.NewPass(s, reports)
	if _, err := k.st.UpdateFlights(ctx, tenantID, droneID, pass.Apply); err != nil {
		return flightupdate.Result{}, err
	}
	return k.finish(ctx, pass, tenantID, droneID)
}

// finish completes pass once its detector write is committed: a replay,
// when the batch calls for one, waits for a slot, as long as ctx allows.
func (k *flightKeeper) finish(ctx context.Context, pass *flightupdate.Pass, tenantID, droneID string) (flightupdate.Result, error) {
	if pass.NeedsReplay() {
		select {
		case k.replays <- struct{}{}:
			defer func() { <-k.replays }()
		case <-ctx.Done():
			return flightupdate.Result{Replaying: true}, fmt.Errorf("wait for a flights replay slot: %w", ctx.Err())
		}
	}
	return pass.Finish(ctx, k.st, tenantID, droneID, k.now())
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
