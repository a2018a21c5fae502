package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dronetrack/dronetrack/core/remoteid"
	"github.com/dronetrack/dronetrack/core/store"
	bbolt "go.etcd.io/bbolt"
)

// bucketRIDTests holds InterUSS test injections: test id -> store.RIDTest.
var bucketRIDTests = []byte("ridTests")

// SetTenantRemoteID implements store.RemoteID.
func (s *Store) SetTenantRemoteID(_ context.Context, tenantID string, on bool) error {
	return s.update("set remote id of tenant "+tenantID, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketTenants)
		var t store.Tenant
		if err := getJSON(b, []byte(tenantID), &t, "tenant "+tenantID); err != nil {
			return err
		}
		t.RemoteID = on
		return putJSON(b, []byte(tenantID), t)
	})
}

// RemoteIDTenants implements store.RemoteID by scanning tenants: there are
// few on one machine.
func (s *Store) RemoteIDTenants(_ context.Context) ([]store.Tenant, error) {
	var out []store.Tenant
	err := s.view("list remote id tenants", func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketTenants).ForEach(func(k, v []byte) error {
			var t store.Tenant
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("decode tenant %s: %w", k, err)
			}
			if t.RemoteID {
				out = append(out, t)
			}
			return nil
		})
	})
	return out, err
}

// SetDroneIdentity implements store.RemoteID in one write transaction.
func (s *Store) SetDroneIdentity(_ context.Context, tenantID, droneID string, id *remoteid.Identity) error {
	return s.update("set remote id identity of drone "+droneID, func(tx *bbolt.Tx) error {
		d, err := droneOf(tx, tenantID, droneID)
		if err != nil {
			return err
		}
		d.RemoteID = id
		if err := putJSON(tx.Bucket(bucketDrones), []byte(droneID), d); err != nil {
			return err
		}
		tb := tx.Bucket(bucketTenants)
		var t store.Tenant
		if tb.Get([]byte(tenantID)) == nil {
			return nil
		}
		if err := getJSON(tb, []byte(tenantID), &t, "tenant "+tenantID); err != nil {
			return err
		}
		t.RemoteIDVersion++
		return putJSON(tb, []byte(tenantID), t)
	})
}

// CreateRIDTest implements store.RemoteID.
func (s *Store) CreateRIDTest(_ context.Context, t store.RIDTest) error {
	return s.update("create remote id test "+t.ID, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketRIDTests)
		if b.Get([]byte(t.ID)) != nil {
			return fmt.Errorf("remote id test %s: %w", t.ID, store.ErrAlreadyExists)
		}
		return putJSON(b, []byte(t.ID), t)
	})
}

// RIDTests implements store.RemoteID.
func (s *Store) RIDTests(_ context.Context, now time.Time) ([]store.RIDTest, error) {
	var out []store.RIDTest
	err := s.view("list remote id tests", func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketRIDTests).ForEach(func(k, v []byte) error {
			var t store.RIDTest
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("decode remote id test %s: %w", k, err)
			}
			if t.ExpireAt.After(now) {
				out = append(out, t)
			}
			return nil
		})
	})
	return out, err
}

// DeleteRIDTest implements store.RemoteID.
func (s *Store) DeleteRIDTest(_ context.Context, id, version string) (store.RIDTest, error) {
	var t store.RIDTest
	err := s.update("delete remote id test "+id, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketRIDTests)
		if err := getJSON(b, []byte(id), &t, "remote id test "+id); err != nil {
			return err
		}
		if t.Version != version {
			return fmt.Errorf("remote id test %s version %s: %w", id, version, store.ErrNotFound)
		}
		return b.Delete([]byte(id))
	})
	if err != nil {
		return store.RIDTest{}, err
	}
	return t, nil
}
