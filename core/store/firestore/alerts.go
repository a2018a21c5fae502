package firestore

// Alerts model: alerts/{id} (tenantId, open, updatedAt, closedAt and the
// record as JSON in data), alertTrackers/{droneId} (tenantId, lastSeen,
// linkLost, data), geofences/{id}, alertSettings/{tenantId},
// webhooks/{id} and webhooks/{id}/deliveries/{id}. Ids are global (drone
// ids are, alert ids hash the tenant, fence and webhook ids are random), and
// every read checks tenantId. Indexed fields are copied out of the JSON so
// queries can use them; the JSON keeps the record whole.
//
// Composite indexes the queries need in production (the emulator enforces
// none): alerts (tenantId, open), alerts (tenantId, closedAt), alerts
// (tenantId, updatedAt), alertTrackers (linkLost, lastSeen).

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	fs "cloud.google.com/go/firestore"
	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/store"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type recordDoc struct {
	TenantID  string     `firestore:"tenantId"`
	Open      bool       `firestore:"open,omitempty"`
	LinkLost  bool       `firestore:"linkLost"`
	UpdatedAt time.Time  `firestore:"updatedAt,omitempty"`
	ClosedAt  *time.Time `firestore:"closedAt,omitempty"`
	LastSeen  time.Time  `firestore:"lastSeen,omitempty"`
	EventID   string     `firestore:"eventId,omitempty"` // deliveries: EventDeliveries queries it
	Data      string     `firestore:"data"`
}

func encode(tenantID string, v any) (recordDoc, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return recordDoc{}, fmt.Errorf("encode record: %w", err)
	}
	return recordDoc{TenantID: tenantID, Data: string(raw)}, nil
}

func alertDoc(a alerting.Alert) (recordDoc, error) {
	d, err := encode(a.TenantID, a)
	d.Open, d.UpdatedAt, d.ClosedAt = a.ClosedAt == nil, a.UpdatedAt, a.ClosedAt
	return d, err
}

func trackerDoc(t alerting.Tracker) (recordDoc, error) {
	d, err := encode(t.TenantID, t)
	d.LinkLost, d.LastSeen = t.LinkLost, t.LastSeen
	return d, err
}

// decodeSnap reads a record of the tenant; another tenant's is ErrNotFound.
func decodeSnap[T any](snap *fs.DocumentSnapshot, err error, tenantID, what string) (T, error) {
	var v T
	if err != nil {
		return v, mapErr(what, err)
	}
	var d recordDoc
	if err := snap.DataTo(&d); err != nil {
		return v, fmt.Errorf("%s: decode: %w", what, err)
	}
	return decodeData[T](d.TenantID, d.Data, tenantID, what)
}

// decodeData is the JSON record in a document's data field, owned by
// docTenant; ErrNotFound when tenantID is set and is another tenant.
func decodeData[T any](docTenant, data, tenantID, what string) (T, error) {
	var v T
	if tenantID != "" && docTenant != tenantID {
		return v, notFound(what)
	}
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		return v, fmt.Errorf("%s: decode: %w", what, err)
	}
	return v, nil
}

