package firestore

// Tracking links: trackLinks/{id} (tenantId, droneId, the link as JSON in
// data) and trackLinkTokens/{tokenHash} -> {linkId, tenantId}, created in
// the link's transaction so a token maps to one link and the public page
// finds it with one document read, no query. Links lists by tenantId and
// droneId equality, which Firestore serves from the automatic single-field
// indexes (no composite index), and orders in memory: a drone has few links.
// The JSON in data is exempt from indexing (infra/firestore).

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	fs "cloud.google.com/go/firestore"
	"github.com/dronetrack/dronetrack/core/store"
	"google.golang.org/api/iterator"
)

type linkDoc struct {
	TenantID string `firestore:"tenantId"`
	DroneID  string `firestore:"droneId"`
	Data     string `firestore:"data"`
}

type linkTokenDoc struct {
	LinkID   string `firestore:"linkId"`
	TenantID string `firestore:"tenantId"`
}

func (s *Store) links() *fs.CollectionRef      { return s.client.Collection("trackLinks") }
func (s *Store) linkTokens() *fs.CollectionRef { return s.client.Collection("trackLinkTokens") }

func toLinkDoc(l store.TrackLink) (linkDoc, error) {
	raw, err := json.Marshal(l)
	if err != nil {
		return linkDoc{}, fmt.Errorf("encode link: %w", err)
	}
	return linkDoc{TenantID: l.TenantID, DroneID: l.DroneID, Data: string(raw)}, nil
}

func fromLinkSnap(snap *fs.DocumentSnapshot, tenantID, what string) (store.TrackLink, error) {
	var d linkDoc
	if err := snap.DataTo(&d); err != nil {
		return store.TrackLink{}, fmt.Errorf("%s: decode: %w", what, err)
	}
	return decodeData[store.TrackLink](d.TenantID, d.Data, tenantID, what)
}

// CreateLink implements store.Links: link and token index in one
// transaction.
func (s *Store) CreateLink(ctx context.Context, l store.TrackLink) error {
	what := "create link " + l.ID
	if !validID(l.ID) || !validID(l.TokenHash) {
		return fmt.Errorf("%s: invalid id or token hash", what)
	}
	doc, err := toLinkDoc(l)
	if err != nil {
		return err
	}
	linkRef, tokRef := s.links().Doc(l.ID), s.linkTokens().Doc(l.TokenHash)
	err = s.client.RunTransaction(ctx, func(ctx context.Context, tx *fs.Transaction) error {
		snaps, err := tx.GetAll([]*fs.DocumentRef{linkRef, tokRef})
		if err != nil {
			return err
		}
		if snaps[0].Exists() {
			return fmt.Errorf("link id taken: %w", store.ErrAlreadyExists)
		}
		if snaps[1].Exists() {
			return fmt.Errorf("link token taken: %w", store.ErrAlreadyExists)
		}
		if err := tx.Create(tokRef, linkTokenDoc{LinkID: l.ID, TenantID: l.TenantID}); err != nil {
			return err
		}
		return tx.Create(linkRef, doc)
	}, fs.MaxAttempts(txAttempts))
	return mapErr(what, err)
}

// LinkByTokenHash implements store.Links.
func (s *Store) LinkByTokenHash(ctx context.Context, tokenHash string) (store.TrackLink, error) {
	const what = "find link by token"
	if !validID(tokenHash) {
		return store.TrackLink{}, notFound(what)
	}
	snap, err := s.linkTokens().Doc(tokenHash).Get(ctx)
	if err != nil {
		return store.TrackLink{}, mapErr(what, err)
	}
	var t linkTokenDoc
	if err := snap.DataTo(&t); err != nil {
		return store.TrackLink{}, fmt.Errorf("%s: decode: %w", what, err)
	}
	if !validID(t.LinkID) {
		return store.TrackLink{}, notFound(what)
	}
	snap, err = s.links().Doc(t.LinkID).Get(ctx)
	if err != nil {
		return store.TrackLink{}, mapErr(what, err)
	}
	return fromLinkSnap(snap, t.TenantID, what)
}

// Links implements store.Links.
func (s *Store) Links(ctx context.Context, tenantID, droneID string) ([]store.TrackLink, error) {
	what := "list links of drone " + droneID
	it := s.links().Where("tenantId", "==", tenantID).Where("droneId", "==", droneID).Documents(ctx)
	defer it.Stop()
	var out []store.TrackLink
	for {
		snap, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			return nil, mapErr(what, err)
		}
		l, err := fromLinkSnap(snap, tenantID, what)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b store.TrackLink) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// RevokeLink implements store.Links.
func (s *Store) RevokeLink(ctx context.Context, tenantID, id string, at time.Time) (store.TrackLink, error) {
	return s.setLinkTime(ctx, "revoke link "+id, tenantID, id, func(l *store.TrackLink) **time.Time { return &l.RevokedAt }, at)
}

// EndLink implements store.Links.
func (s *Store) EndLink(ctx context.Context, tenantID, id string, at time.Time) (store.TrackLink, error) {
	return s.setLinkTime(ctx, "end link "+id, tenantID, id, func(l *store.TrackLink) **time.Time { return &l.EndedAt }, at)
}

// setLinkTime sets one of a link's times, unless set already, in a
// transaction.
func (s *Store) setLinkTime(ctx context.Context, what, tenantID, id string, field func(*store.TrackLink) **time.Time, at time.Time) (store.TrackLink, error) {
	if !validID(id) {
		return store.TrackLink{}, notFound(what)
	}
	ref := s.links().Doc(id)
	var cur store.TrackLink
	err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *fs.Transaction) error {
		snap, err := tx.Get(ref)
		if err != nil {
			return err
		}
		l, err := fromLinkSnap(snap, tenantID, what)
		if err != nil {
			return err
		}
		cur = l
		if f := field(&l); *f == nil {
			t := at.UTC().Truncate(time.Microsecond)
			*f = &t
			doc, err := toLinkDoc(l)
			if err != nil {
				return err
			}
			cur = l
			return tx.Set(ref, doc)
		}
		return nil
	}, fs.MaxAttempts(txAttempts))
	if err != nil {
		return store.TrackLink{}, mapErr(what, err)
	}
	return cur, nil
}
