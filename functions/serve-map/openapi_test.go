package function

import (
	"bytes"
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

type openAPI struct {
	Paths map[string]map[string]struct {
		Responses map[string]struct {
			Content map[string]json.RawMessage `json:"content"`
		} `json:"responses"`
	} `json:"paths"`
}

func loadOpenAPI(t *testing.T) openAPI {
	t.Helper()
	var doc openAPI
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return doc
}

// ingestPaths are documented here but served by ingest.
// ingest's own TestOpenAPIListsIngestRoutes checks them against its handler.
var ingestPaths = map[string]bool{"/v1/telemetry": true, "/v1/events": true, "/v1/osmand": true}

func TestOpenAPIListsEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	fx := newFixture(t, "local://"+uniq("sm"), nil)
	var routed, documented []string
	err := chi.Walk(fx.f.srv.routes(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routed = append(routed, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, ops := range doc.Paths {
		if ingestPaths[p] {
			continue
		}
		for m := range ops {
			documented = append(documented, strings.ToUpper(m)+" "+p)
		}
	}
	sort.Strings(routed)
	sort.Strings(documented)
	if diff := cmp.Diff(routed, documented); diff != "" {
		t.Errorf("router vs OpenAPI (-routed +documented):\n%s", diff)
	}
	if _, ok := doc.Paths["/v1/telemetry"]["post"]; !ok {
		t.Error("ingest's POST /v1/telemetry is not documented")
	}
}

// openAPIReplies checks real replies against openapi.json: the status is
// documented for the operation, the content type for the status, and a
// JSON body validates against the schema given for both.
type openAPIReplies struct {
	doc      openAPI
	compiler *jsonschema.Compiler
}

const openAPIBase = "mem://dronetrack/openapi.json"

func newOpenAPIReplies(t *testing.T) *openAPIReplies {
	t.Helper()
	c := jsonschema.NewCompiler()
	root, err := jsonschema.UnmarshalJSON(bytes.NewReader(openAPIDoc))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource(openAPIBase, root); err != nil {
		t.Fatal(err)
	}
	c.AssertFormat()
	return &openAPIReplies{doc: loadOpenAPI(t), compiler: c}
}

// check reports (t.Errorf) how r, the reply to method on the documented
// route, departs from the document.
func (o *openAPIReplies) check(t *testing.T, method, route string, r reply) {
	t.Helper()
	op := strings.ToLower(method)
	resp, ok := o.doc.Paths[route][op].Responses[strconv.Itoa(r.status)]
	if !ok {
		t.Errorf("%s %s: status %d is not documented", method, route, r.status)
		return
	}
	ct, _, _ := mime.ParseMediaType(r.header.Get("Content-Type"))
	if len(resp.Content) == 0 && len(r.body) == 0 {
		return
	}
	if _, ok := resp.Content[ct]; !ok {
		t.Errorf("%s %s: %d with content type %q is not documented (%v)", method, route, r.status, ct, keys(resp.Content))
		return
	}
	if !strings.HasSuffix(ct, "json") {
		return
	}
	ptr := "#/paths/" + escape(route) + "/" + op + "/responses/" + strconv.Itoa(r.status) + "/content/" + escape(ct) + "/schema"
	sch, err := o.compiler.Compile(openAPIBase + ptr)
	if err != nil {
		t.Fatalf("compile %s: %v", ptr, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.body))
	if err != nil {
		t.Errorf("%s %s: body is not JSON: %v", method, route, err)
		return
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("%s %s: reply does not match the document: %v\n%s", method, route, err, r.body)
	}
}

// TestRepliesMatchOpenAPI sends real requests and checks each reply's status
// is documented for its route and its body validates against the schema the
// document gives for that status and media type.
func TestRepliesMatchOpenAPI(t *testing.T) {
	o := newOpenAPIReplies(t)

	fx := newFixture(t, "local://"+uniq("sm"), nil)
	drone := fx.tenant + "-a"
	// A point and a drone with every drone telemetry field, so the
	// document must list them all (DroneState allows nothing else).
	full := events.Report{TS: t0, Lat: 47, Lon: 8, Alt: new(100.0), Armed: new(true), Mode: new("AUTO.RTL"),
		Fix: new(events.FixRTKFix), Satellites: new(22), HAE: new(147.5), Height: new(60.0), VSpeed: new(-1.5),
		HAcc: new(0.02), VAcc: new(0.04), Link: new(95.0), Home: &events.Position{Lat: 47.001, Lon: 8.001, Alt: new(40.0)}}
	if err := fx.st.AppendTrack(context.Background(), []store.TrackPoint{{TenantID: fx.tenant, DroneID: drone, Report: full}}); err != nil {
		t.Fatal(err)
	}
	fullDrone := fx.tenant + "-full"
	if err := fx.st.CreateDrone(context.Background(), store.Drone{ID: fullDrone, TenantID: fx.tenant, Name: "Full",
		State: &events.DroneState{TS: full.TS, Lat: full.Lat, Lon: full.Lon, Alt: full.Alt, Armed: full.Armed, Mode: full.Mode,
			Fix: full.Fix, Satellites: full.Satellites, HAE: full.HAE, Height: full.Height, VSpeed: full.VSpeed,
			HAcc: full.HAcc, VAcc: full.VAcc, Link: full.Link, Home: full.Home, UpdatedAt: t0}}); err != nil {
		t.Fatal(err)
	}
	from, to := t0.Add(-time.Minute).Format(time.RFC3339), t0.Add(time.Minute).Format(time.RFC3339)
	// A drone with a flight (every field of Flight set) around t0.
	flightDrone := fx.tenant + "-b"
	_, fl := seedFlight(t, fx.st, fx.tenant, flightDrone, t0.Add(-30*time.Second))
	// A drone whose flights replay is owed: its list has replayOwed.
	owedDrone := fx.tenant + "-c"
	oweFlightReplay(t, fx.st, fx.tenant, owedDrone, t0.Add(-30*time.Second), nil)
	// An open and a closed alert, a polygon and a circle fence, a webhook
	// with a failed and a successful delivery: every optional field shows.
	ctx := context.Background()
	for i, batt := range []float64{5, 90, 4} {
		st := state(10+i, 8, 47)
		st.Battery, st.UpdatedAt = new(batt), time.Now().UTC()
		if _, err := fx.st.EvaluateAlerts(ctx, fx.tenant, drone, func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool) {
			return alerting.EvaluateState(prev, st, alerting.DefaultSettings(), nil, st.UpdatedAt)
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []alerting.Fence{
		{ID: "gf1", TenantID: fx.tenant, Name: "yard", Mode: alerting.ModeKeepIn, CreatedAt: t0, UpdatedAt: t0,
			Polygon: []alerting.Point{{Lat: 1, Lon: 179}, {Lat: 1, Lon: -179}, {Lat: 2, Lon: -179}}},
		{ID: "gf2", TenantID: fx.tenant, Name: "airport", Mode: alerting.ModeKeepOut, CreatedAt: t0, UpdatedAt: t0,
			Center: &alerting.Point{Lat: 47, Lon: 8}, RadiusM: 500},
	} {
		if err := fx.st.CreateGeofence(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := fx.st.CreateWebhook(ctx, store.Webhook{ID: "wh1", TenantID: fx.tenant, URL: "https://example.test/h", Secret: "s", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	for i, code := range []int{500, 204} {
		if err := fx.st.AddDelivery(ctx, store.Delivery{ID: "d" + strconv.Itoa(i), TenantID: fx.tenant, WebhookID: "wh1",
			EventID: "e/raised", EventType: events.TypeAlertRaised, Attempt: i + 1, At: t0.Add(time.Duration(i) * time.Second),
			StatusCode: code, Error: map[bool]string{true: "receiver answered 500"}[code == 500], OK: code == 204}); err != nil {
			t.Fatal(err)
		}
	}
	if err := fx.st.CreateChannel(ctx, store.Channel{ID: "ch1", TenantID: fx.tenant, Name: "ops", Kind: "email",
		Recipients: []string{"ops@example.test"}, CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	for i, ok := range []bool{false, true} {
		if err := fx.st.AddChannelDelivery(ctx, store.Delivery{ID: "cd" + strconv.Itoa(i), TenantID: fx.tenant, ChannelID: "ch1",
			EventID: "e/raised", EventType: events.TypeAlertRaised, Attempt: i + 1, At: t0.Add(time.Duration(i) * time.Second),
			Error: map[bool]string{false: "smtp: 451 try later"}[ok], OK: ok}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		route, url string
		status     int
	}{
		{"/api/v1/drones", "/api/v1/drones", 200},
		{"/api/v1/drones", "/api/v1/drones?bbox=8,47,9,48", 200},
		{"/api/v1/drones", "/api/v1/drones?bbox=nope", 400},
		{"/api/v1/drones/{id}", "/api/v1/drones/" + drone, 200},
		{"/api/v1/drones/{id}", "/api/v1/drones/" + fullDrone, 200},
		{"/api/v1/drones/{id}", "/api/v1/drones/" + fx.other + "-x", 404},
		{"/api/v1/drones/{id}/track", "/api/v1/drones/" + drone + "/track?from=" + from + "&to=" + to, 200},
		{"/api/v1/drones/{id}/track", "/api/v1/drones/" + drone + "/track?limit=x", 400},
		{"/api/v1/drones/{id}/track", "/api/v1/drones/nope/track", 404},
		{"/api/v1/alerts", "/api/v1/alerts", 200},
		{"/api/v1/alerts", "/api/v1/alerts?closedWithin=forever", 400},
		{"/api/v1/alert-settings", "/api/v1/alert-settings", 200},
		{"/api/v1/geofences", "/api/v1/geofences", 200},
		{"/api/v1/geofences/{id}", "/api/v1/geofences/gf1", 200},
		{"/api/v1/geofences/{id}", "/api/v1/geofences/gf-none", 404},
		{"/api/v1/webhooks", "/api/v1/webhooks", 200},
		{"/api/v1/webhooks/{id}/deliveries", "/api/v1/webhooks/wh1/deliveries", 200},
		{"/api/v1/webhooks/{id}/deliveries", "/api/v1/webhooks/nope/deliveries", 404},
		{"/api/v1/channels", "/api/v1/channels", 200},
		{"/api/v1/channels/{id}", "/api/v1/channels/ch1", 200},
		{"/api/v1/channels/{id}", "/api/v1/channels/nope", 404},
		{"/api/v1/channels/{id}/deliveries", "/api/v1/channels/ch1/deliveries", 200},
		{"/api/v1/flights", "/api/v1/flights?from=" + from + "&to=" + to, 200},
		{"/api/v1/flights", "/api/v1/flights?limit=0", 400},
		{"/api/v1/drones/{id}/flights", "/api/v1/drones/" + flightDrone + "/flights?from=" + from + "&to=" + to, 200},
		{"/api/v1/drones/{id}/flights", "/api/v1/drones/" + owedDrone + "/flights?from=" + from + "&to=" + to, 200},
		{"/api/v1/drones/{id}/flights", "/api/v1/drones/" + fx.other + "-x/flights", 404},
		{"/api/v1/flights/{id}", "/api/v1/flights/" + fl.ID, 200},
		{"/api/v1/flights/{id}", "/api/v1/flights/fl_none", 404},
		{"/api/v1/flights/{id}/export", "/api/v1/flights/" + fl.ID + "/export?format=gpx", 200},
		{"/api/v1/flights/{id}/export", "/api/v1/flights/" + fl.ID + "/export?format=kml", 200},
		{"/api/v1/flights/{id}/export", "/api/v1/flights/" + fl.ID + "/export?format=csv", 200},
		{"/api/v1/flights/{id}/export", "/api/v1/flights/" + fl.ID + "/export?format=geojson", 200},
		{"/api/v1/flights/{id}/export", "/api/v1/flights/" + fl.ID + "/export?format=shp", 400},
		{"/api/v1/flights/{id}/export", "/api/v1/flights/fl_none/export?format=gpx", 404},
		{"/api/v1/drones/{id}/export", "/api/v1/drones/" + flightDrone + "/export?format=geojson&from=" + from + "&to=" + to, 200},
		{"/api/v1/drones/{id}/export", "/api/v1/drones/" + flightDrone + "/export?format=csv&from=x", 400},
		{"/api/v1/drones/{id}/export", "/api/v1/drones/nope/export?format=csv", 404},
		{"/api/v1/flight-settings", "/api/v1/flight-settings", 200},
		{"/api/v1/openapi.json", "/api/v1/openapi.json", 200},
		{"/", "/", 200},
		{"/metrics", "/metrics", 200},
	} {
		r := get(t, fx.url+tc.url)
		if r.status != tc.status {
			t.Errorf("GET %s: %d, want %d", tc.url, r.status, tc.status)
			continue
		}
		o.check(t, http.MethodGet, tc.route, r)
	}
}

func escape(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1") }

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
