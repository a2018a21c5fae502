package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/store"
	bbolt "go.etcd.io/bbolt"
)

// Alert buckets. Keys start with the tenant id and a NUL, so a tenant's
// records are one prefix scan and ids of two tenants never collide.
var (
	bucketAlertTrackers = []byte("alertTrackers") // tenant\0drone -> alerting.Tracker
	bucketAlerts        = []byte("alerts")        // tenant\0id -> alerting.Alert
	bucketGeofences     = []byte("geofences")     // tenant\0id -> alerting.Fence
	bucketAlertSettings = []byte("alertSettings") // tenant -> alerting.Settings
	bucketWebhooks      = []byte("webhooks")      // tenant\0id -> store.Webhook
	bucketDeliveries    = []byte("deliveries")    // tenant\0webhook\0time\0id -> store.Delivery
	// bucketEventDeliveries indexes the log by event: the deliverer looks
	// up one event's attempts on every broker delivery, and the log grows
	// without bound. Attempts logged before the index existed are not in it.
	bucketEventDeliveries = []byte("eventDeliveries") // tenant\0webhook\0event\0time\0id -> key in deliveries
)

var alertBuckets = [][]byte{bucketAlertTrackers, bucketAlerts, bucketGeofences, bucketAlertSettings,
	bucketWebhooks, bucketDeliveries, bucketEventDeliveries}

func tkey(parts ...string) []byte { return []byte(strings.Join(parts, "\x00") + "\x00") }

// EvaluateAlerts implements store.Alerts in one bbolt write transaction.
// As WriteDrone does, it runs fn and encodes the tracker before its
// group-commit call, from the tracker as last written (s.written, or a
// read transaction when not known); the transaction only compares that
// with what it reads and puts, or runs fn again on what it reads when
// another write of the tracker came between.
func (s *Store) EvaluateAlerts(_ context.Context, tenantID, droneID string,
	fn func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool)) (alerting.Tracker, error) {
	k := tkey(tenantID, droneID)
	cacheKey := "alerts\x00" + string(k)
	var (
		pre   *trackerWrite
		cur   alerting.Tracker
		after []byte // what the transaction leaves stored
	)
	preOld, known := s.written.get(cacheKey)
	if !known {
		known = s.view("read alert tracker of "+droneID, func(tx *bbolt.Tx) error {
			preOld = bytes.Clone(tx.Bucket(bucketAlertTrackers).Get(k))
			return nil
		}) == nil
	}
	if known {
		if tw, err := prepareTracker(tenantID, droneID, preOld, fn); err == nil {
			pre = &tw
		}
	}
	err := s.batch("evaluate alerts of "+droneID, func(tx *bbolt.Tx) error {
		old := tx.Bucket(bucketAlertTrackers).Get(k)
		tw := pre
		if tw == nil || (old == nil) != (preOld == nil) || !bytes.Equal(old, preOld) {
			again, err := prepareTracker(tenantID, droneID, old, fn)
			if err != nil {
				return err
			}
			tw = &again
		}
		cur = tw.cur
		if after = tw.tracker; !tw.ok {
			after = bytes.Clone(old)
		}
		return tw.apply(tx, tenantID, k, old)
	})
	if err == nil {
		s.written.put(cacheKey, after)
	}
	return cur, err
}

// trackerWrite is what EvaluateAlerts writes, worked out by prepareTracker
// from the tracker's stored bytes without a transaction.
type trackerWrite struct {
	cur     alerting.Tracker
	ts      []alerting.Transition
	ok      bool
	tracker []byte // cur's stored form, when ok
}

func prepareTracker(tenantID, droneID string, old []byte,
	fn func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool)) (trackerWrite, error) {
	prev := alerting.Tracker{TenantID: tenantID, DroneID: droneID}
	if old != nil && !readTracker(old, &prev) {
		if err := json.Unmarshal(old, &prev); err != nil {
			return trackerWrite{cur: prev}, fmt.Errorf("decode alert tracker %s: %w", droneID, err)
		}
	}
	next, ts, ok := fn(prev)
	if !ok {
		return trackerWrite{cur: prev}, nil
	}
	raw, enc := appendTracker(make([]byte, 0, 192), next)
	if !enc {
		var err error
		if raw, err = json.Marshal(next); err != nil {
			return trackerWrite{cur: next}, fmt.Errorf("encode alert tracker %s: %w", droneID, err)
		}
	}
	return trackerWrite{cur: next, ts: ts, ok: true, tracker: raw}, nil
}

