package firestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	fs "cloud.google.com/go/firestore"
	"github.com/dronetrack/dronetrack/core/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Account collections: users/{userId}; userEmails/{sha256(email)} -> userId,
// created in the user's transaction so an email maps to one user (hashed
// because an email may contain "/", which a document id may not);
// sessions/{tokenHash} with userId and expiresAt (TTL policy on expiresAt
// in production; readers check expiry themselves); invites/{tokenHash}.
// DeleteUserSessions queries sessions by userId: the automatic single-field
// index serves it.

type userDoc struct {
	TenantID     string    `firestore:"tenantId"`
	Email        string    `firestore:"email"`
	Role         string    `firestore:"role"`
	PasswordHash string    `firestore:"passwordHash"`
	CreatedAt    time.Time `firestore:"createdAt"`
	Disabled     bool      `firestore:"disabled"`
}

type emailDoc struct {
	UserID string `firestore:"userId"`
}

type sessionDoc struct {
	UserID    string    `firestore:"userId"`
	TenantID  string    `firestore:"tenantId"`
	CSRFHash  string    `firestore:"csrfHash"`
	CreatedAt time.Time `firestore:"createdAt"`
	ExpiresAt time.Time `firestore:"expiresAt"`
}

type inviteDoc struct {
	TenantID  string    `firestore:"tenantId"`
	Role      string    `firestore:"role"`
	CreatedBy string    `firestore:"createdBy"`
	CreatedAt time.Time `firestore:"createdAt"`
	ExpiresAt time.Time `firestore:"expiresAt"`
}

func (s *Store) users() *fs.CollectionRef    { return s.client.Collection("users") }
func (s *Store) emails() *fs.CollectionRef   { return s.client.Collection("userEmails") }
func (s *Store) sessions() *fs.CollectionRef { return s.client.Collection("sessions") }
func (s *Store) invites() *fs.CollectionRef  { return s.client.Collection("invites") }

func emailID(email string) string {
	h := sha256.Sum256([]byte(email))
	return hex.EncodeToString(h[:])
}

func (d userDoc) user(id string) store.User {
	return store.User{ID: id, TenantID: d.TenantID, Email: d.Email, Role: store.Role(d.Role),
		PasswordHash: d.PasswordHash, CreatedAt: d.CreatedAt, Disabled: d.Disabled}
}

// CreateUser implements store.Accounts: user and email index in one
// transaction.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	what := "create user " + u.ID
	if !validID(u.ID) {
		return fmt.Errorf("%s: invalid id", what)
	}
	userRef, emailRef := s.users().Doc(u.ID), s.emails().Doc(emailID(u.Email))
	err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *fs.Transaction) error {
		snaps, err := tx.GetAll([]*fs.DocumentRef{userRef, emailRef})
		if err != nil {
			return err
		}
		if snaps[0].Exists() {
			return fmt.Errorf("user id taken: %w", store.ErrAlreadyExists)
		}
		if snaps[1].Exists() {
			return fmt.Errorf("email taken: %w", store.ErrAlreadyExists)
		}
		if err := tx.Create(emailRef, emailDoc{UserID: u.ID}); err != nil {
			return err
		}
		return tx.Create(userRef, userDoc{TenantID: u.TenantID, Email: u.Email, Role: string(u.Role),
			PasswordHash: u.PasswordHash, CreatedAt: u.CreatedAt, Disabled: u.Disabled})
	}, fs.MaxAttempts(txAttempts))
	return mapErr(what, err)
}

