package system

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"

	"github.com/dronetrack/dronetrack/events"

	"github.com/dronetrack/dronetrack/infra/local"
)

// TestTrackLinkBrowser is a delivery shared with a customer, on phones
// (390 px wide): the owner makes a tracking link for a flying drone on the
// website; a fresh browser without cookies opens it, sees the drone's name,
// the destination with an arrival estimate, and the drone move, having
// loaded only the tracking page's own bundle; the owner revokes the link,
// and the customer's page ends its stream and says the link was revoked.
// Screenshots: tracklink-*.png.
func TestTrackLinkBrowser(t *testing.T) {
	// Three demo drones, the first flown by the simulator at 2 reports/s
	// (a sibling whose positions the customer must never see); the test
	// flies the second itself, through the ingest API, so its moves are
	// known.
	sys, dir := startBrowserSystem(t, 3, 1, 2)
	// The label is the sender's text, shown to strangers: markup in it
	// must stay text everywhere the page shows it.
	const destLabel = `Front door, 7 Lake Road <b id="inj">x</b>`
	demo, err := local.ReadDemoKeys(filepath.Join(dir, local.DemoKeysFile))
	if err != nil || len(demo) < 3 {
		t.Fatalf("demo keys: %v", err)
	}
	flown := demo[1]

	owner, ownerCon := newBrowser(t, 390, 844)
	run := stepRunner(t, owner)
	run("log in as the demo owner",
		chromedp.Navigate(sys.URL()+"/account/login.html"),
		chromedp.WaitVisible(chromedp.CSS(`#email`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), sys.DemoLogin().Email),
		chromedp.SendKeys(chromedp.CSS(`#password`), sys.DemoLogin().Password),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
	)
	waitAcross(t, owner, "the map after log-in", `location.pathname === '/'`, 20*time.Second)
	run("open the drone's tracking links", chromedp.Navigate(sys.URL()+"/account/links.html?drone="+flown.DroneID))
	waitAcross(t, owner, "the links page", `document.getElementById('drone').value === `+jsString(flown.DroneID)+` && !document.getElementById('new').hidden && !document.getElementById('none').hidden`, 20*time.Second)
	run("make a link with a destination",
		chromedp.SendKeys(chromedp.CSS(`#dest-lat`), "47.39"),
		chromedp.SendKeys(chromedp.CSS(`#dest-lon`), "8.56"),
		chromedp.SendKeys(chromedp.CSS(`#dest-label`), destLabel),
		chromedp.Click(chromedp.CSS(`#new button[type=submit]`)),
	)
	waitAcross(t, owner, "the link shown once and listed", `!document.getElementById('secret').hidden && document.getElementById('link-url').textContent.includes('/t/') && document.querySelectorAll('#links tr[data-status=live]').length === 1`, 20*time.Second)
	linkURL := evalJS[string](t, owner, `document.getElementById('link-url').textContent`)
	token := linkURL[strings.LastIndex(linkURL, "/")+1:]
	if !strings.HasPrefix(linkURL, sys.URL()+"/t/") || len(token) != 43 {
		t.Fatalf("link %q: want %s/t/<43-character token>", linkURL, sys.URL())
	}
	screenshot(t, owner, "tracklink-1-created.png")

	// The drone leaves: north along 8.54° E, about 11 m every half second
	// (80 km/h), until the test ends.
	go func() {
		for i := 0; t.Context().Err() == nil; i++ {
			body, _ := json.Marshal(events.Report{TS: time.Now().UTC(), Lat: 47.37 + float64(i)*0.0001, Lon: 8.54, Alt: new(120.0)})
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, sys.URL()+"/v1/telemetry", bytes.NewReader(body))
			if err != nil {
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+flown.Key)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
			select {
			case <-t.Context().Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()

	// The customer: another browser, no account, no cookies.
	customer, con := newBrowser(t, 390, 844)
	// Every request the page makes to our server (map tiles come from
	// elsewhere).
	var reqMu sync.Mutex
	var ours []string
	if err := chromedp.Listen(customer, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			if u, err := url.Parse(e.Request.URL); err == nil && "http://"+u.Host == sys.URL() {
				reqMu.Lock()
				ours = append(ours, u.Path)
				reqMu.Unlock()
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	// waitPage is waitJS with the tracking page's state in the failure.
	waitPage := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(customer, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
			state, _ := chromedp.Run(customer, chromedp.Evaluate[string](`JSON.stringify({...window.dronetrack, es: !!window.dronetrack?.es, track: window.dronetrack?.track?.length, conn: document.getElementById('conn-text')?.textContent, gone: document.getElementById('gone-title')?.textContent})`))
			t.Fatalf("%s: %v (page: %s)", what, err, state)
		}
	}
	if err := chromedp.Do(customer, chromedp.Navigate(linkURL)); err != nil {
		t.Fatal(err)
	}
	waitPage("the tracking page with a position", `window.dronetrack && window.dronetrack.ready && window.dronetrack.state !== null`)
	first := evalJS[[]float64](t, customer, `[window.dronetrack.state.lat, window.dronetrack.state.lon]`)
	waitPage("the drone moves on the page", fmt.Sprintf(`window.dronetrack.positions >= 2 && (window.dronetrack.state.lat !== %v || window.dronetrack.state.lon !== %v) && window.dronetrack.track.length >= 2`, first[0], first[1]))
	if lon := evalJS[float64](t, customer, `window.dronetrack.state.lon`); lon != 8.54 {
		t.Errorf("the page shows a position at longitude %v; want the link's drone, at 8.54", lon)
	}
	if got := evalJS[string](t, customer, `document.getElementById('label').textContent`); got != flown.Name {
		t.Errorf("label %q; want the drone's name %q", got, flown.Name)
	}
	if got := evalJS[string](t, customer, `document.getElementById('dest').textContent`); got != destLabel {
		t.Errorf("destination %q", got)
	}
	// The destination pin's tooltip (Leaflet sets a string tooltip as HTML).
	tip := evalJS[string](t, customer, `(() => {
		const pin = [...document.querySelectorAll('path.leaflet-interactive')].find((p) => p.getAttribute('stroke') === '#f59e0b');
		if (!pin) return 'no destination pin';
		pin.dispatchEvent(new MouseEvent('mouseover', { bubbles: true, clientX: 1, clientY: 1 }));
		const t = document.querySelector('.leaflet-tooltip');
		return document.getElementById('inj') ? 'markup rendered' : (t ? t.textContent : 'no tooltip');
	})()`)
	if tip != destLabel {
		t.Errorf("destination tooltip: %q; want the label as text %q", tip, destLabel)
	}
	waitPage("an arrival estimate", `/in about|under a minute|arriving/.test(document.getElementById('eta').textContent)`)
	// Fits a phone: nothing wider than the screen, the card on it.
	if w := evalJS[int](t, customer, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("page is %d px wide on a 390 px screen", w)
	}
	if ok := evalJS[bool](t, customer, `(() => { const r = document.getElementById('card').getBoundingClientRect(); return r.left >= 0 && r.right <= 390 && r.bottom <= 844 && r.height < 844 / 2; })()`); !ok {
		t.Error("the info card does not fit the phone's screen or covers more than half of it")
	}
	screenshot(t, customer, "tracklink-2-live.png")
	cookies, err := chromedp.Call(customer, storage.GetCookies, storage.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cookies.Cookies) != 0 {
		t.Errorf("the tracking page left cookies: %+v", cookies.Cookies)
	}
	// Only the map's needs: the page, its bundle, the link's API.
	allowed := regexp.MustCompile(`^(/t/[A-Za-z0-9_-]{43}|/assets/track-[A-Z0-9]+\.(js|css)|/api/v1/t/[A-Za-z0-9_-]{43}(/stream)?)$`)
	reqMu.Lock()
	requested := slices.Clone(ours)
	reqMu.Unlock()
	bundle := 0
	for _, p := range requested {
		if !allowed.MatchString(p) {
			t.Errorf("the tracking page requested %s from the server; want only its page, bundle and link API", p)
		}
		if strings.HasPrefix(p, "/assets/") {
			resp, err := http.Get(sys.URL() + p)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			bundle += len(b)
		}
	}
	if !slices.ContainsFunc(requested, func(p string) bool { return strings.HasSuffix(p, ".js") }) {
		t.Errorf("no bundle among the requests %v", requested)
	}
	t.Logf("the tracking page's requests: %v; its bundle: %d bytes (JS + CSS, uncompressed)", requested, bundle)

	// The owner revokes; the customer's stream ends and the page says so.
	run("revoke (two clicks)",
		chromedp.Click(chromedp.CSS(`#links tr[data-status=live] button.revoke`)),
		chromedp.WaitVisible(chromedp.CSS(`#links tr[data-status=live] button.revoke[data-armed]`)),
		chromedp.Click(chromedp.CSS(`#links tr[data-status=live] button.revoke`)),
	)
	revoked := time.Now()
	waitAcross(t, owner, "the link listed as revoked", `document.querySelectorAll('#links tr[data-status=revoked]').length === 1`, 20*time.Second)
	waitPage("the page says the link was revoked", `!document.getElementById('gone').hidden && document.getElementById('gone-title').textContent === 'This tracking link was revoked' && window.dronetrack.status === 'gone' && !window.dronetrack.es`)
	t.Logf("the customer's page said revoked %v after the owner's click (LINK_RECHECK 2s)", time.Since(revoked).Round(10*time.Millisecond))
	positions := evalJS[int](t, customer, `window.dronetrack.positions`)
	time.Sleep(1500 * time.Millisecond) // the drone keeps flying: nothing more may arrive
	if after := evalJS[int](t, customer, `window.dronetrack.positions`); after != positions {
		t.Errorf("positions kept arriving after the revocation: %d -> %d", positions, after)
	}
	screenshot(t, customer, "tracklink-3-revoked.png")
	screenshot(t, owner, "tracklink-4-owner-revoked.png")

	// A reload shows the same, from the server alone.
	if err := chromedp.Do(customer, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	waitPage("the reloaded page says revoked", `!document.getElementById('gone').hidden && document.getElementById('gone-title').textContent === 'This tracking link was revoked'`)
	// The page's own 410s (the view after the end event, the reloaded
	// page) are expected.
	con.expectStatus(t, http.StatusGone, "/api/v1/t/"+token, "/t/"+token)
	con.check(t)
	ownerCon.check(t)
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