// apply writes tw: the alerts of its transitions and the tracker at k,
// over old (read in tx).
func (tw *trackerWrite) apply(tx *bbolt.Tx, tenantID string, k, old []byte) error {
	if !tw.ok {
		return nil
	}
	alerts := tx.Bucket(bucketAlerts)
	for _, t := range tw.ts {
		a := t.Alert
		// The tracker's copy does not know of acknowledgements: keep them.
		var old alerting.Alert
		if alerts.Get(tkey(tenantID, a.ID)) != nil {
			if err := getJSON(alerts, tkey(tenantID, a.ID), &old, "alert "+a.ID); err != nil {
				return err
			}
			a.AcknowledgedBy, a.AcknowledgedAt = old.AcknowledgedBy, old.AcknowledgedAt
		}
		if err := putJSON(alerts, tkey(tenantID, a.ID), a); err != nil {
			return err
		}
	}
	return putOver(tx.Bucket(bucketAlertTrackers), k, old, tw.tracker)
}

// StaleTrackers implements store.Alerts by a scan (one machine's fleet).
func (s *Store) StaleTrackers(_ context.Context, seenBefore time.Time) ([]alerting.Tracker, error) {
	var out []alerting.Tracker
	err := s.view("list stale trackers", func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketAlertTrackers).ForEach(func(_, v []byte) error {
			var tr alerting.Tracker
			if !readTracker(v, &tr) {
				tr = alerting.Tracker{}
				if err := json.Unmarshal(v, &tr); err != nil {
					return fmt.Errorf("decode alert tracker: %w", err)
				}
			}
			if !tr.LinkLost && !tr.LastSeen.IsZero() && tr.LastSeen.Before(seenBefore) {
				out = append(out, tr)
			}
			return nil
		})
	})
	return out, err
}

// Alert implements store.Alerts.
func (s *Store) Alert(_ context.Context, tenantID, id string) (alerting.Alert, error) {
	var a alerting.Alert
	err := s.view("get alert "+id, func(tx *bbolt.Tx) error {
		return getJSON(tx.Bucket(bucketAlerts), tkey(tenantID, id), &a, "alert "+id)
	})
	return a, err
}

func scanPrefix[T any](b *bbolt.Bucket, prefix []byte, keep func(T) bool) ([]T, error) {
	var out []T
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var x T
		if err := json.Unmarshal(v, &x); err != nil {
			return nil, fmt.Errorf("decode %s: %w", k, err)
		}
		if keep == nil || keep(x) {
			out = append(out, x)
		}
	}
	return out, nil
}

