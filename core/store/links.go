package store

import (
	"context"
	"time"
)

// TrackLink is a public, read-only view of one drone's flight for someone
// without an account (a customer awaiting a delivery). TokenHash is the
// SHA-256 of the link's 256-bit token; the token itself is shown once and
// never stored, as for sessions and invites. The rules for when a link is
// live are core/tracklink's; the store only keeps what it is given.
type TrackLink struct {
	ID        string `json:"id"`
	TokenHash string `json:"tokenHash"`
	TenantID  string `json:"tenantId"`
	DroneID   string `json:"droneId"`
	// Mode is "flight" (until the drone has stayed put for the idle
	// time, at most ExpiresAt) or "duration" (until ExpiresAt).
	Mode      string    `json:"mode"`
	CreatedBy string    `json:"createdBy"`
	CreatedAt time.Time `json:"createdAt"`
	// ExpiresAt is the hard end: the chosen duration, or the 24 h cap of a
	// flight link.
	ExpiresAt time.Time `json:"expiresAt"`
	// Destination is the optional pin shown on the page, with its label.
	Destination *LinkDestination `json:"destination,omitempty"`
	// RevokedAt is set when an owner or admin revoked the link.
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
	// EndedAt is set when a flight link's flight was seen to end; it stays
	// ended when the drone flies again.
	EndedAt *time.Time `json:"endedAt,omitempty"`
}

// LinkDestination is where the drone is heading, as the link's creator
// typed it.
type LinkDestination struct {
	Lat   float64 `json:"lat"`
	Lon   float64 `json:"lon"`
	Label string  `json:"label,omitempty"`
}

// Links keeps tracking links. Another tenant's link is ErrNotFound.
type Links interface {
	// CreateLink fails with ErrAlreadyExists when the id or token hash is
	// taken.
	CreateLink(ctx context.Context, l TrackLink) error
	// LinkByTokenHash finds a link by its token's hash (the public page's
	// lookup), whatever its state; the caller decides whether it is live.
	LinkByTokenHash(ctx context.Context, tokenHash string) (TrackLink, error)
	// Links lists a tenant's drone's links, newest first.
	Links(ctx context.Context, tenantID, droneID string) ([]TrackLink, error)
	// RevokeLink sets the link's RevokedAt unless already set, and returns
	// the link now stored.
	RevokeLink(ctx context.Context, tenantID, id string, at time.Time) (TrackLink, error)
	// EndLink sets the link's EndedAt unless already set, and returns the
	// link now stored.
	EndLink(ctx context.Context, tenantID, id string, at time.Time) (TrackLink, error)
}
