package system

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/dronetrack/dronetrack/cmd/dronetrack/cli"
	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/events"

	"github.com/dronetrack/dronetrack/infra/local"
)

const chromiumPath = "/usr/bin/chromium"

// browserConsole collects what the page reports: errors fail the test.
type browserConsole struct {
	mu       sync.Mutex
	errors   []string
	warnings []string
	tiles    int // failed tile loads (no internet here), ignored
}

func (c *browserConsole) add(ev any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range ev.Args {
			if a.Value != nil {
				parts = append(parts, string(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		msg := string(ev.Type) + ": " + strings.Join(parts, " ")
		switch ev.Type {
		case runtime.ConsoleAPICalledTypeError, runtime.ConsoleAPICalledTypeAssert:
			c.errors = append(c.errors, msg)
		case runtime.ConsoleAPICalledTypeWarning:
			c.warnings = append(c.warnings, msg)
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		c.errors = append(c.errors, fmt.Sprintf("exception: %s (%s:%d)", msg, d.URL, d.LineNumber))
	case *cdplog.EventEntryAdded:
		e := ev.Entry
		if e.Level != cdplog.EntryLevelError {
			return
		}
		// Map tiles come from the internet, which this machine lacks: the
		// page falls back to its offline basemap, so their failures are
		// expected and counted, not errors.
		if e.Source == cdplog.EntrySourceNetwork && strings.Contains(e.URL, "tile.") {
			c.tiles++
			return
		}
		c.errors = append(c.errors, fmt.Sprintf("log %s: %s %s", e.Source, e.Text, e.URL))
	}
}

func (c *browserConsole) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.warnings {
		t.Logf("console %s", w)
	}
	if c.tiles > 0 {
		t.Logf("ignored %d failed map tile loads (no internet; offline basemap shown)", c.tiles)
	}
	for _, e := range c.errors {
		t.Errorf("browser console: %s", e)
	}
}

// resultsDir is where screenshots go: $TEST_OUTPUT_DIR or test/results.
func resultsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TEST_OUTPUT_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "test", "results")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("results dir: %v", err)
	}
	return dir
}

// newBrowser starts headless chromium for one test.
func newBrowser(t *testing.T, width, height int64) (context.Context, *browserConsole) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("chromium not found at %s (test/run-all.sh installs it: apt-get install -y chromium): %v", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(int(width), int(height)),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	con := &browserConsole{}
	if err := chromedp.Listen(ctx, con.add); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx, con
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(resultsDir(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	t.Logf("screenshot %s", path)
}

// waitJS polls a JavaScript expression until it is truthy.
func waitJS(t *testing.T, ctx context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({ready: !!(window.dronetrack && window.dronetrack.ready), conn: document.getElementById('conn-text')?.textContent, drones: window.dronetrack?.fleet?.drones?.size, events: window.dronetrack?.events})`))
		t.Fatalf("%s: %v (page: %s)", what, err, state)
	}
}

func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %q: %v", expr, err)
	}
	return v
}

// startBrowserSystem starts `up` in-process with drones demo drones, the
// first simulate of them flown by the simulator at rate reports/s.
func startBrowserSystem(t *testing.T, drones, simulate int, rate float64) (*local.System, string) {
	t.Helper()
	var sf local.SimSettings
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	cli.RegisterSimFlags(fs, &sf, 0)
	if err := fs.Parse([]string{"--rate", fmt.Sprint(rate), "--silent", "0.1", "--silent-for", "40s"}); err != nil {
		t.Fatal(err)
	}
	logs := &testenv.LogBuffer{}
	dir := t.TempDir()
	sys, err := local.Start(t.Context(), local.Options{
		DataDir: dir, HTTPAddr: "127.0.0.1:0", LogLevel: slog.LevelWarn, Log: logs, Out: logs,
		Simulate: simulate, DemoDrones: drones, Sim: sf, StopTimeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatalf("start system: %v", err)
	}
	t.Cleanup(func() {
		_ = sys.Shutdown()
		if t.Failed() {
			t.Logf("system output:\n%s", logs.String())
		}
	})
	return sys, dir
}

// openPage loads the page and, when accounts are on (the page shows its
// sign-in form), signs in as the demo owner from DIR/demo-login.json.
func openPage(t *testing.T, ctx context.Context, url, dir string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open page: %v", err)
	}
	waitJS(t, ctx, "page starts", `(window.dronetrack && window.dronetrack.ready) || !document.getElementById('signin').hidden`, 20*time.Second)
	if evalJS[bool](t, ctx, `!!(window.dronetrack && window.dronetrack.ready)`) {
		return
	}
	raw, err := os.ReadFile(filepath.Join(dir, "demo-login.json"))
	if err != nil {
		t.Fatalf("the page asks to sign in but the demo login is unreadable: %v", err)
	}
	var login struct{ Email, Password string }
	if err := json.Unmarshal(raw, &login); err != nil {
		t.Fatalf("demo login: %v", err)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#si-email`), login.Email),
		chromedp.SendKeys(chromedp.CSS(`#si-password`), login.Password),
		chromedp.Click(chromedp.CSS(`#si-submit`)),
	); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	waitJS(t, ctx, "signed in", `window.dronetrack && window.dronetrack.ready`, 20*time.Second)
}

