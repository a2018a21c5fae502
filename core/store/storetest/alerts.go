package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
	"github.com/google/go-cmp/cmp"
)

// alertTests pin down store.Alerts:
//   - EvaluateAlerts hands fn a zero tracker (ids set) for a new drone,
//     stores the tracker and the transitions' alerts in one step, and a
//     concurrent or repeated evaluation of the same state opens one alert.
//   - ListAlerts returns open alerts and those closed since the cutoff,
//     most recently updated first; AlertsUpdatedSince is inclusive.
//   - Acknowledging twice keeps the first acknowledgement.
//   - Fences, webhooks and alerts of another tenant are ErrNotFound.
//   - Deliveries come back newest first; EventDeliveries returns one
//     event's attempts on one webhook, oldest first, and nothing of other
//     events, webhooks or tenants.
var alertTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"AlertsEvaluate", testAlertsEvaluate},
	{"AlertsEvaluateConcurrent", testAlertsEvaluateConcurrent},
	{"AlertsListAndAck", testAlertsListAndAck},
	{"AlertSettings", testAlertSettings},
	{"Geofences", testGeofences},
	{"Webhooks", testWebhooks},
	{"WebhookEventDeliveries", testWebhookEventDeliveries},
}

func lowBattery(i int, batt float64) events.DroneState {
	st := state(i)
	st.Battery = new(batt)
	return st
}

func evaluate(st events.DroneState) func(alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool) {
	return func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool) {
		return alerting.EvaluateState(prev, st, alerting.DefaultSettings(), nil, st.UpdatedAt)
	}
}

func testAlertsEvaluate(t *testing.T, s store.Store) {
	ctx := context.Background()
	var saw alerting.Tracker
	tr, err := s.EvaluateAlerts(ctx, "acme", "d1", func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool) {
		saw = prev
		return alerting.EvaluateState(prev, lowBattery(1, 10), alerting.DefaultSettings(), nil, at(2))
	})
	must(t, "EvaluateAlerts", err)
	if diff := cmp.Diff(alerting.Tracker{TenantID: "acme", DroneID: "d1"}, saw, opts); diff != "" {
		t.Errorf("first tracker (-want +got):\n%s", diff)
	}
	if len(tr.Open) != 1 || len(tr.Outbox) != 1 {
		t.Fatalf("tracker after a low battery: %+v; want one open alert and one outbox entry", tr)
	}
	opened := tr.Open[alerting.KindBatteryLow]
	got, err := s.Alert(ctx, "acme", opened.ID)
	must(t, "Alert", err)
	if diff := cmp.Diff(opened, got, opts); diff != "" {
		t.Errorf("stored alert (-want +got):\n%s", diff)
	}
	_, err = s.Alert(ctx, "other", opened.ID)
	wantErr(t, "Alert of another tenant", err, store.ErrNotFound)

	// The same state again: no change, the stored tracker comes back.
	again, err := s.EvaluateAlerts(ctx, "acme", "d1", evaluate(lowBattery(1, 10)))
	must(t, "EvaluateAlerts again", err)
	if diff := cmp.Diff(tr, again, opts); diff != "" {
		t.Errorf("redelivery changed the tracker (-want +got):\n%s", diff)
	}

	// Clearing the outbox, then closing the alert.
	_, err = s.EvaluateAlerts(ctx, "acme", "d1", func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool) {
		next, ok := alerting.Published(prev, []string{prev.Outbox[0].EventID()}, nil)
		return next, nil, ok
	})
	must(t, "EvaluateAlerts publish", err)
	tr, err = s.EvaluateAlerts(ctx, "acme", "d1", evaluate(lowBattery(3, 90)))
	must(t, "EvaluateAlerts close", err)
	if len(tr.Open) != 0 || len(tr.Outbox) != 1 || tr.Outbox[0].Type != events.TypeAlertResolved {
		t.Fatalf("tracker after recharge: %+v", tr)
	}
	got, err = s.Alert(ctx, "acme", opened.ID)
	must(t, "Alert closed", err)
	if got.ClosedAt == nil || !got.ClosedAt.Equal(at(4)) {
		t.Errorf("closed alert = %+v; want closedAt %v", got, at(4))
	}

	// Link check candidates: seen before the cutoff and not already lost.
	stale, err := s.StaleTrackers(ctx, at(5))
	must(t, "StaleTrackers", err)
	if len(stale) != 1 || stale[0].DroneID != "d1" {
		t.Fatalf("StaleTrackers = %+v; want d1", stale)
	}
	stale, err = s.StaleTrackers(ctx, at(3))
	must(t, "StaleTrackers before", err)
	if len(stale) != 0 {
		t.Errorf("StaleTrackers(before last seen) = %+v; want none", stale)
	}
	_, err = s.EvaluateAlerts(ctx, "acme", "d1", func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool) {
		return alerting.EvaluateLink(prev, alerting.DefaultSettings(), at(4).Add(time.Hour))
	})
	must(t, "EvaluateAlerts link", err)
	stale, err = s.StaleTrackers(ctx, at(4).Add(time.Hour))
	must(t, "StaleTrackers after lost", err)
	if len(stale) != 0 {
		t.Errorf("StaleTrackers lists a drone already lost: %+v", stale)
	}
}

func testAlertsEvaluateConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Everyone delivers the same low-battery state.
			if _, err := s.EvaluateAlerts(ctx, "acme", "d1", evaluate(lowBattery(1, 5))); err != nil {
				errs <- fmt.Errorf("EvaluateAlerts #%d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	list, err := s.ListAlerts(ctx, "acme", time.Time{}, 0)
	must(t, "ListAlerts", err)
	if len(list) != 1 {
		t.Errorf("%d concurrent deliveries of one state stored %d alerts; want 1: %+v", n, len(list), list)
	}
}

func testAlertsListAndAck(t *testing.T, s store.Store) {
	ctx := context.Background()
	// d1: opened at(2), closed at(4). d2: opened at(6), still open.
	_, err := s.EvaluateAlerts(ctx, "acme", "d1", evaluate(lowBattery(1, 5)))
	must(t, "open d1", err)
	_, err = s.EvaluateAlerts(ctx, "acme", "d1", evaluate(lowBattery(3, 95)))
	must(t, "close d1", err)
	tr2, err := s.EvaluateAlerts(ctx, "acme", "d2", evaluate(lowBattery(5, 5)))
	must(t, "open d2", err)
	_, err = s.EvaluateAlerts(ctx, "other", "d3", evaluate(lowBattery(5, 5)))
	must(t, "open other tenant's d3", err)

	list, err := s.ListAlerts(ctx, "acme", at(3), 0)
	must(t, "ListAlerts", err)
	var ids []string
	for _, a := range list {
		ids = append(ids, a.DroneID)
	}
	if diff := cmp.Diff([]string{"d2", "d1"}, ids); diff != "" {
		t.Errorf("ListAlerts drones (-want +got):\n%s", diff)
	}
	list, err = s.ListAlerts(ctx, "acme", at(5), 0)
	must(t, "ListAlerts recent", err)
	if len(list) != 1 || list[0].DroneID != "d2" {
		t.Errorf("ListAlerts(closed since after d1 closed) = %+v; want only d2", list)
	}
	upd, err := s.AlertsUpdatedSince(ctx, "acme", at(4))
	must(t, "AlertsUpdatedSince", err)
	if len(upd) != 2 || upd[0].DroneID != "d1" || upd[1].DroneID != "d2" {
		t.Errorf("AlertsUpdatedSince(at(4)) = %+v; want d1 then d2", upd)
	}

	id := tr2.Open[alerting.KindBatteryLow].ID
	a, err := s.AcknowledgeAlert(ctx, "acme", id, "ops@acme", at(10))
	must(t, "AcknowledgeAlert", err)
	if a.AcknowledgedBy != "ops@acme" || a.AcknowledgedAt == nil || !a.AcknowledgedAt.Equal(at(10)) || !a.UpdatedAt.Equal(at(10)) {
		t.Errorf("acknowledged = %+v", a)
	}
	a, err = s.AcknowledgeAlert(ctx, "acme", id, "someone-else", at(11))
	must(t, "AcknowledgeAlert again", err)
	if a.AcknowledgedBy != "ops@acme" {
		t.Errorf("second ack replaced the first: %+v", a)
	}
	// Closing an acknowledged alert keeps the acknowledgement.
	_, err = s.EvaluateAlerts(ctx, "acme", "d2", evaluate(lowBattery(20, 99)))
	must(t, "close d2", err)
	a, err = s.Alert(ctx, "acme", id)
	must(t, "Alert after close", err)
	if a.ClosedAt == nil || a.AcknowledgedBy != "ops@acme" || a.AcknowledgedAt == nil {
		t.Errorf("closed acknowledged alert = %+v; want closed and still acknowledged", a)
	}
	_, err = s.AcknowledgeAlert(ctx, "other", id, "x", at(12))
	wantErr(t, "AcknowledgeAlert of another tenant", err, store.ErrNotFound)
	_, err = s.AcknowledgeAlert(ctx, "acme", "missing", "x", at(12))
	wantErr(t, "AcknowledgeAlert missing", err, store.ErrNotFound)
}

func testAlertSettings(t *testing.T, s store.Store) {
	ctx := context.Background()
	got, err := s.AlertSettings(ctx, "acme")
	must(t, "AlertSettings default", err)
	if diff := cmp.Diff(alerting.DefaultSettings(), got); diff != "" {
		t.Errorf("default settings (-want +got):\n%s", diff)
	}
	want := alerting.Settings{LowBatteryPct: 30, HysteresisPct: 2, MinTimeToEmptySecs: 0, LostLinkSecs: 5}
	must(t, "PutAlertSettings", s.PutAlertSettings(ctx, "acme", want))
	got, err = s.AlertSettings(ctx, "acme")
	must(t, "AlertSettings", err)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("settings (-want +got):\n%s", diff)
	}
}