// User implements store.Accounts.
func (s *Store) User(ctx context.Context, id string) (store.User, error) {
	what := "get user " + id
	if !validID(id) {
		return store.User{}, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	snap, err := s.users().Doc(id).Get(ctx)
	if err != nil {
		return store.User{}, mapErr(what, err)
	}
	var d userDoc
	if err := snap.DataTo(&d); err != nil {
		return store.User{}, fmt.Errorf("%s: decode: %w", what, err)
	}
	return d.user(id), nil
}

// UserByEmail implements store.Accounts.
func (s *Store) UserByEmail(ctx context.Context, email string) (store.User, error) {
	const what = "find user by email"
	snap, err := s.emails().Doc(emailID(email)).Get(ctx)
	if err != nil {
		return store.User{}, mapErr(what, err)
	}
	var e emailDoc
	if err := snap.DataTo(&e); err != nil {
		return store.User{}, fmt.Errorf("%s: decode: %w", what, err)
	}
	u, err := s.User(ctx, e.UserID)
	if err != nil {
		return store.User{}, fmt.Errorf("%s: %w", what, err)
	}
	return u, nil
}

// Users implements store.Accounts.
func (s *Store) Users(ctx context.Context, tenantID string) ([]store.User, error) {
	what := "list users of tenant " + tenantID
	return listDocs(ctx, s.users().Where("tenantId", "==", tenantID).OrderBy(fs.DocumentID, fs.Asc), what, userDoc.user)
}

// SetPasswordHash implements store.Accounts.
func (s *Store) SetPasswordHash(ctx context.Context, userID, hash string) error {
	what := "set password of user " + userID
	if !validID(userID) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	_, err := s.users().Doc(userID).Update(ctx, []fs.Update{{Path: "passwordHash", Value: hash}})
	return mapErr(what, err)
}

// CreateSession implements store.Accounts.
func (s *Store) CreateSession(ctx context.Context, se store.Session) error {
	const what = "create session"
	if !validID(se.ID) {
		return fmt.Errorf("%s: invalid id", what)
	}
	_, err := s.sessions().Doc(se.ID).Create(ctx, sessionDoc{UserID: se.UserID, TenantID: se.TenantID,
		CSRFHash: se.CSRFHash, CreatedAt: se.CreatedAt, ExpiresAt: se.ExpiresAt})
	return mapErr(what, err)
}

// Session implements store.Accounts.
func (s *Store) Session(ctx context.Context, id string) (store.Session, error) {
	const what = "get session"
	if !validID(id) {
		return store.Session{}, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	snap, err := s.sessions().Doc(id).Get(ctx)
	if err != nil {
		return store.Session{}, mapErr(what, err)
	}
	var d sessionDoc
	if err := snap.DataTo(&d); err != nil {
		return store.Session{}, fmt.Errorf("%s: decode: %w", what, err)
	}
	return store.Session{ID: id, UserID: d.UserID, TenantID: d.TenantID, CSRFHash: d.CSRFHash,
		CreatedAt: d.CreatedAt, ExpiresAt: d.ExpiresAt}, nil
}

// ExtendSession implements store.Accounts.
func (s *Store) ExtendSession(ctx context.Context, id string, expiresAt time.Time) error {
	const what = "extend session"
	if !validID(id) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	_, err := s.sessions().Doc(id).Update(ctx, []fs.Update{{Path: "expiresAt", Value: expiresAt}})
	return mapErr(what, err)
}

// DeleteSession implements store.Accounts.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if !validID(id) {
		return nil
	}
	_, err := s.sessions().Doc(id).Delete(ctx)
	return mapErr("delete session", err)
}

// DeleteUserSessions implements store.Accounts.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) error {
	what := "delete sessions of user " + userID
	snaps, err := s.sessions().Where("userId", "==", userID).Documents(ctx).GetAll()
	if err != nil {
		return mapErr(what, err)
	}
	for _, snap := range snaps {
		if _, err := snap.Ref.Delete(ctx); err != nil {
			return mapErr(what, err)
		}
	}
	return nil
}

// CreateInvite implements store.Accounts.
func (s *Store) CreateInvite(ctx context.Context, inv store.Invite) error {
	const what = "create invite"
	if !validID(inv.ID) {
		return fmt.Errorf("%s: invalid id", what)
	}
	_, err := s.invites().Doc(inv.ID).Create(ctx, inviteDoc{TenantID: inv.TenantID, Role: string(inv.Role),
		CreatedBy: inv.CreatedBy, CreatedAt: inv.CreatedAt, ExpiresAt: inv.ExpiresAt})
	return mapErr(what, err)
}

