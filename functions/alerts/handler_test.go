package function

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/publish"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/bolt"
	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/events"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// sink is a broker stand-in recording the events published to it; fail
// makes it answer 503, failNext answers 503 to that many publishes only.
type sink struct {
	mu       sync.Mutex
	evs      []cloudevents.Event
	fail     atomic.Bool
	failNext atomic.Int32
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.fail.Load() || s.failNext.Add(-1) >= 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	ev, err := cehttp.NewEventFromHTTPRequest(r)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.evs = append(s.evs, *ev)
	s.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

func (s *sink) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.evs {
		a, _ := events.Decode[events.Alert](e, e.Type())
		verb := "raised"
		if e.Type() == events.TypeAlertResolved {
			verb = "resolved"
		}
		out = append(out, verb+" "+alerting.Key(a.Kind, a.FenceID))
	}
	return out
}

type fixture struct {
	st   store.Store
	sink *sink
	srv  *httptest.Server
	h    *Handler
	now  atomic.Pointer[time.Time]
	// inProcess: events are handed over as `up`'s broker does, from the
	// delivery without an HTTP encoding (testenv.DeliverInProcess).
	inProcess bool
}

// eachDelivery runs test with events delivered over HTTP in binary content
// mode (the cluster, TCP) and handed over in process without an HTTP
// encoding (`up`).
func eachDelivery(t *testing.T, test func(t *testing.T, inProcess bool)) {
	t.Run("http", func(t *testing.T) { test(t, false) })
	t.Run("in-process", func(t *testing.T) { test(t, true) })
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureOn(t, openBolt(t))
}

