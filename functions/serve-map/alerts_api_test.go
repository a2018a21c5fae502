package function

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/alerting"
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
