package function

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dronetrack/dronetrack/core/flights"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/bolt"
	"github.com/dronetrack/dronetrack/core/telemetry"
	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/events"
)

var base = time.Now().UTC().Truncate(time.Second).Add(-time.Hour)

type env struct {
	st  *bolt.Store
	h   *Handler
	srv *httptest.Server
	// inProcess: events are handed over as `up`'s broker does, from the
	// delivery without an HTTP encoding, and the reply taken back from it.
	inProcess bool
}

func newEnv(t testing.TB, opts Options, drones ...string) *env {
	t.Helper()
	return newEnvWith(t, opts, func(st *bolt.Store) Store { return st }, drones...)
}

// newEnvWith is newEnv with the store the handler sees wrapped.
func newEnvWith(t testing.TB, opts Options, wrap func(*bolt.Store) Store, drones ...string) *env {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.CreateTenant(ctx, store.Tenant{ID: "t1", Name: "T1"}); err != nil {
		t.Fatal(err)
	}
	for _, d := range drones {
		if err := st.CreateDrone(ctx, store.Drone{ID: d, TenantID: "t1", Name: d, KeyHash: "h-" + d}); err != nil {
			t.Fatal(err)
		}
	}
	if opts.StateInterval == 0 {
		opts.StateInterval = 20 * time.Millisecond
	}
	h := NewHandler(wrap(st), opts)
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); h.Close(); st.Close() })
	return &env{st: st, h: h, srv: srv}
}

func rep(sec int, lat, lon, batt float64) events.Report {
	return events.Report{TS: base.Add(time.Duration(sec) * time.Second), Lat: lat, Lon: lon, Battery: &batt}
}

func received(drone string, reports ...events.Report) events.TelemetryReceived {
	return events.TelemetryReceived{TenantID: "t1", DroneID: drone, ReceivedAt: time.Now().UTC(), Reports: reports}
}

// post sends the event in binary mode like the broker and returns the
// response (body read) and the reply event, if any.
func (e *env) post(t *testing.T, data events.TelemetryReceived) (*http.Response, *events.StateUpdated) {
	t.Helper()
	ev, err := events.NewTelemetryReceived(data)
	if err != nil {
		t.Fatal(err)
	}
	if e.inProcess {
		resp, reply := testenv.DeliverInProcess(t, e.h, "/", ev)
		if resp.StatusCode != http.StatusOK {
			return resp, nil
		}
		if reply == nil || resp.Header.Get("Ce-Id") != "" {
			t.Fatalf("in process: 200 with reply %v, Ce-Id header %q; want the reply in the delivery only", reply, resp.Header.Get("Ce-Id"))
		}
		su, err := events.Decode[events.StateUpdated](*reply, events.TypeStateUpdated)
		if err != nil {
			t.Fatal(err)
		}
		return resp, &su
	}
	resp := testenv.PostEvent(t, e.srv.URL+"/", ev)
	if resp.StatusCode != http.StatusOK {
		return resp, nil
	}
	reply, err := cehttp.NewEventFromHTTPResponse(resp)
	if err != nil {
		t.Fatalf("200 without a valid reply event: %v", err)
	}
	if err := reply.Validate(); err != nil {
		t.Fatalf("reply is not a valid CloudEvent: %v", err)
	}
	if got := resp.Header.Get("Ce-Type"); got != events.TypeStateUpdated {
		t.Fatalf("reply not in binary mode with type state.updated: Ce-Type %q", got)
	}
	su, err := events.Decode[events.StateUpdated](*reply, events.TypeStateUpdated)
	if err != nil {
		t.Fatal(err)
	}
	return resp, &su
}

func (e *env) track(t *testing.T, drone string) []time.Time {
	t.Helper()
	pts, err := e.st.Track(context.Background(), store.TrackQuery{TenantID: "t1", DroneID: drone})
	if err != nil {
		t.Fatal(err)
	}
	var out []time.Time
	for _, p := range pts {
		out = append(out, p.Report.TS.UTC())
	}
	return out
}

func ts(secs ...int) []time.Time {
	var out []time.Time
	for _, s := range secs {
		out = append(out, base.Add(time.Duration(s)*time.Second))
	}
	return out
}