func queryAll[T any](ctx context.Context, q fs.Query, what string) ([]T, error) {
	var out []T
	err := forEachDoc(ctx, q, what, func(snap *fs.DocumentSnapshot) error {
		v, err := decodeSnap[T](snap, nil, "", what)
		out = append(out, v)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// forEachDoc runs fn on each document q finds, in the query's order, and
// stops at fn's first error.
func forEachDoc(ctx context.Context, q fs.Query, what string, fn func(*fs.DocumentSnapshot) error) error {
	it := q.Documents(ctx)
	defer it.Stop()
	for {
		snap, err := it.Next()
		if err == iterator.Done {
			return nil
		}
		if err != nil {
			return mapErr(what, err)
		}
		if err := fn(snap); err != nil {
			return err
		}
	}
}

func (s *Store) coll(name string) *fs.CollectionRef { return s.client.Collection(name) }

func notFound(what string) error { return fmt.Errorf("%s: %w", what, store.ErrNotFound) }

// EvaluateAlerts implements store.Alerts. Most evaluations move only the
// tracker's signs of life (alerting.LivenessOnly): those read the tracker
// and write it back only if nobody wrote it since (a precondition on its
// update time, or on its absence), two calls instead of a transaction's
// three, and as serialisable, since the write is refused if what fn saw is
// not what is stored. An evaluation that changes nothing writes nothing,
// as the transaction did. Everything else, and a write the precondition
// refused, runs the transaction over the tracker and the alerts it writes.
func (s *Store) EvaluateAlerts(ctx context.Context, tenantID, droneID string,
	fn func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool)) (alerting.Tracker, error) {
	what := "evaluate alerts of drone " + droneID
	if !validID(droneID) {
		return alerting.Tracker{}, notFound(what)
	}
	ref := s.coll("alertTrackers").Doc(droneID)
	// Tried again while another replica's write wins the race, as
	// WriteDrone does: the transaction locks the tracker while it runs.
	for attempt := range optimisticAttempts {
		if err := optimisticPause(ctx, attempt); err != nil {
			return alerting.Tracker{}, mapErr(what, err)
		}
		cur, done, refused, err := s.evaluateLiveness(ctx, ref, tenantID, droneID, fn, what)
		if done || err != nil {
			return cur, err
		}
		if !refused {
			break // more than signs of life: the transaction
		}
	}
	var cur alerting.Tracker
	err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *fs.Transaction) error {
		prev := alerting.Tracker{TenantID: tenantID, DroneID: droneID}
		snap, err := tx.Get(ref)
		switch {
		case status.Code(err) == codes.NotFound:
		case err != nil:
			return err
		default:
			if prev, err = decodeSnap[alerting.Tracker](snap, nil, tenantID, what); err != nil {
				return err
			}
		}
		next, ts, ok := fn(prev)
		cur = prev
		if !ok {
			return nil
		}
		cur = next
		// The tracker's copy does not know of acknowledgements: read the
		// stored alerts (all reads before the writes) and keep them.
		out := make([]alerting.Alert, len(ts))
		for i, t := range ts {
			out[i] = t.Alert
			snap, err := tx.Get(s.coll("alerts").Doc(t.Alert.ID))
			switch {
			case status.Code(err) == codes.NotFound:
			case err != nil:
				return err
			default:
				old, err := decodeSnap[alerting.Alert](snap, nil, tenantID, what)
				if err != nil {
					return err
				}
				out[i].AcknowledgedBy, out[i].AcknowledgedAt = old.AcknowledgedBy, old.AcknowledgedAt
			}
		}
		for _, a := range out {
			d, err := alertDoc(a)
			if err != nil {
				return err
			}
			if err := tx.Set(s.coll("alerts").Doc(a.ID), d); err != nil {
				return err
			}
		}
		d, err := trackerDoc(next)
		if err != nil {
			return err
		}
		return tx.Set(ref, d)
	}, fs.MaxAttempts(txAttempts))
	if err != nil {
		return alerting.Tracker{}, mapErr(what, err)
	}
	return cur, nil
}

// evaluateLiveness is EvaluateAlerts without a transaction, done when fn
// changed nothing or only the tracker's signs of life and the write found
// the tracker as read. Not done (the caller runs the transaction), it has
// written nothing.
func (s *Store) evaluateLiveness(ctx context.Context, ref *fs.DocumentRef, tenantID, droneID string,
	fn func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool), what string) (cur alerting.Tracker, done, refused bool, err error) {
	prev := alerting.Tracker{TenantID: tenantID, DroneID: droneID}
	snap, err := ref.Get(ctx)
	exists := err == nil
	switch {
	case status.Code(err) == codes.NotFound:
	case err != nil:
		return alerting.Tracker{}, false, false, mapErr(what, err)
	default:
		if prev, err = decodeSnap[alerting.Tracker](snap, nil, tenantID, what); err != nil {
			return alerting.Tracker{}, false, false, err
		}
	}
	next, ts, ok := fn(prev)
	if !ok {
		return prev, true, false, nil
	}
	if len(ts) > 0 || !alerting.LivenessOnly(prev, next) {
		return alerting.Tracker{}, false, false, nil
	}
	d, err := trackerDoc(next)
	if err != nil {
		return alerting.Tracker{}, false, false, err
	}
	if exists {
		_, err = ref.Update(ctx, []fs.Update{{Path: "data", Value: d.Data}, {Path: "lastSeen", Value: d.LastSeen}},
			fs.LastUpdateTime(snap.UpdateTime))
	} else {
		_, err = ref.Create(ctx, d)
	}
	switch status.Code(err) {
	case codes.OK:
		return next, true, false, nil
	case codes.FailedPrecondition, codes.AlreadyExists, codes.NotFound, codes.Aborted:
		// Written (or deleted) since the read: decide again.
		return alerting.Tracker{}, false, true, nil
	default:
		return alerting.Tracker{}, false, false, mapErr(what, err)
	}
}

