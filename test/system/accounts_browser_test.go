package system

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserAccounts is a new customer's walk: sign up in the browser, add
// a drone, copy its key (shown once), post telemetry with it (from the
// test), see it on the map, log out, log in as another tenant (the demo
// owner) and not see it.
func TestBrowserAccounts(t *testing.T) {
	sys, _ := startBrowserSystem(t, 10, 0, 1)
	ctx, con := newBrowser(t, 1280, 800)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	run := stepRunner(t, ctx)

	run("sign up",
		chromedp.Navigate(sys.URL()+"/account/signup.html"),
		chromedp.WaitVisible(chromedp.CSS(`#organisation`)),
		chromedp.SendKeys(chromedp.CSS(`#organisation`), "Browser Org"),
		chromedp.SendKeys(chromedp.CSS(`#email`), "owner@browser.test"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "browser-owner-password"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
	)
	waitAcross(t, ctx, "drones page after sign-up", `location.pathname === '/account/drones.html' && document.getElementById('who').textContent.includes('owner@browser.test')`, 20*time.Second)
	screenshot(t, ctx, "accounts-1-drones.png")

	run("add drone",
		chromedp.SendKeys(chromedp.CSS(`#name`), "Browser Bird"),
		chromedp.Click(chromedp.CSS(`#add button[type=submit]`)),
	)
	waitAcross(t, ctx, "key shown once", `!document.getElementById('secret').hidden && document.getElementById('secret-key').textContent.startsWith('dtk_')`, 20*time.Second)
	key := evalJS[string](t, ctx, `document.getElementById('secret-key').textContent`)
	waitAcross(t, ctx, "the new drone listed", `[...document.querySelectorAll('#list tr')].some(tr => tr.textContent.includes('Browser Bird'))`, 20*time.Second)
	droneID := evalJS[string](t, ctx, `[...document.querySelectorAll('#list tr')].find(tr => tr.textContent.includes('Browser Bird'))?.dataset.id || ''`)
	if droneID == "" {
		t.Fatal("the new drone is not listed")
	}
	screenshot(t, ctx, "accounts-2-key.png")
	run("dismiss key", chromedp.Click(chromedp.CSS(`#hide`)))
	if evalJS[string](t, ctx, `document.getElementById('secret-key').textContent`) != "" {
		t.Error("the key stays in the page after Done")
	}

	// The drone reports with the copied key.
	body := fmt.Sprintf(`[{"ts":%q,"lat":46.5,"lon":7.25}]`, time.Now().UTC().Format(time.RFC3339Nano))
	req, _ := http.NewRequest(http.MethodPost, sys.URL()+"/v1/telemetry", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("telemetry with the copied key: %d", resp.StatusCode)
	}

	run("open the map", chromedp.Navigate(sys.URL()+"/"))
	waitAcross(t, ctx, "the drone on the map", fmt.Sprintf(`window.dronetrack && window.dronetrack.ready && window.dronetrack.fleet.drones.get(%q)?.state?.lat === 46.5`, droneID), 30*time.Second)
	screenshot(t, ctx, "accounts-3-map.png")

	run("log out",
		chromedp.Navigate(sys.URL()+"/account/settings.html"),
		chromedp.WaitVisible(chromedp.CSS(`#logout`)),
		chromedp.Click(chromedp.CSS(`#logout`)),
	)
	waitAcross(t, ctx, "login page after logout", `location.pathname === '/account/login.html'`, 20*time.Second)
	run("log in as the demo owner",
		chromedp.WaitVisible(chromedp.CSS(`#email`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), sys.DemoLogin().Email),
		chromedp.SendKeys(chromedp.CSS(`#password`), sys.DemoLogin().Password),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
	)
	waitAcross(t, ctx, "the demo fleet", `location.pathname === '/' && window.dronetrack && window.dronetrack.ready && window.dronetrack.fleet.drones.size > 0`, 30*time.Second)
	if evalJS[bool](t, ctx, fmt.Sprintf(`window.dronetrack.fleet.drones.has(%q) || document.body.textContent.includes('Browser Bird')`, droneID)) {
		t.Error("another tenant sees the drone")
	}
	screenshot(t, ctx, "accounts-4-other-tenant.png")
	con.check(t)
}

// waitAcross polls expr until it is true, tolerating the page navigating
// meanwhile (form submits redirect), which chromedp.Poll does not.
func waitAcross(t *testing.T, ctx context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { try { return !!(`+expr+`); } catch (e) { return false; } })()`))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			where, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + ' ' + (document.getElementById('error')?.textContent || '')`))
			t.Fatalf("%s: not within %s (last error %v; page %s)", what, timeout, err, where)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