// ListAlerts implements store.Alerts.
func (s *Store) ListAlerts(_ context.Context, tenantID string, closedSince time.Time, limit int) ([]alerting.Alert, error) {
	var out []alerting.Alert
	err := s.view("list alerts", func(tx *bbolt.Tx) error {
		var err error
		out, err = scanPrefix(tx.Bucket(bucketAlerts), tkey(tenantID), func(a alerting.Alert) bool {
			return a.ClosedAt == nil || !a.ClosedAt.Before(closedSince)
		})
		return err
	})
	slices.SortStableFunc(out, func(a, b alerting.Alert) int {
		if c := b.UpdatedAt.Compare(a.UpdatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, err
}

// AlertsUpdatedSince implements store.Alerts.
func (s *Store) AlertsUpdatedSince(_ context.Context, tenantID string, since time.Time) ([]alerting.Alert, error) {
	var out []alerting.Alert
	err := s.view("list updated alerts", func(tx *bbolt.Tx) error {
		var err error
		out, err = scanPrefix(tx.Bucket(bucketAlerts), tkey(tenantID), func(a alerting.Alert) bool {
			return !a.UpdatedAt.Before(since)
		})
		return err
	})
	slices.SortStableFunc(out, func(a, b alerting.Alert) int { return a.UpdatedAt.Compare(b.UpdatedAt) })
	return out, err
}

// AcknowledgeAlert implements store.Alerts.
func (s *Store) AcknowledgeAlert(_ context.Context, tenantID, id, by string, at time.Time) (alerting.Alert, error) {
	var a alerting.Alert
	err := s.update("acknowledge alert "+id, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketAlerts)
		if err := getJSON(b, tkey(tenantID, id), &a, "alert "+id); err != nil {
			return err
		}
		if a.AcknowledgedAt != nil {
			return nil
		}
		at := at.UTC()
		a.AcknowledgedBy, a.AcknowledgedAt, a.UpdatedAt = by, &at, at
		return putJSON(b, tkey(tenantID, id), a)
	})
	return a, err
}

// AlertSettings implements store.Alerts.
func (s *Store) AlertSettings(_ context.Context, tenantID string) (alerting.Settings, error) {
	st := alerting.DefaultSettings()
	err := s.view("get alert settings", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketAlertSettings)
		if b.Get([]byte(tenantID)) == nil {
			return nil
		}
		return getJSON(b, []byte(tenantID), &st, "alert settings of "+tenantID)
	})
	return st, err
}

// PutAlertSettings implements store.Alerts.
func (s *Store) PutAlertSettings(_ context.Context, tenantID string, st alerting.Settings) error {
	return s.update("put alert settings", func(tx *bbolt.Tx) error {
		return putJSON(tx.Bucket(bucketAlertSettings), []byte(tenantID), st)
	})
}

// CreateGeofence implements store.Alerts.
func (s *Store) CreateGeofence(_ context.Context, f alerting.Fence) error {
	return s.update("create geofence "+f.ID, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketGeofences)
		if b.Get(tkey(f.TenantID, f.ID)) != nil {
			return fmt.Errorf("geofence %s: %w", f.ID, store.ErrAlreadyExists)
		}
		return putJSON(b, tkey(f.TenantID, f.ID), f)
	})
}

// UpdateGeofence implements store.Alerts.
func (s *Store) UpdateGeofence(_ context.Context, f alerting.Fence) error {
	return s.update("update geofence "+f.ID, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketGeofences)
		if b.Get(tkey(f.TenantID, f.ID)) == nil {
			return fmt.Errorf("geofence %s: %w", f.ID, store.ErrNotFound)
		}
		return putJSON(b, tkey(f.TenantID, f.ID), f)
	})
}

// DeleteGeofence implements store.Alerts.
func (s *Store) DeleteGeofence(_ context.Context, tenantID, id string) error {
	return s.deleteKey(bucketGeofences, tkey(tenantID, id), "geofence "+id)
}

func (s *Store) deleteKey(bucket, k []byte, what string) error {
	return s.update("delete "+what, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		if b.Get(k) == nil {
			return fmt.Errorf("%s: %w", what, store.ErrNotFound)
		}
		return b.Delete(k)
	})
}

// Geofence implements store.Alerts.
func (s *Store) Geofence(_ context.Context, tenantID, id string) (alerting.Fence, error) {
	var f alerting.Fence
	err := s.view("get geofence "+id, func(tx *bbolt.Tx) error {
		return getJSON(tx.Bucket(bucketGeofences), tkey(tenantID, id), &f, "geofence "+id)
	})
	return f, err
}

// Geofences implements store.Alerts.
func (s *Store) Geofences(_ context.Context, tenantID string) ([]alerting.Fence, error) {
	var out []alerting.Fence
	err := s.view("list geofences", func(tx *bbolt.Tx) error {
		var err error
		out, err = scanPrefix[alerting.Fence](tx.Bucket(bucketGeofences), tkey(tenantID), nil)
		return err
	})
	return out, err
}

// CreateWebhook implements store.Alerts.
func (s *Store) CreateWebhook(_ context.Context, w store.Webhook) error {
	return s.update("create webhook "+w.ID, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketWebhooks)
		if b.Get(tkey(w.TenantID, w.ID)) != nil {
			return fmt.Errorf("webhook %s: %w", w.ID, store.ErrAlreadyExists)
		}
		return putJSON(b, tkey(w.TenantID, w.ID), w)
	})
}

