package function

import (
	"context"
	"io"
	"time"

	"github.com/dronetrack/dronetrack/core/flights"
	"github.com/dronetrack/dronetrack/core/flights/flightupdate"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// Store is the part of the store process uses: it writes a drone's history
// and latest state and keeps its flights (reading the tenant's flight
// settings). Declaring it here says what process touches and lets tests
// hand in a store that implements only that. A store that is also a
// store.DroneWriter (bolt) gets a batch's history, state and flights in one
// WriteDrone call instead (handler.go).
type Store interface {
	// AppendTrack writes history points (group commit, batch.go).
	AppendTrack(ctx context.Context, points []store.TrackPoint) error
	// UpdateState writes the coalesced latest state (coalesce.go).
	UpdateState(ctx context.Context, tenantID, droneID string,
		next func(prev *events.DroneState) (events.DroneState, bool)) (events.DroneState, bool, error)
	// FlightSettings and flightupdate.Store keep the drone's flights
	// (flights.go).
	FlightSettings(ctx context.Context, tenantID string) (flights.Settings, error)
	flightupdate.Store
	// OwedReplays lists the drones whose flights replay is owed (the
	// keeper's sweep, flights.go).
	OwedReplays(ctx context.Context, before time.Time, limit int) ([]store.DroneRef, error)
}

// openedStore is what Start opens: the Store and its Close.
type openedStore interface {
	Store
	io.Closer
}

// Every store.Store (so both backends, which assert they are one) is a
// Store; store_test.go checks the backends by name.
var _ openedStore = store.Store(nil)
