package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dronetrack/dronetrack/core/store"
	bbolt "go.etcd.io/bbolt"
)

// Account buckets; Open creates them with the others.
var (
	bucketUsers    = []byte("users")
	bucketEmails   = []byte("userEmails") // email -> user id (uniqueness index)
	bucketSessions = []byte("sessions")
	bucketInvites  = []byte("invites")
)

// accountBuckets are created by Open.
var accountBuckets = [][]byte{bucketUsers, bucketEmails, bucketSessions, bucketInvites}

// CreateUser implements store.Accounts.
func (s *Store) CreateUser(_ context.Context, u store.User) error {
	return s.update("create user "+u.ID, func(tx *bbolt.Tx) error {
		users, emails := tx.Bucket(bucketUsers), tx.Bucket(bucketEmails)
		if users.Get([]byte(u.ID)) != nil {
			return fmt.Errorf("user %s: %w", u.ID, store.ErrAlreadyExists)
		}
		if emails.Get([]byte(u.Email)) != nil {
			return fmt.Errorf("user email: %w", store.ErrAlreadyExists)
		}
		if err := emails.Put([]byte(u.Email), []byte(u.ID)); err != nil {
			return err
		}
		return putJSON(users, []byte(u.ID), u)
	})
}

// User implements store.Accounts.
func (s *Store) User(_ context.Context, id string) (store.User, error) {
	var u store.User
	err := s.view("get user "+id, func(tx *bbolt.Tx) error {
		return getJSON(tx.Bucket(bucketUsers), []byte(id), &u, "user "+id)
	})
	return u, err
}

// UserByEmail implements store.Accounts.
func (s *Store) UserByEmail(_ context.Context, email string) (store.User, error) {
	var u store.User
	err := s.view("find user by email", func(tx *bbolt.Tx) error {
		id := tx.Bucket(bucketEmails).Get([]byte(email))
		if id == nil {
			return fmt.Errorf("user email: %w", store.ErrNotFound)
		}
		return getJSON(tx.Bucket(bucketUsers), id, &u, "user "+string(id))
	})
	return u, err
}

// Users implements store.Accounts.
func (s *Store) Users(_ context.Context, tenantID string) ([]store.User, error) {
	var out []store.User
	err := s.view("list users of tenant "+tenantID, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			var u store.User
			if err := json.Unmarshal(v, &u); err != nil {
				return fmt.Errorf("decode user %s: %w", k, err)
			}
			if u.TenantID == tenantID {
				out = append(out, u)
			}
			return nil
		})
	})
	return out, err
}

// SetPasswordHash implements store.Accounts.
func (s *Store) SetPasswordHash(_ context.Context, userID, hash string) error {
	return s.update("set password of user "+userID, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		var u store.User
		if err := getJSON(b, []byte(userID), &u, "user "+userID); err != nil {
			return err
		}
		u.PasswordHash = hash
		return putJSON(b, []byte(userID), u)
	})
}

// CreateSession implements store.Accounts.
func (s *Store) CreateSession(_ context.Context, se store.Session) error {
	return s.update("create session", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		if b.Get([]byte(se.ID)) != nil {
			return fmt.Errorf("session: %w", store.ErrAlreadyExists)
		}
		return putJSON(b, []byte(se.ID), se)
	})
}

// Session implements store.Accounts.
func (s *Store) Session(_ context.Context, id string) (store.Session, error) {
	var se store.Session
	err := s.view("get session", func(tx *bbolt.Tx) error {
		return getJSON(tx.Bucket(bucketSessions), []byte(id), &se, "session")
	})
	return se, err
}

// ExtendSession implements store.Accounts.
func (s *Store) ExtendSession(_ context.Context, id string, expiresAt time.Time) error {
	return s.update("extend session", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		var se store.Session
		if err := getJSON(b, []byte(id), &se, "session"); err != nil {
			return err
		}
		se.ExpiresAt = expiresAt
		return putJSON(b, []byte(id), se)
	})
}

// DeleteSession implements store.Accounts.
func (s *Store) DeleteSession(_ context.Context, id string) error {
	return s.update("delete session", func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketSessions).Delete([]byte(id))
	})
}

