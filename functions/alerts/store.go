package function

import (
	"context"
	"io"
	"time"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/store"
)

// Store is the part of the store alerts uses, by feature. Every method
// is bounded by STORE_TIMEOUT (deadlineStore implements Store method by
// method, so a method added here does not compile until it is bounded).
type Store interface {
	// Alerts: the drone's tracker and alerts, the tenant's rules
	// (handler.go) and the link check's stale drones.
	EvaluateAlerts(ctx context.Context, tenantID, droneID string,
		fn func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool)) (alerting.Tracker, error)
	StaleTrackers(ctx context.Context, seenBefore time.Time) ([]alerting.Tracker, error)
	AlertSettings(ctx context.Context, tenantID string) (alerting.Settings, error)
	Geofences(ctx context.Context, tenantID string) ([]alerting.Fence, error)
	// Drone names the drone in notifications.
	Drone(ctx context.Context, tenantID, droneID string) (store.Drone, error)
	// Webhooks and their deliveries (webhook.go).
	Webhooks(ctx context.Context, tenantID string) ([]store.Webhook, error)
	AddDelivery(ctx context.Context, d store.Delivery) error
	EventDeliveries(ctx context.Context, tenantID, webhookID, eventID string) ([]store.Delivery, error)
	// Notification channels and their deliveries (notify.go).
	Channels(ctx context.Context, tenantID string) ([]store.Channel, error)
	AddChannelDelivery(ctx context.Context, d store.Delivery) error
	ChannelEventDeliveries(ctx context.Context, tenantID, channelID, eventID string) ([]store.Delivery, error)
}

// openedStore is what Start opens: the Store and its Close.
type openedStore interface {
	Store
	io.Closer
}

// Every store.Store (so both backends, which assert they are one) is a
// Store; store_test.go checks the backends by name. deadlineStore must
// implement Store itself, without embedding.
var (
	_ openedStore = store.Store(nil)
	_ Store       = (*deadlineStore)(nil)
)