func openBolt(t *testing.T) store.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newFixtureOn serves alerts on st, seeded with tenant acme and drones d1
// and d2; each store call is bounded by the default STORE_TIMEOUT, as
// Start does.
func newFixtureOn(t *testing.T, st store.Store) *fixture {
	t.Helper()
	ctx := context.Background()
	if err := st.CreateTenant(ctx, store.Tenant{ID: "acme", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"d1", "d2"} {
		if err := st.CreateDrone(ctx, store.Drone{ID: id, TenantID: "acme", Name: id, KeyHash: "h-" + id}); err != nil {
			t.Fatal(err)
		}
	}
	fx := &fixture{st: st, sink: &sink{}}
	now := t0
	fx.now.Store(&now)
	sinkSrv := httptest.NewServer(fx.sink)
	t.Cleanup(sinkSrv.Close)
	pub, err := publish.New(sinkSrv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	fx.h = NewHandler(withStoreDeadline(st, 0), pub, Options{RulesTTL: -1, Now: func() time.Time { return *fx.now.Load() }})
	fx.srv = httptest.NewServer(fx.h)
	t.Cleanup(fx.srv.Close)
	return fx
}

func (fx *fixture) setNow(t time.Time) { fx.now.Store(&t) }

func (fx *fixture) send(t *testing.T, ev cloudevents.Event) int {
	t.Helper()
	return fx.sendTo(t, "/", ev)
}

// sendTo delivers ev to path in binary mode, as the broker does, or in
// process (inProcess).
func (fx *fixture) sendTo(t *testing.T, path string, ev cloudevents.Event) int {
	t.Helper()
	if fx.inProcess {
		resp, _ := testenv.DeliverInProcess(t, fx.h, path, ev)
		return resp.StatusCode
	}
	return testenv.PostEvent(t, fx.srv.URL+path, ev).StatusCode
}

func stateEvent(t *testing.T, sec int, lat, lon, batt float64) cloudevents.Event {
	return droneStateEvent(t, "d1", sec, lat, lon, batt)
}

func droneStateEvent(t *testing.T, droneID string, sec int, lat, lon, batt float64) cloudevents.Event {
	t.Helper()
	ts := t0.Add(time.Duration(sec) * time.Second)
	ev, err := events.NewStateUpdated(events.StateUpdated{TenantID: "acme", DroneID: droneID,
		State: events.DroneState{TS: ts, UpdatedAt: ts, Lat: lat, Lon: lon, Battery: &batt}})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func pingEvent() cloudevents.Event {
	ev := cloudevents.New()
	ev.SetID("ping-1")
	ev.SetType(TypePing)
	ev.SetSource("/apis/v1/namespaces/dronetrack/pingsources/link-check")
	ev.SetExtension(ExtDronetrackType, events.TypeLinkCheck)
	_ = ev.SetData(cloudevents.ApplicationJSON, map[string]string{"reason": "periodic"})
	return ev
}

func TestRulesToEvents(t *testing.T) { eachDelivery(t, testRulesToEvents) }

func testRulesToEvents(t *testing.T, inProcess bool) {
	fx := newFixture(t)
	fx.inProcess = inProcess
	ctx := context.Background()
	fence := alerting.Fence{ID: "yard", TenantID: "acme", Name: "yard", Mode: alerting.ModeKeepIn,
		Polygon: []alerting.Point{{Lat: 0, Lon: 0}, {Lat: 0, Lon: 1}, {Lat: 1, Lon: 1}, {Lat: 1, Lon: 0}}}
	if err := fx.st.CreateGeofence(ctx, fence); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		ev   cloudevents.Event
		now  time.Time
		want []string
	}{
		{stateEvent(t, 0, 0.5, 0.5, 90), t0, nil},
		{stateEvent(t, 1, 1.5, 0.5, 90), t0.Add(time.Second), []string{"raised geofence.breach/yard"}},
		{stateEvent(t, 1, 1.5, 0.5, 90), t0.Add(time.Second), nil}, // redelivered
		{stateEvent(t, 0, 1.5, 0.5, 5), t0.Add(time.Second), nil},  // late, low: ignored
		{stateEvent(t, 2, 1.5, 0.5, 19), t0.Add(2 * time.Second), []string{"raised battery.low"}},
		{stateEvent(t, 3, 1.5, 0.5, 21), t0.Add(3 * time.Second), nil}, // hysteresis
		{pingEvent(), t0.Add(64 * time.Second), []string{"raised link.lost"}},
		{pingEvent(), t0.Add(94 * time.Second), nil},
		{stateEvent(t, 100, 0.5, 0.5, 100), t0.Add(100 * time.Second), []string{"resolved battery.low", "resolved geofence.breach/yard", "resolved link.lost"}},
	}
	var all []string
	for i, s := range steps {
		fx.setNow(s.now)
		if code := fx.send(t, s.ev); code != http.StatusAccepted {
			t.Fatalf("step %d: status %d", i, code)
		}
		all = append(all, s.want...)
		if diff := cmp.Diff(all, fx.sink.got()); diff != "" {
			t.Fatalf("step %d: published (-want +got):\n%s", i, diff)
		}
	}
	list, err := fx.st.ListAlerts(ctx, "acme", time.Time{}, 0)
	if err != nil || len(list) != 3 {
		t.Fatalf("stored alerts = %d, %v; want 3", len(list), err)
	}
}

func TestPublishFailureRetriesFromOutbox(t *testing.T) {
	fx := newFixture(t)
	fx.sink.fail.Store(true)
	if code := fx.send(t, stateEvent(t, 0, 0, 0, 5)); code != http.StatusServiceUnavailable {
		t.Fatalf("with the broker down: %d; want 503", code)
	}
	fx.sink.fail.Store(false)
	// The broker redelivers the same event: the state is no longer new, but
	// the outbox still holds the raised event.
	if code := fx.send(t, stateEvent(t, 0, 0, 0, 5)); code != http.StatusAccepted {
		t.Fatalf("redelivery: %d", code)
	}
	if code := fx.send(t, stateEvent(t, 0, 0, 0, 5)); code != http.StatusAccepted {
		t.Fatalf("second redelivery: %d", code)
	}
	if diff := cmp.Diff([]string{"raised battery.low"}, fx.sink.got()); diff != "" {
		t.Errorf("published (-want +got):\n%s", diff)
	}
}

func TestRejectsOtherEvents(t *testing.T) {
	fx := newFixture(t)
	ev := cloudevents.New()
	ev.SetID("x")
	ev.SetType("dev.example.other")
	ev.SetSource("/x")
	if code := fx.send(t, ev); code != http.StatusBadRequest {
		t.Errorf("unexpected type: %d; want 400", code)
	}
}

func TestFunctionLifecycle(t *testing.T) {
	f := New()
	srv := httptest.NewServer(http.HandlerFunc(f.Handle))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("before Start: %d", resp.StatusCode)
	}
	ctx := context.Background()
	if err := f.Start(ctx, map[string]string{EnvStoreURL: "bolt://" + filepath.Join(t.TempDir(), "s.db")}); err == nil {
		t.Error("Start without K_SINK succeeded")
	}
	cfg := map[string]string{EnvStoreURL: "bolt://" + filepath.Join(t.TempDir(), "s.db"), EnvSink: "http://127.0.0.1:1/"}
	if err := f.Start(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if ok, _ := f.Ready(ctx); !ok {
		t.Error("not ready after Start")
	}
	if err := f.Stop(ctx); err != nil {
		t.Error(err)
	}
}

func TestWebhookClientRefusesPrivateAddresses(t *testing.T) {
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer recv.Close()
	if _, err := webhookClient(false).Get(recv.URL); err == nil || !strings.Contains(err.Error(), "not public") {
		t.Errorf("loopback webhook: %v; want refused as not public", err)
	}
	resp, err := webhookClient(true).Get(recv.URL)
	if err != nil {
		t.Fatalf("loopback allowed: %v", err)
	}
	resp.Body.Close()
}

func TestRetiredDroneLosesNoLink(t *testing.T) {
	fx := newFixture(t)
	if code := fx.send(t, droneStateEvent(t, "d2", 0, 0, 0, 90)); code != http.StatusAccepted {
		t.Fatalf("state: %d", code)
	}
	if err := fx.st.RetireDrone(context.Background(), "acme", "d2"); err != nil {
		t.Fatal(err)
	}
	fx.setNow(t0.Add(time.Hour))
	if code := fx.send(t, pingEvent()); code != http.StatusAccepted {
		t.Fatalf("link check: %d", code)
	}
	if got := fx.sink.got(); len(got) != 0 {
		t.Errorf("published %v for a retired drone; want nothing", got)
	}
}

// TestConcurrentDeliveriesPublishOnce: the broker delivers a drone's events
// concurrently and redelivers; whatever interleaving, each transition is
// published once.
func TestConcurrentDeliveriesPublishOnce(t *testing.T) {
	fx := newFixture(t)
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// States 0..3 (battery 90, 10, 10, 10), each delivered four times.
			batt := 10.0
			if i%4 == 0 {
				batt = 90
			}
			if code := fx.send(t, stateEvent(t, i%4, 0, 0, batt)); code != http.StatusAccepted {
				t.Errorf("status %d", code)
			}
		}()
	}
	wg.Wait()
	got := fx.sink.got()
	// Whether the 90% state came first or late (then ignored), the battery
	// is low from state 1 on: one alert, published once.
	list, err := fx.st.ListAlerts(context.Background(), "acme", time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"raised battery.low"}, got); diff != "" || len(list) != 1 {
		t.Errorf("published (-want +got):\n%s\nstored %d alerts; want 1", diff, len(list))
	}
}

