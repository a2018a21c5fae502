package storetest

import (
	"context"
	"testing"

	"github.com/dronetrack/dronetrack/core/notify"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
	"github.com/google/go-cmp/cmp"
)

// channelTests pin down store.Channels:
//   - A channel comes back as created (rules and quiet hours included);
//     another tenant's is ErrNotFound for every method.
//   - UpdateChannel replaces the settings but keeps CreatedAt and Status.
//   - AddChannelDelivery records the attempt and the channel's status (last
//     success, last error) together; an older attempt landing late does not
//     overwrite a newer status.
//   - ChannelEventDeliveries returns one event's attempts on one channel,
//     oldest first; ChannelDeliveries newest first, at most limit.
//   - DeleteChannel takes the log with it.
var channelTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"Channels", testChannels},
	{"ChannelDeliveries", testChannelDeliveries},
}

func testChannels(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := store.Channel{ID: "ch1", TenantID: "acme", Name: "Ops mail", Kind: notify.KindEmail,
		Recipients: []string{"ops@example.test", "lead@example.test"},
		Rules: notify.Rules{AlertKinds: []string{"battery.low"}, DroneIDs: []string{"d1"},
			QuietHours: &notify.QuietHours{Start: "22:00", End: "07:00", TimeZone: "Europe/Berlin"}},
		CreatedAt: at(1), UpdatedAt: at(1)}
	must(t, "CreateChannel", s.CreateChannel(ctx, c))
	wantErr(t, "CreateChannel duplicate", s.CreateChannel(ctx, c), store.ErrAlreadyExists)
	slack := store.Channel{ID: "ch0", TenantID: "acme", Name: "chat", Kind: notify.KindSlack,
		URL: "https://hooks.example.test/T/B/x", CreatedAt: at(2), UpdatedAt: at(2)}
	must(t, "CreateChannel", s.CreateChannel(ctx, slack))
	must(t, "CreateChannel other tenant", s.CreateChannel(ctx, store.Channel{ID: "ch9", TenantID: "globex",
		Kind: notify.KindTeams, URL: "https://teams.example.test/x", CreatedAt: at(1)}))

	got, err := s.Channel(ctx, "acme", "ch1")
	must(t, "Channel", err)
	if diff := cmp.Diff(c, got, opts); diff != "" {
		t.Errorf("Channel (-want +got):\n%s", diff)
	}
	list, err := s.Channels(ctx, "acme")
	must(t, "Channels", err)
	if diff := cmp.Diff([]store.Channel{slack, c}, list, opts); diff != "" {
		t.Errorf("Channels, by id (-want +got):\n%s", diff)
	}

	_, err = s.Channel(ctx, "globex", "ch1")
	wantErr(t, "Channel of another tenant", err, store.ErrNotFound)
	other := c
	other.TenantID = "globex"
	wantErr(t, "UpdateChannel of another tenant", s.UpdateChannel(ctx, other), store.ErrNotFound)
	wantErr(t, "DeleteChannel of another tenant", s.DeleteChannel(ctx, "globex", "ch1"), store.ErrNotFound)
	wantErr(t, "AddChannelDelivery to another tenant's channel", s.AddChannelDelivery(ctx, store.Delivery{ID: "x",
		TenantID: "globex", ChannelID: "ch1", EventID: "e", At: at(3)}), store.ErrNotFound)
	_, err = s.ChannelEventDeliveries(ctx, "globex", "ch1", "e")
	wantErr(t, "ChannelEventDeliveries of another tenant", err, store.ErrNotFound)
	_, err = s.ChannelDeliveries(ctx, "globex", "ch1", 0)
	wantErr(t, "ChannelDeliveries of another tenant", err, store.ErrNotFound)

	must(t, "AddChannelDelivery", s.AddChannelDelivery(ctx, store.Delivery{ID: "d1", TenantID: "acme", ChannelID: "ch1",
		EventID: "a1/raised", EventType: events.TypeAlertRaised, Attempt: 1, At: at(4), OK: true}))
	upd := c
	upd.Name, upd.Recipients, upd.Rules = "Night shift", []string{"night@example.test"}, notify.Rules{}
	upd.CreatedAt, upd.UpdatedAt = at(9), at(5) // CreatedAt is not the caller's to change
	must(t, "UpdateChannel", s.UpdateChannel(ctx, upd))
	got, err = s.Channel(ctx, "acme", "ch1")
	must(t, "Channel", err)
	want := upd
	succ := at(4)
	want.CreatedAt, want.Status = c.CreatedAt, store.ChannelStatus{LastSuccessAt: &succ, LastEventID: "a1/raised"}
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("Channel after update (-want +got):\n%s", diff)
	}

	must(t, "DeleteChannel", s.DeleteChannel(ctx, "acme", "ch1"))
	_, err = s.Channel(ctx, "acme", "ch1")
	wantErr(t, "Channel after delete", err, store.ErrNotFound)
	_, err = s.ChannelEventDeliveries(ctx, "acme", "ch1", "a1/raised")
	wantErr(t, "ChannelEventDeliveries after delete", err, store.ErrNotFound)
	wantErr(t, "AddChannelDelivery after delete", s.AddChannelDelivery(ctx, store.Delivery{ID: "d2", TenantID: "acme",
		ChannelID: "ch1", EventID: "e", At: at(6)}), store.ErrNotFound)
	if _, err := s.Channel(ctx, "globex", "ch9"); err != nil {
		t.Errorf("the other tenant's channel: %v", err)
	}
}

