package firestore

// Channels model: channels/{id} (tenantId and the record as JSON in data,
// as webhooks/{id}) and channels/{id}/deliveries/{id} (eventId copied out
// for ChannelEventDeliveries' equality query). A channel's Status lives in
// its record and is updated in the transaction that adds an attempt.

import (
	"context"
	"fmt"

	fs "cloud.google.com/go/firestore"
	"github.com/dronetrack/dronetrack/core/store"
)

// CreateChannel implements store.Channels.
func (s *Store) CreateChannel(ctx context.Context, c store.Channel) error {
	return s.create(ctx, "channels", c.ID, c.TenantID, c, "create channel "+c.ID)
}

// Channel implements store.Channels.
func (s *Store) Channel(ctx context.Context, tenantID, id string) (store.Channel, error) {
	what := "get channel " + id
	if !validID(id) {
		return store.Channel{}, notFound(what)
	}
	snap, err := s.coll("channels").Doc(id).Get(ctx)
	return decodeSnap[store.Channel](snap, err, tenantID, what)
}

// Channels implements store.Channels.
func (s *Store) Channels(ctx context.Context, tenantID string) ([]store.Channel, error) {
	q := s.coll("channels").Where("tenantId", "==", tenantID).OrderBy(fs.DocumentID, fs.Asc)
	return queryAll[store.Channel](ctx, q, "list channels")
}

// updateChannel runs change on the stored channel in a transaction.
func (s *Store) updateChannel(ctx context.Context, tenantID, id, what string, change func(*store.Channel),
	also func(tx *fs.Transaction) error) error {
	if !validID(id) {
		return notFound(what)
	}
	ref := s.coll("channels").Doc(id)
	err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *fs.Transaction) error {
		snap, err := tx.Get(ref)
		c, err := decodeSnap[store.Channel](snap, err, tenantID, what)
		if err != nil {
			return err
		}
		change(&c)
		d, err := encode(tenantID, c)
		if err != nil {
			return err
		}
		if err := tx.Set(ref, d); err != nil {
			return err
		}
		if also != nil {
			return also(tx)
		}
		return nil
	}, fs.MaxAttempts(txAttempts))
	return mapErr(what, err)
}

// UpdateChannel implements store.Channels.
func (s *Store) UpdateChannel(ctx context.Context, c store.Channel) error {
	return s.updateChannel(ctx, c.TenantID, c.ID, "update channel "+c.ID, func(old *store.Channel) {
		c.CreatedAt, c.Status = old.CreatedAt, old.Status
		*old = c
	}, nil)
}

// DeleteChannel implements store.Channels. As with webhooks, the delivery
// log is left behind (Firestore does not cascade) and unreachable.
func (s *Store) DeleteChannel(ctx context.Context, tenantID, id string) error {
	what := "delete channel " + id
	if !validID(id) {
		return notFound(what)
	}
	return s.deleteOwned(ctx, s.coll("channels").Doc(id), tenantID, what)
}

// AddChannelDelivery implements store.Channels: the attempt and the
// channel's status in one transaction.
func (s *Store) AddChannelDelivery(ctx context.Context, d store.Delivery) error {
	what := "add delivery to channel " + d.ChannelID
	if !validID(d.ChannelID) || !validID(d.ID) {
		return fmt.Errorf("%s: invalid id", what)
	}
	doc, err := encode(d.TenantID, d)
	if err != nil {
		return err
	}
	doc.UpdatedAt, doc.EventID = d.At, d.EventID
	ref := s.coll("channels").Doc(d.ChannelID).Collection("deliveries").Doc(d.ID)
	return s.updateChannel(ctx, d.TenantID, d.ChannelID, what, func(c *store.Channel) {
		c.Status = c.Status.Record(d)
	}, func(tx *fs.Transaction) error { return tx.Set(ref, doc) })
}

// ChannelDeliveries implements store.Channels.
func (s *Store) ChannelDeliveries(ctx context.Context, tenantID, channelID string, limit int) ([]store.Delivery, error) {
	if _, err := s.Channel(ctx, tenantID, channelID); err != nil {
		return nil, err
	}
	return s.deliveries(ctx, "channels", channelID, limit, "list deliveries of channel "+channelID)
}

// ChannelEventDeliveries implements store.Channels (single-field index on
// eventId; a handful of attempts per event, ordered here).
func (s *Store) ChannelEventDeliveries(ctx context.Context, tenantID, channelID, eventID string) ([]store.Delivery, error) {
	if _, err := s.Channel(ctx, tenantID, channelID); err != nil {
		return nil, err
	}
	return s.eventDeliveries(ctx, "channels", channelID, eventID, "list channel deliveries of event "+eventID)
}