// StaleTrackers implements store.Alerts.
func (s *Store) StaleTrackers(ctx context.Context, seenBefore time.Time) ([]alerting.Tracker, error) {
	q := s.coll("alertTrackers").Where("linkLost", "==", false).Where("lastSeen", "<", seenBefore)
	return queryAll[alerting.Tracker](ctx, q, "list stale trackers")
}

// Alert implements store.Alerts.
func (s *Store) Alert(ctx context.Context, tenantID, id string) (alerting.Alert, error) {
	what := "get alert " + id
	if !validID(id) {
		return alerting.Alert{}, notFound(what)
	}
	snap, err := s.coll("alerts").Doc(id).Get(ctx)
	return decodeSnap[alerting.Alert](snap, err, tenantID, what)
}

func sortByUpdateDesc(out []alerting.Alert) {
	slices.SortStableFunc(out, func(a, b alerting.Alert) int {
		if c := b.UpdatedAt.Compare(a.UpdatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// ListAlerts implements store.Alerts with two queries (open; recently closed).
func (s *Store) ListAlerts(ctx context.Context, tenantID string, closedSince time.Time, limit int) ([]alerting.Alert, error) {
	base := s.coll("alerts").Where("tenantId", "==", tenantID)
	open, err := queryAll[alerting.Alert](ctx, base.Where("open", "==", true), "list open alerts")
	if err != nil {
		return nil, err
	}
	q := base.Where("closedAt", ">=", closedSince).OrderBy("closedAt", fs.Desc)
	if limit > 0 {
		q = q.Limit(limit)
	}
	closed, err := queryAll[alerting.Alert](ctx, q, "list closed alerts")
	if err != nil {
		return nil, err
	}
	out := append(open, closed...)
	sortByUpdateDesc(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// AlertsUpdatedSince implements store.Alerts.
func (s *Store) AlertsUpdatedSince(ctx context.Context, tenantID string, since time.Time) ([]alerting.Alert, error) {
	q := s.coll("alerts").Where("tenantId", "==", tenantID).Where("updatedAt", ">=", since).OrderBy("updatedAt", fs.Asc)
	return queryAll[alerting.Alert](ctx, q, "list updated alerts")
}

// AcknowledgeAlert implements store.Alerts in a transaction.
func (s *Store) AcknowledgeAlert(ctx context.Context, tenantID, id, by string, at time.Time) (alerting.Alert, error) {
	what := "acknowledge alert " + id
	if !validID(id) {
		return alerting.Alert{}, notFound(what)
	}
	ref := s.coll("alerts").Doc(id)
	var a alerting.Alert
	err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *fs.Transaction) error {
		snap, err := tx.Get(ref)
		if a, err = decodeSnap[alerting.Alert](snap, err, tenantID, what); err != nil {
			return err
		}
		if a.AcknowledgedAt != nil {
			return nil
		}
		at := at.UTC()
		a.AcknowledgedBy, a.AcknowledgedAt, a.UpdatedAt = by, &at, at
		d, err := alertDoc(a)
		if err != nil {
			return err
		}
		return tx.Set(ref, d)
	}, fs.MaxAttempts(txAttempts))
	if err != nil {
		return alerting.Alert{}, mapErr(what, err)
	}
	return a, nil
}

// AlertSettings implements store.Alerts.
func (s *Store) AlertSettings(ctx context.Context, tenantID string) (alerting.Settings, error) {
	return tenantSettings(ctx, s, "alertSettings", tenantID, alerting.DefaultSettings(), "get alert settings of "+tenantID)
}

// PutAlertSettings implements store.Alerts.
func (s *Store) PutAlertSettings(ctx context.Context, tenantID string, st alerting.Settings) error {
	return s.putTenantSettings(ctx, "alertSettings", tenantID, st, "put alert settings of "+tenantID)
}

// tenantSettings reads a tenant's settings document from coll; def when
// there is none (or the tenant id cannot name a document).
func tenantSettings[T any](ctx context.Context, s *Store, coll, tenantID string, def T, what string) (T, error) {
	if !validID(tenantID) {
		return def, nil
	}
	snap, err := s.coll(coll).Doc(tenantID).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return def, nil
	}
	return decodeSnap[T](snap, err, tenantID, what)
}

// putTenantSettings replaces a tenant's settings document in coll.
func (s *Store) putTenantSettings(ctx context.Context, coll, tenantID string, st any, what string) error {
	if !validID(tenantID) {
		return fmt.Errorf("%s: invalid tenant id", what)
	}
	d, err := encode(tenantID, st)
	if err != nil {
		return err
	}
	_, err = s.coll(coll).Doc(tenantID).Set(ctx, d)
	return mapErr(what, err)
}

// CreateGeofence implements store.Alerts.
func (s *Store) CreateGeofence(ctx context.Context, f alerting.Fence) error {
	return s.create(ctx, "geofences", f.ID, f.TenantID, f, "create geofence "+f.ID)
}

func (s *Store) create(ctx context.Context, coll, id, tenantID string, v any, what string) error {
	if !validID(id) {
		return fmt.Errorf("%s: invalid id", what)
	}
	d, err := encode(tenantID, v)
	if err != nil {
		return err
	}
	_, err = s.coll(coll).Doc(id).Create(ctx, d)
	return mapErr(what, err)
}

// UpdateGeofence implements store.Alerts.
func (s *Store) UpdateGeofence(ctx context.Context, f alerting.Fence) error {
	what := "update geofence " + f.ID
	if !validID(f.ID) {
		return notFound(what)
	}
	ref := s.coll("geofences").Doc(f.ID)
	err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *fs.Transaction) error {
		snap, err := tx.Get(ref)
		if _, err := decodeSnap[alerting.Fence](snap, err, f.TenantID, what); err != nil {
			return err
		}
		d, err := encode(f.TenantID, f)
		if err != nil {
			return err
		}
		return tx.Set(ref, d)
	}, fs.MaxAttempts(txAttempts))
	return mapErr(what, err)
}

func (s *Store) deleteOwned(ctx context.Context, ref *fs.DocumentRef, tenantID, what string) error {
	err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *fs.Transaction) error {
		snap, err := tx.Get(ref)
		if _, err := decodeSnap[json.RawMessage](snap, err, tenantID, what); err != nil {
			return err
		}
		return tx.Delete(ref)
	}, fs.MaxAttempts(txAttempts))
	return mapErr(what, err)
}