func TestStateAdvancesAndReplies(t *testing.T) {
	t.Run("http", func(t *testing.T) { testStateAdvancesAndReplies(t, false) })
	t.Run("in-process", func(t *testing.T) { testStateAdvancesAndReplies(t, true) })
}

func testStateAdvancesAndReplies(t *testing.T, inProcess bool) {
	e := newEnv(t, Options{}, "d1")
	e.inProcess = inProcess
	resp, su := e.post(t, received("d1", rep(0, 0, 0, 80)))
	if resp.StatusCode != http.StatusOK || su == nil {
		t.Fatalf("first report: status %d, reply %v", resp.StatusCode, su)
	}
	// 0.001° north in 10 s, 1% battery: derived values in the reply.
	_, su = e.post(t, received("d1", rep(10, 0.001, 0, 79)))
	if su == nil {
		t.Fatal("no reply for a newer report")
	}
	s := su.State
	if s.Lat != 0.001 || s.GroundSpeed == nil || *s.GroundSpeed < 11 || *s.GroundSpeed > 11.2 ||
		s.Course == nil || *s.Course != 0 || s.TimeToEmptySecs == nil || *s.TimeToEmptySecs != 790 {
		t.Errorf("reply state = %+v, want derived speed ~11.1 m/s, course 0, 790 s to empty", s)
	}
	stored, err := e.st.LatestState(context.Background(), "t1", "d1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, stored); diff != "" {
		t.Errorf("reply differs from stored state (-reply +stored):\n%s", diff)
	}
}

// TestDroneTelemetryReachesStateAndHistory: the optional telemetry fields
// of a report land in the reply, the stored state and the history point.
func TestDroneTelemetryReachesStateAndHistory(t *testing.T) {
	e := newEnv(t, Options{}, "d1")
	f := func(v float64) *float64 { return &v }
	armed, mode, fix, sats := true, "AUTO.MISSION", events.FixRTKFix, 19
	r := rep(0, 47.1, 8.5, 90)
	r.Armed, r.Mode, r.Fix, r.Satellites, r.HAE, r.Height, r.VSpeed = &armed, &mode, &fix, &sats, f(512.5), f(60), f(-1.25)
	r.HAcc, r.VAcc, r.Link, r.Home = f(0.02), f(0.04), f(97), &events.Position{Lat: 47.09, Lon: 8.49, Alt: f(455)}
	_, su := e.post(t, received("d1", r))
	if su == nil {
		t.Fatal("no reply")
	}
	want := events.DroneState{TS: r.TS, Lat: r.Lat, Lon: r.Lon, Battery: r.Battery, Armed: r.Armed, Mode: r.Mode,
		Fix: r.Fix, Satellites: r.Satellites, HAE: r.HAE, Height: r.Height, VSpeed: r.VSpeed, HAcc: r.HAcc,
		VAcc: r.VAcc, Link: r.Link, Home: r.Home, UpdatedAt: su.State.UpdatedAt}
	if diff := cmp.Diff(want, su.State); diff != "" {
		t.Errorf("reply state (-want +got):\n%s", diff)
	}
	stored, err := e.st.LatestState(context.Background(), "t1", "d1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, stored); diff != "" {
		t.Errorf("stored state (-want +got):\n%s", diff)
	}
	pts, err := e.st.Track(context.Background(), store.TrackQuery{TenantID: "t1", DroneID: "d1"})
	if err != nil || len(pts) != 1 {
		t.Fatalf("track: %d points, err %v", len(pts), err)
	}
	if diff := cmp.Diff(r, pts[0].Report); diff != "" {
		t.Errorf("history point (-want +got):\n%s", diff)
	}
}