// ConsumeInvite implements store.Accounts: read and delete in one
// transaction, so two accepts of one link cannot both succeed.
func (s *Store) ConsumeInvite(ctx context.Context, id string, now time.Time) (store.Invite, error) {
	const what = "consume invite"
	if !validID(id) {
		return store.Invite{}, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	ref := s.invites().Doc(id)
	var inv store.Invite
	err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *fs.Transaction) error {
		snap, err := tx.Get(ref)
		if err != nil {
			return err
		}
		var d inviteDoc
		if err := snap.DataTo(&d); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		if !d.ExpiresAt.After(now) {
			return fmt.Errorf("invite expired: %w", store.ErrNotFound)
		}
		inv = store.Invite{ID: id, TenantID: d.TenantID, Role: store.Role(d.Role), CreatedBy: d.CreatedBy,
			CreatedAt: d.CreatedAt, ExpiresAt: d.ExpiresAt}
		return tx.Delete(ref)
	}, fs.MaxAttempts(txAttempts))
	if err != nil {
		return store.Invite{}, mapErr(what, err)
	}
	return inv, nil
}

// droneTx reads a tenant's drone inside a transaction.
func (s *Store) droneTx(tx *fs.Transaction, tenantID, droneID string) (*fs.DocumentRef, droneDoc, error) {
	ref := s.drones().Doc(droneID)
	snap, err := tx.Get(ref)
	if status.Code(err) == codes.NotFound {
		return nil, droneDoc{}, fmt.Errorf("drone %s: %w", droneID, store.ErrNotFound)
	}
	d, err := getDrone(snap, err, tenantID)
	return ref, d, err
}

// RenameDrone implements store.Accounts.
func (s *Store) RenameDrone(ctx context.Context, tenantID, droneID, name string) error {
	what := "rename drone " + droneID
	if !validID(droneID) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *fs.Transaction) error {
		ref, _, err := s.droneTx(tx, tenantID, droneID)
		if err != nil {
			return err
		}
		return tx.Update(ref, []fs.Update{{Path: "name", Value: name}})
	}, fs.MaxAttempts(txAttempts))
	return mapErr(what, err)
}

// RetireDrone implements store.Accounts: the drone and its key index entry
// go in one transaction. History points stay until their TTL.
func (s *Store) RetireDrone(ctx context.Context, tenantID, droneID string) error {
	what := "retire drone " + droneID
	if !validID(droneID) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *fs.Transaction) error {
		ref, d, err := s.droneTx(tx, tenantID, droneID)
		if err != nil {
			return err
		}
		if d.KeyHash != "" && validID(d.KeyHash) {
			if err := tx.Delete(s.droneKeys().Doc(d.KeyHash)); err != nil {
				return err
			}
		}
		return tx.Delete(ref)
	}, fs.MaxAttempts(txAttempts))
	return mapErr(what, err)
}

// SetDroneKey implements store.Accounts: old index entry deleted, new one
// created and the drone updated in one transaction.
func (s *Store) SetDroneKey(ctx context.Context, tenantID, droneID, keyHash string) error {
	what := "set key of drone " + droneID
	if !validID(droneID) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	if keyHash != "" && !validID(keyHash) {
		return fmt.Errorf("%s: invalid key hash", what)
	}
	err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *fs.Transaction) error {
		ref, d, err := s.droneTx(tx, tenantID, droneID)
		if err != nil {
			return err
		}
		var newRef *fs.DocumentRef
		if keyHash != "" && keyHash != d.KeyHash {
			newRef = s.droneKeys().Doc(keyHash)
			snap, err := tx.Get(newRef)
			if err == nil && snap.Exists() {
				return fmt.Errorf("drone key taken: %w", store.ErrAlreadyExists)
			}
			if err != nil && status.Code(err) != codes.NotFound {
				return err
			}
		}
		if d.KeyHash != "" && d.KeyHash != keyHash && validID(d.KeyHash) {
			if err := tx.Delete(s.droneKeys().Doc(d.KeyHash)); err != nil {
				return err
			}
		}
		if newRef != nil {
			if err := tx.Create(newRef, keyDoc{DroneID: droneID, TenantID: tenantID}); err != nil {
				return err
			}
		}
		return tx.Update(ref, []fs.Update{{Path: "keyHash", Value: keyHash}})
	}, fs.MaxAttempts(txAttempts))
	return mapErr(what, err)
}
