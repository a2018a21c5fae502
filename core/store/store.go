// Package store declares what Dronetrack keeps durably and the errors its
// adapters return. Adapters live in sub-packages (firestore for the cluster,
// bolt for one machine) and all pass the same contract suite in storetest.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/dronetrack/dronetrack/core/flights"
	"github.com/dronetrack/dronetrack/core/remoteid"
	"github.com/dronetrack/dronetrack/events"
)

// Sentinel errors every adapter returns (wrapped) so callers can branch
// without knowing the backend.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	// ErrUnavailable means the backend could not be reached or refused for
	// capacity; the caller should retry later (ingest answers 503).
	ErrUnavailable = errors.New("store unavailable")
)

// Tenant is a customer organisation.
type Tenant struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
	// RemoteID is whether the tenant's flights are published to Network
	// Remote ID display providers (off until an owner turns it on).
	RemoteID bool `json:"remoteId,omitempty"`
	// RemoteIDVersion counts changes to the tenant's drones' Remote ID
	// identities (SetDroneIdentity).
	RemoteIDVersion int64 `json:"remoteIdVersion,omitempty"`
}

// Drone is a registered drone. KeyHash is the keyed hash of its API key;
// the key itself is never stored.
type Drone struct {
	ID        string             `json:"id"`
	TenantID  string             `json:"tenantId"`
	Name      string             `json:"name"`
	KeyHash   string             `json:"keyHash"`
	CreatedAt time.Time          `json:"createdAt"`
	State     *events.DroneState `json:"state,omitempty"`
	// RemoteID is the identity its owner declared for Network Remote ID;
	// nil when none was.
	RemoteID *remoteid.Identity `json:"remoteId,omitempty"`
}

// TrackPoint is one history sample of a drone. Its identity is (DroneID, TS):
// writing the same point twice leaves one point.
type TrackPoint struct {
	TenantID string        `json:"tenantId"`
	DroneID  string        `json:"droneId"`
	Report   events.Report `json:"report"`
	// ExpireAt drives the production TTL policy; readers skip expired points
	// themselves because TTL deletion lags by up to a day.
	ExpireAt time.Time `json:"expireAt"`
}

// TrackQuery selects a drone's history in [From, To), oldest first, at most
// Limit points, starting after the point at After (zero for the first page).
type TrackQuery struct {
	TenantID string
	DroneID  string
	From, To time.Time
	After    time.Time
	Limit    int
}

// Store is the durable state of Dronetrack. Timestamps are kept to the
// microsecond (Firestore's precision); finer parts may be dropped, so two
// track points in the same microsecond may become one. The contract suite in
// storetest pins down the details every adapter shares.
type Store interface {
	// Accounts is users, sessions, invites and fleet management.
	Accounts

	// CreateTenant fails with ErrAlreadyExists when the id is taken.
	CreateTenant(ctx context.Context, t Tenant) error
	Tenant(ctx context.Context, id string) (Tenant, error)

	// CreateDrone fails with ErrAlreadyExists when the id or key hash is taken.
	CreateDrone(ctx context.Context, d Drone) error
	// Drone returns a drone of the tenant; another tenant's drone is ErrNotFound.
	Drone(ctx context.Context, tenantID, droneID string) (Drone, error)
	// DroneByKeyHash finds the drone owning a key (ingest's authentication).
	DroneByKeyHash(ctx context.Context, keyHash string) (Drone, error)
	// Drones lists a tenant's drones ordered by id.
	Drones(ctx context.Context, tenantID string) ([]Drone, error)

	// LatestState returns the drone's stored latest state, or ErrNotFound
	// when it never reported.
	LatestState(ctx context.Context, tenantID, droneID string) (events.DroneState, error)
	// UpdateState atomically reads the drone's latest state (nil when it has
	// none), asks next for the new one and stores it unless next says no.
	// It returns the state now stored and whether it wrote. next may run more
	// than once (transactions retry), so it must be a pure function; newer-wins
	// lives in next, so a late or replayed report never overwrites a newer one.
	// A drone that does not exist, or belongs to another tenant, is ErrNotFound.
	UpdateState(ctx context.Context, tenantID, droneID string,
		next func(prev *events.DroneState) (events.DroneState, bool)) (events.DroneState, bool, error)

	// AppendTrack writes history points idempotently: ids are deterministic
	// in (drone, ts), so a duplicate rewrites the same point.
	AppendTrack(ctx context.Context, points []TrackPoint) error
	// Track reads history; expired points are left out. A drone that does
	// not exist, or belongs to another tenant, is ErrNotFound.
	Track(ctx context.Context, q TrackQuery) ([]TrackPoint, error)

	Alerts   // alerts.go
	Links    // links.go: public tracking links
	Alerts   // alerts.go
	Channels // channels.go

	RemoteID // remoteid.go

	Flights // flights.go

	Close() error
}

// DroneWrite is what process writes for one drone's batch of reports: its
// history points, its latest state and its flights.
type DroneWrite struct {
	TenantID, DroneID string
	// Points are written as AppendTrack writes them; each is the drone's.
	Points []TrackPoint
	// State is UpdateState's next.
	State func(prev *events.DroneState) (events.DroneState, bool)
	// Flights is UpdateFlights's fn; nil leaves the flights alone.
	Flights func(prev flights.Detector) (flights.Detector, flights.Changes, bool)
}

// DroneWriter is implemented by a store that writes a DroneWrite in one
// transaction (bolt: one group-commit call and one read of the drone per
// batch, where AppendTrack, UpdateState and UpdateFlights are three).
// Callers fall back to those three when a store is not one. WriteDrone
// returns what UpdateState returns; a drone that does not exist, or belongs
// to another tenant, is ErrNotFound and nothing is written, points
// included. State and Flights may run more than once and must be pure.
type DroneWriter interface {
	WriteDrone(ctx context.Context, w DroneWrite) (events.DroneState, bool, error)
}
