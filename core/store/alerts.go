package store

import (
	"context"
	"time"

	"github.com/dronetrack/dronetrack/core/alerting"
)

// Alerts keeps alert episodes, the per-drone alert trackers that drive them,
// tenants' geofences and alert settings, and outgoing webhooks with their
// delivery log. Another tenant's record is ErrNotFound.
type Alerts interface {
	// EvaluateAlerts atomically reads the drone's tracker (a zero Tracker
	// with the ids set when it has none), asks fn for the next one and,
	// when fn says so, stores it together with every alert in the
	// transitions fn returns (upserted by id). fn may run more than once
	// and must be pure. It returns the tracker now stored.
	EvaluateAlerts(ctx context.Context, tenantID, droneID string,
		fn func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool)) (alerting.Tracker, error)
	// StaleTrackers lists trackers seen before cutoff that have no open
	// link.lost episode: the lost-link check's candidates.
	StaleTrackers(ctx context.Context, seenBefore time.Time) ([]alerting.Tracker, error)

	// Alert returns one alert of the tenant.
	Alert(ctx context.Context, tenantID, id string) (alerting.Alert, error)
	// ListAlerts returns the tenant's open alerts and those closed at or
	// after closedSince, most recently updated first, at most limit.
	ListAlerts(ctx context.Context, tenantID string, closedSince time.Time, limit int) ([]alerting.Alert, error)
	// AlertsUpdatedSince returns the tenant's alerts whose UpdatedAt is at
	// or after since, oldest update first (the live stream polls it).
	AlertsUpdatedSince(ctx context.Context, tenantID string, since time.Time) ([]alerting.Alert, error)
	// AcknowledgeAlert records who acknowledged the alert and when; a second
	// acknowledgement keeps the first. It returns the alert now stored.
	AcknowledgeAlert(ctx context.Context, tenantID, id, by string, at time.Time) (alerting.Alert, error)

	// AlertSettings returns the tenant's settings, alerting.DefaultSettings
	// when it saved none.
	AlertSettings(ctx context.Context, tenantID string) (alerting.Settings, error)
	PutAlertSettings(ctx context.Context, tenantID string, s alerting.Settings) error

	// CreateGeofence fails with ErrAlreadyExists when the id is taken.
	CreateGeofence(ctx context.Context, f alerting.Fence) error
	// UpdateGeofence replaces an existing fence of the tenant.
	UpdateGeofence(ctx context.Context, f alerting.Fence) error
	DeleteGeofence(ctx context.Context, tenantID, id string) error
	Geofence(ctx context.Context, tenantID, id string) (alerting.Fence, error)
	// Geofences lists the tenant's fences ordered by id.
	Geofences(ctx context.Context, tenantID string) ([]alerting.Fence, error)

	// CreateWebhook fails with ErrAlreadyExists when the id is taken.
	CreateWebhook(ctx context.Context, w Webhook) error
	Webhook(ctx context.Context, tenantID, id string) (Webhook, error)
	// Webhooks lists the tenant's webhooks ordered by id.
	Webhooks(ctx context.Context, tenantID string) ([]Webhook, error)
	DeleteWebhook(ctx context.Context, tenantID, id string) error
	// AddDelivery appends one delivery attempt to a webhook's log.
	AddDelivery(ctx context.Context, d Delivery) error
	// Deliveries returns a webhook's log, newest first, at most limit.
	Deliveries(ctx context.Context, tenantID, webhookID string, limit int) ([]Delivery, error)
	// EventDeliveries returns a webhook's attempts for one event, oldest
	// first: the deliverer reads it on each broker (re)delivery to skip a
	// webhook that already has the event and to number the next attempt.
	EventDeliveries(ctx context.Context, tenantID, webhookID, eventID string) ([]Delivery, error)
}

// Webhook is a tenant's receiver of alert events. Secret keys the HMAC
// signature of each delivery; it is kept because signing needs it.
type Webhook struct {
	ID        string    `json:"id"`
	TenantID  string    `json:"tenantId"`
	URL       string    `json:"url"`
	Secret    string    `json:"secret"`
	CreatedAt time.Time `json:"createdAt"`
}

// Delivery is one attempt to deliver an event to a webhook or, with
// ChannelID set instead, to a notification channel.
type Delivery struct {
	ID         string    `json:"id"`
	TenantID   string    `json:"tenantId"`
	WebhookID  string    `json:"webhookId,omitempty"`
	ChannelID  string    `json:"channelId,omitempty"`
	EventID    string    `json:"eventId"`
	EventType  string    `json:"eventType"`
	Attempt    int       `json:"attempt"`
	At         time.Time `json:"at"`
	StatusCode int       `json:"statusCode,omitempty"`
	Error      string    `json:"error,omitempty"`
	OK         bool      `json:"ok"`
}