func testChannelDeliveries(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, id := range []string{"ca", "cb"} {
		must(t, "CreateChannel", s.CreateChannel(ctx, store.Channel{ID: id, TenantID: "acme", Kind: notify.KindEmail,
			Recipients: []string{"ops@example.test"}, CreatedAt: at(1)}))
	}
	add := func(id, ch, event string, attempt, sec int, ok bool) store.Delivery {
		d := store.Delivery{ID: id, TenantID: "acme", ChannelID: ch, EventID: event, EventType: events.TypeAlertRaised,
			Attempt: attempt, At: at(sec), Error: "smtp: 451 try later", OK: ok}
		if ok {
			d.Error = ""
		}
		must(t, "AddChannelDelivery", s.AddChannelDelivery(ctx, d))
		return d
	}
	want := []store.Delivery{
		add("d1", "ca", "a1/raised", 1, 10, false),
		add("d2", "ca", "a1/raised", 2, 12, false),
	}
	add("d3", "ca", "a1/raised2", 1, 11, true)
	add("d4", "cb", "a1/raised", 1, 11, true)
	want = append(want, add("d5", "ca", "a1/raised", 3, 16, true))
	add("d6", "ca", "a2/raised", 1, 14, false) // an older failure landing after the success at 16

	got, err := s.ChannelEventDeliveries(ctx, "acme", "ca", "a1/raised")
	must(t, "ChannelEventDeliveries", err)
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("ChannelEventDeliveries of a1/raised on ca, oldest first (-want +got):\n%s", diff)
	}
	got, err = s.ChannelEventDeliveries(ctx, "acme", "ca", "a3/raised")
	must(t, "ChannelEventDeliveries", err)
	if len(got) != 0 {
		t.Errorf("ChannelEventDeliveries of an event never delivered = %+v; want none", got)
	}
	_, err = s.ChannelEventDeliveries(ctx, "acme", "nope", "a1/raised")
	wantErr(t, "ChannelEventDeliveries of an unknown channel", err, store.ErrNotFound)

	log, err := s.ChannelDeliveries(ctx, "acme", "ca", 3)
	must(t, "ChannelDeliveries", err)
	var ids []string
	for _, d := range log {
		ids = append(ids, d.ID)
	}
	if diff := cmp.Diff([]string{"d5", "d6", "d2"}, ids); diff != "" {
		t.Errorf("ChannelDeliveries newest first, 3 (-want +got):\n%s", diff)
	}

	c, err := s.Channel(ctx, "acme", "ca")
	must(t, "Channel", err)
	succ, fail := at(16), at(14)
	wantStatus := store.ChannelStatus{LastSuccessAt: &succ, LastErrorAt: &fail, LastError: "smtp: 451 try later",
		LastEventID: "a2/raised"}
	if diff := cmp.Diff(wantStatus, c.Status, opts); diff != "" {
		t.Errorf("status of ca (-want +got):\n%s", diff)
	}
	c, err = s.Channel(ctx, "acme", "cb")
	must(t, "Channel", err)
	if c.Status.LastSuccessAt == nil || c.Status.LastErrorAt != nil {
		t.Errorf("status of cb = %+v; want a success only", c.Status)
	}
}
