package function

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/tracing"
	"github.com/dronetrack/dronetrack/events"
)

// receiver is a tenant's webhook endpoint: it checks each POST's
// signature, records what it got, and fails the first failFirst POSTs.
type receiver struct {
	t         *testing.T
	secret    string
	failFirst int
	srv       *httptest.Server

	mu      sync.Mutex
	posts   int
	bodies  [][]byte // accepted POSTs only
	headers []http.Header
}

func newReceiver(t *testing.T, secret string, failFirst int) *receiver {
	rc := &receiver{t: t, secret: secret, failFirst: failFirst}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sig := r.Header.Get(SignatureHeader)
		ts, _, _ := strings.Cut(strings.TrimPrefix(sig, "t="), ",")
		sec, _ := strconv.ParseInt(ts, 10, 64)
		if want := Sign(rc.secret, time.Unix(sec, 0), body); !hmac.Equal([]byte(sig), []byte(want)) {
			t.Errorf("signature %q; want %q", sig, want)
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.posts++
		if rc.posts <= rc.failFirst {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		rc.bodies = append(rc.bodies, body)
		rc.headers = append(rc.headers, r.Header.Clone())
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) counts() (posts, accepted int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.posts, len(rc.bodies)
}

// attempts is the webhook's delivery log as "attempt:ok" for one event,
// oldest first.
func attempts(t *testing.T, st store.Store, hookID, eventID string) []string {
	t.Helper()
	ds, err := st.EventDeliveries(context.Background(), "acme", hookID, eventID)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.EventType != events.TypeAlertRaised || (d.OK != (d.Error == "")) {
			t.Errorf("delivery %+v", d)
		}
	}
	return attemptLog(ds)
}

// attemptLog is a delivery log as "attempt:ok", in its order (webhooks and
// notification channels alike).
func attemptLog(ds []store.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, strconv.Itoa(d.Attempt)+":"+strconv.FormatBool(d.OK))
	}
	return out
}

// raisedEvent runs a low-battery state through the handler and returns the
// alert.raised event it published, as the broker would deliver it to
// PathWebhooks (Knative adds knativearrivaltime on the way).
func raisedEvent(t *testing.T, fx *fixture, traceparent string) cloudevents.Event {
	t.Helper()
	st := stateEvent(t, 0, 0, 0, 5)
	if traceparent != "" {
		st.SetExtension(tracing.ExtTraceParent, traceparent)
	}
	if code := fx.send(t, st); code != http.StatusAccepted {
		t.Fatalf("state.updated: %d", code)
	}
	fx.sink.mu.Lock()
	defer fx.sink.mu.Unlock()
	if len(fx.sink.evs) != 1 || fx.sink.evs[0].Type() != events.TypeAlertRaised {
		t.Fatalf("published %v; want one alert.raised", fx.sink.got())
	}
	ev := fx.sink.evs[0].Clone()
	ev.SetExtension("knativearrivaltime", "2026-11-29T12:00:00Z")
	return ev
}

// TestWebhooksDeliveredByBrokerRetries: the broker's redeliveries are the
// webhook retries. A webhook that fails its first two POSTs gets the event
// on the third delivery; another that succeeded at once is never posted
// again; the log numbers every attempt; once all have it, redeliveries
// post nothing. The POSTs continue the state.updated's trace.
func TestWebhooksDeliveredByBrokerRetries(t *testing.T) {
	eachDelivery(t, testWebhooksDeliveredByBrokerRetries)
}

