package function_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/keys"
	"github.com/dronetrack/dronetrack/core/publish"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/bolt"
	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/events"
	function "github.com/dronetrack/dronetrack/functions/ingest"
)

var pepper = []byte("test-pepper-0123456789abcdef")

// t0 is the handler's clock in tests; report timestamps are relative to it.
var t0 = time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)

// finder counts key lookups so the key cache's effect is visible. It asks
// inner (a real bolt store in newEnv) or, without one, its map; revoked
// hashes and err stand in for an admin revoking a key and an outage.
type finder struct {
	mu      sync.Mutex
	inner   function.DroneFinder
	drones  map[string]store.Drone
	revoked map[string]bool
	calls   int
	err     error // returned instead of a lookup when set
}

func (f *finder) DroneByKeyHash(ctx context.Context, hash string) (store.Drone, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return store.Drone{}, f.err
	}
	if f.revoked[hash] {
		return store.Drone{}, fmt.Errorf("drone by key hash: %w", store.ErrNotFound)
	}
	if f.inner != nil {
		return f.inner.DroneByKeyHash(ctx, hash)
	}
	d, ok := f.drones[hash]
	if !ok {
		return store.Drone{}, fmt.Errorf("drone by key hash: %w", store.ErrNotFound)
	}
	return d, nil
}

func (f *finder) lookups() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *finder) revoke(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.revoked == nil {
		f.revoked = map[string]bool{}
	}
	f.revoked[keys.Hash(pepper, key)] = true
}

// sink is a broker stand-in that decodes every request with sdk-go's HTTP
// binding, as our consumers do, and answers status (202 when zero).
type sink struct {
	mu     sync.Mutex
	status int
	events []event.Event
	binary []bool
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status != 0 && s.status/100 != 2 {
		w.WriteHeader(s.status)
		return
	}
	e, err := cehttp.NewEventFromHTTPRequest(r)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.events = append(s.events, *e)
	s.binary = append(s.binary, r.Header.Get("Ce-Id") != "")
	w.WriteHeader(http.StatusAccepted)
}

func (s *sink) got() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event.Event(nil), s.events...)
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type env struct {
	url     string // ingest base URL
	key     string // a registered drone's key
	drone   store.Drone
	finder  *finder
	sink    *sink
	sinkSrv *httptest.Server
	clock   *clock
	handler *function.Handler
	logs    *testenv.LogBuffer
}

// newEnv runs the real handler on a real listener, authenticating against a
// real embedded (bolt) store and publishing through core/publish to an
// httptest sink.
func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvDeps(t, nil)
}