// TestWebhookClientRefusesNonPublicRanges: besides RFC 1918 and loopback,
// the dialer refuses the special ranges that reach inside a cluster or a
// cloud network (CGNAT 100.64/10 pods and nodes, benchmarking 198.18/15,
// IETF 192.0.0/24) and IPv6 addresses that embed a private IPv4 (NAT64,
// 6to4), so a chat or webhook URL cannot be aimed at them.
func TestWebhookClientRefusesNonPublicRanges(t *testing.T) {
	for _, a := range []string{"100.64.0.1", "100.127.255.254", "198.18.0.1", "192.0.0.8", "0.1.2.3",
		"240.0.0.1", "64:ff9b::a00:1", "64:ff9b::7f00:1", "2002:a00:1::1", "2002:7f00:1::1", "64:ff9b:1::a00:1",
		"fc00::1", "fe80::1", "::ffff:10.0.0.1"} {
		if publicAddr(netip.MustParseAddr(a)) {
			t.Errorf("%s counted as public", a)
		}
	}
	for _, a := range []string{"8.8.8.8", "100.63.255.255", "100.128.0.1", "2a00:1450:4001::1", "64:ff9b::808:808"} {
		if !publicAddr(netip.MustParseAddr(a)) {
			t.Errorf("%s refused; it is public", a)
		}
	}
	// End to end: the dial is refused before any packet leaves.
	if _, err := webhookClient(false).Get("http://100.64.0.1:9/"); err == nil || !strings.Contains(err.Error(), "not public") {
		t.Errorf("CGNAT webhook: %v; want refused as not public", err)
	}
}