// TestBrowserFleetMap is the operator's walk through the page.
func TestBrowserFleetMap(t *testing.T) {
	sys, dir := startBrowserSystem(t, 41, 40, 1)
	ctx, con := newBrowser(t, 1440, 900)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	// The page may ask to sign in first: screenshot that too.
	if err := chromedp.Do(ctx, chromedp.Navigate(sys.URL())); err != nil {
		t.Fatalf("open page: %v", err)
	}
	waitJS(t, ctx, "page starts", `(window.dronetrack && window.dronetrack.ready) || !document.getElementById('signin').hidden`, 20*time.Second)
	if !evalJS[bool](t, ctx, `document.getElementById('signin').hidden`) {
		screenshot(t, ctx, "browser-signin.png")
	}
	openPage(t, ctx, sys.URL(), dir)
	waitJS(t, ctx, "markers appear", `window.dronetrack && window.dronetrack.ready && document.querySelectorAll('.leaflet-marker-icon.drone-icon').length >= 20`, 20*time.Second)
	waitJS(t, ctx, "the offline basemap is drawn", `window.dronetrack.basemapReady === true`, 10*time.Second)
	// Past the antimeridian too: Chukotka (66°N, 172°W) seen a turn east, at
	// 188°, where a view near the date line or a fence across it looks.
	if !evalJS[bool](t, ctx, `window.dronetrack.outlines.getLayers().some((copy) => copy.getLayers().some((c) => c.getBounds().contains([66, 188])))`) {
		t.Error("the offline basemap has no outline past 180° (blank map east of the date line)")
	}

	// Markers move: the positions of the same drones' markers change (read
	// from the markers themselves, so a map pan does not count as movement).
	const snap = `Object.fromEntries([...window.dronetrack.layer.single].map(([id, m]) => [id, m.getLatLng().lat.toFixed(7) + ',' + m.getLatLng().lng.toFixed(7)]))`
	first := evalJS[map[string]string](t, ctx, snap)
	evalJS[bool](t, ctx, `window.__first = `+snap+`; true`)
	waitJS(t, ctx, "markers move", `(() => { const now = `+snap+`; let moved = 0; for (const id in now) if (window.__first[id] && window.__first[id] !== now[id]) moved++; return moved >= 5; })()`, 15*time.Second)
	second := evalJS[map[string]string](t, ctx, snap)
	moved := 0
	for id, tr := range second {
		if f, ok := first[id]; ok && f != tr {
			moved++
		}
	}
	t.Logf("%d markers on the map, %d moved between two reads; SSE drone events so far: %v", len(second), moved,
		evalJS[float64](t, ctx, `window.dronetrack.events || 0`))
	screenshot(t, ctx, "browser-fleet.png")

	// The fleet list: search narrows it, then a drone's detail opens from it.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#q`), "demo-00")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "search narrows the list", `document.getElementById('shown').textContent.startsWith('9 of')`, 5*time.Second)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#list-inner .drow`))); err != nil {
		t.Fatalf("click first drone: %v", err)
	}
	waitJS(t, ctx, "detail opens", `!document.getElementById('detail').hidden && document.getElementById('d-batt').textContent.includes('%')`, 5*time.Second)
	name := evalJS[string](t, ctx, `document.getElementById('d-name').textContent`)
	id := evalJS[string](t, ctx, `document.getElementById('d-id').textContent`)
	if !strings.HasPrefix(name, "demo-00") || id == "" {
		t.Errorf("detail shows %q (%q), want a demo-00x drone", name, id)
	}
	if sel := evalJS[string](t, ctx, `window.dronetrack.selected`); sel != id {
		t.Errorf("selected drone = %q, want %q", sel, id)
	}

	// History: the last 15 minutes as a polyline, then replay.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`.h-quick .chip[data-min="15"]`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "history track drawn", `window.dronetrack.track && window.dronetrack.track.pts.length >= 2 && document.querySelectorAll('.leaflet-overlay-pane path').length >= 2`, 10*time.Second)
	pts := evalJS[float64](t, ctx, `window.dronetrack.track.pts.length`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#h-play`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "replay advances", `Number(document.getElementById('h-slider').value) > 0 && Number(document.getElementById('h-slider').value) < 1000`, 5*time.Second)
	t.Logf("history: %v points; replay at %s", pts, evalJS[string](t, ctx, `document.getElementById('h-info').textContent`))
	screenshot(t, ctx, "browser-detail-history.png")

	// Alerts: the one drone the simulator does not fly reports 8 % battery
	// through ingest, which raises a battery alert (once alerting runs);
	// acknowledge it from the alerts panel.
	reportLowBattery(t, sys.URL(), dir)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#tab-alerts`))); err != nil {
		t.Fatal(err)
	}
	var nAlerts float64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#alerts-refresh`))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		if nAlerts = evalJS[float64](t, ctx, `window.dronetrack.alerts.filter(a => !a.acknowledgedAt).length`); nAlerts > 0 {
			break
		}
	}
	ackable := evalJS[bool](t, ctx, `window.dronetrack.ackSupported`)
	switch {
	case nAlerts > 0 && ackable:
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#alerts .ack`))); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, "alert acknowledged", `window.dronetrack.acked >= 1 && window.dronetrack.alerts.some(a => a.acknowledgedAt)`, 5*time.Second)
		t.Logf("acknowledged one of %v open alerts", nAlerts)
	default:
		t.Logf("no alert acknowledged: %v open alerts, ack in the API: %v (alerting not landed yet)", nAlerts, ackable)
	}
	screenshot(t, ctx, "browser-alerts.png")

	// A phone: the side panel becomes a bottom sheet; the page still works.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulatePortrait)); err != nil {
		t.Fatal(err)
	}
	openPage(t, ctx, sys.URL(), dir)
	waitJS(t, ctx, "phone: markers appear", `window.dronetrack && window.dronetrack.ready && document.querySelectorAll('.leaflet-marker-icon').length > 0`, 20*time.Second)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#toggle-side`))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	screenshot(t, ctx, "browser-phone.png")
	con.check(t)
}