// Webhook implements store.Alerts.
func (s *Store) Webhook(_ context.Context, tenantID, id string) (store.Webhook, error) {
	var w store.Webhook
	err := s.view("get webhook "+id, func(tx *bbolt.Tx) error {
		return getJSON(tx.Bucket(bucketWebhooks), tkey(tenantID, id), &w, "webhook "+id)
	})
	return w, err
}

// Webhooks implements store.Alerts.
func (s *Store) Webhooks(_ context.Context, tenantID string) ([]store.Webhook, error) {
	var out []store.Webhook
	err := s.view("list webhooks", func(tx *bbolt.Tx) error {
		var err error
		out, err = scanPrefix[store.Webhook](tx.Bucket(bucketWebhooks), tkey(tenantID), nil)
		return err
	})
	return out, err
}

// DeleteWebhook implements store.Alerts; its delivery log goes with it.
func (s *Store) DeleteWebhook(_ context.Context, tenantID, id string) error {
	return s.update("delete webhook "+id, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketWebhooks)
		if b.Get(tkey(tenantID, id)) == nil {
			return fmt.Errorf("webhook %s: %w", id, store.ErrNotFound)
		}
		for _, name := range [][]byte{bucketDeliveries, bucketEventDeliveries} {
			if err := deletePrefix(tx.Bucket(name), tkey(tenantID, id)); err != nil {
				return err
			}
		}
		return b.Delete(tkey(tenantID, id))
	})
}

