package system

import (
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dronetrack/dronetrack/events"

	"github.com/dronetrack/dronetrack/infra/local"
)

// TestBrowserFlightReplay: a drone flies (armed at 10 s, 90 s in the air
// heading east, disarmed at 110 s); its flight appears in the Flights tab,
// opens with its statistics, and plays at 10x: the marker moves along the
// track, the chart cursor follows it (both placed from the same replay
// time) and the replay clock runs at ten times real time. A screenshot of
// the replay goes to the test output dir.
func TestBrowserFlightReplay(t *testing.T) {
	sys, dir := startBrowserSystem(t, 2, 0, 1)
	demo, err := local.ReadDemoKeys(filepath.Join(dir, local.DemoKeysFile))
	if err != nil || len(demo) == 0 {
		t.Fatalf("demo keys: %v", err)
	}
	d := demo[0]
	start := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Second)
	var reps []events.Report
	for s := 0; s < 120; s++ {
		h, v, east := 0.0, 0.0, 0.0
		if s >= 20 && s < 100 {
			h, v = math.Min(60, float64(s-20)*3), 6
		}
		east = math.Max(0, math.Min(float64(s-20), 80)) * 6
		armed, mode, fix, sats := s >= 10 && s < 110, "AUTO.MISSION", events.FixRTKFix, 17
		reps = append(reps, events.Report{TS: start.Add(time.Duration(s) * time.Second), Lat: 47.3769,
			Lon: 8.5417 + east/(111195*math.Cos(47.3769*math.Pi/180)), Alt: new(410 + h), Height: new(h), Speed: new(v),
			Battery: new(98 - float64(s)/4), Armed: &armed, Mode: &mode, Fix: &fix, Satellites: &sats,
			HAE: new(457.4 + h), VSpeed: new(0.0), HAcc: new(0.02), Link: new(87.0),
			Home: &events.Position{Lat: 47.3769, Lon: 8.5417, Alt: new(410.0)}})
	}
	body, _ := json.Marshal(reps)
	mustPostReport(t, sys.URL(), d.Key, string(body))

	ctx, con := newBrowser(t, 1440, 900)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	run := stepRunner(t, ctx)
	openPage(t, ctx, sys.URL(), dir)
	run("open the Flights tab", chromedp.Click(chromedp.CSS(`#tab-flights`)))
	// This week's flights, not today's: the flight began ten minutes ago,
	// which is yesterday for a run just after midnight. The list loads when
	// asked; process may not have stored the flight yet, so ask again until
	// it is there.
	listed := `document.getElementById('fl-note').textContent !== 'Loading…' && document.querySelectorAll('#fl-fleet .fl-item').length === 1`
	for deadline := time.Now().Add(30 * time.Second); ; {
		run("show this week's flights", chromedp.Click(chromedp.CSS(`#panel-flights .chip[data-range=week]`)))
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](listed, chromedp.WithPollingTimeout(time.Second), chromedp.WithPollingInterval(100*time.Millisecond))); err == nil {
			break
		}
		if time.Now().After(deadline) {
			waitJS(t, ctx, "the flight is listed", listed, time.Second)
		}
	}
	run("open the flight", chromedp.Click(chromedp.CSS(`#fl-fleet .fl-item`)))
	waitJS(t, ctx, "the flight card opens", `!document.getElementById('flight').hidden && window.dronetrack.flightView.tr && window.dronetrack.flightView.tr.pts.length === 101`, 10*time.Second)
	if got := evalJS[string](t, ctx, `document.getElementById('fl-duration').textContent`); got != "2 min" {
		t.Errorf("duration shown %q, want 2 min (100 s)", got)
	}
	if got := evalJS[string](t, ctx, `document.getElementById('fl-maxh').textContent`); got != "60.0 m" {
		t.Errorf("max height shown %q, want 60.0 m", got)
	}
	if got := evalJS[string](t, ctx, `document.querySelector('#fl-downloads a[data-format=gpx]').getAttribute('href')`); got == "" {
		t.Error("no GPX download link")
	}

	// Play at 10x.
	evalJS[bool](t, ctx, `(() => { const s = document.getElementById('fl-speed'); s.value = '10'; s.dispatchEvent(new Event('change')); return true; })()`)
	run("play", chromedp.Click(chromedp.CSS(`#fl-play`)))
	type sample struct {
		T, CursorT, CursorX, Lat, Lon, WantLat, WantLon float64
		Wall                                            float64
	}
	const read = `(() => { const v = window.dronetrack.flightView, tr = v.tr, ll = tr.marker.getLatLng(), want = v.at(tr.t).ll;
		return {T: tr.t, CursorT: tr.cursorT, CursorX: tr.cursorX, Lat: ll.lat, Lon: ll.lng, WantLat: want[0], WantLon: want[1], Wall: performance.now()}; })()`
	var samples []sample
	for range 4 {
		time.Sleep(1500 * time.Millisecond)
		samples = append(samples, evalJS[sample](t, ctx, read))
		if len(samples) == 2 {
			screenshot(t, ctx, "browser-flight-replay.png")
		}
	}
	t0 := float64(start.Add(10 * time.Second).UnixMilli())
	for i, s := range samples {
		if math.Abs(s.CursorT-s.T) > 1 || math.Abs(s.Lat-s.WantLat) > 1e-9 || math.Abs(s.Lon-s.WantLon) > 1e-9 {
			t.Errorf("sample %d: marker and cursor out of step: replay t %v, cursor t %v, marker %v,%v, track at t %v,%v",
				i, s.T, s.CursorT, s.Lat, s.Lon, s.WantLat, s.WantLon)
		}
		if i == 0 {
			continue
		}
		p := samples[i-1]
		if !(s.CursorX > p.CursorX) || !(s.Lon > p.Lon) || !(s.T > p.T) {
			t.Errorf("sample %d: did not advance: cursor x %v -> %v, marker lon %v -> %v, t %v -> %v", i, p.CursorX, s.CursorX, p.Lon, s.Lon, p.T, s.T)
		}
	}
	// 10x: replay time advances ten times as fast as the page's clock. Each
	// sample lands up to a frame after the frame that set t, so the rate is
	// taken over the whole run, loosely.
	f, l := samples[0], samples[len(samples)-1]
	if rate := (l.T - f.T) / (l.Wall - f.Wall); rate < 8 || rate > 11 {
		t.Errorf("replay ran at %.1fx, want 10x", rate)
	}
	if first := samples[0]; first.T <= t0 {
		t.Errorf("replay did not start: t %v", first.T)
	}
	// The drone panel shows the last report's telemetry with each altitude's reference.
	run("close the flight", chromedp.Click(chromedp.CSS(`#fl-close`)))
	evalJS[bool](t, ctx, `window.dronetrack.select(`+strconvQuote(d.DroneID)+`, {}); true`)
	waitJS(t, ctx, "the drone panel shows the telemetry", `document.getElementById('d-mode').textContent === 'AUTO.MISSION'`, 10*time.Second)
	for id, want := range map[string]string{"d-armed": "Disarmed", "d-gps": "RTK fixed · 17 sats · ±0.02 m", "d-link": "87 %",
		"d-alt": "410.0 m", "d-height": "0.0 m", "d-hae": "457.4 m", "d-vspeed": "0.0 m/s"} {
		if got := evalJS[string](t, ctx, `document.getElementById('`+id+`').textContent`); got != want {
			t.Errorf("#%s = %q, want %q", id, got, want)
		}
	}
	for _, ref := range []string{"Altitude above mean sea level", "Height above the take-off point", "Height above the WGS84 ellipsoid"} {
		if !evalJS[bool](t, ctx, `!!document.querySelector('#detail abbr[title="`+ref+`"]')`) {
			t.Errorf("the panel does not say %q", ref)
		}
	}
	screenshot(t, ctx, "browser-drone-telemetry.png")
	con.check(t)
}

func strconvQuote(s string) string { b, _ := json.Marshal(s); return string(b) }