// longTaskProbe records long tasks and frame times from page start.
const longTaskProbe = `
window.__perf = { long: [], frames: [], measuring: false };
try {
  new PerformanceObserver((l) => { for (const e of l.getEntries()) if (window.__perf.measuring) window.__perf.long.push(e.duration); })
    .observe({ type: 'longtask', buffered: false });
} catch (e) {}
(function loop(prev) {
  requestAnimationFrame((t) => { if (window.__perf.measuring && prev) window.__perf.frames.push(t - prev); loop(t); });
})(0);
`

type perfFigures struct {
	LongTasks   int     `json:"longTasks"`
	LongTotalMS float64 `json:"longTotal"`
	LongMaxMS   float64 `json:"longMax"`
	Frames      int     `json:"frames"`
	FrameP50    float64 `json:"p50"`
	FrameP95    float64 `json:"p95"`
	FrameP99    float64 `json:"p99"`
	FrameMax    float64 `json:"max"`
	Events      float64 `json:"events"`
	Singles     int     `json:"singles"`
	Clusters    int     `json:"clusters"`
}

const perfRead = `(() => {
  const p = window.__perf; const f = [...p.frames].sort((a, b) => a - b);
  const q = (x) => f.length ? f[Math.min(f.length - 1, Math.floor(x * f.length))] : 0;
  const c = window.dronetrack.layer.counts();
  return JSON.stringify({ longTasks: p.long.length, longTotal: p.long.reduce((a, b) => a + b, 0), longMax: Math.max(0, ...p.long),
    frames: f.length, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: f.length ? f[f.length - 1] : 0,
    events: (window.dronetrack.events || 0) - (p.events0 || 0), singles: c.single, clusters: c.clusters });
})()`