// DeleteUserSessions implements store.Accounts. It scans the sessions:
// one-machine mode has few.
func (s *Store) DeleteUserSessions(_ context.Context, userID string) error {
	return s.update("delete sessions of user "+userID, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		var doomed [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var se store.Session
			if err := json.Unmarshal(v, &se); err != nil {
				return fmt.Errorf("decode session: %w", err)
			}
			if se.UserID == userID {
				doomed = append(doomed, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// CreateInvite implements store.Accounts.
func (s *Store) CreateInvite(_ context.Context, inv store.Invite) error {
	return s.update("create invite", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketInvites)
		if b.Get([]byte(inv.ID)) != nil {
			return fmt.Errorf("invite: %w", store.ErrAlreadyExists)
		}
		return putJSON(b, []byte(inv.ID), inv)
	})
}

// ConsumeInvite implements store.Accounts in one write transaction.
func (s *Store) ConsumeInvite(_ context.Context, id string, now time.Time) (store.Invite, error) {
	var inv store.Invite
	err := s.update("consume invite", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketInvites)
		if err := getJSON(b, []byte(id), &inv, "invite"); err != nil {
			return err
		}
		if err := b.Delete([]byte(id)); err != nil {
			return err
		}
		if !inv.ExpiresAt.After(now) {
			return fmt.Errorf("invite expired: %w", store.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return store.Invite{}, err
	}
	return inv, nil
}

// RenameDrone implements store.Accounts.
func (s *Store) RenameDrone(_ context.Context, tenantID, droneID, name string) error {
	return s.update("rename drone "+droneID, func(tx *bbolt.Tx) error {
		d, err := droneOf(tx, tenantID, droneID)
		if err != nil {
			return err
		}
		d.Name = name
		return putJSON(tx.Bucket(bucketDrones), []byte(droneID), d)
	})
}

// RetireDrone implements store.Accounts. The drone's history bucket and
// history tail go with it: nothing can read them once the drone is gone. Its flight
// detector moves back to the bucket keyed by tenant (adjunct.go), where
// earlier releases kept it, so that no drone of another tenant created
// with the same id finds it beside its document.
func (s *Store) RetireDrone(_ context.Context, tenantID, droneID string) error {
	return s.update("retire drone "+droneID, func(tx *bbolt.Tx) error {
		d, err := droneOf(tx, tenantID, droneID)
		if err != nil {
			return err
		}
		if d.KeyHash != "" {
			if err := tx.Bucket(bucketKeys).Delete([]byte(d.KeyHash)); err != nil {
				return err
			}
		}
		if tx.Bucket(bucketTrack).Bucket([]byte(droneID)) != nil {
			if err := tx.Bucket(bucketTrack).DeleteBucket([]byte(droneID)); err != nil {
				return err
			}
		}
		if err := moveAdjunctsOut(tx, tenantID, droneID); err != nil {
			return err
		}
		// Its newest history points, beside the document (historytail.go).
		if err := tx.Bucket(bucketDrones).Delete(adjunctKey(droneID, adjunctHistory)); err != nil {
			return err
		}
		return tx.Bucket(bucketDrones).Delete([]byte(droneID))
	})
}

// SetDroneKey implements store.Accounts in one write transaction.
func (s *Store) SetDroneKey(_ context.Context, tenantID, droneID, keyHash string) error {
	return s.update("set key of drone "+droneID, func(tx *bbolt.Tx) error {
		d, err := droneOf(tx, tenantID, droneID)
		if err != nil {
			return err
		}
		keys := tx.Bucket(bucketKeys)
		if keyHash != "" {
			if owner := keys.Get([]byte(keyHash)); owner != nil && string(owner) != droneID {
				return fmt.Errorf("drone key: %w", store.ErrAlreadyExists)
			}
		}
		if d.KeyHash != "" {
			if err := keys.Delete([]byte(d.KeyHash)); err != nil {
				return err
			}
		}
		if keyHash != "" {
			if err := keys.Put([]byte(keyHash), []byte(droneID)); err != nil {
				return err
			}
		}
		d.KeyHash = keyHash
		return putJSON(tx.Bucket(bucketDrones), []byte(droneID), d)
	})
}
