package system

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/events"
	alertsfn "github.com/dronetrack/dronetrack/functions/alerts"

	"github.com/dronetrack/dronetrack/cmd/dronetrack/cli"
	"github.com/dronetrack/dronetrack/infra/local"
)

// geomanAsset is the geofence editor's lazily loaded code and stylesheet
// (frontend/src/geoman.js and leaflet-geoman's CSS, hashed by the build).
var geomanAsset = regexp.MustCompile(`^/assets/(geoman|leaflet-geoman)-[A-Z0-9]+\.(js|css)$`)

// requestLog records the paths of the page's requests (CDP network events),
// to tell what the page downloaded and when.
type requestLog struct {
	mu    sync.Mutex
	paths []string
}

func listenRequests(t *testing.T, ctx context.Context) *requestLog {
	t.Helper()
	l := &requestLog{}
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			if u, err := url.Parse(e.Request.URL); err == nil {
				l.mu.Lock()
				l.paths = append(l.paths, u.Path)
				l.mu.Unlock()
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	return l
}

// matching answers the requested paths re matches, in order.
func (l *requestLog) matching(re *regexp.Regexp) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, p := range l.paths {
		if re.MatchString(p) {
			out = append(out, p)
		}
	}
	return out
}

// geomanLoads checks the page has or has not fetched the editor's chunk and
// stylesheet, and has or has not geoman on its global L.
func (l *requestLog) geomanLoads(t *testing.T, ctx context.Context, when string, want bool) {
	t.Helper()
	got := l.matching(geomanAsset)
	loaded := evalJS[bool](t, ctx, `!!(window.L && window.L.PM)`)
	if !want && (len(got) != 0 || loaded) {
		t.Errorf("%s: the page fetched %v (geoman on L: %v); want no geoman before a manager opens the editor", when, got, loaded)
	}
	if want {
		js, css := 0, 0
		for _, p := range got {
			if strings.HasSuffix(p, ".js") {
				js++
			} else {
				css++
			}
		}
		if js != 1 || css != 1 || !loaded {
			t.Errorf("%s: the page fetched %v (geoman on L: %v); want the editor's chunk and stylesheet once each", when, got, loaded)
		}
	}
}

