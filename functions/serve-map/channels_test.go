package function

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

const slackSecretURL = "https://hooks.slack.test/services/T01/B02/Chat-Secret-Token"

// TestChannelsAPI: owners and admins create, read, replace and delete
// notification channels; bad input is a 400 naming the field; the chat
// URL is write-only (no reply, list or log shows it; PUT without it keeps
// it); the kind cannot change; the delivery status and log show; viewers
// get 403 for reads and writes; every reply matches the OpenAPI document.
func TestChannelsAPI(t *testing.T) {
	e := newAuthEnv(t, "local://"+uniq("ch"), nil)
	o := newOpenAPIReplies(t)
	owner := signUp(t, e, "Alpha Org", "ann@alpha.test", pwA)
	inv := decode[struct{ Token string }](t, e.do(t, owner, http.MethodPost, "/api/v1/invites", map[string]string{"role": "viewer"}))
	viewer := login(t, e.do(t, nil, http.MethodPost, "/api/v1/invites/"+inv.Token+"/accept",
		map[string]string{"email": "vic@alpha.test", "password": pwB}))
	tenant := decode[struct{ User userJSON }](t, e.do(t, owner, http.MethodGet, "/api/v1/me", nil)).User.TenantID
	var replies []string

	for _, tc := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"unknown kind", map[string]any{"kind": "sms"}, "kind"},
		{"email without recipients", map[string]any{"kind": "email"}, "recipients"},
		{"bad address", map[string]any{"kind": "email", "recipients": []string{"ops@example.test", "Ops <x@example.test>"}}, "recipients[1]"},
		{"email with url", map[string]any{"kind": "email", "recipients": []string{"a@example.test"}, "url": slackSecretURL}, "url"},
		{"slack without url", map[string]any{"kind": "slack"}, "url"},
		{"slack over http", map[string]any{"kind": "slack", "url": "http://hooks.slack.test/x"}, "url"},
		{"teams with recipients", map[string]any{"kind": "teams", "url": slackSecretURL, "recipients": []string{"a@example.test"}}, "recipients"},
		{"unknown alert kind", map[string]any{"kind": "slack", "url": slackSecretURL, "alertKinds": []string{"battery.low", "sunset"}}, "alertKinds[1]"},
		{"bad quiet start", map[string]any{"kind": "slack", "url": slackSecretURL,
			"quietHours": map[string]string{"start": "25:00", "end": "07:00", "timeZone": "UTC"}}, "quietHours.start"},
		{"bad time zone", map[string]any{"kind": "slack", "url": slackSecretURL,
			"quietHours": map[string]string{"start": "22:00", "end": "07:00", "timeZone": "Mars/Olympus"}}, "quietHours.timeZone"},
		{"unknown field", map[string]any{"kind": "slack", "url": slackSecretURL, "secret": "x"}, "body"},
	} {
		r := e.do(t, owner, http.MethodPost, "/api/v1/channels", tc.body)
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"field":"`+tc.field+`"`) {
			t.Errorf("%s: %d %s; want 400 naming %s", tc.name, r.status, r.body, tc.field)
		}
		o.check(t, http.MethodPost, "/api/v1/channels", r)
		replies = append(replies, string(r.body))
	}

	r := e.do(t, owner, http.MethodPost, "/api/v1/channels", map[string]any{"name": "Ops mail", "kind": "email",
		"recipients": []string{"ops@example.test"}, "alertKinds": []string{"battery.exhaustion", "geofence.breach"},
		"quietHours": map[string]string{"start": "22:00", "end": "07:00", "timeZone": "Europe/Berlin"}})
	if r.status != http.StatusCreated {
		t.Fatalf("create email channel: %d %s", r.status, r.body)
	}
	o.check(t, http.MethodPost, "/api/v1/channels", r)
	mail := decode[channelView](t, r)
	if mail.ID == "" || r.header.Get("Location") != "/api/v1/channels/"+mail.ID || mail.QuietHours == nil ||
		mail.QuietHours.TimeZone != "Europe/Berlin" || len(mail.AlertKinds) != 2 {
		t.Errorf("created %+v at %q", mail, r.header.Get("Location"))
	}
	r = e.do(t, owner, http.MethodPost, "/api/v1/channels", map[string]any{"name": "Ops chat", "kind": "slack", "url": slackSecretURL})
	if r.status != http.StatusCreated {
		t.Fatalf("create slack channel: %d %s", r.status, r.body)
	}
	o.check(t, http.MethodPost, "/api/v1/channels", r)
	replies = append(replies, string(r.body))
	slack := decode[channelView](t, r)
	if !slack.URLSet || slack.URLHost != "hooks.slack.test" {
		t.Errorf("slack channel %+v; want urlSet and the host", slack)
	}

	// PUT without url keeps it; the kind cannot change.
	r = e.do(t, owner, http.MethodPut, "/api/v1/channels/"+slack.ID, map[string]any{"name": "Night chat", "kind": "slack",
		"droneIds": []string{"d1"}})
	o.check(t, http.MethodPut, "/api/v1/channels/{id}", r)
	replies = append(replies, string(r.body))
	if got := decode[channelView](t, r); r.status != http.StatusOK || got.Name != "Night chat" || !got.URLSet || !got.CreatedAt.Equal(slack.CreatedAt) {
		t.Errorf("PUT: %d %s", r.status, r.body)
	}
	stored, err := e.st.Channel(context.Background(), tenant, slack.ID)
	if err != nil || stored.URL != slackSecretURL || len(stored.DroneIDs) != 1 {
		t.Errorf("stored after PUT %+v, %v; want the URL kept and the drone filter", stored, err)
	}
	r = e.do(t, owner, http.MethodPut, "/api/v1/channels/"+slack.ID, map[string]any{"kind": "teams"})
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"field":"kind"`) {
		t.Errorf("PUT changing the kind: %d %s; want 400 naming kind", r.status, r.body)
	}

	// The delivery status and log the alerts function writes show here.
	at := t0
	if err := e.st.AddChannelDelivery(context.Background(), store.Delivery{ID: "dl1", TenantID: tenant, ChannelID: slack.ID,
		EventID: "a1/raised", EventType: events.TypeAlertRaised, Attempt: 1, At: at, StatusCode: 500,
		Error: "hooks.slack.test answered 500"}); err != nil {
		t.Fatal(err)
	}
	r = e.do(t, owner, http.MethodGet, "/api/v1/channels", nil)
	o.check(t, http.MethodGet, "/api/v1/channels", r)
	replies = append(replies, string(r.body))
	list := decode[struct{ Channels []channelView }](t, r)
	if len(list.Channels) != 2 {
		t.Fatalf("list: %s", r.body)
	}
	for _, c := range list.Channels {
		if c.ID == slack.ID && (c.Status.LastErrorAt == nil || !c.Status.LastErrorAt.Equal(at) || c.Status.LastError == "") {
			t.Errorf("slack status %+v; want the failed attempt", c.Status)
		}
	}
	r = e.do(t, owner, http.MethodGet, "/api/v1/channels/"+slack.ID, nil)
	o.check(t, http.MethodGet, "/api/v1/channels/{id}", r)
	replies = append(replies, string(r.body))
	r = e.do(t, owner, http.MethodGet, "/api/v1/channels/"+slack.ID+"/deliveries", nil)
	o.check(t, http.MethodGet, "/api/v1/channels/{id}/deliveries", r)
	if ds := decode[struct{ Deliveries []store.Delivery }](t, r); len(ds.Deliveries) != 1 || ds.Deliveries[0].ChannelID != slack.ID {
		t.Errorf("deliveries: %s", r.body)
	}

	// Viewers neither read nor change channels.
	for _, w := range []struct {
		method, route, path string
		body                any
	}{
		{"GET", "/api/v1/channels", "/api/v1/channels", nil},
		{"GET", "/api/v1/channels/{id}", "/api/v1/channels/" + slack.ID, nil},
		{"GET", "/api/v1/channels/{id}/deliveries", "/api/v1/channels/" + slack.ID + "/deliveries", nil},
		{"POST", "/api/v1/channels", "/api/v1/channels", map[string]any{"kind": "email", "recipients": []string{"v@example.test"}}},
		{"PUT", "/api/v1/channels/{id}", "/api/v1/channels/" + slack.ID, map[string]any{"kind": "slack"}},
		{"DELETE", "/api/v1/channels/{id}", "/api/v1/channels/" + slack.ID, nil},
	} {
		r := e.do(t, viewer, w.method, w.path, w.body)
		if r.status != http.StatusForbidden || strings.Contains(string(r.body), "ops@example.test") {
			t.Errorf("viewer %s %s = %d %s; want 403", w.method, w.path, r.status, r.body)
		}
		o.check(t, w.method, w.route, r)
	}

	r = e.do(t, owner, http.MethodDelete, "/api/v1/channels/"+mail.ID, nil)
	o.check(t, http.MethodDelete, "/api/v1/channels/{id}", r)
	if r.status != http.StatusNoContent {
		t.Errorf("delete: %d %s", r.status, r.body)
	}
	if r := e.do(t, owner, http.MethodGet, "/api/v1/channels/"+mail.ID, nil); r.status != http.StatusNotFound {
		t.Errorf("get after delete: %d", r.status)
	}

	for _, body := range append(replies, e.logs.String()) {
		if strings.Contains(body, "Chat-Secret-Token") {
			t.Errorf("the chat URL's secret shows: %.500s", body)
		}
	}
}