func TestDuplicatesReplaysAndOutOfOrder(t *testing.T) {
	e := newEnv(t, Options{}, "d1")
	first := received("d1", rep(10, 1, 1, 90))
	if resp, _ := e.post(t, first); resp.StatusCode != http.StatusOK {
		t.Fatalf("first: %d", resp.StatusCode)
	}
	// The same event again (broker redelivery): no new point, and the state
	// it produced is announced again (its first reply may have been lost).
	if resp, su := e.post(t, first); resp.StatusCode != http.StatusOK || su == nil || !su.State.TS.Equal(base.Add(10*time.Second)) {
		t.Errorf("duplicate: status %d reply %v, want 200 and the state at 10 s again", resp.StatusCode, su)
	}
	// A late report (older than the state): history only, state unchanged.
	if resp, su := e.post(t, received("d1", rep(5, 2, 2, 95))); resp.StatusCode != http.StatusAccepted || su != nil {
		t.Errorf("late report: status %d reply %v, want 202 and no reply", resp.StatusCode, su)
	}
	// An out-of-order pair inside one batch, plus a replay of the first
	// report in a different batch (new event id, same (drone, ts)).
	if resp, su := e.post(t, received("d1", rep(30, 3, 3, 80), rep(20, 4, 4, 85), rep(10, 1, 1, 90))); resp.StatusCode != http.StatusOK || su == nil {
		t.Fatalf("batch: status %d", resp.StatusCode)
	} else if !su.State.TS.Equal(base.Add(30*time.Second)) || su.State.Lat != 3 {
		t.Errorf("state after batch = %v at %v, want the newest report", su.State.Lat, su.State.TS)
	}
	if diff := cmp.Diff(ts(5, 10, 20, 30), e.track(t, "d1")); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
}

// TestRedeliveryAfterRestartReannounces: process wrote a drone's state and
// died before its reply (the state.updated) reached the broker. The broker
// redelivers the telemetry to a new instance, which finds the state already
// written; it must still reply with that state, or cache-refresh and alerts
// never hear of it. A late report delivered to the new instance stays quiet.
func TestRedeliveryAfterRestartReannounces(t *testing.T) {
	e := newEnv(t, Options{}, "d1")
	first := received("d1", rep(10, 1, 1, 90), rep(5, 0.5, 0.5, 92))
	resp, want := e.post(t, first)
	if resp.StatusCode != http.StatusOK || want == nil {
		t.Fatalf("first delivery: status %d, reply %v", resp.StatusCode, want)
	}
	h2 := NewHandler(e.st, Options{StateInterval: 20 * time.Millisecond})
	srv2 := httptest.NewServer(h2)
	t.Cleanup(func() { srv2.Close(); h2.Close() })
	restarted := &env{st: e.st, h: h2, srv: srv2}

	resp, got := restarted.post(t, first)
	if resp.StatusCode != http.StatusOK || got == nil {
		t.Fatalf("redelivery to the new instance: status %d, reply %v; want 200 and the state again", resp.StatusCode, got)
	}
	if diff := cmp.Diff(want.State, got.State); diff != "" {
		t.Errorf("re-announced state (-first reply +redelivery):\n%s", diff)
	}
	if resp, su := restarted.post(t, received("d1", rep(7, 2, 2, 91))); resp.StatusCode != http.StatusAccepted || su != nil {
		t.Errorf("late report: status %d reply %v, want 202 and no reply", resp.StatusCode, su)
	}
	if diff := cmp.Diff(ts(5, 7, 10), e.track(t, "d1")); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
}

func TestRejectsWhatCanNeverSucceed(t *testing.T) {
	e := newEnv(t, Options{}, "d1")
	post := func(body string, hdr map[string]string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/", strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	ce := func(typ string) map[string]string {
		return map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "x1", "Ce-Source": "/t", "Ce-Type": typ,
			"Content-Type": "application/json"}
	}
	valid := `{"tenantId":"t1","droneId":"d1","receivedAt":"2026-01-01T00:00:00Z","reports":[{"ts":"` +
		base.Format(time.RFC3339) + `","lat":1,"lon":1}]}`
	tests := []struct {
		name, body string
		hdr        map[string]string
		wantInBody string
	}{
		{"not a CloudEvent", `{}`, map[string]string{"Content-Type": "application/json"}, "not a CloudEvent"},
		{"wrong type", valid, ce(events.TypeStateUpdated), "type"},
		{"undecodable data", `{"reports":"x"}`, ce(events.TypeTelemetryReceived), "decode"},
		{"invalid report", strings.Replace(valid, `"lat":1`, `"lat":100`, 1), ce(events.TypeTelemetryReceived), "/reports/0/lat"},
	}
	for _, tt := range tests {
		resp, body := post(tt.body, tt.hdr)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, tt.wantInBody) {
			t.Errorf("%s: %d %s, want 400 mentioning %q", tt.name, resp.StatusCode, body, tt.wantInBody)
		}
	}
	if got := e.track(t, "d1"); len(got) != 0 {
		t.Errorf("rejected events wrote history: %v", got)
	}
}