// TestGeofenceEditorBrowser is an operator managing alerts from the
// website: draw a polygon geofence on the live map with the mouse, see the
// API refuse it unnamed (the error names the field), name and save it, move
// a vertex and rename it, delete it, type a circle from the keyboard alone;
// set an alert threshold, add a webhook and see its secret once, see a
// delivery signed with that secret in the webhook's delivery log, delete
// the webhook. A viewer sees fences and thresholds without editing
// controls and no webhooks, and the API refuses the viewer's writes. Every step is checked through
// the API, and the page must not log a console error (beyond the two
// refusals the test provokes).
func TestGeofenceEditorBrowser(t *testing.T) {
	// Four demo drones, three flown: the fourth reports low battery later,
	// which raises the alert the webhook delivers.
	sys, dir := startBrowserSystem(t, 4, 3, 1)
	ctx, con := newBrowser(t, 1440, 900)
	ctx, cancel := context.WithTimeout(ctx, 150*time.Second)
	defer cancel()
	requests := listenRequests(t, ctx)
	// The webhook page confirms deletions with window.confirm: accept them.
	acceptDialogs(t, ctx)
	run := stepRunner(t, ctx)
	apiClient, csrf := loginClient(t, sys.URL(), sys.DemoLogin().Email, sys.DemoLogin().Password)
	call := func(method, path string, body any, out any) int {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequestWithContext(ctx, method, sys.URL()+path, rd)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CSRF-Token", csrf)
		resp, err := apiClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if out != nil && resp.StatusCode < 300 {
			if err := json.Unmarshal(raw, out); err != nil {
				t.Fatalf("%s %s: %v in %s", method, path, err, raw)
			}
		}
		return resp.StatusCode
	}
	fences := func() []alerting.Fence {
		t.Helper()
		var body struct{ Geofences []alerting.Fence }
		if code := call("GET", "/api/v1/geofences", nil, &body); code != http.StatusOK {
			t.Fatalf("list geofences: %d", code)
		}
		return body.Geofences
	}

	// waitGF is waitJS that also tells the editor's state when it times out.
	waitGF := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(5*time.Second), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
			state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({note: document.getElementById('gf-note')?.textContent, error: document.getElementById('gf-error')?.textContent, editing: !!window.dronetrack?.geofences?.edit, fences: window.dronetrack?.geofences?.list, vertices: document.getElementById('gf-vertices')?.value})`))
			screenshot(t, ctx, "geofence-failed.png")
			t.Fatalf("%s: %v (editor: %s)", what, err, state)
		}
	}
	openPage(t, ctx, sys.URL(), dir)
	// The page links the licences of what it bundles (geoman among them).
	notices := evalJS[string](t, ctx, `document.querySelector('link[rel=license]')?.href || ''`)
	if resp, err := http.Get(notices); err != nil {
		t.Errorf("third-party notices %q: %v", notices, err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("@geoman-io/leaflet-geoman-free 2.20.2 (MIT)")) {
			t.Errorf("third-party notices %s: %d, %d bytes; want geoman's licence in them", notices, resp.StatusCode, len(b))
		}
	}
	// The map's first load leaves the editor's geoman chunk alone (the
	// fences themselves are drawn with plain Leaflet)...
	if len(requests.matching(regexp.MustCompile(`^/assets/main-[A-Z0-9]+\.js$`))) != 1 {
		t.Errorf("the page's requests %v lack its main script; is the request log working?", requests.matching(regexp.MustCompile(`^/assets/`)))
	}
	waitJS(t, ctx, "fences and role loaded", `window.dronetrack.geofences.loaded && window.dronetrack.geofences.canEdit`, 10*time.Second)
	requests.geomanLoads(t, ctx, "the map loaded, Fences tab closed", false)
	// ...which an owner's opening of the Fences tab fetches.
	run("open the fences tab", chromedp.Click(chromedp.CSS(`#tab-fences`)))
	waitJS(t, ctx, "fences loaded, editing controls shown", `window.dronetrack.geofences.loaded && document.getElementById('gf-new-polygon').getClientRects().length > 0`, 10*time.Second)
	waitJS(t, ctx, "the editor loaded", `window.dronetrack.geofences.editorLoaded === true && !!window.dronetrack.layer.map.pm`, 10*time.Second)
	requests.geomanLoads(t, ctx, "the Fences tab opened by the owner", true)

	// Draw a four-vertex polygon around the middle of the map with real
	// mouse clicks, closing it on the first vertex.
	run("start a polygon", chromedp.Click(chromedp.CSS(`#gf-new-polygon`)))
	var box struct{ X, Y, W, H float64 }
	if err := json.Unmarshal([]byte(evalJS[string](t, ctx, `JSON.stringify((() => { const r = document.getElementById('map').getBoundingClientRect(); return {x: r.left, y: r.top, w: r.width, h: r.height}; })())`)), &box); err != nil {
		t.Fatal(err)
	}
	cx, cy := box.X+box.W/2, box.Y+box.H/2
	corners := [][2]float64{{cx - 160, cy - 110}, {cx + 160, cy - 110}, {cx + 160, cy + 110}, {cx - 160, cy + 110}}
	clickAt := func(what string, x, y float64) {
		t.Helper()
		run(what, chromedp.MouseEvent(chromedp.MouseMoved, x, y), chromedp.MouseClickXY(x, y))
		time.Sleep(150 * time.Millisecond) // apart, so no two clicks make a double click
	}
	for i, p := range corners {
		clickAt(fmt.Sprintf("vertex %d", i+1), p[0], p[1])
	}
	clickAt("close on the first vertex", corners[0][0], corners[0][1])
	waitGF("the polygon is drawn", `window.dronetrack.geofences.edit && window.dronetrack.geofences.edit.layer && document.getElementById('gf-vertices').value.trim().split('\n').length === 4`)
	screenshot(t, ctx, "geofence-1-drawn.png")

	// Unnamed, the API refuses it and the page names the field.
	run("save without a name", chromedp.Click(chromedp.CSS(`#gf-save`)))
	waitGF("the name error shown", `document.getElementById('gf-error').textContent.startsWith('Name:') && document.getElementById('gf-name').getAttribute('aria-invalid') === 'true'`)
	if n := len(fences()); n != 0 {
		t.Fatalf("%d fences after a refused save; want 0", n)
	}
	t.Logf("unnamed fence refused: %q", evalJS[string](t, ctx, `document.getElementById('gf-error').textContent`))
	run("name it and save",
		chromedp.SendKeys(chromedp.CSS(`#gf-name`), "Airfield"),
		chromedp.SetValue(chromedp.CSS(`#gf-mode`), "keep-out"),
		chromedp.Click(chromedp.CSS(`#gf-save`)),
	)
	waitGF("the fence saved and listed", `!window.dronetrack.geofences.edit && document.querySelectorAll('#gf-list .fence').length === 1`)
	got := fences()
	if len(got) != 1 || got[0].Name != "Airfield" || got[0].Mode != alerting.ModeKeepOut || len(got[0].Polygon) != len(corners) {
		t.Fatalf("fences after saving %+v; want one keep-out \"Airfield\" with %d vertices", got, len(corners))
	}
	fence := got[0]
	// The stored vertices are where the mouse clicked.
	for i, p := range corners {
		want := evalJS[[]float64](t, ctx, fmt.Sprintf(`(() => { const m = window.dronetrack.layer.map; const r = m.getContainer().getBoundingClientRect(); const ll = m.containerPointToLatLng([%f - r.left, %f - r.top]).wrap(); return [ll.lat, ll.lng]; })()`, p[0], p[1]))
		if math.Abs(fence.Polygon[i].Lat-want[0]) > 1e-5 || math.Abs(fence.Polygon[i].Lon-want[1]) > 1e-5 {
			t.Errorf("vertex %d stored at %+v; clicked at %v", i, fence.Polygon[i], want)
		}
	}
	screenshot(t, ctx, "geofence-2-saved.png")

	// Edit: drag the second vertex 60 px right and 40 px down, rename.
	run("edit the fence", chromedp.Click(chromedp.CSS(`#gf-list .gf-edit`)))
	waitGF("vertex handles shown", `window.dronetrack.geofences.edit && document.querySelectorAll('.leaflet-marker-pane .marker-icon:not(.marker-icon-middle)').length === 4`)
	from := evalJS[[]float64](t, ctx, `(() => { const g = window.dronetrack.geofences, m = g.map; const r = m.getContainer().getBoundingClientRect(); const p = m.latLngToContainerPoint(g.edit.layer.getLatLngs()[0][1]); return [p.x + r.left, p.y + r.top]; })()`)
	to := []float64{from[0] + 60, from[1] + 40}
	run("drag vertex 2", chromedp.DragAndDropXY(from[0], from[1], to[0], to[1]))
	waitGF("the form follows the drag", fmt.Sprintf(`(() => { const [lat, lon] = document.getElementById('gf-vertices').value.split('\n')[1].split(',').map(Number); return Math.abs(lat - %v) > 1e-5 || Math.abs(lon - %v) > 1e-5; })()`, fence.Polygon[1].Lat, fence.Polygon[1].Lon))
	moved := evalJS[[]float64](t, ctx, fmt.Sprintf(`(() => { const m = window.dronetrack.layer.map; const r = m.getContainer().getBoundingClientRect(); const ll = m.containerPointToLatLng([%f - r.left, %f - r.top]).wrap(); return [ll.lat, ll.lng]; })()`, to[0], to[1]))
	run("rename and save",
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#gf-name").value = ""; undefined`),
		chromedp.SendKeys(chromedp.CSS(`#gf-name`), "Airfield north"),
		chromedp.Click(chromedp.CSS(`#gf-save`)),
	)
	waitGF("the edit saved", `!window.dronetrack.geofences.edit && window.dronetrack.geofences.list.some(f => f.name === 'Airfield north')`)
	got = fences()
	if len(got) != 1 || got[0].ID != fence.ID || got[0].Name != "Airfield north" || len(got[0].Polygon) != len(corners) {
		t.Fatalf("fences after editing %+v; want %s renamed \"Airfield north\" with %d vertices", got, fence.ID, len(corners))
	}
	// Dropped within a few pixels of the target (the handle's grab point).
	if v := got[0].Polygon[1]; math.Abs(v.Lat-moved[0]) > 1e-4 || math.Abs(v.Lon-moved[1]) > 1e-4 {
		t.Errorf("moved vertex stored at %+v; dropped at %v", v, moved)
	}
	for _, i := range []int{0, 2, 3} {
		if got[0].Polygon[i] != fence.Polygon[i] {
			t.Errorf("vertex %d changed from %+v to %+v; only vertex 1 was moved", i, fence.Polygon[i], got[0].Polygon[i])
		}
	}
	t.Logf("vertex 1 moved from %+v to %+v", fence.Polygon[1], got[0].Polygon[1])
	screenshot(t, ctx, "geofence-3-edited.png")

	// Delete, confirmed in the page's dialog.
	run("delete the fence", chromedp.Click(chromedp.CSS(`#gf-list .gf-delete`)))
	waitGF("the confirmation opens", `document.getElementById('gf-confirm').open`)
	screenshot(t, ctx, "geofence-4-confirm.png")
	run("confirm", chromedp.Click(chromedp.CSS(`#gf-confirm-yes`)))
	waitGF("the fence gone from the list", `document.querySelectorAll('#gf-list .fence').length === 0 && window.dronetrack.geofences.list.length === 0`)
	if got := fences(); len(got) != 0 {
		t.Fatalf("fences after deleting: %+v; want none", got)
	}

	// From the keyboard alone: a circle typed in, saved with Enter.
	run("keyboard: start a circle",
		chromedp.Focus(chromedp.CSS(`#gf-new-circle`)),
		chromedp.KeyEvent("\r"),
	)
	waitGF("the circle form opens", `window.dronetrack.geofences.edit?.kind === 'circle' && !document.getElementById('gf-circle').hidden && document.activeElement.id === 'gf-name'`)
	run("keyboard: type the circle",
		chromedp.KeyEvent("Depot"),
		chromedp.SendKeys(chromedp.CSS(`#gf-lat`), "47.3769"),
		chromedp.SendKeys(chromedp.CSS(`#gf-lon`), "8.5417"),
		chromedp.SendKeys(chromedp.CSS(`#gf-radius`), "800"),
		chromedp.KeyEvent("\r"),
	)
	waitGF("the circle saved", `!window.dronetrack.geofences.edit && window.dronetrack.geofences.list.some(f => f.name === 'Depot')`)
	got = fences()
	if len(got) != 1 || got[0].Name != "Depot" || got[0].Center == nil || *got[0].Center != (alerting.Point{Lat: 47.3769, Lon: 8.5417}) || got[0].RadiusM != 800 || len(got[0].Polygon) != 0 {
		t.Fatalf("fences after typing a circle: %+v; want Depot, centre 47.3769/8.5417, radius 800 m", got)
	}

	// Alert thresholds: an out-of-range value is refused naming the field,
	// a good one saved.
	run("open the alerts page",
		chromedp.Navigate(sys.URL()+"/account/alerts.html"),
		chromedp.WaitVisible(chromedp.CSS(`#lowBatteryPct`)),
	)
	waitAcross(t, ctx, "settings loaded", `document.getElementById('lowBatteryPct').value !== '' && document.getElementById('who').textContent.includes('owner')`, 10*time.Second)
	run("a bad hysteresis",
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#hysteresisPct").value = ""; undefined`),
		chromedp.SendKeys(chromedp.CSS(`#hysteresisPct`), "80"),
		chromedp.Click(chromedp.CSS(`#settings-save`)),
	)
	waitAcross(t, ctx, "the hysteresis error shown", `document.getElementById('error').textContent.includes('hysteresisPct') && document.getElementById('hysteresisPct').getAttribute('aria-invalid') === 'true'`, 5*time.Second)
	run("good thresholds",
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#hysteresisPct").value = ""; undefined`),
		chromedp.SendKeys(chromedp.CSS(`#hysteresisPct`), "5"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#lowBatteryPct").value = ""; undefined`),
		chromedp.SendKeys(chromedp.CSS(`#lowBatteryPct`), "25"),
		chromedp.Click(chromedp.CSS(`#settings-save`)),
	)
	waitAcross(t, ctx, "thresholds saved", `document.getElementById('settings-done').textContent === 'Thresholds saved.'`, 5*time.Second)
	var settings alerting.Settings
	if code := call("GET", "/api/v1/alert-settings", nil, &settings); code != http.StatusOK || settings.LowBatteryPct != 25 || settings.HysteresisPct != 5 {
		t.Fatalf("alert settings after saving: %d %+v; want lowBatteryPct 25, hysteresisPct 5", code, settings)
	}

	// A webhook: the receiver checks each delivery's signature with the
	// secret the page showed once.
	var (
		mu             sync.Mutex
		secret         string
		signed, unsure int
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sig := r.Header.Get(alertsfn.SignatureHeader)
		ts, _, _ := strings.Cut(strings.TrimPrefix(sig, "t="), ",")
		sec, _ := strconv.ParseInt(ts, 10, 64)
		mu.Lock()
		defer mu.Unlock()
		if secret != "" && hmac.Equal([]byte(sig), []byte(alertsfn.Sign(secret, time.Unix(sec, 0), body))) {
			signed++
		} else {
			unsure++
		}
	}))
	defer recv.Close()
	hookURL := recv.URL + "/hook"
	run("add a webhook",
		chromedp.SendKeys(chromedp.CSS(`#hook-url`), hookURL),
		chromedp.Click(chromedp.CSS(`#hook-form button[type=submit]`)),
	)
	waitAcross(t, ctx, "the secret shown", `!document.getElementById('hook-secret').hidden && document.getElementById('hook-secret-value').textContent.length >= 32`, 10*time.Second)
	mu.Lock()
	secret = evalJS[string](t, ctx, `document.getElementById('hook-secret-value').textContent`)
	mu.Unlock()
	screenshot(t, ctx, "geofence-5-webhook-secret.png")
	var hooks struct {
		Webhooks []struct{ ID, URL, Secret string }
	}
	if code := call("GET", "/api/v1/webhooks", nil, &hooks); code != http.StatusOK || len(hooks.Webhooks) != 1 || hooks.Webhooks[0].URL != hookURL {
		t.Fatalf("webhooks after adding: %d %+v; want one for %s", code, hooks.Webhooks, hookURL)
	}
	run("dismiss the secret", chromedp.Click(chromedp.CSS(`#hook-hide`)))
	run("reload", chromedp.Reload())
	waitAcross(t, ctx, "the webhook listed after a reload", fmt.Sprintf(`[...document.querySelectorAll('#hooks tr')].some(tr => tr.textContent.includes(%q))`, hookURL), 10*time.Second)
	if evalJS[bool](t, ctx, fmt.Sprintf(`document.documentElement.outerHTML.includes(%q)`, secret)) {
		t.Error("the webhook secret is still in the page after Done and a reload")
	}

	// An alert: the unflown drone reports 8 % battery (under 25 %).
	reportLowBattery(t, sys.URL(), dir)
	for deadline := time.Now().Add(20 * time.Second); ; {
		mu.Lock()
		n := signed
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivery signed with the page's secret within 20 s (%d others)", unsure)
		}
		time.Sleep(200 * time.Millisecond)
	}
	run("open the delivery log", chromedp.Click(chromedp.CSS(`#hooks .hook-deliveries`)))
	for deadline := time.Now().Add(10 * time.Second); !evalJS[bool](t, ctx, `[...document.querySelectorAll('#deliveries-list tr')].some(tr => tr.textContent.includes('OK 200') && tr.textContent.includes('alert.raised'))`); {
		if time.Now().After(deadline) {
			t.Fatalf("the delivery log shows no successful alert.raised delivery: %q", evalJS[string](t, ctx, `document.getElementById('deliveries').textContent`))
		}
		run("refresh deliveries", chromedp.Click(chromedp.CSS(`#deliveries-refresh`)))
		time.Sleep(300 * time.Millisecond)
	}
	t.Logf("delivery log: %s", evalJS[string](t, ctx, `[...document.querySelectorAll('#deliveries-list tr')].map(tr => [...tr.cells].map(c => c.textContent).join(' | ')).join('; ')`))
	screenshot(t, ctx, "geofence-6-deliveries.png")

	// Delete the webhook (window.confirm, accepted above); a second one,
	// added through the API, is one the viewer must not see.
	run("delete the webhook", chromedp.Click(chromedp.CSS(`#hooks .hook-delete`)))
	waitAcross(t, ctx, "the webhook gone from the page", `document.querySelectorAll('#hooks tr').length === 0 && !document.getElementById('hooks-empty').hidden && document.getElementById('deliveries').hidden`, 10*time.Second)
	if code := call("GET", "/api/v1/webhooks", nil, &hooks); code != http.StatusOK || len(hooks.Webhooks) != 0 {
		t.Fatalf("webhooks after deleting: %d %+v; want none", code, hooks.Webhooks)
	}
	hookURL += "/viewer"
	if code := call("POST", "/api/v1/webhooks", map[string]string{"url": hookURL}, nil); code != http.StatusCreated {
		t.Fatalf("add a webhook through the API: %d", code)
	}

	// A viewer: the fence and the thresholds are shown without any editing
	// control; webhooks (their URLs may carry credentials) not at all.
	var out, errOut bytes.Buffer
	if err := cli.Run(ctx, []string{"user", "add", "--tenant", local.DemoTenantID, "--email", "viewer@geofence.test", "--role", "viewer", "--data", dir}, &out, &errOut); err != nil {
		t.Fatalf("user add: %v\n%s", err, errOut.String())
	}
	_, pw, ok := strings.Cut(out.String(), "password (shown once, store it now): ")
	if !ok {
		t.Fatalf("user add printed no password: %q", out.String())
	}
	run("open the settings page", chromedp.Navigate(sys.URL()+"/account/settings.html"))
	run("log out", chromedp.Click(chromedp.CSS(`#logout`)))
	waitAcross(t, ctx, "login page", `location.pathname === '/account/login.html'`, 10*time.Second)
	requests.mu.Lock()
	requests.paths = nil // from here on, the viewer's page
	requests.mu.Unlock()
	run("log in as the viewer",
		chromedp.WaitVisible(chromedp.CSS(`#email`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), "viewer@geofence.test"),
		chromedp.SendKeys(chromedp.CSS(`#password`), strings.TrimSpace(pw)),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
	)
	waitAcross(t, ctx, "the map as the viewer", `location.pathname === '/' && window.dronetrack && window.dronetrack.ready && window.dronetrack.geofences.loaded`, 20*time.Second)
	run("open the fences tab", chromedp.Click(chromedp.CSS(`#tab-fences`)))
	waitGF("the fence listed for the viewer", `document.querySelectorAll('#gf-list .fence').length === 1 && document.querySelectorAll('.leaflet-overlay-pane path.gf-shape').length === 1`)
	if n := evalJS[float64](t, ctx, `[...document.querySelectorAll('#gf-tools button, #gf-list .gf-edit, #gf-list .gf-delete')].filter(b => b.getClientRects().length > 0).length`); n != 0 {
		t.Errorf("the viewer sees %v geofence editing controls; want none", n)
	}
	if role := evalJS[string](t, ctx, `window.dronetrack.role`); role != "viewer" {
		t.Errorf("the page thinks the role is %q", role)
	}
	requests.geomanLoads(t, ctx, "the viewer's Fences tab", false)
	screenshot(t, ctx, "geofence-7-viewer.png")
	run("the alerts page as the viewer", chromedp.Navigate(sys.URL()+"/account/alerts.html"))
	waitAcross(t, ctx, "viewer's alerts page", `document.getElementById('who').textContent.includes('viewer') && document.getElementById('lowBatteryPct').value === '25'`, 10*time.Second)
	if !evalJS[bool](t, ctx, `document.getElementById('settings-fields').disabled && [...document.querySelectorAll('#settings-save, #webhooks')].every(el => el.getClientRects().length === 0) && document.getElementById('hooks-viewer').getClientRects().length > 0`) {
		t.Error("the viewer sees controls to change thresholds, or the webhooks")
	}
	if evalJS[bool](t, ctx, fmt.Sprintf(`document.documentElement.outerHTML.includes(%q)`, hookURL)) {
		t.Error("the viewer's page shows a webhook URL")
	}
	if msg := evalJS[string](t, ctx, `document.getElementById('error').textContent`); msg != "" {
		t.Errorf("the viewer's alerts page shows an error: %q", msg)
	}
	// Behind the hidden controls the API refuses the viewer too.
	viewer, vcsrf := loginClient(t, sys.URL(), "viewer@geofence.test", strings.TrimSpace(pw))
	fenceID := "none"
	if got := fences(); len(got) == 1 {
		fenceID = got[0].ID
	}
	for _, w := range []struct{ method, path, body string }{
		{"POST", "/api/v1/geofences", `{"name":"v","mode":"keep-in","center":{"lat":1,"lon":1},"radiusM":10}`},
		{"PUT", "/api/v1/geofences/" + fenceID, `{"name":"v","mode":"keep-in","center":{"lat":1,"lon":1},"radiusM":10}`},
		{"DELETE", "/api/v1/geofences/" + fenceID, ``},
		{"PUT", "/api/v1/alert-settings", `{"lowBatteryPct":1,"hysteresisPct":1,"minTimeToEmptySecs":0,"lostLinkSecs":0}`},
		{"POST", "/api/v1/webhooks", `{"url":"https://example.test/x"}`},
		{"GET", "/api/v1/webhooks", ``},
	} {
		req, _ := http.NewRequestWithContext(ctx, w.method, sys.URL()+w.path, strings.NewReader(w.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CSRF-Token", vcsrf)
		resp, err := viewer.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("viewer %s %s: %d; want 403", w.method, w.path, resp.StatusCode)
		}
	}
	if got := fences(); len(got) != 1 || got[0].Name != "Depot" {
		t.Errorf("fences after the viewer's attempts: %+v; want Depot alone", got)
	}
	screenshot(t, ctx, "geofence-8-viewer-alerts.png")
	// The two refusals above were provoked: the browser logs their 400s.
	con.expectRefused(t, "/api/v1/geofences", "/api/v1/alert-settings")
	con.check(t)
}

