package function

import (
	"context"
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
type flightKeeper struct {
	st  Store
	now func() time.Time

	mu       sync.Mutex
	settings map[string]cachedSettings
}

type cachedSettings struct {
	s  flights.Settings
	at time.Time
}

func newFlightKeeper(st Store, now func() time.Time) *flightKeeper {
	return &flightKeeper{st: st, now: now, settings: map[string]cachedSettings{}}
}

func (k *flightKeeper) update(ctx context.Context, tenantID, droneID string, reports []events.Report) (flightupdate.Result, error) {
	s, err := k.tenantSettings(ctx, tenantID)
	if err != nil {
		return flightupdate.Result{}, err
	}
	return flightupdate.Update(ctx, k.st, s, tenantID, droneID, reports, k.now())
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
