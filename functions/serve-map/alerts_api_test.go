package function

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/flights"
	"github.com/dronetrack/dronetrack/events"
)

// TestGeofenceWebhookSettingsWrites runs the write side of the alert API
// for one tenant: field-named 400s, create/replace/delete of fences,
// settings round trip, webhook secrets shown once.
func TestGeofenceWebhookSettingsWrites(t *testing.T) {
	e := newAuthEnv(t, "local://"+uniq("al"), nil)
	a := signUp(t, e, "Alpha Org", "ann@alpha.test", pwA)

	for _, tc := range []struct {
		name  string
		body  any
		field string
	}{
		{"unknown field", map[string]any{"name": "x", "mode": "keep-in", "color": "red"}, "body"},
		{"bad mode", map[string]any{"name": "x", "mode": "inside", "center": map[string]float64{"lat": 0, "lon": 0}, "radiusM": 5}, "mode"},
		{"lon out of range", map[string]any{"name": "x", "mode": "keep-in",
			"polygon": []map[string]float64{{"lat": 0, "lon": 0}, {"lat": 0, "lon": 200}, {"lat": 1, "lon": 1}}}, "polygon[1].lon"},
		{"no shape", map[string]any{"name": "x", "mode": "keep-out"}, "polygon"},
	} {
		r := e.do(t, a, http.MethodPost, "/api/v1/geofences", tc.body)
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"field":"`+tc.field+`"`) {
			t.Errorf("%s: %d %s; want 400 naming %s", tc.name, r.status, r.body, tc.field)
		}
	}

	r := e.do(t, a, http.MethodPost, "/api/v1/geofences", map[string]any{"name": "dateline", "mode": "keep-in",
		"polygon": []map[string]float64{{"lat": -5, "lon": 175}, {"lat": -5, "lon": -175}, {"lat": 5, "lon": -175}, {"lat": 5, "lon": 175}}})
	if r.status != http.StatusCreated {
		t.Fatalf("create fence: %d %s", r.status, r.body)
	}
	f := decode[alerting.Fence](t, r)
	if f.ID == "" || r.header.Get("Location") != "/api/v1/geofences/"+f.ID || !f.Contains(0, 179.5) {
		t.Errorf("created %+v at %q", f, r.header.Get("Location"))
	}
	r = e.do(t, a, http.MethodPut, "/api/v1/geofences/"+f.ID, map[string]any{"name": "pad", "mode": "keep-out",
		"center": map[string]float64{"lat": 47, "lon": 8}, "radiusM": 50})
	g := decode[alerting.Fence](t, r)
	if r.status != http.StatusOK || g.ID != f.ID || g.Name != "pad" || len(g.Polygon) != 0 || !g.CreatedAt.Equal(f.CreatedAt) {
		t.Errorf("replace fence: %d %+v", r.status, g)
	}
	list := decode[struct{ Geofences []alerting.Fence }](t, e.do(t, a, http.MethodGet, "/api/v1/geofences", nil))
	if len(list.Geofences) != 1 || list.Geofences[0].Name != "pad" {
		t.Errorf("list = %+v", list)
	}
	if r := e.do(t, a, http.MethodDelete, "/api/v1/geofences/"+f.ID, nil); r.status != http.StatusNoContent {
		t.Errorf("delete: %d %s", r.status, r.body)
	}
	if r := e.do(t, a, http.MethodDelete, "/api/v1/geofences/"+f.ID, nil); r.status != http.StatusNotFound {
		t.Errorf("delete again: %d", r.status)
	}

	want := alerting.Settings{LowBatteryPct: 30, HysteresisPct: 3, MinTimeToEmptySecs: 600, LostLinkSecs: 45}
	if r := e.do(t, a, http.MethodPut, "/api/v1/alert-settings", want); r.status != http.StatusOK {
		t.Fatalf("put settings: %d %s", r.status, r.body)
	}
	got := decode[alerting.Settings](t, e.do(t, a, http.MethodGet, "/api/v1/alert-settings", nil))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("settings (-want +got):\n%s", diff)
	}
	if r := e.do(t, a, http.MethodPut, "/api/v1/alert-settings", alerting.Settings{LowBatteryPct: 120}); r.status != 400 ||
		!strings.Contains(string(r.body), "lowBatteryPct") {
		t.Errorf("bad settings: %d %s", r.status, r.body)
	}

	for _, bad := range []string{"ftp://x.test/", "/relative", "https://user:pw@x.test/"} {
		if r := e.do(t, a, http.MethodPost, "/api/v1/webhooks", map[string]string{"url": bad}); r.status != 400 {
			t.Errorf("webhook %q: %d", bad, r.status)
		}
	}
	r = e.do(t, a, http.MethodPost, "/api/v1/webhooks", map[string]string{"url": "https://hooks.example.test/x"})
	hook := decode[webhookView](t, r)
	if r.status != http.StatusCreated || len(hook.Secret) < 32 {
		t.Fatalf("create webhook: %d %s", r.status, r.body)
	}
	hooks := e.do(t, a, http.MethodGet, "/api/v1/webhooks", nil)
	if strings.Contains(string(hooks.body), hook.Secret) || !strings.Contains(string(hooks.body), hook.ID) {
		t.Errorf("webhook list %s: want the id without the secret", hooks.body)
	}
	if r := e.do(t, a, http.MethodGet, "/api/v1/webhooks/"+hook.ID+"/deliveries", nil); r.status != 200 ||
		strings.TrimSpace(string(r.body)) != `{"deliveries":[]}` {
		t.Errorf("deliveries: %d %s", r.status, r.body)
	}
	if r := e.do(t, a, http.MethodDelete, "/api/v1/webhooks/"+hook.ID, nil); r.status != http.StatusNoContent {
		t.Errorf("delete webhook: %d", r.status)
	}
}

// TestAlertWritesNeedManager: viewers read the alerting setup (but not
// webhooks) and acknowledge alerts, but every change to it (settings,
// geofences, webhooks) is 403 for them, documented as such, and leaves it unchanged;
// an admin (not only the owner) makes the same changes.
func TestAlertWritesNeedManager(t *testing.T) {
	e := newAuthEnv(t, "local://"+uniq("role"), nil)
	o := newOpenAPIReplies(t)
	owner := signUp(t, e, "Alpha Org", "ann@alpha.test", pwA)
	join := func(role, email string) *browser {
		t.Helper()
		inv := decode[struct{ Token string }](t, e.do(t, owner, http.MethodPost, "/api/v1/invites", map[string]string{"role": role}))
		return login(t, e.do(t, nil, http.MethodPost, "/api/v1/invites/"+inv.Token+"/accept",
			map[string]string{"email": email, "password": pwB}))
	}
	admin, viewer := join("admin", "ada@alpha.test"), join("viewer", "vic@alpha.test")
	tenant := decode[struct{ User userJSON }](t, e.do(t, owner, http.MethodGet, "/api/v1/me", nil)).User.TenantID

	fenceBody := map[string]any{"name": "yard", "mode": "keep-out", "center": map[string]float64{"lat": 47, "lon": 8}, "radiusM": 50}
	r := e.do(t, admin, http.MethodPost, "/api/v1/geofences", fenceBody)
	o.check(t, http.MethodPost, "/api/v1/geofences", r)
	fence := decode[alerting.Fence](t, r)
	r = e.do(t, admin, http.MethodPost, "/api/v1/webhooks", map[string]string{"url": "https://hooks.example.test/a"})
	o.check(t, http.MethodPost, "/api/v1/webhooks", r)
	hook := decode[webhookView](t, r)
	if fence.ID == "" || hook.ID == "" {
		t.Fatalf("admin could not create a fence (%+v) or a webhook (%+v)", fence, hook)
	}
	settings := alerting.Settings{LowBatteryPct: 25, HysteresisPct: 5, LostLinkSecs: 60}
	if r := e.do(t, admin, http.MethodPut, "/api/v1/alert-settings", settings); r.status != http.StatusOK {
		t.Fatalf("admin PUT alert-settings: %d %s", r.status, r.body)
	}

	writes := []struct {
		method, route, path string
		body                any
		manager             int // the admin's status, after the viewer's 403
	}{
		{"PUT", "/api/v1/alert-settings", "/api/v1/alert-settings", alerting.Settings{LowBatteryPct: 50, LostLinkSecs: 10}, 200},
		{"POST", "/api/v1/geofences", "/api/v1/geofences", fenceBody, 201},
		{"PUT", "/api/v1/geofences/{id}", "/api/v1/geofences/" + fence.ID, fenceBody, 200},
		{"DELETE", "/api/v1/geofences/{id}", "/api/v1/geofences/" + fence.ID, nil, 204},
		{"POST", "/api/v1/webhooks", "/api/v1/webhooks", map[string]string{"url": "https://evil.example.test/"}, 201},
		{"DELETE", "/api/v1/webhooks/{id}", "/api/v1/webhooks/" + hook.ID, nil, 204},
		{"PUT", "/api/v1/flight-settings", "/api/v1/flight-settings", flights.Settings{MinSpeed: 1, MinHeight: 2, StartSecs: 5, StopSecs: 20, MaxGapSecs: 120}, 200},
	}
	for _, w := range writes {
		r := e.do(t, viewer, w.method, w.path, w.body)
		if r.status != http.StatusForbidden {
			t.Errorf("viewer %s %s = %d %s; want 403", w.method, w.path, r.status, r.body)
		}
		o.check(t, w.method, w.route, r)
	}
	// Nothing changed.
	if got := decode[alerting.Settings](t, e.do(t, viewer, http.MethodGet, "/api/v1/alert-settings", nil)); got != settings {
		t.Errorf("settings after the viewer's PUT = %+v; want %+v", got, settings)
	}
	if fences := decode[struct{ Geofences []alerting.Fence }](t, e.do(t, viewer, http.MethodGet, "/api/v1/geofences", nil)); len(fences.Geofences) != 1 {
		t.Errorf("fences after the viewer's writes = %+v; want the admin's one", fences)
	}
	if hooks := decode[struct{ Webhooks []webhookView }](t, e.do(t, admin, http.MethodGet, "/api/v1/webhooks", nil)); len(hooks.Webhooks) != 1 {
		t.Errorf("webhooks after the viewer's writes = %+v; want the admin's one", hooks)
	}
	// Webhook URLs may carry the receiver's credential: viewers cannot read them.
	for _, rd := range [][2]string{{"/api/v1/webhooks", "/api/v1/webhooks"}, {"/api/v1/webhooks/{id}/deliveries", "/api/v1/webhooks/" + hook.ID + "/deliveries"}} {
		r := e.do(t, viewer, http.MethodGet, rd[1], nil)
		if r.status != http.StatusForbidden || strings.Contains(string(r.body), "hooks.example.test") {
			t.Errorf("viewer GET %s = %d %s; want 403 without the URL", rd[1], r.status, r.body)
		}
		o.check(t, http.MethodGet, rd[0], r)
		if r := e.do(t, admin, http.MethodGet, rd[1], nil); r.status != http.StatusOK {
			t.Errorf("admin GET %s = %d", rd[1], r.status)
		}
	}

	// The viewer acknowledges an alert.
	low := events.DroneState{TS: t0, Lat: 47, Lon: 8, UpdatedAt: t0, Battery: new(3.0)}
	tr, err := e.st.EvaluateAlerts(context.Background(), tenant, "d1", func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool) {
		return alerting.EvaluateState(prev, low, alerting.DefaultSettings(), nil, t0)
	})
	if err != nil || len(tr.Open) != 1 {
		t.Fatalf("seed an alert: %+v, %v", tr, err)
	}
	r = e.do(t, viewer, http.MethodPost, "/api/v1/alerts/"+tr.Open[alerting.KindBatteryLow].ID+"/ack", nil)
	if a := decode[alerting.Alert](t, r); r.status != http.StatusOK || a.AcknowledgedBy != "vic@alpha.test" {
		t.Errorf("viewer ack: %d %s; want 200 acknowledged by vic@alpha.test", r.status, r.body)
	}
	o.check(t, http.MethodPost, "/api/v1/alerts/{id}/ack", r)

	for _, w := range writes {
		r := e.do(t, admin, w.method, w.path, w.body)
		if r.status != w.manager {
			t.Errorf("admin %s %s = %d %s; want %d", w.method, w.path, r.status, r.body, w.manager)
		}
		o.check(t, w.method, w.route, r)
	}
}