// expectRefused removes, for each path, the one failed-response entry the
// browser logged for it; a provoked refusal that did not show fails.
func (c *browserConsole) expectRefused(t *testing.T, paths ...string) {
	t.Helper()
	c.expectStatus(t, http.StatusBadRequest, paths...)
}

// expectStatus is expectRefused for another failed status.
func (c *browserConsole) expectStatus(t *testing.T, status int, paths ...string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range paths {
		i := slices.IndexFunc(c.errors, func(e string) bool {
			return strings.HasPrefix(e, "log network: ") && strings.Contains(e, "status of "+strconv.Itoa(status)) && strings.HasSuffix(e, p)
		})
		if i < 0 {
			t.Errorf("the browser logged no refused request to %s", p)
			continue
		}
		c.errors = slices.Delete(c.errors, i, i+1)
	}
}

// TestGeofenceAcrossAntimeridianBrowser: a keep-out fence typed across the
// date line (10° either side of it) saves, is drawn as one narrow shape
// over the 180th meridian rather than a band the other way round the world,
// and a drone reporting inside it (written at -175°) is alerted on. Typed
// as a bow tie (two vertices swapped), the API refuses it and the editor
// says which edges cross.
func TestGeofenceAcrossAntimeridianBrowser(t *testing.T) {
	sys, dir := startBrowserSystem(t, 1, 0, 1)
	ctx, con := newBrowser(t, 1440, 900)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	run := stepRunner(t, ctx)
	openPage(t, ctx, sys.URL(), dir)
	run("open the fences tab", chromedp.Click(chromedp.CSS(`#tab-fences`)))
	waitJS(t, ctx, "the editor loaded", `window.dronetrack.geofences.loaded && window.dronetrack.geofences.editorLoaded === true`, 10*time.Second)
	run("type a bow tie",
		chromedp.Click(chromedp.CSS(`#gf-new-polygon`)),
		chromedp.SendKeys(chromedp.CSS(`#gf-name`), "Bow tie"),
		chromedp.SendKeys(chromedp.CSS(`#gf-vertices`), "0, 170\n0, -170\n10, 170\n10, -170"),
		chromedp.Focus(chromedp.CSS(`#gf-name`)),
	)
	waitJS(t, ctx, "the bow tie drawn", `!!window.dronetrack.geofences.edit?.layer`, 5*time.Second)
	run("save the bow tie", chromedp.Click(chromedp.CSS(`#gf-save`)))
	waitJS(t, ctx, "the crossing refused", `document.getElementById('gf-error').textContent.includes('crosses') && document.getElementById('gf-vertices').getAttribute('aria-invalid') === 'true'`, 5*time.Second)
	t.Logf("bow tie refused: %q", evalJS[string](t, ctx, `document.getElementById('gf-error').textContent`))
	run("cancel it", chromedp.Click(chromedp.CSS(`#gf-cancel`)))
	run("type the fence",
		chromedp.Click(chromedp.CSS(`#gf-new-polygon`)),
		chromedp.SendKeys(chromedp.CSS(`#gf-name`), "Dateline"),
		chromedp.SetValue(chromedp.CSS(`#gf-mode`), "keep-out"),
		chromedp.SendKeys(chromedp.CSS(`#gf-vertices`), "0, 170\n0, -170\n10, -170\n10, 170"),
		chromedp.Focus(chromedp.CSS(`#gf-name`)), // leaving the field draws it
	)
	waitJS(t, ctx, "the typed shape drawn", `!!window.dronetrack.geofences.edit?.layer`, 5*time.Second)
	run("save", chromedp.Click(chromedp.CSS(`#gf-save`)))
	waitJS(t, ctx, "the fence saved", `!window.dronetrack.geofences.edit && window.dronetrack.geofences.list.some(f => f.name === 'Dateline')`, 5*time.Second)
	api, csrf := loginClient(t, sys.URL(), sys.DemoLogin().Email, sys.DemoLogin().Password)
	get := func(path string, out any) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, sys.URL()+path, nil)
		req.Header.Set("X-CSRF-Token", csrf)
		resp, err := api.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
		}
	}
	var fences struct{ Geofences []alerting.Fence }
	get("/api/v1/geofences", &fences)
	want := []alerting.Point{{Lat: 0, Lon: 170}, {Lat: 0, Lon: -170}, {Lat: 10, Lon: -170}, {Lat: 10, Lon: 170}}
	if len(fences.Geofences) != 1 || !slices.Equal(fences.Geofences[0].Polygon, want) || fences.Geofences[0].Mode != alerting.ModeKeepOut {
		t.Fatalf("fences %+v; want one keep-out with vertices %v (and no bow tie)", fences.Geofences, want)
	}

	// Seen at zoom 3 over the date line (a world 2048 px wide), the fence
	// is 20° wide, about 114 px, and spans the 180th meridian; drawn the
	// long way round it would cover the map.
	run("look at the date line", chromedp.Evaluate[chromedp.Void](`window.dronetrack.layer.map.setView([5, 180], 3, {animate: false}); undefined`))
	waitJS(t, ctx, "the fence drawn", `document.querySelectorAll('.leaflet-overlay-pane path.gf-shape').length === 1`, 5*time.Second)
	var shape struct{ Left, Right, MapLeft, MapWidth, Meridian float64 }
	if err := json.Unmarshal([]byte(evalJS[string](t, ctx, `(() => {
		const m = window.dronetrack.layer.map, r = m.getContainer().getBoundingClientRect();
		const b = document.querySelector('.leaflet-overlay-pane path.gf-shape').getBoundingClientRect();
		return JSON.stringify({left: b.left, right: b.right, mapLeft: r.left, mapWidth: r.width, meridian: r.left + m.latLngToContainerPoint([5, 180]).x});
	})()`)), &shape); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "geofence-dateline.png")
	// A fence's name is a member's text: its tooltip must be a text node, not
	// a string Leaflet would insert as HTML.
	if !evalJS[bool](t, ctx, `window.dronetrack.geofences.group.getLayers().every((l) => l.getTooltip() && l.getTooltip().getContent() instanceof Node && l.getTooltip().getContent().textContent.startsWith('Dateline'))`) {
		t.Errorf("a fence tooltip is given as an HTML string, not as text")
	}
	if w := shape.Right - shape.Left; w > shape.MapWidth/4 || w < 50 || shape.Left > shape.Meridian || shape.Right < shape.Meridian {
		t.Errorf("the fence is drawn %.0f px wide from x=%.0f to %.0f on a %.0f px map, the date line at x=%.0f; want about 114 px across the date line",
			w, shape.Left, shape.Right, shape.MapWidth, shape.Meridian)
	}
	// "Show" centres the map on it, at the date line.
	run("show the fence", chromedp.Click(chromedp.CSS(`#gf-list .gf-show`)))
	waitJS(t, ctx, "the map over the date line", `(() => { const c = window.dronetrack.layer.map.getCenter().wrap(); return Math.abs(c.lat - 5) < 1 && Math.abs(Math.abs(c.lng) - 180) < 1; })()`, 5*time.Second)

	// A drone inside it, west of the date line, breaches the keep-out fence.
	demo, err := local.ReadDemoKeys(filepath.Join(dir, local.DemoKeysFile))
	if err != nil || len(demo) == 0 {
		t.Fatalf("demo keys: %v", err)
	}
	d := demo[0]
	body, _ := json.Marshal(events.Report{TS: time.Now().UTC(), Lat: 5, Lon: -175, Alt: new(120.0), Battery: new(90.0)})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, sys.URL()+"/v1/telemetry", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+d.Key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("report: %d", resp.StatusCode)
	}
	start := time.Now()
	for {
		var alerts struct{ Alerts []alerting.Alert }
		get("/api/v1/alerts", &alerts)
		i := slices.IndexFunc(alerts.Alerts, func(a alerting.Alert) bool {
			return a.Kind == alerting.KindGeofence && a.DroneID == d.DroneID && a.FenceID == fences.Geofences[0].ID && a.Open()
		})
		if i >= 0 {
			t.Logf("alert %q %.1f s after the report", alerts.Alerts[i].Message, time.Since(start).Seconds())
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("no open geofence.breach alert for %s within 20 s of its report inside the fence: %+v", d.DroneID, alerts.Alerts)
		}
		time.Sleep(200 * time.Millisecond)
	}
	con.expectRefused(t, "/api/v1/geofences") // the bow tie
	con.check(t)
}