func testGeofences(t *testing.T, s store.Store) {
	ctx := context.Background()
	b := alerting.Fence{ID: "f-b", TenantID: "acme", Name: "yard", Mode: alerting.ModeKeepIn,
		Polygon: []alerting.Point{{Lat: 1, Lon: 2}, {Lat: 1, Lon: 3}, {Lat: 2, Lon: 3}}, CreatedAt: at(1), UpdatedAt: at(1)}
	a := alerting.Fence{ID: "f-a", TenantID: "acme", Name: "airport", Mode: alerting.ModeKeepOut,
		Center: &alerting.Point{Lat: 52, Lon: 13}, RadiusM: 500, CreatedAt: at(2), UpdatedAt: at(2)}
	must(t, "CreateGeofence b", s.CreateGeofence(ctx, b))
	must(t, "CreateGeofence a", s.CreateGeofence(ctx, a))
	wantErr(t, "CreateGeofence duplicate", s.CreateGeofence(ctx, a), store.ErrAlreadyExists)
	list, err := s.Geofences(ctx, "acme")
	must(t, "Geofences", err)
	if diff := cmp.Diff([]alerting.Fence{a, b}, list, opts); diff != "" {
		t.Errorf("Geofences (-want +got):\n%s", diff)
	}
	b.Name, b.UpdatedAt = "bigger yard", at(3)
	must(t, "UpdateGeofence", s.UpdateGeofence(ctx, b))
	got, err := s.Geofence(ctx, "acme", "f-b")
	must(t, "Geofence", err)
	if diff := cmp.Diff(b, got, opts); diff != "" {
		t.Errorf("updated fence (-want +got):\n%s", diff)
	}
	other := b
	other.TenantID = "other"
	wantErr(t, "UpdateGeofence of another tenant", s.UpdateGeofence(ctx, other), store.ErrNotFound)
	_, err = s.Geofence(ctx, "other", "f-b")
	wantErr(t, "Geofence of another tenant", err, store.ErrNotFound)
	wantErr(t, "DeleteGeofence of another tenant", s.DeleteGeofence(ctx, "other", "f-b"), store.ErrNotFound)
	must(t, "DeleteGeofence", s.DeleteGeofence(ctx, "acme", "f-b"))
	wantErr(t, "DeleteGeofence twice", s.DeleteGeofence(ctx, "acme", "f-b"), store.ErrNotFound)
	list, err = s.Geofences(ctx, "other")
	must(t, "Geofences other", err)
	if len(list) != 0 {
		t.Errorf("other tenant sees fences %+v", list)
	}
}

