package function

import (
	"context"
	"io"
	"time"

	"github.com/dronetrack/dronetrack/core/accounts"
	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/cache"
	"github.com/dronetrack/dronetrack/core/flights"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// Store is the part of the store serve-map uses, by feature. serve-map is
// the API, so it reads and edits most of what Dronetrack keeps; what it
// never does is write telemetry (UpdateState, AppendTrack, UpdateFlights:
// process's) or evaluate alerts and record their deliveries (alerts').
type Store interface {
	// accounts.Store: users, sessions, invites, signup and drone
	// management (auth.go, account.go, tenant.go).
	accounts.Store
	fleetStore
	alertsStore
	channelsStore
	flightsStore
	// store.Links: public tracking links (links.go).
	store.Links
	// store.RemoteID: Network Remote ID (rid*.go).
	store.RemoteID
}

// fleetStore is the map and its history (api.go, export.go); cache.Loader
// is what the cache reads on a miss.
type fleetStore interface {
	cache.Loader
	LatestState(ctx context.Context, tenantID, droneID string) (events.DroneState, error)
	Track(ctx context.Context, q store.TrackQuery) ([]store.TrackPoint, error)
}

// alertsStore is the alerts API (alerts_api.go): alerts, settings,
// geofences, webhooks and their delivery log.
type alertsStore interface {
	ListAlerts(ctx context.Context, tenantID string, closedSince time.Time, limit int) ([]alerting.Alert, error)
	AlertsUpdatedSince(ctx context.Context, tenantID string, since time.Time) ([]alerting.Alert, error)
	AcknowledgeAlert(ctx context.Context, tenantID, id, by string, at time.Time) (alerting.Alert, error)

	AlertSettings(ctx context.Context, tenantID string) (alerting.Settings, error)
	PutAlertSettings(ctx context.Context, tenantID string, s alerting.Settings) error

	CreateGeofence(ctx context.Context, f alerting.Fence) error
	UpdateGeofence(ctx context.Context, f alerting.Fence) error
	DeleteGeofence(ctx context.Context, tenantID, id string) error
	Geofence(ctx context.Context, tenantID, id string) (alerting.Fence, error)
	Geofences(ctx context.Context, tenantID string) ([]alerting.Fence, error)

	CreateWebhook(ctx context.Context, w store.Webhook) error
	Webhooks(ctx context.Context, tenantID string) ([]store.Webhook, error)
	DeleteWebhook(ctx context.Context, tenantID, id string) error
	Deliveries(ctx context.Context, tenantID, webhookID string, limit int) ([]store.Delivery, error)
}

// channelsStore is the notification channels API (channels.go).
type channelsStore interface {
	CreateChannel(ctx context.Context, c store.Channel) error
	Channel(ctx context.Context, tenantID, id string) (store.Channel, error)
	Channels(ctx context.Context, tenantID string) ([]store.Channel, error)
	UpdateChannel(ctx context.Context, c store.Channel) error
	DeleteChannel(ctx context.Context, tenantID, id string) error
	ChannelDeliveries(ctx context.Context, tenantID, channelID string, limit int) ([]store.Delivery, error)
}

// flightsStore is the flights API (flights_api.go).
type flightsStore interface {
	Flight(ctx context.Context, tenantID, id string) (flights.Flight, error)
	ListFlights(ctx context.Context, q store.FlightQuery) ([]flights.Flight, error)
	OwedReplay(ctx context.Context, tenantID, droneID string) (*flights.Owed, error)
	FlightSettings(ctx context.Context, tenantID string) (flights.Settings, error)
	PutFlightSettings(ctx context.Context, tenantID string, s flights.Settings) error
}

// openedStore is what Start opens: the Store and its Close.
type openedStore interface {
	Store
	io.Closer
}

// Every store.Store (so both backends, which assert they are one) is a
// Store; backends_test.go checks the backends by name.
var _ openedStore = store.Store(nil)
