package bolt

import (
	"context"
	"fmt"

	"github.com/dronetrack/dronetrack/core/store"
	bbolt "go.etcd.io/bbolt"
)

// Channel buckets, keyed like the webhook ones (tenant\0...).
var (
	bucketChannels          = []byte("channels")          // tenant\0id -> store.Channel
	bucketChannelDeliveries = []byte("channelDeliveries") // tenant\0channel\0time\0id -> store.Delivery
	// bucketChannelEvents indexes the log by event for the deliverer's
	// idempotency check on every broker delivery.
	bucketChannelEvents = []byte("channelEvents") // tenant\0channel\0event\0time\0id -> key in channelDeliveries
)

// channelBuckets are created by Open.
var channelBuckets = [][]byte{bucketChannels, bucketChannelDeliveries, bucketChannelEvents}

// CreateChannel implements store.Channels.
func (s *Store) CreateChannel(_ context.Context, c store.Channel) error {
	return s.update("create channel "+c.ID, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketChannels)
		if b.Get(tkey(c.TenantID, c.ID)) != nil {
			return fmt.Errorf("channel %s: %w", c.ID, store.ErrAlreadyExists)
		}
		return putJSON(b, tkey(c.TenantID, c.ID), c)
	})
}

// Channel implements store.Channels.
func (s *Store) Channel(_ context.Context, tenantID, id string) (store.Channel, error) {
	var c store.Channel
	err := s.view("get channel "+id, func(tx *bbolt.Tx) error {
		return getJSON(tx.Bucket(bucketChannels), tkey(tenantID, id), &c, "channel "+id)
	})
	return c, err
}

// Channels implements store.Channels.
func (s *Store) Channels(_ context.Context, tenantID string) ([]store.Channel, error) {
	var out []store.Channel
	err := s.view("list channels", func(tx *bbolt.Tx) error {
		var err error
		out, err = scanPrefix[store.Channel](tx.Bucket(bucketChannels), tkey(tenantID), nil)
		return err
	})
	return out, err
}

// UpdateChannel implements store.Channels.
func (s *Store) UpdateChannel(_ context.Context, c store.Channel) error {
	return s.update("update channel "+c.ID, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketChannels)
		var old store.Channel
		if err := getJSON(b, tkey(c.TenantID, c.ID), &old, "channel "+c.ID); err != nil {
			return err
		}
		c.CreatedAt, c.Status = old.CreatedAt, old.Status
		return putJSON(b, tkey(c.TenantID, c.ID), c)
	})
}

// DeleteChannel implements store.Channels; its delivery log goes with it.
func (s *Store) DeleteChannel(_ context.Context, tenantID, id string) error {
	return s.update("delete channel "+id, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketChannels)
		if b.Get(tkey(tenantID, id)) == nil {
			return fmt.Errorf("channel %s: %w", id, store.ErrNotFound)
		}
		for _, name := range [][]byte{bucketChannelDeliveries, bucketChannelEvents} {
			if err := deletePrefix(tx.Bucket(name), tkey(tenantID, id)); err != nil {
				return err
			}
		}
		return b.Delete(tkey(tenantID, id))
	})
}

// AddChannelDelivery implements store.Channels: the attempt, its event
// index entry and the channel's status in one transaction.
func (s *Store) AddChannelDelivery(_ context.Context, d store.Delivery) error {
	return s.batch("add channel delivery", func(tx *bbolt.Tx) error {
		chans := tx.Bucket(bucketChannels)
		var c store.Channel
		if err := getJSON(chans, tkey(d.TenantID, d.ChannelID), &c, "channel "+d.ChannelID); err != nil {
			return err
		}
		c.Status = c.Status.Record(d)
		if err := putJSON(chans, tkey(d.TenantID, d.ChannelID), c); err != nil {
			return err
		}
		return channelLog.put(tx, d.ChannelID, d)
	})
}

// ChannelEventDeliveries implements store.Channels through the event index.
func (s *Store) ChannelEventDeliveries(_ context.Context, tenantID, channelID, eventID string) ([]store.Delivery, error) {
	var out []store.Delivery
	err := s.view("list channel deliveries of event "+eventID, func(tx *bbolt.Tx) (err error) {
		out, err = channelLog.eventDeliveries(tx, tenantID, channelID, eventID)
		return err
	})
	return out, err
}

// ChannelDeliveries implements store.Channels.
func (s *Store) ChannelDeliveries(_ context.Context, tenantID, channelID string, limit int) ([]store.Delivery, error) {
	var out []store.Delivery
	err := s.view("list channel deliveries", func(tx *bbolt.Tx) (err error) {
		out, err = channelLog.deliveries(tx, tenantID, channelID)
		return err
	})
	return newestFirst(out, limit), err
}
