package function

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/accounts"
	"github.com/dronetrack/dronetrack/core/cache"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/tracklink"
	"github.com/dronetrack/dronetrack/events"
)

type linkCreated struct {
	Link  linkJSON `json:"link"`
	Token string   `json:"token"`
	Path  string   `json:"path"`
}

// linkEnv is a tenant "Alpha Org" with two drones, the first with a state
// and history from before any link.
type linkEnv struct {
	*authEnv
	owner          *browser
	tenant         string
	drone, sibling droneKeyReply
	cache          *cache.Cache
}

func newLinkEnv(t *testing.T, cfg map[string]string) *linkEnv {
	t.Helper()
	all := map[string]string{"LINK_RECHECK": "50ms"}
	for k, v := range cfg {
		all[k] = v
	}
	e := &linkEnv{authEnv: newAuthEnv(t, "local://"+uniq("links"), all)}
	e.owner = signUp(t, e.authEnv, "Alpha Org", "ann@alpha.test", pwA)
	e.tenant = decode[struct{ User userJSON }](t, e.do(t, e.owner, http.MethodGet, "/api/v1/me", nil)).User.TenantID
	e.drone = decode[droneKeyReply](t, e.do(t, e.owner, http.MethodPost, "/api/v1/drones", map[string]string{"name": "Parcel Hawk"}))
	e.sibling = decode[droneKeyReply](t, e.do(t, e.owner, http.MethodPost, "/api/v1/drones", map[string]string{"name": "Alpha-Secret-Sibling"}))
	c, err := cache.Open(context.Background(), e.cacheURL, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e.cache = c
	// Before the link: a position and a track point nobody with the link
	// may see.
	before := time.Now().Add(-time.Hour).UTC()
	e.putState(t, e.drone.Drone.ID, events.DroneState{TS: before, Lat: 47.111111, Lon: 8.222222, UpdatedAt: before})
	if err := e.st.AppendTrack(context.Background(), []store.TrackPoint{{TenantID: e.tenant, DroneID: e.drone.Drone.ID,
		Report: events.Report{TS: before, Lat: 47.111111, Lon: 8.222222}}}); err != nil {
		t.Fatal(err)
	}
	return e
}

// putState is what process and cache-refresh do with a report: the latest
// state in the store and the cache (which notifies the streams).
func (e *linkEnv) putState(t *testing.T, drone string, st events.DroneState) {
	t.Helper()
	ctx := context.Background()
	if _, _, err := e.st.UpdateState(ctx, e.tenant, drone, func(*events.DroneState) (events.DroneState, bool) { return st, true }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cache.Put(ctx, e.tenant, drone, st); err != nil {
		t.Fatal(err)
	}
}

func (e *linkEnv) createLink(t *testing.T, drone string, body any) linkCreated {
	t.Helper()
	r := e.do(t, e.owner, http.MethodPost, "/api/v1/drones/"+drone+"/links", body)
	if r.status != http.StatusCreated {
		t.Fatalf("create link: %d %s", r.status, r.body)
	}
	return decode[linkCreated](t, r)
}

// noCookies fails when a public reply sets a cookie.
func noCookies(t *testing.T, what string, r reply) {
	t.Helper()
	if c := r.header.Values("Set-Cookie"); len(c) > 0 {
		t.Errorf("%s sets cookies: %v", what, c)
	}
}

// TestTrackLinkLifecycle: an owner makes a link (the token is shown once and
// stored hashed), anyone without a session sees the drone's label, the
// destination, positions since the link began and live positions of that
// drone only; revoking it ends an open stream within seconds, and the page
// and view then say it was revoked.
func TestTrackLinkLifecycle(t *testing.T) {
	e := newLinkEnv(t, nil)
	o := newOpenAPIReplies(t)
	ctx := context.Background()
	droneID := e.drone.Drone.ID

	// Managing links needs a session, and changes need the CSRF token.
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		path := "/api/v1/drones/" + droneID + "/links"
		if m == http.MethodDelete {
			path += "/lnone"
		}
		if r := e.do(t, nil, m, path, map[string]any{}); r.status != http.StatusUnauthorized {
			t.Errorf("%s %s without a session: %d; want 401", m, path, r.status)
		}
		if m != http.MethodGet {
			if r := e.do(t, &browser{session: e.owner.session}, m, path, map[string]any{}); r.status != http.StatusForbidden {
				t.Errorf("%s %s without the CSRF token: %d; want 403", m, path, r.status)
			}
		}
	}

	// Bad input names the field.
	for _, tc := range []struct {
		body  any
		field string
	}{
		{map[string]any{"mode": "forever"}, "mode"},
		{map[string]any{"mode": "duration"}, "minutes"},
		{map[string]any{"mode": "duration", "minutes": 1441}, "minutes"},
		{map[string]any{"destination": map[string]any{"lat": 91, "lon": 8}}, "destination/lat"},
		{map[string]any{"expires": "never"}, "body"},
	} {
		r := e.do(t, e.owner, http.MethodPost, "/api/v1/drones/"+droneID+"/links", tc.body)
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"field":"`+tc.field+`"`) {
			t.Errorf("POST links %v: %d %s; want 400 naming %s", tc.body, r.status, r.body, tc.field)
		}
		o.check(t, http.MethodPost, "/api/v1/drones/{id}/links", r)
	}

	dest := map[string]any{"lat": 47.4, "lon": 8.6, "label": "Back door, 12 Main St"}
	cr := e.createLink(t, droneID, map[string]any{"destination": dest})
	o.check(t, http.MethodPost, "/api/v1/drones/{id}/links", reply{http.StatusCreated, http.Header{"Content-Type": {"application/json"}}, mustJSON(t, cr)})
	if !tracklink.WellFormed(cr.Token) || cr.Path != "/t/"+cr.Token || cr.Link.Mode != tracklink.ModeFlight || cr.Link.Status != tracklink.Live {
		t.Fatalf("created %+v", cr)
	}
	if got := cr.Link.ExpiresAt.Sub(cr.Link.CreatedAt); got != tracklink.MaxDuration {
		t.Errorf("a flight link's cap = %v; want %v", got, tracklink.MaxDuration)
	}
	stored, err := e.st.LinkByTokenHash(ctx, accounts.HashToken(cr.Token))
	if err != nil || stored.ID != cr.Link.ID || stored.TokenHash == cr.Token {
		t.Fatalf("stored link %+v, %v; want it under the token's hash", stored, err)
	}
	second := e.createLink(t, droneID, map[string]any{"mode": "duration", "minutes": 30})
	if got := second.Link.ExpiresAt.Sub(second.Link.CreatedAt); got != 30*time.Minute {
		t.Errorf("a 30-minute link lasts %v", got)
	}
	list := e.do(t, e.owner, http.MethodGet, "/api/v1/drones/"+droneID+"/links", nil)
	o.check(t, http.MethodGet, "/api/v1/drones/{id}/links", list)
	ls := decode[struct{ Links []linkJSON }](t, list).Links
	if len(ls) != 2 || ls[0].ID != second.Link.ID || ls[1].ID != cr.Link.ID {
		t.Errorf("links newest first: %+v", ls)
	}
	if strings.Contains(string(list.body), cr.Token) || strings.Contains(string(list.body), stored.TokenHash) {
		t.Error("the link list shows a token or its hash")
	}

	// The public view, without a session.
	r := get(t, e.url+"/api/v1/t/"+cr.Token)
	o.check(t, http.MethodGet, "/api/v1/t/{token}", r)
	noCookies(t, "the view", r)
	if r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" || r.header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("view: %d %v %s", r.status, r.header, r.body)
	}
	v := decode[tracklink.View](t, r)
	if v.Label != "Parcel Hawk" || v.Destination == nil || v.Destination.Label != "Back door, 12 Main St" || v.State != nil || len(v.Track) != 0 {
		t.Errorf("view before any report since the link: %+v; want the label and destination, no state or track", v)
	}
	page := get(t, e.url+cr.Path)
	noCookies(t, "the page", page)
	if page.status != http.StatusOK || !strings.Contains(string(page.body), `id="gone" hidden`) ||
		!strings.Contains(string(page.body), `src="/assets/track-`) || strings.Contains(string(page.body), "/assets/main-") {
		t.Errorf("page: %d; want the tracking page with its own bundle only:\n%s", page.status, page.body)
	}
	o.check(t, http.MethodGet, "/t/{token}", page)

	// Live: the link's drone moves; its sibling's moves never show.
	stream := openStream(t, e.url+"/api/v1/t/"+cr.Token+"/stream")
	now := time.Now().UTC()
	e.putState(t, e.sibling.Drone.ID, events.DroneState{TS: now, Lat: 47.999999, Lon: 8.999999, UpdatedAt: now})
	gs := 12.5
	e.putState(t, droneID, events.DroneState{TS: now, Lat: 47.3, Lon: 8.6, GroundSpeed: &gs, UpdatedAt: now})
	ev := next(t, stream)
	var ps tracklink.PublicState
	if err := json.Unmarshal([]byte(ev.data), &ps); err != nil || ev.event != "position" || ps.Lat != 47.3 {
		t.Fatalf("first event %+v; want the drone's position", ev)
	}
	if ps.DistanceM == nil || *ps.DistanceM < 11000 || *ps.DistanceM > 11300 || ps.ETASecs == nil || *ps.ETASecs < 880 || *ps.ETASecs > 905 {
		t.Errorf("distance %v m, ETA %v s; want about 11.1 km and 890 s at 12.5 m/s", ps.DistanceM, ps.ETASecs)
	}
	if err := e.st.AppendTrack(ctx, []store.TrackPoint{{TenantID: e.tenant, DroneID: droneID, Report: events.Report{TS: now, Lat: 47.3, Lon: 8.6}}}); err != nil {
		t.Fatal(err)
	}
	v = decode[tracklink.View](t, get(t, e.url+"/api/v1/t/"+cr.Token))
	if v.State == nil || v.State.Lat != 47.3 || len(v.Track) != 1 || v.Track[0].Lat != 47.3 {
		t.Errorf("view after a report: state %+v track %+v; want the new position only", v.State, v.Track)
	}
	for _, body := range []string{string(mustJSON(t, v)), ev.data} {
		for _, secret := range []string{e.tenant, droneID, e.sibling.Drone.ID, "Alpha", "ann@alpha.test", "47.111111", "47.999999",
			e.drone.Key, e.sibling.Key, "battery"} {
			if strings.Contains(body, secret) {
				t.Errorf("the public view or stream shows %q: %s", secret, body)
			}
		}
	}

	// Revoke: the open stream ends within seconds, and says why.
	start := time.Now()
	rv := e.do(t, e.owner, http.MethodDelete, "/api/v1/drones/"+droneID+"/links/"+cr.Link.ID, nil)
	o.check(t, http.MethodDelete, "/api/v1/drones/{id}/links/{linkId}", rv)
	if rv.status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", rv.status, rv.body)
	}
	var end sseEvent
	for ev := range stream {
		end = ev
	}
	took := time.Since(start)
	if end.event != "end" || end.data != `{"status":"revoked"}` {
		t.Errorf("last event before the stream closed: %+v; want end revoked", end)
	}
	if took > 3*time.Second {
		t.Errorf("the stream closed %v after the revocation; want within LINK_RECHECK (50ms here) and a little", took)
	}
	t.Logf("stream closed %v after the revocation (LINK_RECHECK 50ms)", took.Round(time.Millisecond))

	r = get(t, e.url+"/api/v1/t/"+cr.Token)
	o.check(t, http.MethodGet, "/api/v1/t/{token}", r)
	if r.status != http.StatusGone || !strings.Contains(string(r.body), "urn:dronetrack:link:revoked") || !strings.Contains(string(r.body), "revoked") {
		t.Errorf("view of a revoked link: %d %s", r.status, r.body)
	}
	r = get(t, e.url+"/api/v1/t/"+cr.Token+"/stream")
	o.check(t, http.MethodGet, "/api/v1/t/{token}/stream", r)
	if r.status != http.StatusGone {
		t.Errorf("stream of a revoked link: %d", r.status)
	}
	page = get(t, e.url+cr.Path)
	o.check(t, http.MethodGet, "/t/{token}", page)
	if page.status != http.StatusGone || !strings.Contains(string(page.body), "This tracking link was revoked") || strings.Contains(string(page.body), `id="gone" hidden`) {
		t.Errorf("page of a revoked link: %d\n%s", page.status, page.body)
	}
	if again := e.do(t, e.owner, http.MethodDelete, "/api/v1/drones/"+droneID+"/links/"+cr.Link.ID, nil); again.status != http.StatusNoContent {
		t.Errorf("second revoke: %d", again.status)
	}
	// The other link is untouched.
	if r := get(t, e.url+"/api/v1/t/"+second.Token); r.status != http.StatusOK {
		t.Errorf("the drone's other link after revoking one: %d %s", r.status, r.body)
	}
	// Unknown and malformed tokens are 404, page and API alike.
	for _, p := range []string{"/t/" + strings.Repeat("A", 43), "/t/nope", "/api/v1/t/" + strings.Repeat("A", 43), "/api/v1/t/nope/stream"} {
		r := get(t, e.url+p)
		if r.status != http.StatusNotFound {
			t.Errorf("GET %s: %d; want 404", p, r.status)
		}
		route := map[bool]string{true: "/t/{token}", false: "/api/v1/t/{token}"}[strings.HasPrefix(p, "/t/")]
		if strings.HasSuffix(p, "/stream") {
			route += "/stream"
		}
		o.check(t, http.MethodGet, route, r)
	}
	// Viewers may list but not make or revoke links.
	inv := decode[struct{ Token string }](t, e.do(t, e.owner, http.MethodPost, "/api/v1/invites", map[string]string{"role": "viewer"}))
	viewer := login(t, e.do(t, nil, http.MethodPost, "/api/v1/invites/"+inv.Token+"/accept", map[string]string{"email": "vic@alpha.test", "password": pwB}))
	if r := e.do(t, viewer, http.MethodGet, "/api/v1/drones/"+droneID+"/links", nil); r.status != http.StatusOK {
		t.Errorf("viewer lists links: %d", r.status)
	}
	if r := e.do(t, viewer, http.MethodPost, "/api/v1/drones/"+droneID+"/links", map[string]any{}); r.status != http.StatusForbidden {
		t.Errorf("viewer creates a link: %d; want 403", r.status)
	}
	if r := e.do(t, viewer, http.MethodDelete, "/api/v1/drones/"+droneID+"/links/"+second.Link.ID, nil); r.status != http.StatusForbidden {
		t.Errorf("viewer revokes a link: %d; want 403", r.status)
	}
	if strings.Contains(e.logs.String(), cr.Token) || strings.Contains(e.logs.String(), second.Token) {
		t.Error("a link token appears in the logs")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTrackLinkExpiryEndsStream: a link that expires while its stream is
// open ends the stream with "expired"; the page then says so.
func TestTrackLinkExpiryEndsStream(t *testing.T) {
	t.Parallel() // mostly waiting
	e := newLinkEnv(t, nil)
	ctx := context.Background()
	l, tok, err := tracklink.New(tracklink.Request{Mode: tracklink.ModeDuration, Minutes: 1}, "lexp", e.tenant, e.drone.Drone.ID, "u", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	l.ExpiresAt = time.Now().Add(2 * time.Second)
	if err := e.st.CreateLink(ctx, l); err != nil {
		t.Fatal(err)
	}
	stream := openStream(t, e.url+"/api/v1/t/"+tok+"/stream")
	last := lastEvent(t, stream, 10*time.Second, "the link expired")
	if last.event != "end" || last.data != `{"status":"expired"}` {
		t.Errorf("last event: %+v; want end expired", last)
	}
	if p := get(t, e.url+"/t/"+tok); p.status != http.StatusGone || !strings.Contains(string(p.body), "This tracking link has expired") {
		t.Errorf("page of an expired link: %d", p.status)
	}
}

// TestTrackLinkFlightEnds: a flight link lasts while the drone moves and
// ends once it has stayed put for LINK_FLIGHT_IDLE; the end is stored, so
// a later take-off does not revive the link.
func TestTrackLinkFlightEnds(t *testing.T) {
	t.Parallel() // mostly waiting
	e := newLinkEnv(t, map[string]string{"LINK_FLIGHT_IDLE": "2s"})
	droneID := e.drone.Drone.ID
	cr := e.createLink(t, droneID, map[string]any{"mode": "flight"})
	stream := openStream(t, e.url+"/api/v1/t/"+cr.Token+"/stream")
	// Fly north for 3 s (more than the idle time), 100 m a step.
	start := time.Now()
	var lastMove time.Time
	for i := 0; time.Since(start) < 3*time.Second; i++ {
		lastMove = time.Now().UTC()
		e.putState(t, droneID, events.DroneState{TS: lastMove, Lat: 47 + float64(i)*0.001, Lon: 8, UpdatedAt: lastMove})
		time.Sleep(200 * time.Millisecond)
	}
	// Still open: every event so far is a position.
	for drained := false; !drained; {
		select {
		case ev, ok := <-stream:
			if !ok || ev.event != "position" {
				t.Fatalf("while flying: %+v (open %v); want positions only", ev, ok)
			}
		default:
			drained = true
		}
	}
	var last sseEvent
	for ev := range stream {
		last = ev
	}
	if last.event != "end" || last.data != `{"status":"ended"}` {
		t.Errorf("after landing: %+v; want end ended", last)
	}
	// The previous position (200 ms before the last) leaves the window
	// 1.8 s after the last move; rechecks are every 50 ms.
	if took := time.Since(lastMove); took < 1700*time.Millisecond || took > 8*time.Second {
		t.Errorf("the flight counted as over %v after the last move; want about LINK_FLIGHT_IDLE (2s)", took)
	}
	l, err := e.st.LinkByTokenHash(context.Background(), accounts.HashToken(cr.Token))
	if err != nil || l.EndedAt == nil {
		t.Fatalf("stored link %+v, %v; want EndedAt", l, err)
	}
	now := time.Now().UTC()
	e.putState(t, droneID, events.DroneState{TS: now, Lat: 46, Lon: 8, UpdatedAt: now})
	if r := get(t, e.url+"/api/v1/t/"+cr.Token); r.status != http.StatusGone || !strings.Contains(string(r.body), "urn:dronetrack:link:ended") {
		t.Errorf("view after the drone flies again: %d %s; want 410 ended", r.status, r.body)
	}
}

// TestTrackLinkRetiredDrone: retiring the drone ends its links at once: an
// open stream ends with "ended" (even with nothing more reported, and a
// duration link hours from expiry), and the page, the view and a new stream
// say so with 410 instead of showing an empty live map.
func TestTrackLinkRetiredDrone(t *testing.T) {
	e := newLinkEnv(t, nil)
	droneID := e.drone.Drone.ID
	cr := e.createLink(t, droneID, map[string]any{"mode": "duration", "minutes": 600})
	now := time.Now().UTC()
	e.putState(t, droneID, events.DroneState{TS: now, Lat: 47, Lon: 8, UpdatedAt: now})
	stream := openStream(t, e.url+"/api/v1/t/"+cr.Token+"/stream")
	if ev := <-stream; ev.event != "position" {
		t.Fatalf("first event %+v; want the position", ev)
	}
	if r := e.do(t, e.owner, http.MethodDelete, "/api/v1/drones/"+droneID, nil); r.status != http.StatusNoContent {
		t.Fatalf("retire: %d %s", r.status, r.body)
	}
	last := lastEvent(t, stream, 5*time.Second, "the drone was retired")
	if last.event != "end" || last.data != `{"status":"ended"}` {
		t.Errorf("last event: %+v; want end ended", last)
	}
	if p := get(t, e.url+"/t/"+cr.Token); p.status != http.StatusGone || !strings.Contains(string(p.body), "This flight has ended") {
		t.Errorf("page of a retired drone's link: %d", p.status)
	}
	if r := get(t, e.url+"/api/v1/t/"+cr.Token); r.status != http.StatusGone {
		t.Errorf("view of a retired drone's link: %d", r.status)
	}
	if r := get(t, e.url+"/api/v1/t/"+cr.Token+"/stream"); r.status != http.StatusGone {
		t.Errorf("new stream of a retired drone's link: %d", r.status)
	}
}

// TestTrackLinkRateLimits: guessing tokens gets 404s and then 429 with
// Retry-After from one address, before any store lookup; one link is
// limited across addresses too.
func TestTrackLinkRateLimits(t *testing.T) {
	e := newLinkEnv(t, map[string]string{"LINK_RATE_IP": "0.01/s:5", "LINK_RATE_LINK": "off"})
	var got []int
	for i := range 7 {
		r := get(t, e.url+"/api/v1/t/"+strings.Repeat(string(rune('a'+i)), 43))
		got = append(got, r.status)
		if r.status == http.StatusTooManyRequests && r.header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	want := []int{404, 404, 404, 404, 404, 429, 429}
	if jsonString(got) != jsonString(want) {
		t.Errorf("statuses of 7 guesses: %v; want %v", got, want)
	}
	// The page counts against the same budget, and says so as a page.
	if r := get(t, e.url+"/t/"+strings.Repeat("z", 43)); r.status != http.StatusTooManyRequests ||
		!strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), "Too many requests") || r.header.Get("Retry-After") == "" {
		t.Errorf("page after the budget: %d %s; want a 429 page with Retry-After", r.status, r.header.Get("Content-Type"))
	} else {
		newOpenAPIReplies(t).check(t, http.MethodGet, "/t/{token}", r)
	}

	e2 := newLinkEnv(t, map[string]string{"LINK_RATE_IP": "off", "LINK_RATE_LINK": "0.01/s:3"})
	cr := e2.createLink(t, e2.drone.Drone.ID, map[string]any{})
	got = nil
	for range 4 {
		got = append(got, get(t, e2.url+"/api/v1/t/"+cr.Token, "X-Forwarded-For", "198.51.100.7").status)
	}
	if got[0] != 200 || got[2] != 200 || got[3] != http.StatusTooManyRequests {
		t.Errorf("4 reads of one link: %v; want 200 200 200 429", got)
	}
}

// TestTrackLinkRateLimitPerIPv6Network: an IPv6 client owns a whole /64
// (any host can use 2^64 addresses), so the per-address budget is per /64:
// guesses from fresh addresses of one network still run out, while another
// network and IPv4 clients keep their own budgets.
func TestTrackLinkRateLimitPerIPv6Network(t *testing.T) {
	e := newLinkEnv(t, map[string]string{"LINK_RATE_IP": "0.01/s:3", "LINK_RATE_LINK": "off", "RATE_LIMIT_IP_HOPS": "1"})
	var got []int
	for i := range 5 {
		got = append(got, get(t, e.url+"/api/v1/t/"+strings.Repeat("a", 43), "X-Forwarded-For", fmt.Sprintf("2001:db8:7:9::%x", i+1)).status)
	}
	if want := []int{404, 404, 404, 429, 429}; jsonString(got) != jsonString(want) {
		t.Errorf("5 guesses from 5 addresses of one /64: %v; want %v", got, want)
	}
	if r := get(t, e.url+"/api/v1/t/"+strings.Repeat("a", 43), "X-Forwarded-For", "2001:db8:7:a::1"); r.status != http.StatusNotFound {
		t.Errorf("another /64: %d; want its own budget (404)", r.status)
	}
	for i := range 3 {
		if r := get(t, e.url+"/api/v1/t/"+strings.Repeat("a", 43), "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1)); r.status != http.StatusNotFound {
			t.Errorf("IPv4 address %d: %d; want a budget per address (404)", i+1, r.status)
		}
	}
}

// TestTrackLinkStreamCap: one link holds at most LINK_MAX_STREAMS open
// streams on a replica (each is a goroutine, a hub client fed every update
// of the tenant, and a link read per recheck), so whoever holds a leaked
// link cannot pile up streams at the per-link request rate; a closed
// stream frees its place, and other links have their own.
func TestTrackLinkStreamCap(t *testing.T) {
	e := newLinkEnv(t, map[string]string{"LINK_MAX_STREAMS": "2", "LINK_RATE_LINK": "off", "LINK_RATE_IP": "off"})
	cr := e.createLink(t, e.drone.Drone.ID, map[string]any{"mode": "duration", "minutes": 60})
	other := e.createLink(t, e.drone.Drone.ID, map[string]any{"mode": "duration", "minutes": 60})
	open := func(tok string) (int, string, context.CancelFunc) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/api/v1/t/"+tok+"/stream", nil)
		resp, err := testClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
		}
		return resp.StatusCode, resp.Header.Get("Retry-After"), cancel
	}
	s1, _, close1 := open(cr.Token)
	s2, _, _ := open(cr.Token)
	s3, retry, _ := open(cr.Token)
	if s1 != http.StatusOK || s2 != http.StatusOK || s3 != http.StatusTooManyRequests || retry == "" {
		t.Fatalf("three streams of one link, cap 2: %d %d %d (Retry-After %q); want 200 200 429 with Retry-After", s1, s2, s3, retry)
	}
	if s, _, _ := open(other.Token); s != http.StatusOK {
		t.Errorf("another link's stream: %d; want 200 (the cap is per link)", s)
	}
	close1()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, _, _ := open(cr.Token)
		if s == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after closing a stream: %d; want its place free again", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestLinksPage: the tracking-links account page is served with only its
// two scripts (account.js, then links.js, which adds the page to
// account.js's table), no inline script or style, and a label for every
// input.
func TestLinksPage(t *testing.T) {
	e := newAuthEnv(t, "local://"+uniq("pages"), nil)
	r := e.do(t, nil, http.MethodGet, "/account/links.html", nil)
	body := string(r.body)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("links.html: %d %s", r.status, r.header.Get("Content-Type"))
	}
	a, l := strings.Index(body, `<script src="/account/account.js" defer>`), strings.Index(body, `<script src="/account/links.js" defer>`)
	if a < 0 || l < a || strings.Count(body, "<script") != 2 || strings.Contains(body, "style=") || strings.Contains(body, "<style") {
		t.Errorf("links.html: want account.js then links.js, deferred, and no inline script or style")
	}
	for _, in := range strings.Split(body, "<input")[1:] {
		attrs := in[:strings.Index(in, ">")]
		_, rest, ok := strings.Cut(attrs, ` id="`)
		if !ok || !strings.Contains(body, `<label for="`+rest[:strings.Index(rest, `"`)]+`"`) {
			t.Errorf("links.html: an input without a label: <input%s>", attrs)
		}
	}
	if !strings.Contains(body, `<select id="drone">`) || !strings.Contains(body, `<label for="drone">`) {
		t.Error("links.html: the drone selector has no label")
	}
	if r := e.do(t, nil, http.MethodGet, "/account/links.js", nil); r.status != http.StatusOK || !strings.Contains(string(r.body), "pages.links =") {
		t.Errorf("links.js: %d", r.status)
	}
}

// lastEvent reads stream until the server closes it and returns its last
// event; the test fails if it is still open after wait (after what).
func lastEvent(t *testing.T, stream <-chan sseEvent, wait time.Duration, after string) sseEvent {
	t.Helper()
	var last sseEvent
	deadline := time.After(wait)
	for {
		select {
		case ev, ok := <-stream:
			if !ok {
				return last
			}
			last = ev
		case <-deadline:
			t.Fatal("the stream stayed open after " + after)
		}
	}
}
