package events

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

func compileSchema(t *testing.T, file string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	entries, err := schemaFS.ReadDir("schema")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw, err := Schema(e.Name())
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		if err := c.AddResource("https://schemas.dronetrack.dev/"+e.Name(), doc); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.Compile("https://schemas.dronetrack.dev/" + file)
	if err != nil {
		t.Fatalf("compile %s: %v", file, err)
	}
	return s
}

func validateJSON(t *testing.T, s *jsonschema.Schema, v any) error {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return s.Validate(doc)
}

// TestSchemasMatchStructs keeps the published schemas and the Go structs in
// step: what the code emits validates, and what Validate rejects the schema
// rejects too.
func TestSchemasMatchStructs(t *testing.T) {
	now := time.Now().UTC()
	rep := Report{TS: now, Lat: 10, Lon: 20, Alt: new(5.0), Speed: new(3.0), Heading: new(90.0), Battery: new(80.0), Seq: new(uint64(1)),
		Armed: new(false), Mode: new("LOITER"), Fix: new(FixRTKFix), Satellites: new(21), HAE: new(52.5), Height: new(-2.0),
		VSpeed: new(-0.5), HAcc: new(0.02), VAcc: new(0.03), Link: new(100.0), Home: &Position{Lat: 10, Lon: 20, Alt: new(4.0)}}
	for typ, file := range SchemaFiles {
		s := compileSchema(t, file)
		var sample any
		switch typ {
		case TypeTelemetryReceived:
			sample = TelemetryReceived{TenantID: "t", DroneID: "d", ReceivedAt: now, Reports: []Report{rep}}
		case TypeStateUpdated:
			sample = StateUpdated{TenantID: "t", DroneID: "d", State: DroneState{TS: now, Lat: 1, Lon: 2,
				Armed: new(true), Mode: new("RTL"), Fix: new(Fix3D), Satellites: new(9), HAE: new(100.0), Height: new(50.0),
				VSpeed: new(2.0), HAcc: new(1.0), VAcc: new(2.0), Link: new(0.0), Home: &Position{Lat: 1, Lon: 2},
				GroundSpeed: new(3.0), Course: new(10.0), DistanceM: 5, BatteryDrain: new(0.01),
				TimeToEmptySecs: new(100.0), UpdatedAt: now}}
		default:
			sample = Alert{ID: "a", TenantID: "t", DroneID: "d", Kind: "battery.low", OpenedAt: now, ResolvedAt: &now}
		}
		if err := validateJSON(t, s, sample); err != nil {
			t.Errorf("%s: emitted data fails its schema: %v", typ, err)
		}
	}
	report := compileSchema(t, "report.v1.json")
	if err := validateJSON(t, report, rep); err != nil {
		t.Errorf("valid report fails schema: %v", err)
	}
	// Every field, found by reflection: a field added to Report but not to
	// the schemas (which allow no other property) fails here.
	filled := filledReport(t, now.Truncate(time.Second))
	if err := validateJSON(t, report, filled); err != nil {
		t.Errorf("report with every field set fails report.v1.json: %v", err)
	}
	filledState := filled.State()
	filledState.UpdatedAt = filled.TS
	if err := validateJSON(t, compileSchema(t, SchemaFiles[TypeStateUpdated]),
		StateUpdated{TenantID: "t", DroneID: "d", State: filledState}); err != nil {
		t.Errorf("state with every report field set fails its schema: %v", err)
	}
	for name, bad := range map[string]map[string]any{
		"lat range":     {"ts": now.Format(time.RFC3339), "lat": 91, "lon": 0},
		"heading 360":   {"ts": now.Format(time.RFC3339), "lat": 0, "lon": 0, "heading": 360},
		"unknown field": {"ts": now.Format(time.RFC3339), "lat": 0, "lon": 0, "droneId": "x"},
		"missing ts":    {"lat": 0, "lon": 0},
		"bad ts":        {"ts": "yesterday", "lat": 0, "lon": 0},
		"mode too long": {"ts": now.Format(time.RFC3339), "lat": 0, "lon": 0, "mode": strings.Repeat("M", MaxModeLen+1)},
		"mode empty":    {"ts": now.Format(time.RFC3339), "lat": 0, "lon": 0, "mode": ""},
		"mode control":  {"ts": now.Format(time.RFC3339), "lat": 0, "lon": 0, "mode": "RTL\n"},
		"fix 9":         {"ts": now.Format(time.RFC3339), "lat": 0, "lon": 0, "fix": 9},
		"fix fraction":  {"ts": now.Format(time.RFC3339), "lat": 0, "lon": 0, "fix": 2.5},
		"armed string":  {"ts": now.Format(time.RFC3339), "lat": 0, "lon": 0, "armed": "yes"},
		"link 101":      {"ts": now.Format(time.RFC3339), "lat": 0, "lon": 0, "link": 101},
		"vspeed -301":   {"ts": now.Format(time.RFC3339), "lat": 0, "lon": 0, "vspeed": -301},
		"hAcc negative": {"ts": now.Format(time.RFC3339), "lat": 0, "lon": 0, "hAcc": -1},
		"home no lon":   {"ts": now.Format(time.RFC3339), "lat": 0, "lon": 0, "home": map[string]any{"lat": 1}},
		"home extra":    {"ts": now.Format(time.RFC3339), "lat": 0, "lon": 0, "home": map[string]any{"lat": 1, "lon": 2, "x": 1}},
		"home lat":      {"ts": now.Format(time.RFC3339), "lat": 0, "lon": 0, "home": map[string]any{"lat": 91, "lon": 2}},
	} {
		if err := validateJSON(t, report, bad); err == nil {
			t.Errorf("%s: schema accepted %v", name, bad)
		}
	}
}
