package function

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/dronetrack/dronetrack/core/notify"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// Notification channels (email, Slack, Teams) are delivery targets like
// webhooks: serveWebhooks hands each alert event the broker brings to
// PathWebhooks to every channel of the tenant as well, and notifyChannel
// follows deliver's pattern. The channel's delivery log
// (store.ChannelEventDeliveries) is read first, so a redelivered event is
// sent once per channel; each attempt is logged and recorded in the
// channel's status (last success, last error) for the website; a failed
// attempt answers 503 and the broker's retries (the Trigger's exponential
// backoff) are the channel's retries. Unlike webhooks, a channel gets only
// the transitions its rules want (alert kinds, fences, drones, outside its
// quiet hours), and none older than the tenant's staleness limit
// (alerting.Settings.NotifyStaleSecs, default 15 min): stale news is
// dropped, not sent late.

// notifyChannel delivers the event to one channel unless the channel does
// not want it, it is stale, or the channel's log shows it delivered. nil
// means the channel needs nothing more for this event.
func (h *Handler) notifyChannel(ctx context.Context, log *slog.Logger, ch store.Channel, a events.Alert,
	ev cloudevents.Event) error {
	resolved := ev.Type() == events.TypeAlertResolved
	at := notify.TransitionTime(a, resolved)
	if !ch.Wants(a, at) {
		log.Debug("channel does not want this alert")
		return nil
	}
	settings, _, err := h.rules.get(ctx, a.TenantID)
	if err != nil {
		log.Error("read alert settings", "err", err)
		return fmt.Errorf("read alert settings: %w", err)
	}
	now := h.opts.Now()
	limit := notify.StaleAfter(settings)
	if notify.Stale(at, now, limit) {
		log.Info("notification dropped: transition older than the staleness limit", "at", at, "limit", limit)
		return nil
	}
	prev, err := h.st.ChannelEventDeliveries(ctx, ch.TenantID, ch.ID, ev.ID())
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil // deleted meanwhile
		}
		log.Error("read channel delivery log", "err", err)
		return fmt.Errorf("read channel delivery log: %w", err)
	}
	if delivered(prev) {
		log.Debug("channel already has the event")
		return nil
	}
	// As for webhooks, a resolved event waits for its raised one when the
	// channel would have been sent it: people should not read "resolved"
	// before the alert.
	// An email channel on a deployment without a mail server never gets
	// the raised one: it does not wait (nor would it get this one).
	sendable := ch.Kind != notify.KindEmail || h.opts.SMTP.Host != ""
	if resolved && sendable && !ch.CreatedAt.After(a.OpenedAt) && ch.Wants(a, a.OpenedAt) && !notify.Stale(a.OpenedAt, now, limit) {
		raised, err := h.st.ChannelEventDeliveries(ctx, ch.TenantID, ch.ID, events.AlertEventID(a.ID, false))
		if err != nil {
			log.Error("read channel delivery log", "err", err)
			return fmt.Errorf("read channel delivery log: %w", err)
		}
		if !delivered(raised) {
			log.Info("resolved notification waits for the raised one")
			return fmt.Errorf("channel %s does not have %s yet", ch.ID, events.AlertEventID(a.ID, false))
		}
	}

	in := notify.Input{Alert: a, Resolved: resolved, DroneName: a.DroneID, SiteURL: h.opts.SiteURL}
	if d, err := h.st.Drone(ctx, a.TenantID, a.DroneID); err == nil {
		in.DroneName = d.Name
		if d.State != nil {
			in.Position = &[2]float64{d.State.Lat, d.State.Lon}
		}
	} else {
		log.Warn("drone for the notification text", "err", err)
	}
	msg := notify.Compose(in)

	attempt := len(prev) + 1
	code, sendErr := h.sendToChannel(ctx, ch, msg, ev.ID())
	rec := store.Delivery{ID: newID(), TenantID: ch.TenantID, ChannelID: ch.ID, EventID: ev.ID(),
		EventType: ev.Type(), Attempt: attempt, At: h.opts.Now().UTC(), StatusCode: code, OK: sendErr == nil}
	if sendErr != nil {
		rec.Error = sendErr.Error()
	}
	if err := h.st.AddChannelDelivery(context.WithoutCancel(ctx), rec); err != nil {
		log.Error("write channel delivery log", "attempt", attempt, "ok", rec.OK, "err", err)
		if !rec.OK {
			return fmt.Errorf("write channel delivery log: %w", err)
		}
	}
	if sendErr != nil {
		log.Warn("notification failed", "kind", ch.Kind, "attempt", attempt, "err", sendErr)
		if errors.Is(sendErr, errNoSMTP) {
			return nil // retrying cannot help; the channel's status shows why
		}
		return fmt.Errorf("channel %s attempt %d: %w", ch.ID, attempt, sendErr)
	}
	log.Info("notification sent", "kind", ch.Kind, "attempt", attempt)
	return nil
}

// sendToChannel sends msg the way the channel's kind wants. The status
// code is the chat receiver's (0 for email).
func (h *Handler) sendToChannel(ctx context.Context, ch store.Channel, msg notify.Message, eventID string) (int, error) {
	switch ch.Kind {
	case notify.KindEmail:
		return 0, sendEmail(ctx, h.opts.SMTP, ch.Recipients, msg, ch.ID, eventID)
	case notify.KindSlack:
		body, err := notify.SlackPayload(msg)
		if err != nil {
			return 0, err
		}
		return postChat(ctx, h.opts.WebhookClient, ch.URL, body)
	case notify.KindTeams:
		body, err := notify.TeamsPayload(msg)
		if err != nil {
			return 0, err
		}
		return postChat(ctx, h.opts.WebhookClient, ch.URL, body)
	}
	return 0, fmt.Errorf("unknown channel kind %q", ch.Kind)
}
