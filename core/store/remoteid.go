package store

import (
	"context"
	"time"

	"github.com/dronetrack/dronetrack/core/remoteid"
)

// RIDTest is one InterUSS test injection (PUT /rid/injection/tests/{id}):
// its flights, packed by core/remoteid, are evaluated at query time by the
// Remote ID endpoints, so any replica (or one started from zero) reports
// them at the right moment without a process flying them.
type RIDTest struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	// Flights is remoteid.PackFlights's encoding of the prepared flights.
	Flights   []byte    `json:"flights"`
	CreatedAt time.Time `json:"createdAt"`
	// ExpireAt is when the test is forgotten even if never deleted (a TTL
	// policy in production; readers skip expired tests themselves).
	ExpireAt time.Time `json:"expireAt"`
}

// RemoteID is the part of the store behind Network Remote ID (ASTM
// F3411-22a): which tenants publish their flights, each drone's declared
// identity, and test injections.
type RemoteID interface {
	// SetTenantRemoteID turns Remote ID on or off for a tenant; a missing
	// tenant is ErrNotFound.
	SetTenantRemoteID(ctx context.Context, tenantID string, on bool) error
	// RemoteIDTenants lists the tenants with Remote ID on, ordered by id,
	// with their RemoteIDVersion, so readers reload identities only when
	// one changed.
	RemoteIDTenants(ctx context.Context) ([]Tenant, error)
	// SetDroneIdentity replaces a tenant's drone's Remote ID identity (nil
	// clears it) and, in the same transaction, bumps the tenant's
	// RemoteIDVersion (when the tenant record exists). Another tenant's
	// drone is ErrNotFound.
	SetDroneIdentity(ctx context.Context, tenantID, droneID string, id *remoteid.Identity) error

	// CreateRIDTest stores a test injection; an existing id is
	// ErrAlreadyExists.
	CreateRIDTest(ctx context.Context, t RIDTest) error
	// RIDTests lists the tests that expire after now, ordered by id.
	RIDTests(ctx context.Context, now time.Time) ([]RIDTest, error)
	// DeleteRIDTest removes the test with that id and version and returns
	// it; a missing test or another version is ErrNotFound.
	DeleteRIDTest(ctx context.Context, id, version string) (RIDTest, error)
}