// DeleteGeofence implements store.Alerts.
func (s *Store) DeleteGeofence(ctx context.Context, tenantID, id string) error {
	what := "delete geofence " + id
	if !validID(id) {
		return notFound(what)
	}
	return s.deleteOwned(ctx, s.coll("geofences").Doc(id), tenantID, what)
}

// Geofence implements store.Alerts.
func (s *Store) Geofence(ctx context.Context, tenantID, id string) (alerting.Fence, error) {
	what := "get geofence " + id
	if !validID(id) {
		return alerting.Fence{}, notFound(what)
	}
	snap, err := s.coll("geofences").Doc(id).Get(ctx)
	return decodeSnap[alerting.Fence](snap, err, tenantID, what)
}

// Geofences implements store.Alerts.
func (s *Store) Geofences(ctx context.Context, tenantID string) ([]alerting.Fence, error) {
	q := s.coll("geofences").Where("tenantId", "==", tenantID).OrderBy(fs.DocumentID, fs.Asc)
	return queryAll[alerting.Fence](ctx, q, "list geofences")
}

// CreateWebhook implements store.Alerts.
func (s *Store) CreateWebhook(ctx context.Context, w store.Webhook) error {
	return s.create(ctx, "webhooks", w.ID, w.TenantID, w, "create webhook "+w.ID)
}