func testWebhooks(t *testing.T, s store.Store) {
	ctx := context.Background()
	w := store.Webhook{ID: "w1", TenantID: "acme", URL: "https://example.test/hook", Secret: "s3cret", CreatedAt: at(1)}
	must(t, "CreateWebhook", s.CreateWebhook(ctx, w))
	wantErr(t, "CreateWebhook duplicate", s.CreateWebhook(ctx, w), store.ErrAlreadyExists)
	got, err := s.Webhook(ctx, "acme", "w1")
	must(t, "Webhook", err)
	if diff := cmp.Diff(w, got, opts); diff != "" {
		t.Errorf("Webhook (-want +got):\n%s", diff)
	}
	_, err = s.Webhook(ctx, "other", "w1")
	wantErr(t, "Webhook of another tenant", err, store.ErrNotFound)
	list, err := s.Webhooks(ctx, "acme")
	must(t, "Webhooks", err)
	if len(list) != 1 {
		t.Errorf("Webhooks = %+v", list)
	}
	for i := 1; i <= 3; i++ {
		must(t, "AddDelivery", s.AddDelivery(ctx, store.Delivery{ID: fmt.Sprintf("d%d", i), TenantID: "acme", WebhookID: "w1",
			EventID: "e", EventType: events.TypeAlertRaised, Attempt: i, At: at(i), StatusCode: 500, OK: i == 3}))
	}
	ds, err := s.Deliveries(ctx, "acme", "w1", 2)
	must(t, "Deliveries", err)
	if len(ds) != 2 || ds[0].Attempt != 3 || ds[1].Attempt != 2 || !ds[0].OK {
		t.Errorf("Deliveries = %+v; want attempts 3, 2", ds)
	}
	_, err = s.Deliveries(ctx, "other", "w1", 0)
	wantErr(t, "Deliveries of another tenant", err, store.ErrNotFound)
	wantErr(t, "DeleteWebhook of another tenant", s.DeleteWebhook(ctx, "other", "w1"), store.ErrNotFound)
	must(t, "DeleteWebhook", s.DeleteWebhook(ctx, "acme", "w1"))
	_, err = s.Webhook(ctx, "acme", "w1")
	wantErr(t, "Webhook after delete", err, store.ErrNotFound)
}

func testWebhookEventDeliveries(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, w := range []store.Webhook{
		{ID: "wa", TenantID: "acme", URL: "https://example.test/a", Secret: "s", CreatedAt: at(1)},
		{ID: "wb", TenantID: "acme", URL: "https://example.test/b", Secret: "s", CreatedAt: at(1)},
	} {
		must(t, "CreateWebhook", s.CreateWebhook(ctx, w))
	}
	// Event ids look like alert event ids ("<alert>/raised"); "a1/raised"
	// must not match a prefix of it, nor "a1/raised" on the other webhook.
	add := func(id, hook, event string, attempt, sec int, ok bool) store.Delivery {
		d := store.Delivery{ID: id, TenantID: "acme", WebhookID: hook, EventID: event, EventType: events.TypeAlertRaised,
			Attempt: attempt, At: at(sec), StatusCode: 503, Error: "receiver answered 503", OK: ok}
		if ok {
			d.StatusCode, d.Error = 204, ""
		}
		must(t, "AddDelivery", s.AddDelivery(ctx, d))
		return d
	}
	want := []store.Delivery{
		add("d1", "wa", "a1/raised", 1, 10, false),
		add("d2", "wa", "a1/raised", 2, 12, false),
	}
	add("d3", "wa", "a1/raised2", 1, 11, true)
	add("d4", "wb", "a1/raised", 1, 11, true)
	add("d5", "wa", "a2/raised", 1, 13, true)
	want = append(want, add("d6", "wa", "a1/raised", 3, 16, true))

	got, err := s.EventDeliveries(ctx, "acme", "wa", "a1/raised")
	must(t, "EventDeliveries", err)
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("EventDeliveries of a1/raised on wa, oldest first (-want +got):\n%s", diff)
	}
	got, err = s.EventDeliveries(ctx, "acme", "wa", "a3/raised")
	must(t, "EventDeliveries", err)
	if len(got) != 0 {
		t.Errorf("EventDeliveries of an event never delivered = %+v; want none", got)
	}
	_, err = s.EventDeliveries(ctx, "other", "wa", "a1/raised")
	wantErr(t, "EventDeliveries of another tenant", err, store.ErrNotFound)
	_, err = s.EventDeliveries(ctx, "acme", "nope", "a1/raised")
	wantErr(t, "EventDeliveries of an unknown webhook", err, store.ErrNotFound)
}