func measure(t *testing.T, ctx context.Context, label string, d time.Duration) perfFigures {
	t.Helper()
	evalJS[bool](t, ctx, `window.__perf.long = []; window.__perf.frames = []; window.__perf.events0 = window.dronetrack.events || 0; window.__perf.measuring = true; true`)
	time.Sleep(d)
	raw := evalJS[string](t, ctx, `window.__perf.measuring = false; `+perfRead)
	var p perfFigures
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		t.Fatalf("perf figures %s: %v", raw, err)
	}
	t.Logf("%s over %v: %d SSE drone events; %d long tasks (total %.0f ms, max %.0f ms); %d frames, frame time p50 %.1f ms p95 %.1f ms p99 %.1f ms max %.1f ms; %d markers + %d clusters drawn",
		label, d, int(p.Events), p.LongTasks, p.LongTotalMS, p.LongMaxMS, p.Frames, p.FrameP50, p.FrameP95, p.FrameP99, p.FrameMax, p.Singles, p.Clusters)
	return p
}

// TestBrowserFleet5000 opens the page on a 5,000-drone fleet (states seeded
// through the store, some silent, some low on battery) while the simulator
// flies 500 of them at 1 Hz, and reports long tasks and frame times while
// the SSE updates flow (figures only: no timed assertions).
func TestBrowserFleet5000(t *testing.T) {
	const drones, flying = 5000, 500
	start := time.Now()
	sys, dir := startBrowserSystem(t, drones, 0, 1)
	demo, err := local.ReadDemoKeys(filepath.Join(dir, local.DemoKeysFile))
	if err != nil || len(demo) < drones {
		t.Fatalf("demo keys: %d, %v", len(demo), err)
	}
	seedStates(t, sys, demo[:drones])
	t.Logf("system with %d drones and their states up in %v", drones, time.Since(start).Round(time.Millisecond))
	ctx, con := newBrowser(t, 1440, 900)
	ctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: longTaskProbe}); err != nil {
		t.Fatalf("install probe: %v", err)
	}
	openPage(t, ctx, sys.URL(), dir)
	waitJS(t, ctx, "5,000 drones listed", `window.dronetrack && window.dronetrack.ready && window.dronetrack.fleet.drones.size >= 5000`, 30*time.Second)
	waitJS(t, ctx, "positions for every drone", `[...window.dronetrack.fleet.drones.values()].filter(d => d.state).length >= 5000`, 20*time.Second)
	sys.StartSim(t.Context(), demo[:flying])
	waitJS(t, ctx, "live updates flow", `window.dronetrack.events > 200`, 30*time.Second)
	waitJS(t, ctx, "clusters drawn", `document.querySelectorAll('.cluster-icon').length > 0`, 10*time.Second)

	all := measure(t, ctx, "whole fleet in view (clustered)", 8*time.Second)
	screenshot(t, ctx, "browser-5000.png")
	if all.Events == 0 {
		t.Errorf("no SSE drone events arrived while measuring")
	}

	// Zoom to street level: a few hundred individual markers moving.
	evalJS[bool](t, ctx, `(() => { const d = [...window.dronetrack.fleet.drones.values()].find(d => d.state); window.dronetrack.layer.map.setView([d.state.lat, d.state.lon], 16, { animate: false }); return true; })()`)
	time.Sleep(500 * time.Millisecond)
	measure(t, ctx, "street level (zoom 16)", 5*time.Second)
	screenshot(t, ctx, "browser-5000-zoom.png")
	con.check(t)
}