func testWebhooksDeliveredByBrokerRetries(t *testing.T, inProcess bool) {
	fx := newFixture(t)
	fx.inProcess = inProcess
	ctx := context.Background()
	flaky, steady := newReceiver(t, "flaky-secret", 2), newReceiver(t, "steady-secret", 0)
	for _, w := range []store.Webhook{
		{ID: "w1", TenantID: "acme", URL: flaky.srv.URL, Secret: flaky.secret},
		{ID: "w2", TenantID: "acme", URL: steady.srv.URL, Secret: steady.secret},
	} {
		if err := fx.st.CreateWebhook(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	parent := tracing.New()
	ev := raisedEvent(t, fx, parent.TraceParent())
	fx.h.opts.Now = time.Now // attempts get distinct log times, so the log has an order
	if tc, ok := tracing.Parse(extension(ev, tracing.ExtTraceParent)); !ok || tc.TraceID != parent.TraceID || tc.SpanID == parent.SpanID {
		t.Errorf("alert event traceparent %q; want a child in trace %s", extension(ev, tracing.ExtTraceParent), parent.TraceIDString())
	}

	for i, want := range []int{http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusNoContent, http.StatusNoContent} {
		if code := fx.sendTo(t, PathWebhooks, ev); code != want {
			t.Fatalf("delivery %d: %d; want %d", i+1, code, want)
		}
	}
	if posts, ok := flaky.counts(); posts != 3 || ok != 1 {
		t.Errorf("flaky webhook: %d POSTs, %d accepted; want 3, 1", posts, ok)
	}
	if posts, ok := steady.counts(); posts != 1 || ok != 1 {
		t.Errorf("steady webhook: %d POSTs, %d accepted; want 1, 1", posts, ok)
	}
	if diff := cmp.Diff([]string{"1:false", "2:false", "3:true"}, attempts(t, fx.st, "w1", ev.ID())); diff != "" {
		t.Errorf("w1 log (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"1:true"}, attempts(t, fx.st, "w2", ev.ID())); diff != "" {
		t.Errorf("w2 log (-want +got):\n%s", diff)
	}

	for _, rc := range []*receiver{flaky, steady} {
		body, hdr := rc.bodies[0], rc.headers[0]
		var ce map[string]any
		if err := json.Unmarshal(body, &ce); err != nil {
			t.Fatalf("webhook body %s: %v", body, err)
		}
		data, _ := ce["data"].(map[string]any)
		if ce["id"] != ev.ID() || ce["type"] != events.TypeAlertRaised || ce["specversion"] != "1.0" ||
			data["kind"] != alerting.KindBatteryLow || ce["tenantid"] != "acme" {
			t.Errorf("webhook body %s; want the structured alert.raised CloudEvent", body)
		}
		if _, ok := ce["knativearrivaltime"]; ok {
			t.Errorf("webhook body %s carries the broker's knativearrivaltime", body)
		}
		if ct := hdr.Get("Content-Type"); ct != "application/cloudevents+json" {
			t.Errorf("Content-Type %q", ct)
		}
		tc, ok := tracing.Parse(hdr.Get(tracing.HeaderParent))
		if !ok || tc.TraceID != parent.TraceID {
			t.Errorf("webhook traceparent %q; want trace %s", hdr.Get(tracing.HeaderParent), parent.TraceIDString())
		}
	}
}

// An event without webhooks to reach is done; one that is not a valid alert
// event is refused (400: the broker dead-letters it, retrying cannot help).
func TestWebhooksRejectsMalformed(t *testing.T) {
	fx := newFixture(t)
	ev := raisedEvent(t, fx, "")
	if code := fx.sendTo(t, PathWebhooks, ev); code != http.StatusNoContent {
		t.Errorf("no webhooks: %d; want 204", code)
	}
	otherTenant := ev.Clone()
	otherTenant.SetExtension(events.ExtTenantID, "globex")
	badData := ev.Clone()
	_ = badData.SetData(cloudevents.ApplicationJSON, map[string]any{"kind": 42})
	for name, e := range map[string]cloudevents.Event{
		"state.updated":           stateEvent(t, 1, 0, 0, 90),
		"tenant extension ≠ data": otherTenant,
		"undecodable data":        badData,
	} {
		if code := fx.sendTo(t, PathWebhooks, e); code != http.StatusBadRequest {
			t.Errorf("%s: %d; want 400", name, code)
		}
	}
	resp, err := http.Post(fx.srv.URL+PathWebhooks, "application/json", strings.NewReader(`{"not":"an event"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("not a CloudEvent: %d; want 400", resp.StatusCode)
	}
}

// A webhook that never answers 2xx keeps the event failing (503) and
// every attempt logged, until the broker's retries run out.
func TestWebhookUnreachableLogsEachAttempt(t *testing.T) {
	fx := newFixture(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close() // connection refused from now on
	if err := fx.st.CreateWebhook(context.Background(), store.Webhook{ID: "w1", TenantID: "acme", URL: url, Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	ev := raisedEvent(t, fx, "")
	for i := 0; i < 3; i++ {
		fx.setNow(t0.Add(time.Duration(i) * time.Second))
		if code := fx.sendTo(t, PathWebhooks, ev); code != http.StatusServiceUnavailable {
			t.Fatalf("delivery %d: %d; want 503", i+1, code)
		}
	}
	if diff := cmp.Diff([]string{"1:false", "2:false", "3:false"}, attempts(t, fx.st, "w1", ev.ID())); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

// TestResolvedWaitsForRaised: raised and resolved travel on separate
// Triggers, so a resolved event can reach /webhooks while its raised one is
// still being retried. It is not posted to a webhook that lacks the raised
// event (503: the broker retries it later), so a receiver never sees an
// alert close before it opened; a webhook created after the alert opened
// (which may never get the raised event) does not wait.
func TestResolvedWaitsForRaised(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	early, late := newReceiver(t, "early-secret", 0), newReceiver(t, "late-secret", 0)
	raised := raisedEvent(t, fx, "")
	a, err := events.Decode[events.Alert](raised, events.TypeAlertRaised)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []store.Webhook{
		{ID: "early", TenantID: "acme", URL: early.srv.URL, Secret: early.secret, CreatedAt: a.OpenedAt.Add(-time.Hour)},
		{ID: "late", TenantID: "acme", URL: late.srv.URL, Secret: late.secret, CreatedAt: a.OpenedAt.Add(time.Minute)},
	} {
		if err := fx.st.CreateWebhook(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	closed := a
	at := a.OpenedAt.Add(2 * time.Minute)
	closed.ResolvedAt = &at
	resolved, err := events.NewAlert(events.TypeAlertResolved, closed)
	if err != nil {
		t.Fatal(err)
	}

	if code := fx.sendTo(t, PathWebhooks, resolved); code != http.StatusServiceUnavailable {
		t.Fatalf("resolved before raised: %d; want 503 (the early webhook lacks the raised event)", code)
	}
	if posts, _ := early.counts(); posts != 0 {
		t.Errorf("early webhook got %d POSTs before its raised event; want none", posts)
	}
	if _, ok := late.counts(); ok != 1 {
		t.Errorf("late webhook accepted %d POSTs; want the resolved one (it cannot wait for a raised it never gets)", ok)
	}
	for _, ev := range []cloudevents.Event{raised, resolved} {
		if code := fx.sendTo(t, PathWebhooks, ev); code != http.StatusNoContent {
			t.Fatalf("%s: %d; want 204", ev.Type(), code)
		}
	}
	var types []string
	for _, b := range early.bodies {
		var ce struct{ Type string }
		_ = json.Unmarshal(b, &ce)
		types = append(types, ce.Type)
	}
	if diff := cmp.Diff([]string{events.TypeAlertRaised, events.TypeAlertResolved}, types); diff != "" {
		t.Errorf("early webhook got (-want +got):\n%s", diff)
	}
	if posts, _ := late.counts(); posts != 2 {
		t.Errorf("late webhook got %d POSTs; want 2 (resolved, then raised), none repeated", posts)
	}
}
