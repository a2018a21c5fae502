package store

import (
	"context"
	"time"

	"github.com/dronetrack/dronetrack/core/flights"
)

// Flights keeps each drone's flights (stored as found, not recomputed at
// read time), the detector state that finds them, and tenants' detection
// settings. Another tenant's flight is ErrNotFound.
type Flights interface {
	// UpdateFlights atomically reads the drone's detector (a zero Detector
	// with the ids set when it has none), asks fn for the next one and,
	// when fn says so, stores it with fn's changes: flights upserted by id
	// and, when ReplaceFrom is set, the drone's other flights starting at
	// or after it deleted. fn may run more than once and must be pure. It
	// returns the detector now stored. A drone that does not exist, or
	// belongs to another tenant, is ErrNotFound.
	UpdateFlights(ctx context.Context, tenantID, droneID string,
		fn func(prev flights.Detector) (flights.Detector, flights.Changes, bool)) (flights.Detector, error)
	// OwedReplays lists drones whose detector owes a flights replay
	// (flights.Detector.Owed) since before, at most limit, every tenant's:
	// process sweeps them up after a restart and when a replay failed.
	OwedReplays(ctx context.Context, before time.Time, limit int) ([]DroneRef, error)
	// OwedReplay returns the flights replay the drone's detector owes (nil:
	// none, or no detector yet): until it is paid, the drone's flights from
	// Owed.From on may lack late reports. A drone that does not exist, or
	// belongs to another tenant, is ErrNotFound.
	OwedReplay(ctx context.Context, tenantID, droneID string) (*flights.Owed, error)
	// Flight returns one flight of the tenant.
	Flight(ctx context.Context, tenantID, id string) (flights.Flight, error)
	// ListFlights returns the tenant's flights (one drone's when DroneID is
	// set) starting in [From, To), newest first, at most Limit.
	ListFlights(ctx context.Context, q FlightQuery) ([]flights.Flight, error)

	// FlightSettings returns the tenant's settings, flights.DefaultSettings
	// when it saved none.
	FlightSettings(ctx context.Context, tenantID string) (flights.Settings, error)
	PutFlightSettings(ctx context.Context, tenantID string, s flights.Settings) error
}

// FlightQuery selects flights by start time.
type FlightQuery struct {
	TenantID string
	DroneID  string // "" for the whole fleet
	From, To time.Time
	Limit    int // 0: no limit
}

// DroneRef names a drone.
type DroneRef struct {
	TenantID, DroneID string
}
