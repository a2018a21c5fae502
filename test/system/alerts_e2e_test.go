package system

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/tracing"
	alertsfn "github.com/dronetrack/dronetrack/functions/alerts"

	"github.com/dronetrack/dronetrack/infra/local"
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

// alertsAPI calls the session API of a system under test as its demo user.
type alertsAPI struct {
	t    *testing.T
	ctx  context.Context
	base string
	c    *http.Client
	csrf string
}

func newAlertsAPI(t *testing.T, ctx context.Context, sys *local.System) *alertsAPI {
	c, csrf := loginClient(t, sys.URL(), sys.DemoLogin().Email, sys.DemoLogin().Password)
	return &alertsAPI{t: t, ctx: ctx, base: sys.URL(), c: c, csrf: csrf}
}

// call sends body as JSON and fails the test unless the status is want.
func (a *alertsAPI) call(method, path string, body any, want int) []byte {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(a.ctx, method, a.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", a.csrf)
	resp, err := a.c.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		a.t.Fatalf("%s %s: %d %s; want %d", method, path, resp.StatusCode, out, want)
	}
	return out
}

// reporter posts a drone's reports, one second apart, each with a
// traceparent of the trace traceID (a fresh span per report).
type reporter struct {
	t       *testing.T
	ctx     context.Context
	url     string
	key     string
	base    time.Time
	seq     int
	traceID string
}

func newReporter(t *testing.T, ctx context.Context, sys *local.System, drone local.DemoKey) *reporter {
	return &reporter{t: t, ctx: ctx, url: sys.URL() + "/v1/telemetry", key: drone.Key,
		base: time.Now().UTC().Add(-time.Minute), traceID: tracing.New().TraceIDString()}
}

func (r *reporter) post(lat, battery float64) {
	r.t.Helper()
	r.seq++
	body := fmt.Sprintf(`{"ts":%q,"lat":%g,"lon":8.5,"battery":%g}`,
		r.base.Add(time.Duration(r.seq)*time.Second).Format(time.RFC3339Nano), lat, battery)
	req, _ := http.NewRequestWithContext(r.ctx, http.MethodPost, r.url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.key)
	req.Header.Set(tracing.HeaderParent, "00-"+r.traceID+"-"+tracing.New().SpanIDString()+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		r.t.Fatalf("report: %d", resp.StatusCode)
	}
}

// hookReceiver is a tenant's webhook endpoint: it checks every signature,
// answers 503 to the first failFirst POSTs of each event, and records the
// accepted ones (by "kind raised|resolved") with their trace ids.
type hookReceiver struct {
	t         *testing.T
	failFirst int
	srv       *httptest.Server

	mu      sync.Mutex
	secret  string
	posts   map[string]int // event id -> POSTs
	seen    *alertSeen
	traces  map[string][]string // "kind raised|resolved" -> traceparent trace ids
	eventOf map[string]string   // "kind raised|resolved" -> event id
}

func newHookReceiver(t *testing.T, failFirst int) *hookReceiver {
	h := &hookReceiver{t: t, failFirst: failFirst, posts: map[string]int{}, seen: &alertSeen{got: map[string][]string{}},
		traces: map[string][]string{}, eventOf: map[string]string{}}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

// register creates the webhook through the API and keeps its secret.
func (h *hookReceiver) Register(api *alertsAPI) string {
	var hook struct{ ID, Secret string }
	h.mu.Lock()
	defer h.mu.Unlock()
	_ = json.Unmarshal(api.call("POST", "/api/v1/webhooks", map[string]string{"url": h.srv.URL}, 201), &hook)
	h.secret = hook.Secret
	return hook.ID
}

func (h *hookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	sig := r.Header.Get(alertsfn.SignatureHeader)
	ts, _, _ := strings.Cut(strings.TrimPrefix(sig, "t="), ",")
	sec, _ := strconv.ParseInt(ts, 10, 64)
	h.mu.Lock()
	defer h.mu.Unlock()
	if want := alertsfn.Sign(h.secret, time.Unix(sec, 0), body); !hmac.Equal([]byte(sig), []byte(want)) {
		h.t.Errorf("webhook signature %q; want %q", sig, want)
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
		h.t.Errorf("webhook body %s: %v", body, err)
	}
	h.posts[ce.ID]++
	if h.posts[ce.ID] <= h.failFirst {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	h.seen.add(ce.Data.Kind, ce.Data.ResolvedAt != nil, ce.Data.ID)
	key := ce.Data.Kind + " raised"
	if ce.Data.ResolvedAt != nil {
		key = ce.Data.Kind + " resolved"
	}
	tc, _ := tracing.Parse(r.Header.Get(tracing.HeaderParent))
	h.traces[key] = append(h.traces[key], tc.TraceIDString())
	h.eventOf[key] = ce.ID
	w.WriteHeader(http.StatusNoContent)
}

// postsPerEvent is how often each event was POSTed.
func (h *hookReceiver) postsPerEvent() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.posts)
}