// newEnvDeps is newEnv with deps adjusted by tune before the handler is built.
func newEnvDeps(t testing.TB, tune func(*function.Deps)) *env {
	t.Helper()
	key, err := keys.Generate()
	if err != nil {
		t.Fatal(err)
	}
	d := store.Drone{ID: "drone-1", TenantID: "tenant-1", Name: "Alpha", KeyHash: keys.Hash(pepper, key), CreatedAt: t0}
	db, err := bolt.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	if err := db.CreateTenant(ctx, store.Tenant{ID: d.TenantID, Name: "One", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateDrone(ctx, d); err != nil {
		t.Fatal(err)
	}
	e := &env{key: key, drone: d, finder: &finder{inner: db},
		sink: &sink{}, clock: &clock{now: t0}, logs: &testenv.LogBuffer{}}
	e.sinkSrv = httptest.NewServer(e.sink)
	t.Cleanup(e.sinkSrv.Close)
	pub, err := publish.New(e.sinkSrv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	deps := function.Deps{Drones: e.finder, Publisher: pub, Pepper: pepper, Logger: log, Now: e.clock.Now}
	if tune != nil {
		tune(&deps)
	}
	e.handler, err = function.NewHandler(deps)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.handler)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(t *testing.T, method, path, key, contentType string, body io.Reader) reply {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

func (e *env) post(t *testing.T, body string) reply {
	t.Helper()
	return e.do(t, http.MethodPost, function.PathTelemetry, e.key, "application/json", strings.NewReader(body))
}

type problemBody struct {
	Type   string              `json:"type"`
	Title  string              `json:"title"`
	Status int                 `json:"status"`
	Detail string              `json:"detail"`
	Errors []events.FieldError `json:"errors"`
}

func decodeProblem(t *testing.T, r reply) problemBody {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, r.body)
	}
	var p problemBody
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body: %v\n%s", err, r.body)
	}
	if p.Status != r.status {
		t.Errorf("problem status %d != HTTP status %d", p.Status, r.status)
	}
	return p
}

// ts formats t0+d as RFC 3339.
func ts(d time.Duration) string { return t0.Add(d).Format(time.RFC3339Nano) }

func report(d time.Duration, lat, lon float64) string {
	return fmt.Sprintf(`{"ts":%q,"lat":%g,"lon":%g,"alt":120.5,"speed":12,"heading":90,"battery":87.5,"seq":%d}`,
		ts(d), lat, lon, 100000+int(d/time.Second))
}

func TestAcceptSingleReport(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, http.MethodPost, function.PathTelemetry, e.key, "application/json; charset=utf-8",
		strings.NewReader(report(-time.Second, 52.52, 13.405)))
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d, want 202; body %s", r.status, r.body)
	}
	var got struct {
		Accepted int    `json:"accepted"`
		EventID  string `json:"eventId"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("reply body: %v\n%s", err, r.body)
	}
	evs := e.sink.got()
	if len(evs) != 1 {
		t.Fatalf("sink got %d events, want 1", len(evs))
	}
	if !e.sink.binary[0] {
		t.Error("event was not sent in binary content mode")
	}
	if got.Accepted != 1 || got.EventID != evs[0].ID() {
		t.Errorf("reply = %+v, want accepted 1 and eventId %q", got, evs[0].ID())
	}
	data, err := events.Decode[events.TelemetryReceived](evs[0], events.TypeTelemetryReceived)
	if err != nil {
		t.Fatal(err)
	}
	want := events.TelemetryReceived{
		TenantID: "tenant-1", DroneID: "drone-1", ReceivedAt: t0,
		Reports: []events.Report{{TS: t0.Add(-time.Second), Lat: 52.52, Lon: 13.405, Alt: new(120.5),
			Speed: new(12.0), Heading: new(90.0), Battery: new(87.5), Seq: new(uint64(99999))}},
	}
	if diff := cmp.Diff(want, data); diff != "" {
		t.Errorf("published data (-want +got):\n%s", diff)
	}
	if evs[0].Subject() != "drone-1" || evs[0].Extensions()[events.ExtTenantID] != "tenant-1" {
		t.Errorf("event subject %q tenant %v, want drone-1 tenant-1", evs[0].Subject(), evs[0].Extensions()[events.ExtTenantID])
	}
}

func TestAcceptArrayAsOneEvent(t *testing.T) {
	e := newEnv(t)
	body := "[" + report(-3*time.Second, 1, 2) + ",\n " + report(-2*time.Second, 1.1, 2.1) + "," +
		`{"ts":"` + ts(-time.Second) + `","lat":-90,"lon":180}` + "]"
	r := e.post(t, body)
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d, want 202; body %s", r.status, r.body)
	}
	if !bytes.Contains(r.body, []byte(`"accepted":3`)) {
		t.Errorf("reply %s, want accepted 3", r.body)
	}
	evs := e.sink.got()
	if len(evs) != 1 {
		t.Fatalf("sink got %d events, want 1 per request", len(evs))
	}
	data, err := events.Decode[events.TelemetryReceived](evs[0], events.TypeTelemetryReceived)
	if err != nil {
		t.Fatal(err)
	}
	var lats []float64
	for _, rep := range data.Reports {
		lats = append(lats, rep.Lat)
	}
	if diff := cmp.Diff([]float64{1, 1.1, -90}, lats); diff != "" {
		t.Errorf("report order (-want +got):\n%s", diff)
	}
	if data.Reports[2].Alt != nil || data.Reports[2].Seq != nil {
		t.Errorf("absent optional fields came out present: %+v", data.Reports[2])
	}
}

func TestAcceptMaxReports(t *testing.T) {
	e := newEnv(t)
	r := e.post(t, batch(function.MaxReports))
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d, want 202 for exactly MaxReports; body %.300s", r.status, r.body)
	}
}

func batch(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = report(-time.Duration(n-i)*time.Second, 10+float64(i)/1000, 20)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// field is the part of a FieldError a bad-input test pins down.
type field struct{ Field, Pointer string }

func TestBadInput(t *testing.T) {
	valid := report(0, 1, 2)
	tests := []struct {
		name        string
		method      string // default POST
		path        string // default /v1/telemetry
		contentType string // default application/json
		body        string
		wantStatus  int
		wantFields  []field // for 400 with field errors; nil means "no errors list"
		wantHeader  map[string]string
	}{
		{name: "lat above 90", body: `{"ts":"` + ts(0) + `","lat":90.5,"lon":0}`,
			wantStatus: 400, wantFields: []field{{"lat", "/lat"}}},
		{name: "lat as string NaN", body: `{"ts":"` + ts(0) + `","lat":"NaN","lon":0}`,
			wantStatus: 400, wantFields: []field{{"lat", "/lat"}}},
		{name: "lon below -180", body: `{"ts":"` + ts(0) + `","lat":0,"lon":-180.0001}`,
			wantStatus: 400, wantFields: []field{{"lon", "/lon"}}},
		{name: "lat huge number out of float range", body: `{"ts":"` + ts(0) + `","lat":1e999,"lon":0}`,
			wantStatus: 400, wantFields: []field{{"lat", "/lat"}}},
		{name: "ts far in the future", body: `{"ts":"` + ts(events.MaxFutureSkew+time.Second) + `","lat":0,"lon":0}`,
			wantStatus: 400, wantFields: []field{{"ts", "/ts"}}},
		{name: "ts too old", body: `{"ts":"` + ts(-events.MaxAge-time.Hour) + `","lat":0,"lon":0}`,
			wantStatus: 400, wantFields: []field{{"ts", "/ts"}}},
		{name: "ts not RFC 3339", body: `{"ts":"2026-11-29 04:00:00","lat":0,"lon":0}`,
			wantStatus: 400, wantFields: []field{{"ts", "/ts"}}},
		{name: "ts without zone", body: `{"ts":"2026-11-29T04:00:00","lat":0,"lon":0}`,
			wantStatus: 400, wantFields: []field{{"ts", "/ts"}}},
		{name: "ts as unix number", body: `{"ts":1795838400,"lat":0,"lon":0}`,
			wantStatus: 400, wantFields: []field{{"ts", "/ts"}}},
		{name: "required fields missing", body: `{}`,
			wantStatus: 400, wantFields: []field{{"ts", "/ts"}, {"lat", "/lat"}, {"lon", "/lon"}}},
		{name: "required lat null", body: `{"ts":"` + ts(0) + `","lat":null,"lon":0}`,
			wantStatus: 400, wantFields: []field{{"lat", "/lat"}}},
		{name: "unknown field droneId (identity comes from the key)", body: `{"ts":"` + ts(0) + `","lat":0,"lon":0,"droneId":"someone-else"}`,
			wantStatus: 400, wantFields: []field{{"droneId", "/droneId"}}},
		{name: "field name in the wrong case", body: `{"ts":"` + ts(0) + `","LAT":1,"lon":0}`,
			wantStatus: 400, wantFields: []field{{"LAT", "/LAT"}, {"lat", "/lat"}}},
		{name: "unknown field with slash escaped in pointer", body: `{"ts":"` + ts(0) + `","lat":0,"lon":0,"a/b~c":{"x":[1,2]}}`,
			wantStatus: 400, wantFields: []field{{"a/b~c", "/a~1b~0c"}}},
		{name: "duplicate field", body: `{"ts":"` + ts(0) + `","lat":0,"lat":1,"lon":0}`,
			wantStatus: 400, wantFields: []field{{"lat", "/lat"}}},
		{name: "optional fields out of range", body: `{"ts":"` + ts(0) + `","lat":0,"lon":0,"alt":20001,"speed":-1,"heading":360,"battery":100.5}`,
			wantStatus: 400, wantFields: []field{{"alt", "/alt"}, {"speed", "/speed"}, {"heading", "/heading"}, {"battery", "/battery"}}},
		{name: "seq negative and alt boolean", body: `{"ts":"` + ts(0) + `","lat":0,"lon":0,"seq":-1,"alt":true}`,
			wantStatus: 400, wantFields: []field{{"seq", "/seq"}, {"alt", "/alt"}}},
		{name: "seq fractional", body: `{"ts":"` + ts(0) + `","lat":0,"lon":0,"seq":1.5}`,
			wantStatus: 400, wantFields: []field{{"seq", "/seq"}}},
		{name: "telemetry fields out of range", body: `{"ts":"` + ts(0) + `","lat":0,"lon":0,"fix":9,"satellites":-1,"hae":-501,"height":20501,"vspeed":-300.5,"hAcc":-1,"vAcc":100001,"link":101,"mode":"` + strings.Repeat("M", 33) + `"}`,
			wantStatus: 400, wantFields: []field{{"mode", "/mode"}, {"fix", "/fix"}, {"satellites", "/satellites"}, {"hae", "/hae"},
				{"height", "/height"}, {"vspeed", "/vspeed"}, {"hAcc", "/hAcc"}, {"vAcc", "/vAcc"}, {"link", "/link"}}},
		{name: "telemetry fields of the wrong type", body: `{"ts":"` + ts(0) + `","lat":0,"lon":0,"armed":1,"mode":true,"fix":3.5,"satellites":"9","home":[1,2]}`,
			wantStatus: 400, wantFields: []field{{"armed", "/armed"}, {"mode", "/mode"}, {"fix", "/fix"}, {"satellites", "/satellites"}, {"home", "/home"}}},
		{name: "empty mode and mode with a control character", body: "[" + `{"ts":"` + ts(0) + `","lat":0,"lon":0,"mode":""},{"ts":"` + ts(0) + `","lat":0,"lon":0,"mode":"RTL\u0007"}]`,
			wantStatus: 400, wantFields: []field{{"mode", "/0/mode"}, {"mode", "/1/mode"}}},
		{name: "home members named by pointer", body: `[` + valid + `,{"ts":"` + ts(0) + `","lat":0,"lon":0,"home":{"lat":91,"lon":0,"alt":-501}},{"ts":"` + ts(0) + `","lat":0,"lon":0,"home":{"lat":"x","lat":1,"alt":null,"z":1}}]`,
			wantStatus: 400, wantFields: []field{{"home", "/1/home/lat"}, {"home", "/1/home/alt"},
				{"home", "/2/home/lat"}, {"home", "/2/home/lat"}, {"home", "/2/home/z"}, {"home", "/2/home/lon"}}},
		{name: "every bad field of every report in an array",
			body:       "[" + valid + `,{"ts":"` + ts(0) + `","lat":"NaN","lon":200},` + valid + `,{"ts":"x","lat":0,"lon":0,"extra":1}]`,
			wantStatus: 400, wantFields: []field{{"lat", "/1/lat"}, {"lon", "/1/lon"}, {"ts", "/3/ts"}, {"extra", "/3/extra"}}},
		{name: "array element not an object", body: "[" + valid + `,42]`,
			wantStatus: 400, wantFields: []field{{"", "/1"}}},
		{name: "empty array", body: `[]`, wantStatus: 400, wantFields: []field{{"", ""}}},
		{name: "too many reports", body: batch(function.MaxReports + 1), wantStatus: 400, wantFields: []field{{"", ""}}},
		{name: "top-level null", body: `null`, wantStatus: 400, wantFields: []field{{"", ""}}},
		{name: "top-level string", body: `"hello"`, wantStatus: 400, wantFields: []field{{"", ""}}},
		{name: "malformed JSON", body: `{"ts":"` + ts(0) + `","lat":0,`, wantStatus: 400},
		{name: "bare NaN is not JSON", body: `{"ts":"` + ts(0) + `","lat":NaN,"lon":0}`, wantStatus: 400},
		{name: "two JSON values", body: valid + valid, wantStatus: 400},
		{name: "trailing garbage", body: valid + " x", wantStatus: 400},
		{name: "empty body", body: ``, wantStatus: 400},
		{name: "leading zero number", body: `{"ts":"` + ts(0) + `","lat":01,"lon":0}`, wantStatus: 400},
		{name: "body too large", body: `[` + strings.Repeat(" ", function.MaxBodyBytes) + `]`, wantStatus: 413},
		{name: "wrong content type", contentType: "text/plain", body: valid, wantStatus: 415},
		{name: "form content type", contentType: "application/x-www-form-urlencoded", body: valid, wantStatus: 415},
		{name: "wrong method", method: http.MethodGet, wantStatus: 405, wantHeader: map[string]string{"Allow": "POST"}},
		{name: "PUT is not POST", method: http.MethodPut, body: valid, wantStatus: 405, wantHeader: map[string]string{"Allow": "POST"}},
		{name: "unknown path", path: "/v1/telemetry/x", body: valid, wantStatus: 404},
		{name: "root path", path: "/", wantStatus: 404},
		{name: "metrics is read-only", method: http.MethodPost, path: function.PathMetrics, wantStatus: 405,
			wantHeader: map[string]string{"Allow": "GET, HEAD"}},
	}
	e := newEnv(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method, path, ct := tc.method, tc.path, tc.contentType
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = function.PathTelemetry
			}
			if ct == "" {
				ct = "application/json"
			}
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			r := e.do(t, method, path, e.key, ct, body)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %.500s", r.status, tc.wantStatus, r.body)
			}
			p := decodeProblem(t, r)
			var got []field
			for _, fe := range p.Errors {
				got = append(got, field{fe.Field, fe.Pointer})
				if fe.Detail == "" {
					t.Errorf("field error %+v has no detail", fe)
				}
			}
			if diff := cmp.Diff(tc.wantFields, got); diff != "" {
				t.Errorf("bad fields (-want +got):\n%s\nproblem: %s", diff, r.body)
			}
			for k, v := range tc.wantHeader {
				if got := r.header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
	if n := len(e.sink.got()); n != 0 {
		t.Errorf("sink got %d events from bad requests, want 0", n)
	}
}

func TestBodyTooLargeWithoutContentLength(t *testing.T) {
	e := newEnv(t)
	// A reader of unknown length makes the client send chunked, so only the
	// read limit can catch it.
	body := io.MultiReader(strings.NewReader("["+report(0, 1, 2)+","), strings.NewReader(strings.Repeat(" ", function.MaxBodyBytes)))
	r := e.do(t, http.MethodPost, function.PathTelemetry, e.key, "application/json", struct{ io.Reader }{body})
	if r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413; body %s", r.status, r.body)
	}
	decodeProblem(t, r)
	if n := len(e.sink.got()); n != 0 {
		t.Errorf("sink got %d events, want 0", n)
	}
}

func TestUnauthorized(t *testing.T) {
	e := newEnv(t)
	unknown, _ := keys.Generate()
	tests := []struct {
		name       string
		authz      string
		wantLookup bool // whether the store must be asked
	}{
		{"no Authorization header", "", false},
		{"Basic scheme", "Basic ZHJvbmU6a2V5", false},
		{"Bearer without token", "Bearer ", false},
		{"malformed key", "Bearer not-a-drone-key", false},
		{"key in a different case", "Bearer " + strings.ToUpper(e.key), false},
		{"unknown well-formed key", "Bearer " + unknown, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.finder.lookups()
			req, _ := http.NewRequest(http.MethodPost, e.url+function.PathTelemetry, strings.NewReader(report(0, 1, 2)))
			req.Header.Set("Content-Type", "application/json")
			if tc.authz != "" {
				req.Header.Set("Authorization", tc.authz)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			r := reply{resp.StatusCode, resp.Header, b}
			if r.status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401; body %s", r.status, r.body)
			}
			if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
			}
			decodeProblem(t, r)
			if looked := e.finder.lookups() > before; looked != tc.wantLookup {
				t.Errorf("store asked = %v, want %v", looked, tc.wantLookup)
			}
		})
	}
	if n := len(e.sink.got()); n != 0 {
		t.Errorf("sink got %d events from unauthorized requests, want 0", n)
	}
}

func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	e := newEnv(t)
	req, _ := http.NewRequest(http.MethodPost, e.url+function.PathTelemetry, strings.NewReader(report(0, 1, 2)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "bearer "+e.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202", resp.StatusCode)
	}
}

func TestAuthBeforeBody(t *testing.T) {
	e := newEnv(t)
	// A stranger's malformed or oversized body is not parsed: 401 first.
	r := e.do(t, http.MethodPost, function.PathTelemetry, "", "text/plain", strings.NewReader("{"))
	if r.status != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", r.status)
	}
}

func TestSinkDownIs503AndNothingPublished(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(e *env)
	}{
		{"sink unreachable", func(e *env) { e.sinkSrv.Close() }},
		{"sink answers 500", func(e *env) { e.sink.mu.Lock(); e.sink.status = 500; e.sink.mu.Unlock() }},
		{"sink answers 429", func(e *env) { e.sink.mu.Lock(); e.sink.status = 429; e.sink.mu.Unlock() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tc.break_(e)
			r := e.post(t, "["+report(-time.Second, 1, 2)+","+report(0, 1, 2)+"]")
			if r.status != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503; body %s", r.status, r.body)
			}
			if got := r.header.Get("Retry-After"); got != "5" {
				t.Errorf("Retry-After = %q, want 5", got)
			}
			decodeProblem(t, r)
			if n := len(e.sink.got()); n != 0 {
				t.Errorf("sink holds %d events, want 0", n)
			}
			if got := metricValue(t, e, "dronetrack_ingest_reports_accepted_total"); got != "0" {
				t.Errorf("reports accepted = %s, want 0", got)
			}
		})
	}
}

func TestStoreUnavailableIs503(t *testing.T) {
	e := newEnv(t)
	e.finder.err = fmt.Errorf("lookup: %w", store.ErrUnavailable)
	r := e.post(t, report(0, 1, 2))
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503; body %s", r.status, r.body)
	}
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	decodeProblem(t, r)
	// An outage is not remembered as a bad key: once the store is back the
	// same key works.
	e.finder.mu.Lock()
	e.finder.err = nil
	e.finder.mu.Unlock()
	if r := e.post(t, report(0, 1, 2)); r.status != http.StatusAccepted {
		t.Fatalf("after recovery: status %d, want 202", r.status)
	}
}

// hungFinder is a store that never answers until released: every lookup
// waits for its context (as a Firestore call to a frozen server does).
type hungFinder struct {
	release chan struct{}
	inner   function.DroneFinder
}

func (f *hungFinder) DroneByKeyHash(ctx context.Context, hash string) (store.Drone, error) {
	select {
	case <-f.release:
		return f.inner.DroneByKeyHash(ctx, hash)
	case <-ctx.Done():
		return store.Drone{}, fmt.Errorf("drone by key hash: %w", ctx.Err())
	}
}

// TestHungStoreIs503: a key lookup that hangs is cut at STORE_TIMEOUT and
// the drone told to resend (503 + Retry-After), not held; nothing is
// published; once the store answers the same key works.
func TestHungStoreIs503(t *testing.T) {
	hung := &hungFinder{release: make(chan struct{})}
	e := newEnvDeps(t, func(d *function.Deps) {
		hung.inner = d.Drones
		d.Drones = hung
		d.StoreTimeout = 50 * time.Millisecond
	})
	r := e.post(t, report(0, 1, 2))
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("hung store: status %d, Retry-After %q; want 503 with Retry-After; body %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	decodeProblem(t, r)
	if n := len(e.sink.got()); n != 0 {
		t.Fatalf("published %d events while the key could not be checked", n)
	}
	close(hung.release)
	if r := e.post(t, report(0, 1, 2)); r.status != http.StatusAccepted {
		t.Fatalf("after the store answers: status %d, want 202", r.status)
	}
}

// TestReportTimesKeptToTheMicrosecond: ingest truncates report times to
// events.TimePrecision (Firestore's), so every copy of a report holds the
// same instant; the event id is derived from the truncated times, so a
// resend with the same report is the same event.
func TestReportTimesKeptToTheMicrosecond(t *testing.T) {
	e := newEnv(t)
	body := `{"ts":"2026-11-29T03:58:59.123456789Z","lat":1,"lon":2}`
	for range 2 {
		if r := e.post(t, body); r.status != http.StatusAccepted {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	}
	got := e.sink.got()
	if len(got) != 2 || got[0].ID() != got[1].ID() {
		t.Fatalf("events %v: want two copies of one event id", got)
	}
	data, err := events.Decode[events.TelemetryReceived](got[0], events.TypeTelemetryReceived)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 11, 29, 3, 58, 59, 123456000, time.UTC)
	if ts := data.Reports[0].TS; !ts.Equal(want) {
		t.Errorf("published ts %s, want %s (truncated to the microsecond)", ts.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
	if id := events.TelemetryEventID(e.drone.ID, data.Reports); got[0].ID() != id {
		t.Errorf("event id %s, want the id of the truncated reports %s", got[0].ID(), id)
	}
}

func TestKeyCache(t *testing.T) {
	e := newEnv(t)
	post := func() int { return e.post(t, report(0, 1, 2)).status }

	if got := post(); got != 202 {
		t.Fatalf("first request: %d", got)
	}
	if got := post(); got != 202 {
		t.Fatalf("second request: %d", got)
	}
	if n := e.finder.lookups(); n != 1 {
		t.Errorf("store lookups after two requests = %d, want 1 (cached)", n)
	}

	// A revoked key keeps working until the cache entry expires...
	e.finder.revoke(e.key)
	e.clock.advance(time.Duration(function.DefaultConfig().KeyCacheTTL) - time.Second)
	if got := post(); got != 202 {
		t.Errorf("revoked key within TTL: %d, want 202 (documented delay)", got)
	}
	// ...and stops after it.
	e.clock.advance(2 * time.Second)
	if got := post(); got != 401 {
		t.Errorf("revoked key after TTL: %d, want 401", got)
	}
	if n := e.finder.lookups(); n != 2 {
		t.Errorf("store lookups = %d, want 2", n)
	}

	// Unknown keys are remembered briefly too.
	bad, _ := keys.Generate()
	for range 5 {
		if r := e.do(t, http.MethodPost, function.PathTelemetry, bad, "application/json", strings.NewReader(report(0, 1, 2))); r.status != 401 {
			t.Fatalf("unknown key: %d, want 401", r.status)
		}
	}
	if n := e.finder.lookups(); n != 3 {
		t.Errorf("store lookups after 5 requests with one unknown key = %d, want 3", n)
	}
	e.clock.advance(function.DefaultNegativeKeyCacheTTL + time.Second)
	e.do(t, http.MethodPost, function.PathTelemetry, bad, "application/json", strings.NewReader(report(0, 1, 2)))
	if n := e.finder.lookups(); n != 4 {
		t.Errorf("store lookups after negative TTL = %d, want 4", n)
	}
}

func metricValue(t *testing.T, e *env, name string) string {
	t.Helper()
	r := e.do(t, http.MethodGet, function.PathMetrics, "", "", nil)
	if r.status != 200 {
		t.Fatalf("/metrics: %d", r.status)
	}
	for _, line := range strings.Split(string(r.body), "\n") {
		if strings.HasPrefix(line, name+" ") {
			return strings.TrimPrefix(line, name+" ")
		}
	}
	t.Fatalf("metric %s not found in\n%s", name, r.body)
	return ""
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.post(t, "["+report(-time.Second, 1, 2)+","+report(0, 1, 2)+"]")
	e.post(t, `{}`)
	for name, want := range map[string]string{
		`dronetrack_ingest_requests_total{code="202"}`:     "1",
		`dronetrack_ingest_requests_total{code="400"}`:     "1",
		`dronetrack_ingest_reports_accepted_total`:         "2",
		`dronetrack_ingest_publish_duration_seconds_count`: "1",
		`dronetrack_ingest_key_cache_total{result="miss"}`: "1",
		`dronetrack_ingest_key_cache_total{result="hit"}`:  "1",
	} {
		if got := metricValue(t, e, name); got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
}

func TestLogsNameDroneAndEventButNeverTheKey(t *testing.T) {
	e := newEnv(t)
	ok := e.post(t, report(0, 1, 2))
	e.post(t, `{"lat":"x"}`)
	e.sinkSrv.Close()
	e.post(t, report(time.Second, 1, 2))

	logs := e.logs.String()
	if strings.Contains(logs, e.key) || strings.Contains(logs, e.key[len(keys.Prefix):]) {
		t.Errorf("logs contain the drone key:\n%s", logs)
	}
	if strings.Contains(strings.ToLower(logs), "authorization") || strings.Contains(logs, e.drone.KeyHash) {
		t.Errorf("logs contain the Authorization header or key hash:\n%s", logs)
	}
	var id struct {
		EventID string `json:"eventId"`
	}
	_ = json.Unmarshal(ok.body, &id)
	for _, want := range []string{`"drone":"drone-1"`, `"tenant":"tenant-1"`, `"event":"` + id.EventID + `"`, `"msg":"publish failed`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}

// A retried request (same drone, same timestamps) yields the same event id,
// so process can drop the duplicate.
func TestRetryKeepsEventID(t *testing.T) {
	e := newEnv(t)
	a := e.post(t, report(0, 1, 2))
	b := e.post(t, report(0, 1, 2))
	if a.status != 202 || b.status != 202 {
		t.Fatalf("statuses %d %d", a.status, b.status)
	}
	evs := e.sink.got()
	if evs[0].ID() != evs[1].ID() {
		t.Errorf("event ids %q and %q differ for a retried request", evs[0].ID(), evs[1].ID())
	}
}

func TestNewHandlerRejectsMissingDeps(t *testing.T) {
	pub, _ := publish.New("http://127.0.0.1:1/", nil)
	for name, d := range map[string]function.Deps{
		"no finder":    {Publisher: pub, Pepper: pepper},
		"no publisher": {Drones: &finder{}, Pepper: pepper},
		"short pepper": {Drones: &finder{}, Publisher: pub, Pepper: []byte("short")},
	} {
		if _, err := function.NewHandler(d); err == nil {
			t.Errorf("%s: NewHandler succeeded, want an error", name)
		}
	}
}

func nowRFC3339() string { return time.Now().UTC().Format(time.RFC3339) }

func TestConcurrentSendersAllAccepted(t *testing.T) {
	// One drone sends 320 requests at once: this tests the receive path under
	// parallel senders, not the per-drone rate limit (tested on its own).
	e := newEnvDeps(t, func(d *function.Deps) { d.RateLimits = benchLimits })
	const senders, each = 32, 10
	var wg sync.WaitGroup
	errs := make(chan string, senders*each)
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				body := report(-time.Duration(s*each+i)*time.Second, 1, 2)
				req, _ := http.NewRequest(http.MethodPost, e.url+function.PathTelemetry, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+e.key)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err.Error()
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					errs <- fmt.Sprintf("status %d", resp.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ids := map[string]bool{}
	for _, ev := range e.sink.got() {
		ids[ev.ID()] = true
	}
	if len(ids) != senders*each {
		t.Errorf("sink got %d distinct events, want %d", len(ids), senders*each)
	}
}

func TestMissingContentTypeIs415(t *testing.T) {
	e := newEnv(t)
	req, _ := http.NewRequest(http.MethodPost, e.url+function.PathTelemetry, strings.NewReader(report(0, 1, 2)))
	req.Header.Set("Authorization", "Bearer "+e.key)
	req.Header.Del("Content-Type")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("status %d, want 415", resp.StatusCode)
	}
	if got := resp.Header.Get("Accept-Post"); got != "application/json" {
		t.Errorf("Accept-Post = %q, want application/json", got)
	}
}