func TestUnknownDroneIsAcknowledged(t *testing.T) {
	e := newEnv(t, Options{})
	if resp, _ := e.post(t, received("ghost", rep(0, 1, 1, 50))); resp.StatusCode != http.StatusAccepted {
		t.Errorf("unknown drone: %d, want 202 (retrying can't help)", resp.StatusCode)
	}
}

func TestStoreUnavailableAsksForRetry(t *testing.T) {
	e := newEnv(t, Options{}, "d1")
	e.st.Close()
	resp, _ := e.post(t, received("d1", rep(0, 1, 1, 50)))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("closed store: %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// TestCloseFlushesCoalescedState holds a second update behind a long
// coalescing interval and checks Close writes it rather than dropping it.
func TestCloseFlushesCoalescedState(t *testing.T) {
	e := newEnv(t, Options{StateInterval: time.Hour}, "d1")
	if resp, _ := e.post(t, received("d1", rep(0, 1, 1, 50))); resp.StatusCode != http.StatusOK {
		t.Fatal(resp.StatusCode)
	}
	got := make(chan int, 1)
	go func() {
		resp, _ := e.post(t, received("d1", rep(1, 2, 2, 49)))
		got <- resp.StatusCode
	}()
	// Wait until the second update is parked in the coalescer.
	for deadline := time.Now().Add(10 * time.Second); ; {
		e.h.states.mu.Lock()
		n := 0
		for _, p := range e.h.states.drones {
			n += len(p.waiters)
		}
		e.h.states.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("second update never reached the coalescer")
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.h.Close()
	select {
	case code := <-got:
		if code != http.StatusOK {
			t.Errorf("parked update answered %d, want 200 after the flush", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("parked update never answered after Close")
	}
	st, _ := e.st.LatestState(context.Background(), "t1", "d1")
	if st.Lat != 2 {
		t.Errorf("state lat %v after Close, want 2 (the parked update)", st.Lat)
	}
}

// TestManyParallelSenders is the regression test for sdk-go's receive
// handler hanging under parallel senders (upstream issues 1224, 1332):
// exactly 1,000 events from 32 senders over real HTTP in binary mode, each
// must complete and be stored. Senders share 16 drones, so concurrent
// updates of one drone meet in the coalescer and group commit. A hang
// fails at the overall deadline instead of blocking the suite.
func TestManyParallelSenders(t *testing.T) {
	const events1k, senders, nDrones = 1000, 32, 16
	drones := make([]string, nDrones)
	for i := range drones {
		drones[i] = fmt.Sprintf("d%02d", i)
	}
	e := newEnv(t, Options{}, drones...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for k := s; k < events1k; k += senders {
				ev, err := events.NewTelemetryReceived(received(drones[k%nDrones], rep(k, float64(k)/10000, 0, 90)))
				if err != nil {
					t.Error(err)
					return
				}
				req, err := cehttp.NewHTTPRequestFromEvent(ctx, e.srv.URL+"/", ev)
				if err != nil {
					t.Error(err)
					return
				}
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 == 2 {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatal("senders did not finish within 2 minutes: the receive path hangs")
	}
	if ok.Load() != events1k || failed.Load() != 0 {
		t.Fatalf("%d ok, %d failed, want %d ok", ok.Load(), failed.Load(), events1k)
	}
	for i, d := range drones {
		var want []time.Time
		for k := i; k < events1k; k += nDrones {
			want = append(want, base.Add(time.Duration(k)*time.Second))
		}
		if diff := cmp.Diff(want, e.track(t, d)); diff != "" {
			t.Errorf("drone %s history (-want +got):\n%s", d, diff)
		}
		st, err := e.st.LatestState(ctx, "t1", d)
		if err != nil || !st.TS.Equal(want[len(want)-1]) {
			t.Errorf("drone %s: state %v (%v), want its newest report %v", d, st.TS, err, want[len(want)-1])
		}
	}
}

func TestMetricsServed(t *testing.T) {
	e := newEnv(t, Options{}, "d1")
	e.post(t, received("d1", rep(0, 1, 1, 50)))
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), `dronetrack_process_events_total{outcome="state_updated"} 1`) {
		t.Errorf("metrics missing the processed event:\n%s", b)
	}
}

// TestStructuredModeAccepted: a sender using structured content mode (the
// whole event as JSON) is processed like a binary-mode one.
func TestStructuredModeAccepted(t *testing.T) {
	e := newEnv(t, Options{}, "d1")
	ev, err := events.NewTelemetryReceived(received("d1", rep(0, 1, 1, 50)))
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(e.srv.URL+"/", "application/cloudevents+json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Ce-Type") != events.TypeStateUpdated {
		t.Errorf("structured event: %d Ce-Type %q, want 200 with a binary-mode state.updated reply",
			resp.StatusCode, resp.Header.Get("Ce-Type"))
	}
	if diff := cmp.Diff(ts(0), e.track(t, "d1")); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
}

// TestDuplicatesWithoutTheFastPath: correctness never depends on the
// recent-ids cache. With a cache of one id, a redelivery it has forgotten is
// processed again and leaves the store as it was; two copies of one event
// delivered at the same time (neither completed yet) leave one point.
func TestDuplicatesWithoutTheFastPath(t *testing.T) {
	e := newEnv(t, Options{RecentIDs: 1}, "d1")
	a, b := received("d1", rep(10, 0.001, 0, 90)), received("d1", rep(20, 0.002, 0, 89))
	e.post(t, a)
	e.post(t, b) // evicts a's id
	before, err := e.st.LatestState(context.Background(), "t1", "d1")
	if err != nil {
		t.Fatal(err)
	}
	if resp, su := e.post(t, a); resp.StatusCode != http.StatusAccepted || su != nil {
		t.Errorf("forgotten redelivery: status %d reply %v, want 202 without a reply", resp.StatusCode, su)
	}
	after, _ := e.st.LatestState(context.Background(), "t1", "d1")
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("redelivery changed the state (-before +after):\n%s", diff)
	}

	c := received("d1", rep(30, 0.003, 0, 88))
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if resp, _ := e.post(t, c); resp.StatusCode/100 != 2 {
				t.Errorf("concurrent copy: %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if diff := cmp.Diff(ts(10, 20, 30), e.track(t, "d1")); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	final, _ := e.st.LatestState(context.Background(), "t1", "d1")
	if want := 2 * telemetry.Distance(0.001, 0, 0.002, 0); math.Abs(final.DistanceM-want) > 1e-6 {
		t.Errorf("distance %v after a duplicate pair, want %v (counted once)", final.DistanceM, want)
	}
}

// TestFlightsFromShuffledDuplicatedEvents: an armed -> disarmed sequence
// posted as events in shuffled order, some twice, leaves one stored flight
// with the statistics of the sequence.
func TestFlightsFromShuffledDuplicatedEvents(t *testing.T) {
	e := newEnv(t, Options{StateInterval: time.Millisecond}, "d1")
	f := func(v float64) *float64 { return &v }
	var reps []events.Report
	for s := 0; s < 90; s++ {
		r := rep(s, 47, 8+float64(s)*1e-4, 100-float64(s)/10)
		armed := s >= 5 && s < 85
		r.Armed, r.Height, r.Speed = &armed, f(0), f(0)
		if s >= 15 && s < 75 {
			r.Height, r.Speed = f(40), f(7.5)
		}
		reps = append(reps, r)
	}
	var evs []events.TelemetryReceived
	for i := 0; i < len(reps); i += 3 {
		evs = append(evs, received("d1", reps[i:min(i+3, len(reps))]...))
	}
	order := []int{}
	for i := range evs {
		order = append(order, (i*7)%len(evs)) // a fixed shuffle (7 and 30 are coprime)
	}
	for i, k := range order {
		if resp, _ := e.post(t, evs[k]); resp.StatusCode >= 300 && resp.StatusCode != http.StatusAccepted {
			t.Fatalf("post %d: status %d", k, resp.StatusCode)
		}
		if i%5 == 0 {
			e.post(t, evs[k]) // a redelivery
		}
	}
	e.settled(t)
	fs, err := e.st.ListFlights(context.Background(), store.FlightQuery{TenantID: "t1", DroneID: "d1", From: base.Add(-time.Hour), To: base.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 {
		t.Fatalf("%d flights, want one: %+v", len(fs), fs)
	}
	fl := fs[0]
	if !fl.Start.Equal(base.Add(5*time.Second)) || !fl.End.Equal(base.Add(85*time.Second)) || fl.InProgress || fl.Points != 81 {
		t.Errorf("flight %s..%s in progress %v, %d points; want 5 s..85 s ended, 81 points", fl.Start.Sub(base), fl.End.Sub(base), fl.InProgress, fl.Points)
	}
	if *fl.MaxHeight != 40 || *fl.MaxSpeed != 7.5 || *fl.BatteryStart != 99.5 || *fl.BatteryEnd != 91.5 {
		t.Errorf("stats: max height %v speed %v battery %v -> %v", *fl.MaxHeight, *fl.MaxSpeed, *fl.BatteryStart, *fl.BatteryEnd)
	}
	if math.Abs(fl.DistanceM-telemetry.Distance(47, 8+5e-4, 47, 8+85e-4)) > 0.01 {
		t.Errorf("distance %v m", fl.DistanceM)
	}
}

// trackFails is the bolt store with its history reads failing while fail
// is set: a flights replay's read, as when the store times out.
type trackFails struct {
	*bolt.Store
	fail atomic.Bool
}

func (s *trackFails) Track(ctx context.Context, q store.TrackQuery) ([]store.TrackPoint, error) {
	if s.fail.Load() {
		return nil, fmt.Errorf("read track: %w", store.ErrUnavailable)
	}
	return s.Store.Track(ctx, q)
}

// A late report's delivery is done once its history and state are written
// (202: the state is not newer); a replay that fails is counted as a
// failure, stays owed, and runs when the drone's next batch asks for it.
func TestFailedReplayStaysOwedAndRunsAgain(t *testing.T) {
	e, ts := newFailingEnv(t)
	r := armedRep
	for s := 0; s < 10; s++ {
		if s == 4 {
			continue
		}
		if resp, _ := e.post(t, received("d1", r(s))); resp.StatusCode != http.StatusOK {
			t.Fatalf("report %d s: status %d", s, resp.StatusCode)
		}
	}
	count := func(c prometheus.Counter) float64 { return testutil.ToFloat64(c) }
	if n, f := count(e.h.m.flightReplays), count(e.h.m.flightReplayFailures); n != 0 || f != 0 {
		t.Fatalf("in-order reports: %v replays, %v failures; want none", n, f)
	}
	ts.fail.Store(true)
	if resp, _ := e.post(t, received("d1", r(4))); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("late report with history unreadable: status %d; want 202 (written; the replay is owed)", resp.StatusCode)
	}
	waitFor(t, "the failed replay counted", func() bool { return count(e.h.m.flightReplayFailures) == 1 })
	if n := count(e.h.m.flightReplays); n != 0 {
		t.Errorf("failed replay: %v replays; want 0", n)
	}
	if got := e.owed(t); len(got) != 1 {
		t.Fatalf("owed replays after the failure: %v; want d1's", got)
	}
	ts.fail.Store(false)
	if resp, _ := e.post(t, received("d1", r(10))); resp.StatusCode != http.StatusOK {
		t.Fatalf("next report: status %d", resp.StatusCode)
	}
	e.settled(t)
	if n, f := count(e.h.m.flightReplays), count(e.h.m.flightReplayFailures); n != 1 || f != 1 {
		t.Errorf("after the next report: %v replays, %v failures; want 1 and 1", n, f)
	}
	if fl := e.flights(t, "d1"); len(fl) != 1 || fl[0].Points != 11 {
		t.Errorf("flights %+v; want one of 11 points (the late one in it)", fl)
	}
}

// A replay left owed when process stopped (or crashed) runs when the next
// handler on the store starts: its sweep lists it, and no delivery asks.
func TestOwedReplaySweptAtStart(t *testing.T) {
	e, ts := newFailingEnv(t)
	r := armedRep
	for s := 0; s < 10; s++ {
		if s != 4 {
			e.post(t, received("d1", r(s)))
		}
	}
	ts.fail.Store(true)
	if resp, _ := e.post(t, received("d1", r(4))); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("late report: status %d; want 202", resp.StatusCode)
	}
	waitFor(t, "the failed replay counted", func() bool { return testutil.ToFloat64(e.h.m.flightReplayFailures) == 1 })
	e.h.Close()
	if fl := e.flights(t, "d1"); len(fl) != 1 || fl[0].Points != 9 {
		t.Fatalf("flights before the restart %+v; want one of 9 points (the late one owed)", fl)
	}
	h2 := NewHandler(e.st, Options{StateInterval: time.Millisecond})
	defer h2.Close()
	waitFor(t, "the restarted handler's replay", func() bool { return testutil.ToFloat64(h2.m.flightReplays) == 1 })
	e.h = h2
	e.settled(t)
	if fl := e.flights(t, "d1"); len(fl) != 1 || fl[0].Points != 10 {
		t.Errorf("flights after the restart %+v; want one of 10 points", fl)
	}
}

// newFailingEnv is newEnv for drone d1 over a store whose history reads
// fail while its fail is set.
func newFailingEnv(t *testing.T) (*env, *trackFails) {
	var ts *trackFails
	e := newEnvWith(t, Options{StateInterval: time.Millisecond}, func(st *bolt.Store) Store {
		ts = &trackFails{Store: st}
		return ts
	}, "d1")
	return e, ts
}

// armedRep is a report at second s of an armed drone flying east.
func armedRep(s int) events.Report {
	armed := true
	x := rep(s, 47, 8+float64(s)*1e-4, 90)
	x.Armed = &armed
	return x
}

// waitFor polls cond until it holds, or fails the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// owed lists the drones whose flights replay the store holds owed.
func (e *env) owed(t *testing.T) []store.DroneRef {
	t.Helper()
	refs, err := e.st.OwedReplays(context.Background(), time.Now().Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	return refs
}

// settled waits until the handler runs no replay and the store owes none.
func (e *env) settled(t *testing.T) {
	t.Helper()
	waitFor(t, "the owed flights replays", func() bool { return e.h.flights.owing() == 0 && len(e.owed(t)) == 0 })
}

func (e *env) flights(t *testing.T, drone string) []flights.Flight {
	t.Helper()
	fl, err := e.st.ListFlights(context.Background(), store.FlightQuery{TenantID: "t1", DroneID: drone, From: base.Add(-time.Hour), To: base.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return fl
}

// trackBlocks is the bolt store with its history reads held while hold is
// set, until release is closed; reads counts them.
type trackBlocks struct {
	*bolt.Store
	hold    atomic.Bool
	release chan struct{}
	reads   atomic.Int32
}

func (s *trackBlocks) Track(ctx context.Context, q store.TrackQuery) ([]store.TrackPoint, error) {
	s.reads.Add(1)
	if s.hold.Load() {
		<-s.release
	}
	return s.Store.Track(ctx, q)
}

// Flights replays run REPLAY_CONCURRENCY at a time, apart from the
// deliveries: late reports are answered at once while the only slot is
// held, and the replays run one after the other once it frees.
func TestReplaysRunAFewAtATime(t *testing.T) {
	var st *trackBlocks
	e := newEnvWith(t, Options{StateInterval: time.Millisecond, StoreTimeout: 300 * time.Millisecond, ReplayConcurrency: 1},
		func(b *bolt.Store) Store {
			st = &trackBlocks{Store: b, release: make(chan struct{})}
			return st
		}, "d1", "d2")
	for _, d := range []string{"d1", "d2"} {
		for s := 0; s < 10; s++ {
			if s == 4 {
				continue
			}
			if resp, _ := e.post(t, received(d, rep(s, 47, 8, 90))); resp.StatusCode != http.StatusOK {
				t.Fatalf("%s report %d s: status %d", d, s, resp.StatusCode)
			}
		}
	}
	count := func(c prometheus.Counter) float64 { return testutil.ToFloat64(c) }
	st.hold.Store(true)
	if resp, _ := e.post(t, received("d1", rep(4, 47, 8, 90))); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("d1's late report: status %d; want 202 at once", resp.StatusCode)
	}
	waitFor(t, "d1's replay reading", func() bool { return st.reads.Load() > 0 })
	if resp, _ := e.post(t, received("d2", rep(4, 47, 8, 90))); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("d2's late report while the only slot is taken: status %d; want 202 at once", resp.StatusCode)
	}
	time.Sleep(50 * time.Millisecond) // d2's replay, were it not waiting, would read now
	if n, owing := st.reads.Load(), e.h.flights.owing(); n != 1 || owing != 2 {
		t.Errorf("while d1's replay holds the slot: %d history reads, %d drones owing; want 1 and 2 (d2's waits)", n, owing)
	}
	st.hold.Store(false)
	close(st.release)
	e.settled(t)
	if n, f := count(e.h.m.flightReplays), count(e.h.m.flightReplayFailures); n != 2 || f != 0 {
		t.Fatalf("after the slot freed: %v replays, %v failures; want 2 (d1's and d2's) and 0", n, f)
	}
	for _, d := range []string{"d1", "d2"} {
		if resp, _ := e.post(t, received(d, rep(4, 47, 8, 90))); resp.StatusCode != http.StatusAccepted {
			t.Errorf("%s redelivery: status %d; want 202", d, resp.StatusCode)
		}
	}
	if n, r := count(e.h.m.flightReplays), st.reads.Load(); n != 2 || r != 2 {
		t.Errorf("after the redeliveries: %v replays, %d history reads; want 2 and 2 (the reports are applied)", n, r)
	}
}

// Late reports of a drone written while its replay runs leave a replay
// owed after it, which covers them all: three late batches, two replays,
// every report in the drone's flight.
func TestLateReportsOfADroneShareAReplay(t *testing.T) {
	var st *trackBlocks
	e := newEnvWith(t, Options{StateInterval: time.Millisecond, StoreTimeout: 300 * time.Millisecond},
		func(b *bolt.Store) Store {
			st = &trackBlocks{Store: b, release: make(chan struct{})}
			return st
		}, "d1")
	r := armedRep
	for s := 0; s < 12; s++ {
		if s == 4 || s == 6 || s == 8 {
			continue
		}
		if resp, _ := e.post(t, received("d1", r(s))); resp.StatusCode != http.StatusOK {
			t.Fatalf("report %d s: status %d", s, resp.StatusCode)
		}
	}
	st.hold.Store(true)
	if resp, _ := e.post(t, received("d1", r(4))); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("late report 4 s: status %d; want 202", resp.StatusCode)
	}
	waitFor(t, "the replay reading", func() bool { return st.reads.Load() > 0 })
	for _, s := range []int{6, 8} {
		if resp, _ := e.post(t, received("d1", r(s))); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("late report %d s: status %d; want 202", s, resp.StatusCode)
		}
	}
	st.hold.Store(false)
	close(st.release)
	e.settled(t)
	count := func(c prometheus.Counter) float64 { return testutil.ToFloat64(c) }
	if n, reads := count(e.h.m.flightReplays), st.reads.Load(); n != 2 || reads != 2 {
		t.Errorf("%v replays, %d history reads; want 2 and 2 (4 s's, then one for 6 s and 8 s)", n, reads)
	}
	if fl := e.flights(t, "d1"); len(fl) != 1 || fl[0].Points != 12 {
		t.Errorf("flights %+v; want one of 12 points (the late ones in it)", fl)
	}
}