func deletePrefix(b *bbolt.Bucket, prefix []byte) error {
	var ks [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ks = append(ks, slices.Clone(k))
	}
	for _, k := range ks {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// AddDelivery implements store.Alerts: the attempt and its event index
// entry in one transaction.
func (s *Store) AddDelivery(_ context.Context, d store.Delivery) error {
	return s.batch("add delivery", func(tx *bbolt.Tx) error {
		return webhookLog.put(tx, d.WebhookID, d)
	})
}

// EventDeliveries implements store.Alerts through the event index.
func (s *Store) EventDeliveries(_ context.Context, tenantID, webhookID, eventID string) ([]store.Delivery, error) {
	var out []store.Delivery
	err := s.view("list deliveries of event "+eventID, func(tx *bbolt.Tx) (err error) {
		out, err = webhookLog.eventDeliveries(tx, tenantID, webhookID, eventID)
		return err
	})
	return out, err
}

// Deliveries implements store.Alerts.
func (s *Store) Deliveries(_ context.Context, tenantID, webhookID string, limit int) ([]store.Delivery, error) {
	var out []store.Delivery
	err := s.view("list deliveries", func(tx *bbolt.Tx) (err error) {
		out, err = webhookLog.deliveries(tx, tenantID, webhookID)
		return err
	})
	return newestFirst(out, limit), err
}

// deliveryLog is the layout webhooks and notification channels share for
// their delivery logs: attempts under (tenant, parent, time, id) in log,
// an index by event in byEvent pointing at them, the parent in parents.
type deliveryLog struct {
	parents, log, byEvent []byte // bucket names
	parent                string // "webhook" or "channel", for errors
	what                  string // an attempt, for errors
}

var (
	webhookLog = deliveryLog{bucketWebhooks, bucketDeliveries, bucketEventDeliveries, "webhook", "delivery"}
	channelLog = deliveryLog{bucketChannels, bucketChannelDeliveries, bucketChannelEvents, "channel", "channel delivery"}
)

// put stores the attempt d of parentID and its event index entry.
func (l deliveryLog) put(tx *bbolt.Tx, parentID string, d store.Delivery) error {
	ts := tsKey(d.At)
	suffix := append(ts[:], []byte("\x00"+d.ID)...)
	k := append(tkey(d.TenantID, parentID), suffix...)
	if err := putJSON(tx.Bucket(l.log), k, d); err != nil {
		return err
	}
	return tx.Bucket(l.byEvent).Put(append(tkey(d.TenantID, parentID, d.EventID), suffix...), k)
}

// eventDeliveries is parentID's attempts for one event, oldest first;
// ErrNotFound when the parent does not exist.
func (l deliveryLog) eventDeliveries(tx *bbolt.Tx, tenantID, parentID, eventID string) ([]store.Delivery, error) {
	if tx.Bucket(l.parents).Get(tkey(tenantID, parentID)) == nil {
		return nil, fmt.Errorf("%s %s: %w", l.parent, parentID, store.ErrNotFound)
	}
	var out []store.Delivery
	log := tx.Bucket(l.log)
	prefix := tkey(tenantID, parentID, eventID)
	c := tx.Bucket(l.byEvent).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var d store.Delivery
		if err := getJSON(log, v, &d, l.what+" of event "+eventID); err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, nil
}

// deliveries is all of parentID's attempts, oldest first; ErrNotFound when
// the parent does not exist.
func (l deliveryLog) deliveries(tx *bbolt.Tx, tenantID, parentID string) ([]store.Delivery, error) {
	if tx.Bucket(l.parents).Get(tkey(tenantID, parentID)) == nil {
		return nil, fmt.Errorf("%s %s: %w", l.parent, parentID, store.ErrNotFound)
	}
	return scanPrefix[store.Delivery](tx.Bucket(l.log), tkey(tenantID, parentID), nil)
}

// newestFirst reverses an oldest-first log and keeps at most limit (all
// when limit <= 0).
func newestFirst(out []store.Delivery, limit int) []store.Delivery {
	slices.Reverse(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// A drone's alert tracker is read and written with every state it is
// evaluated on; most have no open alert, outbox or claims. appendTracker
// writes json.Marshal's bytes for those by hand and readTracker reads
// them back (TestTrackerEncodingMatchesJSON); any other tracker goes
// through encoding/json, as stored trackers of earlier versions do.

// appendTracker appends json.Marshal's bytes for tr; false when tr is not
// in the form it writes.
func appendTracker(b []byte, tr alerting.Tracker) ([]byte, bool) {
	if len(tr.Open) > 0 || len(tr.Outbox) > 0 || len(tr.Claims) > 0 || !plainJSON(tr.TenantID) || !plainJSON(tr.DroneID) ||
		!plainTime(tr.LastTS) || !plainTime(tr.LastSeen) {
		return b, false
	}
	b = append(b, `{"tenantId":"`...)
	b = append(b, tr.TenantID...)
	b = append(b, `","droneId":"`...)
	b = append(b, tr.DroneID...)
	b = append(b, `","lastTs":"`...)
	b = tr.LastTS.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","lastSeen":"`...)
	b = tr.LastSeen.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","linkLost":`...)
	b = strconv.AppendBool(b, tr.LinkLost)
	return append(b, '}'), true
}

// readTracker decodes into tr the form appendTracker writes (members in
// its order, strings without escapes), as json.Unmarshal would, and
// reports whether raw was in it; tr is untouched when it was not.
func readTracker(raw []byte, tr *alerting.Tracker) bool {
	rest := raw
	field := func(prefix string) ([]byte, bool) { // a string's contents
		var ok bool
		if rest, ok = bytes.CutPrefix(rest, []byte(prefix)); !ok {
			return nil, false
		}
		end := bytes.IndexByte(rest, '"')
		if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
			return nil, false
		}
		v := rest[:end]
		rest = rest[end+1:]
		return v, true
	}
	tenant, ok1 := field(`{"tenantId":"`)
	drone, ok2 := field(`,"droneId":"`)
	lastTS, ok3 := field(`,"lastTs":"`)
	lastSeen, ok4 := field(`,"lastSeen":"`)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return false
	}
	var linkLost bool
	switch string(rest) {
	case `,"linkLost":false}`:
	case `,"linkLost":true}`:
		linkLost = true
	default:
		return false
	}
	var ts, seen time.Time
	if ts.UnmarshalText(lastTS) != nil || seen.UnmarshalText(lastSeen) != nil {
		return false
	}
	tr.TenantID, tr.DroneID, tr.LastTS, tr.LastSeen, tr.LinkLost = string(tenant), string(drone), ts, seen, linkLost
	return true
}