// Webhook implements store.Alerts.
func (s *Store) Webhook(ctx context.Context, tenantID, id string) (store.Webhook, error) {
	what := "get webhook " + id
	if !validID(id) {
		return store.Webhook{}, notFound(what)
	}
	snap, err := s.coll("webhooks").Doc(id).Get(ctx)
	return decodeSnap[store.Webhook](snap, err, tenantID, what)
}

// Webhooks implements store.Alerts.
func (s *Store) Webhooks(ctx context.Context, tenantID string) ([]store.Webhook, error) {
	q := s.coll("webhooks").Where("tenantId", "==", tenantID).OrderBy(fs.DocumentID, fs.Asc)
	return queryAll[store.Webhook](ctx, q, "list webhooks")
}

// DeleteWebhook implements store.Alerts. Its delivery log is left to the
// TTL-less cleanup of orphaned subcollections (Firestore does not cascade);
// it is unreachable once the webhook is gone.
func (s *Store) DeleteWebhook(ctx context.Context, tenantID, id string) error {
	what := "delete webhook " + id
	if !validID(id) {
		return notFound(what)
	}
	return s.deleteOwned(ctx, s.coll("webhooks").Doc(id), tenantID, what)
}

// AddDelivery implements store.Alerts.
func (s *Store) AddDelivery(ctx context.Context, d store.Delivery) error {
	what := "add delivery to webhook " + d.WebhookID
	if !validID(d.WebhookID) || !validID(d.ID) {
		return fmt.Errorf("%s: invalid id", what)
	}
	doc, err := encode(d.TenantID, d)
	if err != nil {
		return err
	}
	doc.UpdatedAt, doc.EventID = d.At, d.EventID
	_, err = s.coll("webhooks").Doc(d.WebhookID).Collection("deliveries").Doc(d.ID).Set(ctx, doc)
	return mapErr(what, err)
}

// Deliveries implements store.Alerts.
func (s *Store) Deliveries(ctx context.Context, tenantID, webhookID string, limit int) ([]store.Delivery, error) {
	if _, err := s.Webhook(ctx, tenantID, webhookID); err != nil {
		return nil, err
	}
	return s.deliveries(ctx, "webhooks", webhookID, limit, "list deliveries of webhook "+webhookID)
}

// EventDeliveries implements store.Alerts with an equality query on the
// copied eventId (a single-field index, no composite needed); a webhook
// has a handful of attempts per event, so they are ordered here.
func (s *Store) EventDeliveries(ctx context.Context, tenantID, webhookID, eventID string) ([]store.Delivery, error) {
	if _, err := s.Webhook(ctx, tenantID, webhookID); err != nil {
		return nil, err
	}
	return s.eventDeliveries(ctx, "webhooks", webhookID, eventID, "list deliveries of event "+eventID)
}

// deliveries is the delivery log of a webhook or channel (parent is its
// collection), newest first, at most limit (all when limit <= 0).
func (s *Store) deliveries(ctx context.Context, parent, parentID string, limit int, what string) ([]store.Delivery, error) {
	q := s.coll(parent).Doc(parentID).Collection("deliveries").OrderBy("updatedAt", fs.Desc)
	if limit > 0 {
		q = q.Limit(limit)
	}
	return queryAll[store.Delivery](ctx, q, what)
}

// eventDeliveries is a webhook's or channel's attempts for one event,
// oldest first.
func (s *Store) eventDeliveries(ctx context.Context, parent, parentID, eventID, what string) ([]store.Delivery, error) {
	q := s.coll(parent).Doc(parentID).Collection("deliveries").Where("eventId", "==", eventID)
	out, err := queryAll[store.Delivery](ctx, q, what)
	slices.SortStableFunc(out, func(a, b store.Delivery) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return cmp.Compare(a.Attempt, b.Attempt)
	})
	return out, err
}