// seedStates gives every drone a state through the store: spread around the
// simulator's centre, random headings and batteries (some low), and report
// times up to a minute old (so some are silent).
func seedStates(t *testing.T, sys *local.System, demo []local.DemoKey) {
	t.Helper()
	rng := rand.New(rand.NewPCG(5000, 1))
	now := time.Now().UTC()
	var wg sync.WaitGroup
	errs := make(chan error, len(demo))
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				d := demo[i]
				st := events.DroneState{
					TS:  now.Add(-time.Duration(float64(time.Minute) * rng.Float64() * rng.Float64())),
					Lat: 47.3769 + (rng.Float64()-0.5)*0.06, Lon: 8.5417 + (rng.Float64()-0.5)*0.09,
					Alt: new(400 + rng.Float64()*120), Speed: new(rng.Float64() * 18), Heading: new(rng.Float64() * 360),
					Battery: new(5 + rng.Float64()*95), UpdatedAt: now,
				}
				_, _, err := sys.Store().UpdateState(t.Context(), d.TenantID, d.DroneID, func(*events.DroneState) (events.DroneState, bool) { return st, true })
				if err != nil {
					errs <- fmt.Errorf("seed %s: %w", d.DroneID, err)
				}
			}
		}()
	}
	for i := range demo {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// reportLowBattery sends one report at 8 % battery for the last demo drone
// (the one the simulator does not fly) through the public ingest API.
func reportLowBattery(t *testing.T, base, dir string) {
	t.Helper()
	reportBattery(t, base, dir, 8)
}

// reportBattery sends one report at battery percent for the last demo drone
// through the public ingest API and returns the drone's id.
func reportBattery(t *testing.T, base, dir string, battery float64) string {
	t.Helper()
	demo, err := local.ReadDemoKeys(filepath.Join(dir, local.DemoKeysFile))
	if err != nil || len(demo) == 0 {
		t.Fatalf("demo keys: %v", err)
	}
	d := demo[len(demo)-1]
	body, _ := json.Marshal(events.Report{TS: time.Now().UTC(), Lat: 47.3769, Lon: 8.5417, Alt: new(420.0), Battery: new(battery)})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/v1/telemetry", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+d.Key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("report battery %g %%: %v", battery, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("report battery %g %%: status %d", battery, resp.StatusCode)
	}
	return d.DroneID
}