// TestAlertsEndToEnd flies one drone through `up`: it leaves its keep-in
// geofence, runs low and goes silent; the three alerts must appear in the
// API, the SSE stream and a webhook receiver exactly once each, then resolve
// when it re-enters, gets a fresh battery and reports again. Webhooks are
// delivered by the broker (alerts-webhooks-* Triggers), and each POST
// continues the trace of the drone's reports (the lost-link raise, caused
// by the link check, has a trace of its own). The lost-link threshold (2 s)
// and the link-check scheduler (200 ms) are short for the test.
func TestAlertsEndToEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sys, demo := startTestSystem(t, local.Options{DemoDrones: 1, LinkCheckEvery: 200 * time.Millisecond})
	drone := demo[0]
	api := newAlertsAPI(t, ctx, sys)
	call := api.call

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
	recv := newHookReceiver(t, 0)
	hooks := recv.seen
	hookID := recv.Register(api)

	// The live stream.
	streamed := &alertSeen{got: map[string][]string{}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, sys.URL()+"/api/v1/stream", nil)
	resp, err := api.c.Do(req)
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

	rep := newReporter(t, ctx, sys, drone)
	post := rep.post
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
	if acked.AcknowledgedBy != sys.DemoLogin().Email || acked.AcknowledgedAt == nil {
		t.Errorf("acknowledged alert %+v; want acknowledgedBy %s", acked, sys.DemoLogin().Email)
	}
	call("POST", "/api/v1/alerts/no-such-alert/ack", nil, 404)
	// The acknowledgement reaches the stream as a change of the open alert
	// (the stream sends an alert's newest version per poll, so wait for it
	// before the next change).
	for deadline := time.Now().Add(30 * time.Second); streamed.counts()["link.lost raised"] < 2 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}

	// From here on the drone must not go quiet for the link check: on a
	// busy machine the views below can take longer than the 2 s threshold
	// to settle after the recovery report, and a second lost link would
	// then be right. The open alert still resolves with the next report.
	call("PUT", "/api/v1/alert-settings", alerting.Settings{LowBatteryPct: 20, HysteresisPct: 5, LostLinkSecs: 3600}, 200)

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

	// Each POST continues the trace of the report that caused the change;
	// the lost-link raise comes from the link check, on a trace of its own.
	recv.mu.Lock()
	if len(recv.traces) != len(wantHooks) {
		t.Errorf("webhook traces for %d changes; want %d", len(recv.traces), len(wantHooks))
	}
	for key, traces := range recv.traces {
		want := []string{rep.traceID}
		if key == "link.lost raised" {
			if len(traces) != 1 || traces[0] == rep.traceID || traces[0] == strings.Repeat("0", 32) {
				t.Errorf("%s webhook trace ids %v; want one valid trace, not the reports'", key, traces)
			}
			continue
		}
		if diff := cmp.Diff(want, traces); diff != "" {
			t.Errorf("%s webhook traceparent trace ids (-want +got):\n%s", key, diff)
		}
	}
	recv.mu.Unlock()

	// The closed lost-link alert keeps its acknowledgement.
	_ = json.Unmarshal(call("GET", "/api/v1/alerts", nil, 200), &l)
	for _, a := range l.Alerts {
		if a.ID == lost.ID && (a.ClosedAt == nil || a.AcknowledgedBy != sys.DemoLogin().Email) {
			t.Errorf("closed link.lost alert %+v; want closed, acknowledged by %s", a, sys.DemoLogin().Email)
		}
	}

	// The delivery log shows one successful attempt per event.
	var dl struct {
		Deliveries []struct {
			EventID string
			OK      bool
		}
	}
	_ = json.Unmarshal(call("GET", "/api/v1/webhooks/"+hookID+"/deliveries", nil, 200), &dl)
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

// TestAlertWebhookRetriedByBroker: a receiver that fails the first two
// POSTs of every event gets each event exactly once with a 2xx, on the
// broker's third delivery (its retries wait 1 s, then 2 s), and the
// delivery log shows both failed attempts before the successful one. No
// retry waits in alerts' memory: the broker redelivers the alert event.
func TestAlertWebhookRetriedByBroker(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sys, demo := startTestSystem(t, local.Options{DemoDrones: 1})
	api := newAlertsAPI(t, ctx, sys)
	api.call("PUT", "/api/v1/alert-settings", alerting.Settings{LowBatteryPct: 20, HysteresisPct: 5, LostLinkSecs: 3600}, 200)
	recv := newHookReceiver(t, 2)
	hookID := recv.Register(api)
	rep := newReporter(t, ctx, sys, demo[0])

	waitHook := func(key string) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); recv.seen.counts()[key] == 0; {
			if time.Now().After(deadline) {
				t.Fatalf("the webhook never accepted %s; POSTs per event %v", key, recv.postsPerEvent())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	rep.post(47.0, 90)
	rep.post(47.0, 10)
	waitHook("battery.low raised")
	rep.post(47.0, 100)
	waitHook("battery.low resolved")
	// Another report and a moment for any stray redelivery: nothing more.
	rep.post(47.0, 100)
	time.Sleep(2 * time.Second)

	recv.mu.Lock()
	raisedID, resolvedID := recv.eventOf["battery.low raised"], recv.eventOf["battery.low resolved"]
	recv.mu.Unlock()
	if diff := cmp.Diff(map[string]int{"battery.low raised": 1, "battery.low resolved": 1}, recv.seen.counts()); diff != "" {
		t.Errorf("events accepted by the webhook, each once (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{raisedID: 3, resolvedID: 3}, recv.postsPerEvent()); diff != "" {
		t.Errorf("POSTs per event: two failures, then the accepted one (-want +got):\n%s", diff)
	}

	var dl struct {
		Deliveries []store.Delivery
	}
	_ = json.Unmarshal(api.call("GET", "/api/v1/webhooks/"+hookID+"/deliveries", nil, 200), &dl)
	got := map[string][]string{}
	for _, d := range dl.Deliveries {
		got[d.EventID] = append(got[d.EventID], fmt.Sprintf("attempt %d: %d ok=%v", d.Attempt, d.StatusCode, d.OK))
	}
	for id := range got {
		slices.Sort(got[id])
	}
	log := []string{"attempt 1: 503 ok=false", "attempt 2: 503 ok=false", "attempt 3: 204 ok=true"}
	if diff := cmp.Diff(map[string][]string{raisedID: log, resolvedID: log}, got); diff != "" {
		t.Errorf("delivery log by event (-want +got):\n%s", diff)
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
