package firestore

import (
	"context"
	"fmt"
	"time"

	fs "cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dronetrack/dronetrack/core/remoteid"
	"github.com/dronetrack/dronetrack/core/store"
)

func (s *Store) ridTests() *fs.CollectionRef { return s.client.Collection("ridTests") }

// SetTenantRemoteID implements store.RemoteID.
func (s *Store) SetTenantRemoteID(ctx context.Context, tenantID string, on bool) error {
	what := "set remote id of tenant " + tenantID
	if !validID(tenantID) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	_, err := s.tenants().Doc(tenantID).Update(ctx, []fs.Update{{Path: "remoteId", Value: on}})
	return mapErr(what, err)
}

// RemoteIDTenants implements store.RemoteID: an equality query on
// remoteId ordered by document id, which needs no composite index.
func (s *Store) RemoteIDTenants(ctx context.Context) ([]store.Tenant, error) {
	return listDocs(ctx, s.tenants().Where("remoteId", "==", true).OrderBy(fs.DocumentID, fs.Asc),
		"list remote id tenants", tenantDoc.tenant)
}

// SetDroneIdentity implements store.RemoteID: the drone's identity and the
// tenant's version change in one transaction.
func (s *Store) SetDroneIdentity(ctx context.Context, tenantID, droneID string, id *remoteid.Identity) error {
	what := "set remote id identity of drone " + droneID
	if !validID(droneID) || !validID(tenantID) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	tenantRef := s.tenants().Doc(tenantID)
	err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *fs.Transaction) error {
		ref, _, err := s.droneTx(tx, tenantID, droneID)
		if err != nil {
			return err
		}
		tsnap, err := tx.Get(tenantRef)
		if err != nil && status.Code(err) != codes.NotFound {
			return err
		}
		if err := tx.Update(ref, []fs.Update{{Path: "remoteId", Value: toIdentityDoc(id)}}); err != nil {
			return err
		}
		if tsnap != nil && tsnap.Exists() {
			return tx.Update(tenantRef, []fs.Update{{Path: "remoteIdVersion", Value: fs.Increment(1)}})
		}
		return nil
	}, fs.MaxAttempts(txAttempts))
	return mapErr(what, err)
}

// CreateRIDTest implements store.RemoteID.
func (s *Store) CreateRIDTest(ctx context.Context, t store.RIDTest) error {
	what := "create remote id test " + t.ID
	if !validID(t.ID) {
		return fmt.Errorf("%s: invalid id", what)
	}
	_, err := s.ridTests().Doc(t.ID).Create(ctx, ridTestDoc{Version: t.Version, Flights: t.Flights,
		CreatedAt: t.CreatedAt, ExpireAt: t.ExpireAt})
	return mapErr(what, err)
}

// RIDTests implements store.RemoteID. Tests are few and short-lived, so all
// are read and the expired ones skipped here (no index on expireAt).
func (s *Store) RIDTests(ctx context.Context, now time.Time) ([]store.RIDTest, error) {
	all, err := listDocs(ctx, s.ridTests().OrderBy(fs.DocumentID, fs.Asc), "list remote id tests", ridTestDoc.test)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, t := range all {
		if t.ExpireAt.After(now) {
			out = append(out, t)
		}
	}
	return out, nil
}

// DeleteRIDTest implements store.RemoteID in a transaction, so a test is
// deleted only at the version read.
func (s *Store) DeleteRIDTest(ctx context.Context, id, version string) (store.RIDTest, error) {
	what := "delete remote id test " + id
	if !validID(id) {
		return store.RIDTest{}, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	ref := s.ridTests().Doc(id)
	var t store.RIDTest
	err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *fs.Transaction) error {
		snap, err := tx.Get(ref)
		if err != nil {
			return err
		}
		var d ridTestDoc
		if err := snap.DataTo(&d); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		if d.Version != version {
			return fmt.Errorf("version %s: %w", version, store.ErrNotFound)
		}
		t = d.test(id)
		return tx.Delete(ref)
	}, fs.MaxAttempts(txAttempts))
	if err != nil {
		return store.RIDTest{}, mapErr(what, err)
	}
	return t, nil
}

func (d ridTestDoc) test(id string) store.RIDTest {
	return store.RIDTest{ID: id, Version: d.Version, Flights: d.Flights, CreatedAt: d.CreatedAt, ExpireAt: d.ExpireAt}
}
