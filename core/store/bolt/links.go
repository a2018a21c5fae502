package bolt

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/dronetrack/dronetrack/core/store"
	bbolt "go.etcd.io/bbolt"
)

// Tracking-link buckets: links by tenant\0id, and the token-hash index the
// public page looks up (hash -> tenant\0id).
var (
	bucketLinks      = []byte("trackLinks")
	bucketLinkTokens = []byte("trackLinkTokens")
)

var linkBuckets = [][]byte{bucketLinks, bucketLinkTokens}

// CreateLink implements store.Links: the link and its token index in one
// transaction.
func (s *Store) CreateLink(_ context.Context, l store.TrackLink) error {
	return s.update("create link "+l.ID, func(tx *bbolt.Tx) error {
		links, tokens := tx.Bucket(bucketLinks), tx.Bucket(bucketLinkTokens)
		k := tkey(l.TenantID, l.ID)
		if links.Get(k) != nil {
			return fmt.Errorf("link %s: %w", l.ID, store.ErrAlreadyExists)
		}
		if tokens.Get([]byte(l.TokenHash)) != nil {
			return fmt.Errorf("link token: %w", store.ErrAlreadyExists)
		}
		if err := tokens.Put([]byte(l.TokenHash), k); err != nil {
			return err
		}
		return putJSON(links, k, l)
	})
}

// LinkByTokenHash implements store.Links.
func (s *Store) LinkByTokenHash(_ context.Context, tokenHash string) (store.TrackLink, error) {
	var l store.TrackLink
	err := s.view("find link by token", func(tx *bbolt.Tx) error {
		k := tx.Bucket(bucketLinkTokens).Get([]byte(tokenHash))
		if k == nil {
			return fmt.Errorf("link token: %w", store.ErrNotFound)
		}
		return getJSON(tx.Bucket(bucketLinks), k, &l, "link")
	})
	return l, err
}

// Links implements store.Links by a scan of the tenant's links.
func (s *Store) Links(_ context.Context, tenantID, droneID string) ([]store.TrackLink, error) {
	var out []store.TrackLink
	err := s.view("list links of drone "+droneID, func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketLinks).Cursor()
		prefix := tkey(tenantID)
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var l store.TrackLink
			if err := json.Unmarshal(v, &l); err != nil {
				return fmt.Errorf("decode link %q: %w", k, err)
			}
			if l.DroneID == droneID {
				out = append(out, l)
			}
		}
		return nil
	})
	slices.SortFunc(out, func(a, b store.TrackLink) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, err
}

// RevokeLink implements store.Links.
func (s *Store) RevokeLink(_ context.Context, tenantID, id string, at time.Time) (store.TrackLink, error) {
	return s.setLinkTime("revoke link "+id, tenantID, id, func(l *store.TrackLink) **time.Time { return &l.RevokedAt }, at)
}

// EndLink implements store.Links.
func (s *Store) EndLink(_ context.Context, tenantID, id string, at time.Time) (store.TrackLink, error) {
	return s.setLinkTime("end link "+id, tenantID, id, func(l *store.TrackLink) **time.Time { return &l.EndedAt }, at)
}

// setLinkTime sets one of a link's times unless it is set already.
func (s *Store) setLinkTime(what, tenantID, id string, field func(*store.TrackLink) **time.Time, at time.Time) (store.TrackLink, error) {
	var l store.TrackLink
	err := s.update(what, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketLinks)
		if err := getJSON(b, tkey(tenantID, id), &l, "link "+id); err != nil {
			return err
		}
		if f := field(&l); *f == nil {
			at := at.UTC()
			*f = &at
			return putJSON(b, tkey(tenantID, id), l)
		}
		return nil
	})
	if err != nil {
		return store.TrackLink{}, err
	}
	return l, nil
}
