package function

import (
	"context"
	"time"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/deadline"
	"github.com/dronetrack/dronetrack/core/store"
)

// deadlineStore bounds every store call alerts makes with its own timeout.
// Without it a hung store (a stalled Firestore, a partition: connections
// open, no answer) holds a delivery until the broker gives up on it, and
// the link check's loop or the outbox cleanup, which run detached from the
// request, could hang for good. With it the call fails with the store's
// unavailable error and the delivery answers 503 with Retry-After, so the
// broker redelivers. The bound is per call, not per delivery: a link check
// makes a few calls per stale drone, and a long one is not a hung one.
//
// It holds the Store by a named field rather than embedding it, so every
// method alerts calls must be written out here, bounded.
type deadlineStore struct {
	st      Store
	timeout time.Duration
}

// withStoreDeadline wraps st so each call alerts makes gets timeout
// (Config's STORE_TIMEOUT default when 0).
func withStoreDeadline(st Store, timeout time.Duration) Store {
	if timeout <= 0 {
		timeout = DefaultConfig().StoreTimeout
	}
	return &deadlineStore{st: st, timeout: timeout}
}

func (d *deadlineStore) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	// Armed only if the store waits on it (Firestore does; bolt does not).
	return deadline.WithTimeout(ctx, d.timeout)
}

func (d *deadlineStore) EvaluateAlerts(ctx context.Context, tenantID, droneID string,
	fn func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool)) (alerting.Tracker, error) {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	return d.st.EvaluateAlerts(ctx, tenantID, droneID, fn)
}

func (d *deadlineStore) StaleTrackers(ctx context.Context, seenBefore time.Time) ([]alerting.Tracker, error) {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	return d.st.StaleTrackers(ctx, seenBefore)
}

func (d *deadlineStore) AlertSettings(ctx context.Context, tenantID string) (alerting.Settings, error) {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	return d.st.AlertSettings(ctx, tenantID)
}

func (d *deadlineStore) Geofences(ctx context.Context, tenantID string) ([]alerting.Fence, error) {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	return d.st.Geofences(ctx, tenantID)
}

func (d *deadlineStore) Drone(ctx context.Context, tenantID, droneID string) (store.Drone, error) {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	return d.st.Drone(ctx, tenantID, droneID)
}

func (d *deadlineStore) Webhooks(ctx context.Context, tenantID string) ([]store.Webhook, error) {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	return d.st.Webhooks(ctx, tenantID)
}

func (d *deadlineStore) AddDelivery(ctx context.Context, rec store.Delivery) error {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	return d.st.AddDelivery(ctx, rec)
}

func (d *deadlineStore) EventDeliveries(ctx context.Context, tenantID, webhookID, eventID string) ([]store.Delivery, error) {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	return d.st.EventDeliveries(ctx, tenantID, webhookID, eventID)
}

// EnvStoreTimeout bounds each store call (Go duration): past it
// a delivery answers 503 and the broker redelivers.
const EnvStoreTimeout = "STORE_TIMEOUT"
