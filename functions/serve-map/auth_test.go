package function

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/cache"
	"github.com/dronetrack/dronetrack/core/flights"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/core/tracklink"
	"github.com/dronetrack/dronetrack/events"
)

// authEnv is serve-map over a store with two tenants and no session
// magic: every request carries exactly the cookies and headers it names.
type authEnv struct {
	url, cacheURL string
	st            *countingStore
	logs          *testenv.LogBuffer
	f             *Function
}

func newAuthEnv(t *testing.T, cacheURL string, cfg map[string]string) *authEnv {
	t.Helper()
	e := &authEnv{cacheURL: cacheURL, st: newTestStore(t), logs: &testenv.LogBuffer{}}
	all := map[string]string{"CACHE_URL": cacheURL, "LOG_LEVEL": "debug", "ARGON2_MEMORY_KIB": "64",
		"FLEET_LIST_MAX_AGE": "0", "SSE_HEARTBEAT": "20ms", "DRONE_KEY_PEPPER": "test-pepper-0123456789"}
	for k, v := range cfg {
		all[k] = v
	}
	f := New()
	f.logOut = e.logs
	if err := f.start(context.Background(), all, e.st); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(f.Handle))
	t.Cleanup(func() { srv.Close(); f.Stop(context.Background()) })
	e.url, e.f = srv.URL, f
	return e
}

// browser is a cookie-carrying client of one user.
type browser struct {
	session *http.Cookie
	csrf    string
}

func (e *authEnv) do(t *testing.T, b *browser, method, path string, body any, hdr ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if b != nil {
		if b.session != nil {
			req.AddCookie(b.session)
		}
		if b.csrf != "" && method != http.MethodGet {
			req.Header.Set(CSRFHeader, b.csrf)
		}
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return send(t, req)
}

// login turns a sign-up / log-in reply into a browser.
func login(t *testing.T, r reply) *browser {
	t.Helper()
	if r.status != http.StatusOK && r.status != http.StatusCreated {
		t.Fatalf("log-in: %d %s", r.status, r.body)
	}
	b := &browser{}
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		switch c.Name {
		case sessionCookieLoopback:
			b.session = c
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
				t.Errorf("session cookie %+v: want HttpOnly, SameSite=Lax, Path=/", c)
			}
		case csrfCookieLoopback:
			b.csrf = c.Value
		}
	}
	if b.session == nil || b.csrf == "" {
		t.Fatalf("log-in set no session/CSRF cookies: %v", r.header["Set-Cookie"])
	}
	return b
}

const (
	pwA = "alpha-secret-password-1"
	pwB = "bravo-secret-password-2"
)

func signUp(t *testing.T, e *authEnv, org, email, pw string) *browser {
	t.Helper()
	return login(t, e.do(t, nil, http.MethodPost, "/api/v1/auth/signup",
		map[string]string{"organisation": org, "email": email, "password": pw}))
}

type droneKeyReply struct {
	Drone struct{ ID, Name string } `json:"drone"`
	Key   string                    `json:"key"`
}

