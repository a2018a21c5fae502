package store

import (
	"context"
	"time"
)

// Role is what a user may do in their tenant. Owners and admins manage
// drones and users; viewers only look.
type Role string

// Roles, from most to least powerful.
const (
	RoleOwner  Role = "owner"
	RoleAdmin  Role = "admin"
	RoleViewer Role = "viewer"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool { return r == RoleOwner || r == RoleAdmin || r == RoleViewer }

// CanManage reports whether the role may change the fleet and invite users.
func (r Role) CanManage() bool { return r == RoleOwner || r == RoleAdmin }

// User is a person who logs in to the website. Email is unique across the
// whole system and stored lower-case (core/accounts normalises it), so one
// address belongs to one tenant. PasswordHash is an encoded argon2id hash.
type User struct {
	ID           string    `json:"id"`
	TenantID     string    `json:"tenantId"`
	Email        string    `json:"email"`
	Role         Role      `json:"role"`
	PasswordHash string    `json:"passwordHash"`
	CreatedAt    time.Time `json:"createdAt"`
	Disabled     bool      `json:"disabled"`
}

// Session is a logged-in browser. ID is the hash of the cookie token and
// CSRFHash the hash of the CSRF token: a leaked table of sessions cannot be
// replayed as cookies.
type Session struct {
	ID        string    `json:"id"`
	UserID    string    `json:"userId"`
	TenantID  string    `json:"tenantId"`
	CSRFHash  string    `json:"csrfHash"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// Invite lets whoever holds its one-time link join TenantID with Role. ID is
// the hash of the link's token.
type Invite struct {
	ID        string    `json:"id"`
	TenantID  string    `json:"tenantId"`
	Role      Role      `json:"role"`
	CreatedBy string    `json:"createdBy"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// Accounts is the part of the store behind sign-up, log-in and fleet
// management. Expiry is decided by the caller (core/accounts) except where a
// method says otherwise; adapters only keep what they are given.
type Accounts interface {
	// CreateUser fails with ErrAlreadyExists when the id or email is taken.
	CreateUser(ctx context.Context, u User) error
	User(ctx context.Context, id string) (User, error)
	// UserByEmail looks up by the exact (already normalised) email.
	UserByEmail(ctx context.Context, email string) (User, error)
	// Users lists a tenant's users ordered by id.
	Users(ctx context.Context, tenantID string) ([]User, error)
	// SetPasswordHash replaces a user's password hash.
	SetPasswordHash(ctx context.Context, userID, hash string) error

	// CreateSession fails with ErrAlreadyExists when the id is taken.
	CreateSession(ctx context.Context, s Session) error
	// Session returns a session whatever its expiry; the caller checks it.
	Session(ctx context.Context, id string) (Session, error)
	// ExtendSession moves a session's expiry (sliding renewal).
	ExtendSession(ctx context.Context, id string, expiresAt time.Time) error
	// DeleteSession removes a session; a missing one is not an error.
	DeleteSession(ctx context.Context, id string) error
	// DeleteUserSessions removes every session of a user (password change).
	DeleteUserSessions(ctx context.Context, userID string) error

	// CreateInvite fails with ErrAlreadyExists when the id is taken.
	CreateInvite(ctx context.Context, inv Invite) error
	// ConsumeInvite atomically removes and returns an invite that expires
	// after now; a used, missing or expired invite is ErrNotFound, so a
	// link works exactly once.
	ConsumeInvite(ctx context.Context, id string, now time.Time) (Invite, error)

	// RenameDrone changes a tenant's drone's name; another tenant's drone
	// is ErrNotFound.
	RenameDrone(ctx context.Context, tenantID, droneID, name string) error
	// RetireDrone removes a tenant's drone and its key from the key index,
	// so its key stops working and the id leaves the fleet. History points
	// are left to expire by TTL.
	RetireDrone(ctx context.Context, tenantID, droneID string) error
	// SetDroneKey replaces a drone's key hash atomically: the old hash
	// leaves the key index and the new one enters it in one transaction.
	// An empty keyHash revokes the key. A hash owned by another drone is
	// ErrAlreadyExists.
	SetDroneKey(ctx context.Context, tenantID, droneID, keyHash string) error
}
