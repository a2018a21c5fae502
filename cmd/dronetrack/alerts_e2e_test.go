package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/alerting"
	alertsfn "github.com/dronetrack/dronetrack/functions/alerts"
)

// alertSeen records alert changes by "kind raised|resolved" -> alert ids.
type alertSeen struct {
	mu  sync.Mutex
	got map[string][]string
}

func (a *alertSeen) add(kind string, closed bool, id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	verb := "raised"
	if closed {
		verb = "resolved"
	}
	a.got[kind+" "+verb] = append(a.got[kind+" "+verb], id)
}

// counts returns how often each kind/verb was seen.
func (a *alertSeen) counts() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]int{}
	for k, ids := range a.got {
		out[k] = len(ids)
	}
	return out
}

// TestAlertsEndToEnd flies one drone through `up`: it leaves its keep-in
// geofence, runs low and goes silent; the three alerts must appear in the
// API, the SSE stream and a webhook receiver exactly once each, then resolve
// when it re-enters, gets a fresh battery and reports again. The lost-link
// threshold (2 s) and the link-check scheduler (200 ms) are short for the test.
func TestAlertsEndToEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sys, demo := startTestSystem(t, upOptions{DemoDrones: 1, LinkCheckEvery: 200 * time.Millisecond})
	drone := demo[0]
	api, csrf := loginClient(t, sys.URL(), sys.demoLogin.Email, sys.demoLogin.Password)
	call := func(method, path string, body any, want int) []byte {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequestWithContext(ctx, method, sys.URL()+path, rd)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CSRF-Token", csrf)
		resp, err := api.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s; want %d", method, path, resp.StatusCode, out, want)
		}
		return out
	}

	// Rules: exhaustion off so the three alerts under test are the only ones.
	call("PUT", "/api/v1/alert-settings", alerting.Settings{LowBatteryPct: 20, HysteresisPct: 5, LostLinkSecs: 2}, 200)
	call("POST", "/api/v1/geofences", map[string]any{"name": "home", "mode": "keep-in",
		"polygon": []map[string]float64{{"lat": 46.99, "lon": 8.49}, {"lat": 46.99, "lon": 8.51},
			{"lat": 47.01, "lon": 8.51}, {"lat": 47.01, "lon": 8.49}}}, 201)
	// Bad geofences are refused naming the field.
	bad := call("POST", "/api/v1/geofences", map[string]any{"name": "x", "mode": "keep-in",
		"polygon": []map[string]float64{{"lat": 91, "lon": 0}, {"lat": 0, "lon": 1}, {"lat": 1, "lon": 1}}}, 400)
	if !strings.Contains(string(bad), "/polygon/0/lat") {
		t.Errorf("bad fence problem %s; want it to name /polygon/0/lat", bad)
	}

	// The webhook receiver checks every signature.
	hooks := &alertSeen{got: map[string][]string{}}
	var secret string
	var secretMu sync.Mutex
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sig := r.Header.Get(alertsfn.SignatureHeader)
		ts, _, _ := strings.Cut(strings.TrimPrefix(sig, "t="), ",")
		sec, _ := strconv.ParseInt(ts, 10, 64)
		secretMu.Lock()
		want := alertsfn.Sign(secret, time.Unix(sec, 0), body)
		secretMu.Unlock()
		if !hmac.Equal([]byte(sig), []byte(want)) {
			t.Errorf("webhook signature %q; want %q", sig, want)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ce struct {
			ID   string `json:"id"`
			Data struct {
				ID         string     `json:"id"`
				Kind       string     `json:"kind"`
				ResolvedAt *time.Time `json:"resolvedAt"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &ce); err != nil {
			t.Errorf("webhook body %s: %v", body, err)
		}
		hooks.add(ce.Data.Kind, ce.Data.ResolvedAt != nil, ce.Data.ID)
	}))
	defer recv.Close()
	var hook struct{ ID, Secret string }
	secretMu.Lock()
	_ = json.Unmarshal(call("POST", "/api/v1/webhooks", map[string]string{"url": recv.URL}, 201), &hook)
	secret = hook.Secret
	secretMu.Unlock()

	// The live stream.
	streamed := &alertSeen{got: map[string][]string{}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, sys.URL()+"/api/v1/stream", nil)
	resp, err := api.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	go readSSE(resp.Body, func(kind, data string) {
		if kind != "alert" {
			return
		}
		var a alerting.Alert
		if err := json.Unmarshal([]byte(data), &a); err != nil {
			t.Errorf("alert event %s: %v", data, err)
			return
		}
		streamed.add(a.Kind, a.ClosedAt != nil, a.ID)
	})

	base := time.Now().UTC().Add(-time.Minute)
	seq := 0
	post := func(lat, battery float64) {
		t.Helper()
		seq++
		body := fmt.Sprintf(`{"ts":%q,"lat":%g,"lon":8.5,"battery":%g}`,
			base.Add(time.Duration(seq)*time.Second).Format(time.RFC3339Nano), lat, battery)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, sys.URL()+"/v1/telemetry", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+drone.Key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("report: %d", resp.StatusCode)
		}
	}
	listed := func() map[string]int {
		var l struct{ Alerts []alerting.Alert }
		_ = json.Unmarshal(call("GET", "/api/v1/alerts", nil, 200), &l)
		out := map[string]int{}
		for _, a := range l.Alerts {
			if a.DroneID != drone.DroneID {
				t.Errorf("alert of another drone listed: %+v", a)
			}
			verb := "raised"
			if a.ClosedAt != nil {
				verb = "resolved"
			}
			out[a.Kind+" "+verb]++
		}
		return out
	}
	// waitFor polls (bounded) until every view shows want.
	waitFor := func(what string, want map[string]int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			l, s, h := listed(), streamed.counts(), hooks.counts()
			if (cmp.Equal(want, l) && cmp.Equal(want, s) && cmp.Equal(want, h)) || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		for name, got := range map[string]map[string]int{"API": listed(), "stream": streamed.counts(), "webhook": hooks.counts()} {
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("%s: %s alerts (-want +got):\n%s", what, name, diff)
			}
		}
	}

	// Inside the fence, full battery: nothing.
	post(47.0, 90)
	post(47.001, 89)
	// Leaves the fence, then runs low, then goes silent.
	post(47.05, 60)
	post(47.06, 15)
	post(47.07, 14)
	raised := map[string]int{"geofence.breach raised": 1, "battery.low raised": 1, "link.lost raised": 1}
	waitFor("after leaving, running low and going silent", raised)

	// Acknowledge the lost link in the API.
	var l struct{ Alerts []alerting.Alert }
	_ = json.Unmarshal(call("GET", "/api/v1/alerts", nil, 200), &l)
	var lost alerting.Alert
	for _, a := range l.Alerts {
		if a.Kind == alerting.KindLinkLost {
			lost = a
		}
	}
	var acked alerting.Alert
	_ = json.Unmarshal(call("POST", "/api/v1/alerts/"+lost.ID+"/ack", nil, 200), &acked)
	if acked.AcknowledgedBy != sys.demoLogin.Email || acked.AcknowledgedAt == nil {
		t.Errorf("acknowledged alert %+v; want acknowledgedBy %s", acked, sys.demoLogin.Email)
	}
	call("POST", "/api/v1/alerts/no-such-alert/ack", nil, 404)
	// The acknowledgement reaches the stream as a change of the open alert
	// (the stream sends an alert's newest version per poll, so wait for it
	// before the next change).
	for deadline := time.Now().Add(30 * time.Second); streamed.counts()["link.lost raised"] < 2 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}

	// Back inside with a fresh battery, reporting again: all three resolve.
	post(47.0, 100)
	resolvedToo := map[string]int{"geofence.breach resolved": 1, "battery.low resolved": 1, "link.lost resolved": 1}
	// The stream also carries the acknowledgement as a change of the open
	// link.lost alert; the webhook and list do not.
	waitAll := func() {
		deadline := time.Now().Add(30 * time.Second)
		for {
			if cmp.Equal(resolvedToo, listed()) && hooks.counts()["link.lost resolved"] == 1 &&
				streamed.counts()["link.lost resolved"] == 1 || time.Now().After(deadline) {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitAll()
	// Let several more link checks and a duplicate report pass: nothing new
	// may appear.
	post(47.0, 100)
	time.Sleep(time.Second)

	if diff := cmp.Diff(resolvedToo, listed()); diff != "" {
		t.Errorf("API after recovery: (-want +got):\n%s", diff)
	}
	wantHooks := map[string]int{}
	for k, v := range raised {
		wantHooks[k] = v
	}
	for k, v := range resolvedToo {
		wantHooks[k] = v
	}
	if diff := cmp.Diff(wantHooks, hooks.counts()); diff != "" {
		t.Errorf("webhook deliveries, each change once (-want +got):\n%s", diff)
	}
	wantStream := map[string]int{"link.lost raised": 2} // raised, then acknowledged
	for k, v := range wantHooks {
		if k != "link.lost raised" {
			wantStream[k] = v
		}
	}
	if diff := cmp.Diff(wantStream, streamed.counts()); diff != "" {
		t.Errorf("stream alert events, each change once (-want +got):\n%s", diff)
	}
	// Each raised and its resolved name the same alert.
	for _, kind := range []string{"geofence.breach", "battery.low", "link.lost"} {
		h := hooks.got
		if len(h[kind+" raised"]) == 1 && len(h[kind+" resolved"]) == 1 && h[kind+" raised"][0] != h[kind+" resolved"][0] {
			t.Errorf("%s: raised %s but resolved %s", kind, h[kind+" raised"][0], h[kind+" resolved"][0])
		}
	}

	// The closed lost-link alert keeps its acknowledgement.
	_ = json.Unmarshal(call("GET", "/api/v1/alerts", nil, 200), &l)
	for _, a := range l.Alerts {
		if a.ID == lost.ID && (a.ClosedAt == nil || a.AcknowledgedBy != sys.demoLogin.Email) {
			t.Errorf("closed link.lost alert %+v; want closed, acknowledged by %s", a, sys.demoLogin.Email)
		}
	}

	// The delivery log shows one successful attempt per event.
	var dl struct {
		Deliveries []struct {
			EventID string
			OK      bool
		}
	}
	_ = json.Unmarshal(call("GET", "/api/v1/webhooks/"+hook.ID+"/deliveries", nil, 200), &dl)
	var ids []string
	for _, d := range dl.Deliveries {
		if !d.OK {
			t.Errorf("failed delivery %+v", d)
		}
		ids = append(ids, d.EventID)
	}
	sort.Strings(ids)
	if len(ids) != 6 || len(compactStrings(ids)) != 6 {
		t.Errorf("delivery log event ids %v; want 6 distinct", ids)
	}
}

func compactStrings(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