// TestTenantIsolation signs up tenants A and B, gives A drones with state,
// history and keys, then tries every API route (and the stream) with B's
// session on A's ids: each answer is 404/403 (or B's own, A-free data),
// and A's fleet is unchanged afterwards. Every routed endpoint must be in
// the table, so a new route cannot skip this test.
func TestTenantIsolation(t *testing.T) {
	modes(t, func(t *testing.T, cacheURL string) {
		ridAuth, ridCfg := newRIDAuthority(t)
		e := newAuthEnv(t, cacheURL, ridCfg)
		ctx := context.Background()
		a := signUp(t, e, "Alpha Org", "ann@alpha.test", pwA)
		b := signUp(t, e, "Bravo Org", "bob@bravo.test", pwB)

		var aDrones []droneKeyReply
		for _, name := range []string{"Alpha-Secret-One", "Alpha-Secret-Two"} {
			r := e.do(t, a, http.MethodPost, "/api/v1/drones", map[string]string{"name": name})
			if r.status != http.StatusCreated {
				t.Fatalf("add drone: %d %s", r.status, r.body)
			}
			aDrones = append(aDrones, decode[droneKeyReply](t, r))
		}
		aID := aDrones[0].Drone.ID
		me := decode[struct{ User userJSON }](t, e.do(t, a, http.MethodGet, "/api/v1/me", nil))
		aTenant := me.User.TenantID
		bTenant := decode[struct{ User userJSON }](t, e.do(t, b, http.MethodGet, "/api/v1/me", nil)).User.TenantID
		st := events.DroneState{TS: t0, Lat: 47.123456, Lon: 8.654321, UpdatedAt: t0}
		if _, _, err := e.st.UpdateState(ctx, aTenant, aID, func(*events.DroneState) (events.DroneState, bool) { return st, true }); err != nil {
			t.Fatal(err)
		}
		if err := e.st.AppendTrack(ctx, []store.TrackPoint{{TenantID: aTenant, DroneID: aID,
			Report: events.Report{TS: t0, Lat: 47.123456, Lon: 8.654321}}}); err != nil {
			t.Fatal(err)
		}
		c, err := cache.Open(ctx, cacheURL, cache.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Put(ctx, aTenant, aID, st); err != nil {
			t.Fatal(err)
		}
		before, err := e.st.Drones(ctx, aTenant)
		if err != nil {
			t.Fatal(err)
		}
		// A's tracking link (links.go): B reaches it through no route of B's.
		aLink := decode[linkCreated](t, e.do(t, a, http.MethodPost, "/api/v1/drones/"+aID+"/links",
			map[string]any{"destination": map[string]any{"lat": 1, "lon": 2, "label": "Alpha-Secret-Door"}}))
		guess, _, _ := tracklink.NewToken()
		// Whatever B receives must not mention any of these.
		secrets := []string{aTenant, aID, aDrones[1].Drone.ID, "Alpha-Secret", "ann@alpha.test", "47.123456",
			aDrones[0].Key, aDrones[1].Key, aLink.Token}

		// B's stream is open while A's drone changes.
		bStream := openStream(t, e.url+"/api/v1/stream", "Cookie", b.session.String())

		// A's geofence, webhook and alert (alerts_api.go).
		aFence := alerting.Fence{ID: "gf_alpha", TenantID: aTenant, Name: "Alpha-Secret-Yard", Mode: alerting.ModeKeepIn,
			Polygon: []alerting.Point{{Lat: 1, Lon: 1}, {Lat: 1, Lon: 2}, {Lat: 2, Lon: 2}}}
		if err := e.st.CreateGeofence(ctx, aFence); err != nil {
			t.Fatal(err)
		}
		if err := e.st.CreateWebhook(ctx, store.Webhook{ID: "wh_alpha", TenantID: aTenant,
			URL: "https://alpha.test/Alpha-Secret-hook", Secret: "Alpha-Secret-key"}); err != nil {
			t.Fatal(err)
		}
		if err := e.st.CreateChannel(ctx, store.Channel{ID: "ch_alpha", TenantID: aTenant, Name: "Alpha-Secret-chat",
			Kind: "slack", URL: "https://alpha.test/Alpha-Secret-chat-url"}); err != nil {
			t.Fatal(err)
		}
		low := st
		low.Battery = new(3.0)
		tr, err := e.st.EvaluateAlerts(ctx, aTenant, aID, func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool) {
			return alerting.EvaluateState(prev, low, alerting.DefaultSettings(), nil, t0)
		})
		if err != nil || len(tr.Open) != 1 {
			t.Fatalf("seed A's alert: %+v, %v", tr, err)
		}
		aAlert := tr.Open[alerting.KindBatteryLow].ID
		// A's flight (flights_api.go).
		_, aFlight := seedFlight(t, e.st, aTenant, aID, t0.Add(-time.Hour))
		secrets = append(secrets, aFlight.ID)
		fenceBody := map[string]any{"name": "Bravo yard", "mode": "keep-out",
			"center": map[string]float64{"lat": 1, "lon": 1}, "radiusM": 100}

		type row struct {
			method, route, path string
			body                any
			want                []int // any of these
		}
		drone := "/api/v1/drones/" + aID
		rows := []row{
			{"GET", "/api/v1/drones", "/api/v1/drones", nil, []int{200}},
			{"GET", "/api/v1/drones", "/api/v1/drones?bbox=-180,-90,180,90", nil, []int{200}},
			{"GET", "/api/v1/drones/{id}", drone, nil, []int{404}},
			{"GET", "/api/v1/drones/{id}/track", drone + "/track", nil, []int{404}},
			{"GET", "/api/v1/drones/{id}/track", drone + "/track?from=2000-01-01T00:00:00Z", nil, []int{404}},
			{"GET", "/api/v1/alerts", "/api/v1/alerts", nil, []int{200}},
			{"GET", "/api/v1/me", "/api/v1/me", nil, []int{200}},
			{"PATCH", "/api/v1/drones/{id}", drone, map[string]string{"name": "pwned"}, []int{404}},
			{"DELETE", "/api/v1/drones/{id}", drone, nil, []int{404}},
			{"POST", "/api/v1/drones/{id}/key", drone + "/key", nil, []int{404}},
			{"DELETE", "/api/v1/drones/{id}/key", drone + "/key", nil, []int{404}},
			{"POST", "/api/v1/drones", "/api/v1/drones", map[string]string{"name": "Bravo drone"}, []int{201}},
			{"POST", "/api/v1/invites", "/api/v1/invites", map[string]string{"role": "viewer"}, []int{201}},
			{"POST", "/api/v1/me/password", "/api/v1/me/password", map[string]string{"current": "wrong-password-x", "password": "whatever-long-1"}, []int{400}},
			// Public routes: nothing of A's to reach, checked for leaks anyway.
			{"POST", "/api/v1/auth/login", "/api/v1/auth/login", map[string]string{"email": "ann@alpha.test", "password": "wrong-password-x"}, []int{401}},
			{"POST", "/api/v1/auth/signup", "/api/v1/auth/signup", map[string]string{"organisation": "x", "email": "ann@alpha.test", "password": pwB}, []int{409}},
			{"POST", "/api/v1/invites/{token}/accept", "/api/v1/invites/" + aID + "/accept", map[string]string{"email": "new@bravo.test", "password": pwB}, []int{404}},
			{"POST", "/api/v1/alerts/{id}/ack", "/api/v1/alerts/" + aAlert + "/ack", nil, []int{404}},
			{"GET", "/api/v1/alert-settings", "/api/v1/alert-settings", nil, []int{200}},
			{"PUT", "/api/v1/alert-settings", "/api/v1/alert-settings", alerting.Settings{LowBatteryPct: 50, LostLinkSecs: 10}, []int{200}},
			{"GET", "/api/v1/geofences", "/api/v1/geofences", nil, []int{200}},
			{"POST", "/api/v1/geofences", "/api/v1/geofences", fenceBody, []int{201}},
			{"GET", "/api/v1/geofences/{id}", "/api/v1/geofences/gf_alpha", nil, []int{404}},
			{"PUT", "/api/v1/geofences/{id}", "/api/v1/geofences/gf_alpha", fenceBody, []int{404}},
			{"DELETE", "/api/v1/geofences/{id}", "/api/v1/geofences/gf_alpha", nil, []int{404}},
			{"GET", "/api/v1/webhooks", "/api/v1/webhooks", nil, []int{200}},
			{"POST", "/api/v1/webhooks", "/api/v1/webhooks", map[string]string{"url": "https://bravo.test/hook"}, []int{201}},
			{"DELETE", "/api/v1/webhooks/{id}", "/api/v1/webhooks/wh_alpha", nil, []int{404}},
			{"GET", "/api/v1/webhooks/{id}/deliveries", "/api/v1/webhooks/wh_alpha/deliveries", nil, []int{404}},
			{"GET", "/api/v1/drones/{id}/links", drone + "/links", nil, []int{404}},
			{"POST", "/api/v1/drones/{id}/links", drone + "/links", map[string]any{}, []int{404}},
			{"DELETE", "/api/v1/drones/{id}/links/{linkId}", drone + "/links/" + aLink.Link.ID, nil, []int{404}},
			{"GET", "/t/{token}", "/t/" + guess, nil, []int{404}},
			{"GET", "/api/v1/t/{token}", "/api/v1/t/" + guess, nil, []int{404}},
			{"GET", "/api/v1/t/{token}/stream", "/api/v1/t/" + guess + "/stream", nil, []int{404}},
			{"GET", "/api/v1/channels", "/api/v1/channels", nil, []int{200}},
			{"POST", "/api/v1/channels", "/api/v1/channels", map[string]any{"kind": "email", "recipients": []string{"bob@bravo.test"}}, []int{201}},
			{"GET", "/api/v1/channels/{id}", "/api/v1/channels/ch_alpha", nil, []int{404}},
			{"PUT", "/api/v1/channels/{id}", "/api/v1/channels/ch_alpha", map[string]any{"kind": "slack", "url": "https://bravo.test/x"}, []int{404}},
			{"GET", "/api/v1/channels/{id}/deliveries", "/api/v1/channels/ch_alpha/deliveries", nil, []int{404}},
			{"DELETE", "/api/v1/channels/{id}", "/api/v1/channels/ch_alpha", nil, []int{404}},
			// Remote ID (rid_api.go): B's own switch; A's drone identity is 404.
			{"GET", "/api/v1/remote-id", "/api/v1/remote-id", nil, []int{200}},
			{"PUT", "/api/v1/remote-id", "/api/v1/remote-id", map[string]bool{"enabled": true}, []int{200}},
			{"GET", "/api/v1/drones/{id}/remote-id", drone + "/remote-id", nil, []int{404}},
			{"PUT", "/api/v1/drones/{id}/remote-id", drone + "/remote-id", map[string]string{"operatorId": "pwned"}, []int{404}},
			// Remote ID SP and injection (rid_sp.go): bearer tokens only, a
			// session opens nothing; A (Remote ID off) is never reported.
			{"GET", "/rid/v2/uss/flights", "/rid/v2/uss/flights?view=47.12,8.65,47.13,8.66", nil, []int{401}},
			{"GET", "/rid/v2/uss/flights/{id}/details", "/rid/v2/uss/flights/" + aID + "/details", nil, []int{401}},
			{"PUT", "/rid/injection/tests/{test_id}", "/rid/injection/tests/t1", map[string]any{"requested_flights": []any{}}, []int{401}},
			{"DELETE", "/rid/injection/tests/{test_id}/{version}", "/rid/injection/tests/t1/v1", nil, []int{401}},
			{"GET", "/api/v1/flights", "/api/v1/flights?from=2026-11-29T01:00:00Z&to=2026-11-29T05:00:00Z", nil, []int{200}},
			{"GET", "/api/v1/drones/{id}/flights", drone + "/flights?from=2000-01-01T00:00:00Z&to=2000-12-01T00:00:00Z", nil, []int{404}},
			{"GET", "/api/v1/drones/{id}/flights", drone + "/flights", nil, []int{404}},
			{"GET", "/api/v1/flights/{id}", "/api/v1/flights/" + aFlight.ID, nil, []int{404}},
			{"GET", "/api/v1/flights/{id}/export", "/api/v1/flights/" + aFlight.ID + "/export?format=gpx", nil, []int{404}},
			{"GET", "/api/v1/flights/{id}/export", "/api/v1/flights/" + aFlight.ID + "/export?format=geojson", nil, []int{404}},
			{"GET", "/api/v1/drones/{id}/export", drone + "/export?format=csv", nil, []int{404}},
			{"GET", "/api/v1/flight-settings", "/api/v1/flight-settings", nil, []int{200}},
			{"PUT", "/api/v1/flight-settings", "/api/v1/flight-settings", flights.Settings{MinSpeed: 9, MinHeight: 9, StartSecs: 9, StopSecs: 9, MaxGapSecs: 99}, []int{200}},
			{"GET", "/api/v1/stream", "", nil, nil},       // below
			{"POST", "/api/v1/auth/logout", "", nil, nil}, // last
		}
		covered := map[string]bool{"GET /": true, "GET /assets/{name}": true, "GET /metrics": true,
			"GET /api/v1/openapi.json": true, "GET /account/{page}": true}
		for _, r := range rows {
			covered[r.method+" "+r.route] = true
		}
		var missing []string
		_ = chi.Walk(e.f.srv.routes(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
			if !covered[method+" "+route] {
				missing = append(missing, method+" "+route)
			}
			return nil
		})
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("routes without a row in the isolation table: %v", missing)
		}

		for _, r := range rows {
			if r.path == "" {
				continue
			}
			got := e.do(t, b, r.method, r.path, r.body)
			ok := false
			for _, w := range r.want {
				ok = ok || got.status == w
			}
			if !ok {
				t.Errorf("B: %s %s = %d %s; want %v", r.method, r.path, got.status, got.body, r.want)
			}
			// The problem's instance echoes the path B itself sent: not a leak.
			body := strings.ReplaceAll(string(got.body), strings.SplitN(r.path, "?", 2)[0], "")
			for _, s := range secrets {
				if strings.Contains(body, s) || strings.Contains(strings.Join(got.header.Values("Set-Cookie"), ";"), s) {
					t.Errorf("B: %s %s leaks %q: %s", r.method, r.path, s, got.body)
				}
			}
		}

		// A display provider (any valid token) does not see A's drone either:
		// A never turned Remote ID on, B did (row above).
		display := ridToken(t, ridAuth, "rid.display_provider")
		for _, u := range []string{"/rid/v2/uss/flights?view=47.12,8.65,47.13,8.66", "/rid/v2/uss/flights/" + aID + "/details"} {
			got := ridDo(t, "GET", e.url+u, display, nil)
			if got.status != 200 && got.status != 404 {
				t.Errorf("display provider %s: %d %s", u, got.status, got.body)
			}
			for _, s := range secrets[1:] {
				if strings.Contains(string(got.body), s) {
					t.Errorf("display provider %s sees A's %q: %s", u, s, got.body)
				}
			}
		}

		// The stream: A's change is not delivered to B; B's own is.
		if _, err := c.Put(ctx, aTenant, aID, events.DroneState{TS: t0.Add(1e9), Lat: 47.123456, Lon: 8.654321, UpdatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		bList := decode[droneList](t, e.do(t, b, http.MethodGet, "/api/v1/drones", nil))
		if len(bList.Drones) != 1 {
			t.Fatalf("B's fleet: %+v", bList)
		}
		if _, err := c.Put(ctx, bTenant, bList.Drones[0].ID, events.DroneState{TS: t0, Lat: 1, Lon: 1, UpdatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		for {
			ev := next(t, bStream)
			for _, s := range secrets {
				if strings.Contains(ev.data, s) {
					t.Fatalf("B's stream leaks %q: %+v", s, ev)
				}
			}
			if strings.Contains(ev.data, bList.Drones[0].ID) {
				break
			}
		}

		// A's link id on B's own drone is no link of B's; A's link lives on.
		if got := e.do(t, b, http.MethodDelete, "/api/v1/drones/"+bList.Drones[0].ID+"/links/"+aLink.Link.ID, nil); got.status != http.StatusNotFound {
			t.Errorf("B revokes A's link through B's drone: %d %s", got.status, got.body)
		}
		if got := e.do(t, nil, http.MethodGet, "/api/v1/t/"+aLink.Token, nil); got.status != http.StatusOK {
			t.Errorf("A's link after B's attempts: %d %s", got.status, got.body)
		}

		// A's fleet is as it was.
		if f, err := e.st.Geofence(ctx, aTenant, "gf_alpha"); err != nil || f.Name != aFence.Name {
			t.Errorf("A's geofence changed: %+v, %v", f, err)
		}
		if a, err := e.st.Alert(ctx, aTenant, aAlert); err != nil || a.AcknowledgedAt != nil {
			t.Errorf("A's alert changed: %+v, %v", a, err)
		}
		if _, err := e.st.Webhook(ctx, aTenant, "wh_alpha"); err != nil {
			t.Errorf("A's webhook: %v", err)
		}
		if ch, err := e.st.Channel(ctx, aTenant, "ch_alpha"); err != nil || ch.URL != "https://alpha.test/Alpha-Secret-chat-url" {
			t.Errorf("A's channel changed: %+v, %v", ch, err)
		}
		if fs, err := e.st.FlightSettings(ctx, aTenant); err != nil || fs != flights.DefaultSettings() {
			t.Errorf("A's flight settings changed: %+v, %v", fs, err)
		}
		if f, err := e.st.Flight(ctx, aTenant, aFlight.ID); err != nil || f.ID != aFlight.ID {
			t.Errorf("A's flight: %+v, %v", f, err)
		}
		after, err := e.st.Drones(ctx, aTenant)
		if err != nil {
			t.Fatal(err)
		}
		for i := range before {
			before[i].State, after[i].State = nil, nil
		}
		if len(before) != len(after) || before[0].Name != after[0].Name || before[0].KeyHash != after[0].KeyHash ||
			before[1].KeyHash != after[1].KeyHash {
			t.Errorf("A's drones changed: before %+v after %+v", before, after)
		}

		// Log out ends B's session.
		if got := e.do(t, b, http.MethodPost, "/api/v1/auth/logout", nil); got.status != http.StatusNoContent {
			t.Errorf("logout: %d %s", got.status, got.body)
		}
		if got := e.do(t, b, http.MethodGet, "/api/v1/me", nil); got.status != http.StatusUnauthorized {
			t.Errorf("after logout: %d", got.status)
		}

		// Nothing secret was logged through all of it.
		logs := e.logs.String()
		for _, s := range []string{pwA, pwB, aDrones[0].Key, aDrones[1].Key, a.session.Value, b.session.Value, a.csrf} {
			if strings.Contains(logs, s) {
				t.Errorf("a secret %.8s... appears in the logs", s)
			}
		}
		if !strings.Contains(logs, "drone added") {
			t.Errorf("logs were not captured: %.300s", logs)
		}
	})
}

// TestAuthGuards: no session is 401 everywhere; state changes without the
// CSRF token, with a wrong one, or from another origin are 403; viewers
// cannot manage; log-in errors are uniform and rate limited (429 +
// Retry-After).
func TestAuthGuards(t *testing.T) {
	e := newAuthEnv(t, "local://"+uniq("auth"), nil)
	a := signUp(t, e, "Alpha Org", "ann@alpha.test", pwA)
	nk := decode[droneKeyReply](t, e.do(t, a, http.MethodPost, "/api/v1/drones", map[string]string{"name": "One"}))
	drone := "/api/v1/drones/" + nk.Drone.ID

	for _, r := range []struct{ method, path string }{
		{"GET", "/api/v1/drones"}, {"GET", drone}, {"GET", drone + "/track"}, {"GET", "/api/v1/alerts"},
		{"GET", "/api/v1/stream"}, {"GET", "/api/v1/me"}, {"POST", "/api/v1/me/password"}, {"POST", "/api/v1/invites"},
		{"POST", "/api/v1/drones"}, {"PATCH", drone}, {"DELETE", drone}, {"POST", drone + "/key"},
		{"DELETE", drone + "/key"}, {"POST", "/api/v1/auth/logout"},
	} {
		if got := e.do(t, nil, r.method, r.path, map[string]string{}); got.status != http.StatusUnauthorized {
			t.Errorf("no session: %s %s = %d; want 401", r.method, r.path, got.status)
		}
		forged := &browser{session: &http.Cookie{Name: sessionCookieLoopback, Value: "forged-token"}}
		if got := e.do(t, forged, r.method, r.path, map[string]string{}); got.status != http.StatusUnauthorized {
			t.Errorf("unknown session: %s %s = %d; want 401", r.method, r.path, got.status)
		}
	}

	rename := map[string]string{"name": "Renamed"}
	for name, tc := range map[string]struct {
		b   *browser
		hdr []string
	}{
		"no token":          {&browser{session: a.session}, nil},
		"wrong token":       {&browser{session: a.session, csrf: "wrong"}, nil},
		"cross origin":      {a, []string{"Origin", "https://evil.example"}},
		"cross site fetch":  {a, []string{"Sec-Fetch-Site", "cross-site"}},
		"same site sibling": {a, []string{"Sec-Fetch-Site", "same-site"}},
	} {
		if got := e.do(t, tc.b, http.MethodPatch, drone, rename, tc.hdr...); got.status != http.StatusForbidden {
			t.Errorf("%s: PATCH = %d %s; want 403", name, got.status, got.body)
		}
		if got := e.do(t, tc.b, http.MethodPost, "/api/v1/drones", rename, tc.hdr...); got.status != http.StatusForbidden {
			t.Errorf("%s: POST = %d %s; want 403", name, got.status, got.body)
		}
	}
	if got := e.do(t, nil, http.MethodPost, "/api/v1/auth/login", map[string]string{"email": "ann@alpha.test", "password": pwA},
		"Origin", "https://evil.example"); got.status != http.StatusForbidden {
		t.Errorf("cross-origin log-in = %d; want 403", got.status)
	}
	if got := e.do(t, a, http.MethodPatch, drone, rename, "Origin", e.url, "Sec-Fetch-Site", "same-origin"); got.status != http.StatusOK {
		t.Errorf("same-origin PATCH with token = %d %s", got.status, got.body)
	}

	// Viewers read but do not manage.
	inv := decode[struct{ Token string }](t, e.do(t, a, http.MethodPost, "/api/v1/invites", map[string]string{"role": "viewer"}))
	v := login(t, e.do(t, nil, http.MethodPost, "/api/v1/invites/"+inv.Token+"/accept",
		map[string]string{"email": "vic@alpha.test", "password": pwB}))
	if got := e.do(t, nil, http.MethodPost, "/api/v1/invites/"+inv.Token+"/accept",
		map[string]string{"email": "eve@alpha.test", "password": pwB}); got.status != http.StatusNotFound {
		t.Errorf("second use of an invite = %d; want 404", got.status)
	}
	if got := e.do(t, v, http.MethodGet, drone, nil); got.status != http.StatusOK {
		t.Errorf("viewer GET drone = %d", got.status)
	}
	for _, r := range []struct{ method, path string }{{"POST", "/api/v1/drones"}, {"PATCH", drone}, {"DELETE", drone},
		{"POST", drone + "/key"}, {"DELETE", drone + "/key"}, {"POST", "/api/v1/invites"}} {
		if got := e.do(t, v, r.method, r.path, map[string]string{"name": "x", "role": "viewer"}); got.status != http.StatusForbidden {
			t.Errorf("viewer %s %s = %d; want 403", r.method, r.path, got.status)
		}
	}

	// Password change: the old session ends, the new password works.
	pc := e.do(t, a, http.MethodPost, "/api/v1/me/password", map[string]string{"current": pwA, "password": "a-brand-new-password"})
	a2 := login(t, pc)
	if got := e.do(t, a, http.MethodGet, "/api/v1/me", nil); got.status != http.StatusUnauthorized {
		t.Errorf("old session after password change = %d; want 401", got.status)
	}
	if got := e.do(t, a2, http.MethodGet, "/api/v1/me", nil); got.status != http.StatusOK {
		t.Errorf("new session = %d", got.status)
	}
	// Uniform log-in errors.
	unknown := e.do(t, nil, http.MethodPost, "/api/v1/auth/login", map[string]string{"email": "nobody@alpha.test", "password": pwA})
	wrong := e.do(t, nil, http.MethodPost, "/api/v1/auth/login", map[string]string{"email": "ann@alpha.test", "password": "wrong-password-x"})
	if unknown.status != http.StatusUnauthorized || unknown.status != wrong.status || string(unknown.body) != string(wrong.body) {
		t.Errorf("unknown email: %d %s; wrong password: %d %s; want identical 401s", unknown.status, unknown.body, wrong.status, wrong.body)
	}
	// Rate limit: 5 attempts per email and address, then 429.
	var last reply
	for range 6 {
		last = e.do(t, nil, http.MethodPost, "/api/v1/auth/login", map[string]string{"email": "ann@alpha.test", "password": "wrong-password-x"})
	}
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" {
		t.Errorf("after 7 attempts: %d Retry-After %q; want 429 with Retry-After", last.status, last.header.Get("Retry-After"))
	}

	if strings.Contains(e.logs.String(), "a-brand-new-password") || strings.Contains(e.logs.String(), pwA) {
		t.Error("a password appears in the logs")
	}
}

// TestSecureCookies: over HTTPS (X-Forwarded-Proto from the ingress) the
// cookies are the __Host- ones, Secure.
func TestSecureCookies(t *testing.T) {
	e := newAuthEnv(t, "local://"+uniq("auth"), nil)
	r := e.do(t, nil, http.MethodPost, "/api/v1/auth/signup",
		map[string]string{"organisation": "S", "email": "s@s.test", "password": pwA}, "X-Forwarded-Proto", "https")
	names := map[string]*http.Cookie{}
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		names[c.Name] = c
	}
	s, c := names[sessionCookieSecure], names[csrfCookieSecure]
	if s == nil || c == nil || !s.Secure || !c.Secure || !s.HttpOnly || c.HttpOnly || s.Path != "/" || s.Domain != "" {
		t.Errorf("cookies over https: %v", r.header["Set-Cookie"])
	}
}

// TestAccountPages: every page is served, links only its own script and
// stylesheet (the CSP allows 'self' only), and labels every input.
func TestAccountPages(t *testing.T) {
	e := newAuthEnv(t, "local://"+uniq("pages"), nil)
	for _, p := range []string{"signup.html", "login.html", "drones.html", "settings.html", "invite.html", "alerts.html", "remote-id.html"} {
		r := e.do(t, nil, http.MethodGet, "/account/"+p, nil)
		body := string(r.body)
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %s", p, r.status, r.header.Get("Content-Type"))
		}
		// External scripts of /account/ only (account.js, and channels.js
		// on the alerts page) and no inline script or style: the pages run
		// under the same strict CSP as the map.
		if !strings.Contains(body, `<script src="/account/account.js"`) || strings.Count(body, "<script") != strings.Count(body, `<script src="/account/`) ||
			strings.Count(body, "<script") > 2 || strings.Contains(body, "style=") || strings.Contains(body, "<style") {
			t.Errorf("%s: want only the external script and no inline script/style", p)
		}
		for _, tag := range []string{"<input", "<select", "<textarea"} {
			for _, in := range strings.Split(body, tag)[1:] {
				attrs := in[:strings.Index(in, ">")]
				_, rest, ok := strings.Cut(attrs, ` id="`)
				if !ok {
					t.Errorf("%s: %s without an id (so no label can name it): %s%s>", p, tag, tag, attrs)
					continue
				}
				id := rest[:strings.Index(rest, `"`)]
				if !strings.Contains(body, `<label for="`+id+`"`) {
					t.Errorf("%s: %s %s has no label", p, tag, id)
				}
			}
		}
	}
	for _, p := range []string{"account.js", "account.css", "channels.js"} {
		if r := e.do(t, nil, http.MethodGet, "/account/"+p, nil); r.status != 200 {
			t.Errorf("%s: %d", p, r.status)
		}
	}
	if r := e.do(t, nil, http.MethodGet, "/account/nope.html", nil); r.status != 404 {
		t.Errorf("missing page: %d", r.status)
	}
}

// TestStreamEndsWithItsSession: an open stream closes once its session is
// logged out (checked every SESSION_RECHECK).
func TestStreamEndsWithItsSession(t *testing.T) {
	e := newAuthEnv(t, "local://"+uniq("auth"), map[string]string{"SESSION_RECHECK": "20ms"})
	a := signUp(t, e, "Alpha Org", "ann@alpha.test", pwA)
	ch := openStream(t, e.url+"/api/v1/stream", "Cookie", a.session.String())
	if got := e.do(t, a, http.MethodPost, "/api/v1/auth/logout", nil); got.status != http.StatusNoContent {
		t.Fatalf("logout: %d", got.status)
	}
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return // closed
			}
		case <-time.After(10 * time.Second): // generous: not a timing assertion
			t.Fatal("the stream stayed open after log-out")
		}
	}
}