// TestBrowserBatteryThreshold: the map's 'low' colour follows the tenant's
// battery threshold (the battery.low alert's), not a number in the page. A
// drone at 25 % is OK under the default 20 %; once the tenant raises the
// threshold to 30 % the page shows it low, marker, list row and detail.
func TestBrowserBatteryThreshold(t *testing.T) {
	sys, dir := startBrowserSystem(t, 3, 0, 1)
	ctx, con := newBrowser(t, 1280, 800)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	id := reportBattery(t, sys.URL(), dir, 25)
	openPage(t, ctx, sys.URL(), dir)
	marker := fmt.Sprintf(`window.dronetrack.layer.single.get(%q)?._inner?.className || ''`, id)
	row := fmt.Sprintf(`document.querySelector('#list-inner .drow[data-id=%q]')?.className || ''`, id)
	waitJS(t, ctx, "the drone at 25 % on the map", fmt.Sprintf(`window.dronetrack.fleet.drones.get(%q)?.state?.battery === 25 && (%s).includes('s-')`, id, marker), 20*time.Second)
	if got := evalJS[float64](t, ctx, `window.dronetrack.alertSettings?.lowBatteryPct ?? -1`); got != 20 {
		t.Fatalf("the page read threshold %v, want the default 20", got)
	}
	if m, r := evalJS[string](t, ctx, marker), evalJS[string](t, ctx, row); !strings.Contains(m, "s-ok") || !strings.Contains(r, "s-ok") {
		t.Fatalf("25 %% under the default 20 %% threshold: marker %q, row %q, want s-ok", m, r)
	}

	// A manager raises the threshold (from the page's session, as the
	// settings form would); the drone reports again at the same battery.
	status, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`(async () => {
  const csrf = decodeURIComponent((document.cookie.match(/(?:^|;\s*)(?:__Host-)?dt_csrf=([^;]+)/) || [])[1] || '');
  const r = await fetch('/api/v1/alert-settings', { method: 'PUT', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
    body: JSON.stringify({ lowBatteryPct: 30, hysteresisPct: 5, minTimeToEmptySecs: 300, lostLinkSecs: 60 }) });
  return r.status;
})()`, chromedp.EvalAwaitPromise))
	if err != nil || status != http.StatusOK {
		t.Fatalf("PUT /api/v1/alert-settings: status %v, %v", status, err)
	}
	reportBattery(t, sys.URL(), dir, 25)
	// The page re-reads the settings when an alert opens (this report
	// opens battery.low) and every 15 s; well before the drone goes silent
	// (the tenant's lostLinkSecs, 60 s, after its report).
	waitJS(t, ctx, "the marker turns low", fmt.Sprintf(`(%s).includes('s-low')`, marker), 25*time.Second)
	waitJS(t, ctx, "the list row turns low", fmt.Sprintf(`(%s).includes('s-low')`, row), 5*time.Second)
	if got := evalJS[float64](t, ctx, `window.dronetrack.alertSettings.lowBatteryPct`); got != 30 {
		t.Errorf("the page holds threshold %v, want 30", got)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#list-inner .drow[data-id=%q]`, id)))); err != nil {
		t.Fatalf("open the drone: %v", err)
	}
	waitJS(t, ctx, "the detail shows low", `document.getElementById('d-status').className.includes('s-low') && document.getElementById('d-batt-bar').className === 'lowbar'`, 5*time.Second)
	screenshot(t, ctx, "browser-battery-threshold.png")

	// The map's 'silent' follows the tenant's lost-link time too: with 5 s,
	// the reloaded page shows the drone silent while its last report is
	// younger than the 30 s the page used to hard-code (and than the default
	// minute).
	status, err = chromedp.Run(ctx, chromedp.Evaluate[float64](`(async () => {
  const csrf = decodeURIComponent((document.cookie.match(/(?:^|;\s*)(?:__Host-)?dt_csrf=([^;]+)/) || [])[1] || '');
  const r = await fetch('/api/v1/alert-settings', { method: 'PUT', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
    body: JSON.stringify({ lowBatteryPct: 30, hysteresisPct: 5, minTimeToEmptySecs: 300, lostLinkSecs: 5 }) });
  return r.status;
})()`, chromedp.EvalAwaitPromise))
	if err != nil || status != http.StatusOK {
		t.Fatalf("PUT /api/v1/alert-settings lostLinkSecs 5: status %v, %v", status, err)
	}
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatalf("reload the page: %v", err)
	}
	waitJS(t, ctx, "the page reads lostLinkSecs 5", `window.dronetrack.alertSettings?.lostLinkSecs === 5`, 20*time.Second)
	waitJS(t, ctx, "the marker turns silent", fmt.Sprintf(`(%s).includes('s-silent')`, marker), 20*time.Second)
	waitJS(t, ctx, "the list row turns silent", fmt.Sprintf(`(%s).includes('s-silent')`, row), 10*time.Second)
	if age := evalJS[float64](t, ctx, fmt.Sprintf(`Date.now() - window.dronetrack.fleet.drones.get(%q).t`, id)); age >= 30_000 {
		t.Errorf("the drone showed silent only %.0f s after its report; with lostLinkSecs 5 it is silent from 5 s", age/1000)
	}
	con.check(t)
}

// acceptDialogs answers every window.confirm (and alert) of the page with
// OK, as a user confirming a deletion would.
func acceptDialogs(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := chromedp.Listen(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			go func() {
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
			}()
		}
	}); err != nil {
		t.Fatal(err)
	}
}

// stepRunner returns run(what, actions...): it runs the chromedp actions on
// ctx and fails the test naming the step when one fails.
func stepRunner(t *testing.T, ctx context.Context) func(what string, actions ...chromedp.Action[chromedp.Void]) {
	return func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
}
