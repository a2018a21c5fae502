package function

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/cache"
	"github.com/dronetrack/dronetrack/core/problem"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/events"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func redisAddr(t testing.TB) string { return testenv.Redis(t) }

func uniq(p string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return p + "-" + hex.EncodeToString(b)
}

var t0 = time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)

func state(sec int, lon, lat float64) events.DroneState {
	ts := t0.Add(time.Duration(sec) * time.Second)
	return events.DroneState{TS: ts, Lon: lon, Lat: lat, UpdatedAt: ts}
}

// fixture is one serve-map over a test store, acting for tenant.
type fixture struct {
	url, cacheURL, tenant, other string
	st                           *countingStore
	cookie                       *http.Cookie // the session requests without cookies get
	f                            *Function
}

func newFixture(t testing.TB, cacheURL string, cfg map[string]string) *fixture {
	t.Helper()
	fx := &fixture{cacheURL: cacheURL, tenant: uniq("tenant"), other: uniq("other"), st: newTestStore(t)}
	ctx := context.Background()
	for _, id := range []string{fx.tenant, fx.other} {
		if err := fx.st.CreateTenant(ctx, store.Tenant{ID: id, Name: id, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []store.Drone{
		{ID: fx.tenant + "-a", TenantID: fx.tenant, Name: "Alpha", State: new(state(1, 8.5, 47.4))},
		{ID: fx.tenant + "-b", TenantID: fx.tenant, Name: "Bravo", State: new(state(1, 2.35, 48.85))},
		{ID: fx.tenant + "-c", TenantID: fx.tenant, Name: "Charlie"},
		{ID: fx.other + "-x", TenantID: fx.other, Name: "Xray", State: new(state(1, 8.5, 47.4))},
	} {
		if err := fx.st.CreateDrone(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	all := map[string]string{"CACHE_URL": cacheURL, "LOG_LEVEL": "error", "ARGON2_MEMORY_KIB": "64",
		"FLEET_LIST_MAX_AGE": "0", "CACHE_RETRY_AFTER": "50ms"}
	for k, v := range cfg {
		all[k] = v
	}
	fx.f = New()
	if err := fx.f.start(ctx, all, fx.st); err != nil {
		t.Fatal(err)
	}
	// Requests without cookies act as a session of fx.tenant (see
	// withSession) unless the fixture is anonymous.
	_, anon := cfg[fixtureAnonymous]
	var h http.Handler = http.HandlerFunc(fx.f.Handle)
	if !anon {
		fx.cookie = sessionCookie(t, fx.st, fx.tenant, store.RoleOwner)
		h = withSession(fx.cookie, h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); fx.f.Stop(context.Background()) })
	fx.url = srv.URL
	return fx
}

// writer is what cache-refresh does with a state.updated event.
func (fx *fixture) put(t testing.TB, drone string, st events.DroneState) {
	t.Helper()
	c, err := cache.Open(context.Background(), fx.cacheURL, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Put(context.Background(), fx.tenant, drone, st); err != nil {
		t.Fatal(err)
	}
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func get(t testing.TB, url string, hdr ...string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return send(t, req)
}

// send sends req with testClient and reads the whole reply; a request
// that gets no response fails the test.
func send(t testing.TB, req *http.Request) reply {
	t.Helper()
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}

func decode[T any](t testing.TB, r reply) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return v
}

type droneList struct {
	Drones []cache.DroneView `json:"drones"`
}

func ids(l droneList) []string {
	out := []string{}
	for _, d := range l.Drones {
		out = append(out, d.ID)
	}
	return out
}

func modes(t *testing.T, fn func(t *testing.T, cacheURL string)) {
	t.Run("redis", func(t *testing.T) { fn(t, "redis://"+redisAddr(t)+"/0") })
	t.Run("local", func(t *testing.T) { fn(t, "local://"+uniq("sm")) })
}

func TestFleetAndBBox(t *testing.T) {
	modes(t, func(t *testing.T, cacheURL string) {
		fx := newFixture(t, cacheURL, nil)
		r := get(t, fx.url+"/api/v1/drones")
		if r.status != http.StatusOK || r.header.Get(CacheHeader) != "cache" {
			t.Fatalf("list: %d %s %s", r.status, r.header.Get(CacheHeader), r.body)
		}
		want := []string{fx.tenant + "-a", fx.tenant + "-b", fx.tenant + "-c"}
		if diff := cmp.Diff(want, ids(decode[droneList](t, r))); diff != "" {
			t.Errorf("fleet ids (-want +got):\n%s", diff)
		}
		// Zurich box: only Alpha (the other tenant's drone there is not ours).
		r = get(t, fx.url+"/api/v1/drones?bbox=8.4,47.3,8.7,47.5")
		if diff := cmp.Diff([]string{fx.tenant + "-a"}, ids(decode[droneList](t, r))); diff != "" {
			t.Errorf("bbox ids (-want +got):\n%s", diff)
		}
		for _, bad := range []string{"1,2,3", "x,1,2,3", "10,0,5,1", "0,-95,1,1"} {
			r := get(t, fx.url+"/api/v1/drones?bbox="+bad)
			p := decode[problem.Details](t, r)
			if r.status != http.StatusBadRequest || len(p.Errors) != 1 || p.Errors[0].Field != "bbox" {
				t.Errorf("bbox=%s: %d %s, want 400 naming bbox", bad, r.status, r.body)
			}
		}
	})
}

func TestETag(t *testing.T) {
	modes(t, func(t *testing.T, cacheURL string) {
		fx := newFixture(t, cacheURL, nil)
		r := get(t, fx.url+"/api/v1/drones")
		etag := r.header.Get("ETag")
		if etag == "" {
			t.Fatal("no ETag")
		}
		if r := get(t, fx.url+"/api/v1/drones", "If-None-Match", etag); r.status != http.StatusNotModified {
			t.Errorf("If-None-Match current: %d, want 304", r.status)
		}
		fx.put(t, fx.tenant+"-a", state(50, 8.6, 47.41))
		r = get(t, fx.url+"/api/v1/drones", "If-None-Match", etag)
		if r.status != http.StatusOK || r.header.Get("ETag") == etag {
			t.Fatalf("after a change: %d etag %s (was %s), want 200 and a new ETag", r.status, r.header.Get("ETag"), etag)
		}
		if got := decode[droneList](t, r).Drones[0].State.Lon; got != 8.6 {
			t.Errorf("Alpha lon = %v, want the new 8.6", got)
		}
	})
}

func TestDroneDetailAndTenancy(t *testing.T) {
	modes(t, func(t *testing.T, cacheURL string) {
		fx := newFixture(t, cacheURL, nil)
		r := get(t, fx.url+"/api/v1/drones/"+fx.tenant+"-a")
		want := cache.DroneView{ID: fx.tenant + "-a", Name: "Alpha", State: new(state(1, 8.5, 47.4))}
		if diff := cmp.Diff(want, decode[cache.DroneView](t, r)); r.status != 200 || diff != "" {
			t.Errorf("detail %d (-want +got):\n%s", r.status, diff)
		}
		for _, path := range []string{
			"/api/v1/drones/" + fx.other + "-x", "/api/v1/drones/nope",
			"/api/v1/drones/" + fx.other + "-x/track",
		} {
			r := get(t, fx.url+path)
			if r.status != http.StatusNotFound || strings.Contains(string(r.body), "Xray") {
				t.Errorf("GET %s: %d %s, want 404 leaking nothing", path, r.status, r.body)
			}
		}
		if r := get(t, fx.url+"/api/v1/alerts"); r.status != 200 || string(r.body) != `{"alerts":[]}`+"\n" {
			t.Errorf("alerts: %d %s", r.status, r.body)
		}
	})
}

func TestNoTenantIs401(t *testing.T) {
	fx := newFixture(t, "local://"+uniq("sm"), map[string]string{fixtureAnonymous: ""})
	for _, p := range []string{"/api/v1/drones", "/api/v1/drones/x", "/api/v1/stream", "/api/v1/alerts"} {
		if r := get(t, fx.url+p+"?tenant="+fx.tenant); r.status != http.StatusUnauthorized {
			t.Errorf("GET %s: %d, want 401", p, r.status)
		}
	}
}

func TestTrackPages(t *testing.T) {
	fx := newFixture(t, "local://"+uniq("sm"), nil)
	drone := fx.tenant + "-a"
	var pts []store.TrackPoint
	for i := range 25 {
		pts = append(pts, store.TrackPoint{TenantID: fx.tenant, DroneID: drone,
			Report: events.Report{TS: t0.Add(time.Duration(i) * time.Second), Lat: 47, Lon: float64(i)}})
	}
	if err := fx.st.AppendTrack(context.Background(), pts); err != nil {
		t.Fatal(err)
	}
	base := fx.url + "/api/v1/drones/" + drone + "/track?from=" + t0.Format(time.RFC3339) +
		"&to=" + t0.Add(time.Hour).Format(time.RFC3339) + "&limit=10"
	var got []float64
	var sizes []int
	url := base
	for range 5 {
		r := get(t, url)
		if r.status != http.StatusOK {
			t.Fatalf("track: %d %s", r.status, r.body)
		}
		page := decode[trackPage](t, r)
		sizes = append(sizes, len(page.Points))
		for _, p := range page.Points {
			got = append(got, p.Lon)
		}
		if page.Next == nil {
			break
		}
		url = base + "&after=" + *page.Next
	}
	if diff := cmp.Diff([]int{10, 10, 5}, sizes); diff != "" {
		t.Errorf("page sizes (-want +got):\n%s", diff)
	}
	for i, lon := range got {
		if lon != float64(i) {
			t.Fatalf("points out of order or repeated: %v", got)
		}
	}
	for q, field := range map[string]string{
		"from=yesterday": "from", "limit=0": "limit", "limit=9999": "limit",
		"from=" + t0.Format(time.RFC3339) + "&to=" + t0.Format(time.RFC3339): "from",
	} {
		r := get(t, fx.url+"/api/v1/drones/"+drone+"/track?"+q)
		p := decode[problem.Details](t, r)
		if r.status != 400 || len(p.Errors) == 0 || p.Errors[0].Field != field {
			t.Errorf("track?%s: %d %s, want 400 naming %s", q, r.status, r.body, field)
		}
	}
}

func TestStampedeOneStoreRead(t *testing.T) {
	modes(t, func(t *testing.T, cacheURL string) {
		fx := newFixture(t, cacheURL, nil)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 100 {
			wg.Go(func() {
				<-start
				if r := get(t, fx.url+"/api/v1/drones"); r.status != 200 {
					t.Errorf("status %d", r.status)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := fx.st.dronesReads.Load(); n != 1 {
			t.Errorf("store fleet reads for 100 concurrent cold requests = %d, want 1", n)
		}
	})
}

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct{ id, event, data string }

// openStream connects and returns parsed events until the test ends.
func openStream(t *testing.T, url string, hdr ...string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan sseEvent, 100)
	connected := make(chan struct{})
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == ": connected":
				close(connected)
			case line == "":
				if ev.event != "" {
					out <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("stream did not open")
	}
	return out
}

func next(t *testing.T, ch <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("stream closed")
		}
		return ev
	case <-time.After(10 * time.Second): // generous: this is not a benchmark
		t.Fatal("no event within 10 s")
	}
	return sseEvent{}
}

func TestStreamDeliversAndResumes(t *testing.T) {
	modes(t, func(t *testing.T, cacheURL string) {
		fx := newFixture(t, cacheURL, map[string]string{"SSE_RING": "3"})
		stream := openStream(t, fx.url+"/api/v1/stream")
		time.Sleep(100 * time.Millisecond) // Redis SUBSCRIBE completes asynchronously
		sent := time.Now()
		fx.put(t, fx.tenant+"-a", state(100, 8.51, 47.41))
		ev := next(t, stream)
		t.Logf("state.updated handled -> SSE event received in %v", time.Since(sent))
		var v cache.DroneView
		if err := json.Unmarshal([]byte(ev.data), &v); err != nil || ev.event != "drone" || v.ID != fx.tenant+"-a" || v.State.Lon != 8.51 {
			t.Fatalf("event = %+v (%v)", ev, err)
		}
		// Another tenant's change never reaches this stream.
		c, _ := cache.Open(context.Background(), cacheURL, cache.Options{})
		defer c.Close()
		if _, err := c.Put(context.Background(), fx.other, fx.other+"-x", state(100, 1, 1)); err != nil {
			t.Fatal(err)
		}
		// Two more changes; a client that saw only the first resumes.
		fx.put(t, fx.tenant+"-a", state(101, 8.52, 47.41))
		fx.put(t, fx.tenant+"-b", state(101, 2.36, 48.85))
		e2, e3 := next(t, stream), next(t, stream)
		if !strings.Contains(e2.data, fx.tenant+"-a") || !strings.Contains(e3.data, fx.tenant+"-b") {
			t.Fatalf("events = %+v %+v", e2, e3)
		}
		resumed := openStream(t, fx.url+"/api/v1/stream", "Last-Event-ID", ev.id)
		got := []string{next(t, resumed).id, next(t, resumed).id}
		if diff := cmp.Diff([]string{e2.id, e3.id}, got); diff != "" {
			t.Errorf("replayed ids (-want +got):\n%s", diff)
		}
		// Beyond the ring (3 notices): the client is told to refetch.
		for i := range 4 {
			fx.put(t, fx.tenant+"-c", state(200+i, 1, 1))
		}
		// The live stream follows: the four notices, or a resync if it fell
		// further behind than the ring while they were written.
		for range 4 {
			if next(t, stream).event == "resync" {
				break
			}
		}
		old := openStream(t, fx.url+"/api/v1/stream", "Last-Event-ID", ev.id)
		if ev := next(t, old); ev.event != "resync" {
			t.Errorf("resume from before the ring: %+v, want resync", ev)
		}
	})
}

func TestHeartbeat(t *testing.T) {
	fx := newFixture(t, "local://"+uniq("sm"), map[string]string{"SSE_HEARTBEAT": "20ms"})
	resp, err := http.Get(fx.url + "/api/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() == ": heartbeat" {
			return
		}
	}
	t.Fatal("stream ended without a heartbeat")
}

func TestIndexAndOpenAPIServed(t *testing.T) {
	fx := newFixture(t, "local://"+uniq("sm"), nil)
	if r := get(t, fx.url+"/"); r.status != 200 || !strings.Contains(string(r.body), "Dronetrack") {
		t.Errorf("index: %d", r.status)
	}
	if r := get(t, fx.url+"/api/v1/openapi.json"); r.status != 200 || !json.Valid(r.body) {
		t.Errorf("openapi: %d", r.status)
	}
	if r := get(t, fx.url+"/metrics"); r.status != 200 || !strings.Contains(string(r.body), "dronetrack_serve_map_requests_total") {
		t.Errorf("metrics: %d", r.status)
	}
	if r := get(t, fx.url+"/nope"); r.status != 404 || r.header.Get("Content-Type") != problem.ContentType {
		t.Errorf("unknown path: %d %s", r.status, r.header.Get("Content-Type"))
	}
}

func TestUnstartedIs503(t *testing.T) {
	rec := httptest.NewRecorder()
	New().Handle(rec, httptest.NewRequest(http.MethodGet, "/api/v1/drones", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", rec.Code)
	}
}

// TestListThenStreamMissesNothing is how the page combines the two: fetch
// the list, open the stream with since= its version; changes in between are
// replayed.
func TestListThenStreamMissesNothing(t *testing.T) {
	modes(t, func(t *testing.T, cacheURL string) {
		fx := newFixture(t, cacheURL, nil)
		first := openStream(t, fx.url+"/api/v1/stream") // keeps the ring filling, like other users
		r := get(t, fx.url+"/api/v1/drones")
		ver := r.header.Get(VersionHeader)
		if ver == "" {
			t.Fatal("no version header on the list")
		}
		time.Sleep(100 * time.Millisecond)               // Redis SUBSCRIBE completes asynchronously
		fx.put(t, fx.tenant+"-b", state(300, 2.4, 48.9)) // lands between list and stream
		next(t, first)
		s := openStream(t, fx.url+"/api/v1/stream?since="+ver)
		if ev := next(t, s); !strings.Contains(ev.data, fx.tenant+"-b") {
			t.Errorf("first event after since=%s: %+v, want the change to -b", ver, ev)
		}
	})
}

func TestStartFromConfig(t *testing.T) {
	ctx := context.Background()
	if err := New().Start(ctx, map[string]string{}); err == nil {
		t.Error("Start without STORE_URL succeeded")
	}
	f := New()
	cfg := map[string]string{"STORE_URL": "bolt://" + t.TempDir() + "/s.db", "CACHE_URL": "local://" + uniq("sm"),
		"LOG_LEVEL": "error"}
	if err := f.Start(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	defer f.Stop(ctx)
	if ok, _ := f.Ready(ctx); !ok {
		t.Error("not ready after Start")
	}
	if err := f.srv.store.CreateTenant(ctx, store.Tenant{ID: "demo", Name: "Demo"}); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/api/v1/drones", nil)
	req.AddCookie(sessionCookie(t, f.srv.store, "demo", store.RoleViewer))
	rec := httptest.NewRecorder()
	f.Handle(rec, req)
	if rec.Code != 200 || rec.Body.String() != `{"drones":[]}`+"\n" {
		t.Errorf("empty fleet: %d %q", rec.Code, rec.Body)
	}
}

// TestStreamOutlivesWriteTimeout guards the stream against func-go's server,
// which sets a 30 s WriteTimeout: the handler clears the deadline.
func TestStreamOutlivesWriteTimeout(t *testing.T) {
	fx := newFixture(t, "local://"+uniq("sm"), map[string]string{"SSE_HEARTBEAT": "50ms"})
	srv := httptest.NewUnstartedServer(withSession(fx.cookie, http.HandlerFunc(fx.f.Handle)))
	srv.Config.WriteTimeout = 200 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close) // after the stream's own cleanup ends the request
	stream := openStream(t, srv.URL+"/api/v1/stream")
	time.Sleep(500 * time.Millisecond) // well past the write timeout
	fx.put(t, fx.tenant+"-a", state(900, 8.5, 47.4))
	if ev := next(t, stream); ev.event != "drone" {
		t.Errorf("event %+v", ev)
	}
}
