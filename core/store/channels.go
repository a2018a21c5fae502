package store

import (
	"context"
	"time"

	"github.com/dronetrack/dronetrack/core/notify"
)

// Channels keeps tenants' notification channels (email, Slack, Teams) and
// their delivery logs. A channel is a delivery target like a webhook: the
// alerts function reads a channel's attempts for an event before sending,
// so a redelivered alert event is sent once per channel. Another tenant's
// channel is ErrNotFound.
type Channels interface {
	// CreateChannel fails with ErrAlreadyExists when the id is taken.
	CreateChannel(ctx context.Context, c Channel) error
	Channel(ctx context.Context, tenantID, id string) (Channel, error)
	// Channels lists the tenant's channels ordered by id.
	Channels(ctx context.Context, tenantID string) ([]Channel, error)
	// UpdateChannel replaces an existing channel's settings (name,
	// recipients, URL, rules); CreatedAt and Status keep their stored values.
	UpdateChannel(ctx context.Context, c Channel) error
	// DeleteChannel removes the channel and its delivery log.
	DeleteChannel(ctx context.Context, tenantID, id string) error
	// AddChannelDelivery appends one attempt (d.ChannelID) to the channel's
	// log and, in the same write, records it in the channel's Status (last
	// success or last error). A channel that is gone is ErrNotFound.
	AddChannelDelivery(ctx context.Context, d Delivery) error
	// ChannelDeliveries returns a channel's log, newest first, at most limit.
	ChannelDeliveries(ctx context.Context, tenantID, channelID string, limit int) ([]Delivery, error)
	// ChannelEventDeliveries returns a channel's attempts for one event,
	// oldest first (the deliverer's idempotency check).
	ChannelEventDeliveries(ctx context.Context, tenantID, channelID, eventID string) ([]Delivery, error)
}

// Channel is a tenant's notification channel. URL (Slack and Teams
// incoming webhooks) is a secret: whoever has it can post to the chat, so
// the API never returns it and nothing logs it.
type Channel struct {
	ID         string   `json:"id"`
	TenantID   string   `json:"tenantId"`
	Name       string   `json:"name"`
	Kind       string   `json:"kind"`                 // notify.KindEmail, KindSlack or KindTeams
	Recipients []string `json:"recipients,omitempty"` // email addresses (email)
	URL        string   `json:"url,omitempty"`        // incoming-webhook URL (slack, teams): secret
	notify.Rules
	CreatedAt time.Time     `json:"createdAt"`
	UpdatedAt time.Time     `json:"updatedAt"`
	Status    ChannelStatus `json:"status"`
}

// ChannelStatus is how a channel's deliveries went lately, for the website.
type ChannelStatus struct {
	LastSuccessAt *time.Time `json:"lastSuccessAt,omitempty"`
	LastErrorAt   *time.Time `json:"lastErrorAt,omitempty"`
	LastError     string     `json:"lastError,omitempty"`
	LastEventID   string     `json:"lastEventId,omitempty"` // of the newest attempt
}

// Record returns the status after attempt d. An older attempt landing late
// does not overwrite a newer one.
func (s ChannelStatus) Record(d Delivery) ChannelStatus {
	at := d.At
	if d.OK {
		if s.LastSuccessAt == nil || !at.Before(*s.LastSuccessAt) {
			s.LastSuccessAt = &at
			s.LastEventID = d.EventID
		}
		return s
	}
	if s.LastErrorAt == nil || !at.Before(*s.LastErrorAt) {
		s.LastErrorAt, s.LastError = &at, d.Error
		s.LastEventID = d.EventID
	}
	return s
}
