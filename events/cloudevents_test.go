package events

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/go-cmp/cmp"
)

func TestTelemetryEventRoundTripBinaryMode(t *testing.T) {
	ts := time.Date(2026, 11, 29, 10, 0, 0, 123, time.UTC)
	data := TelemetryReceived{TenantID: "t1", DroneID: "d1", ReceivedAt: ts.Add(time.Second),
		Reports: []Report{{TS: ts, Lat: 1, Lon: 2, Battery: new(50.0)}}}
	e, err := NewTelemetryReceived(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Validate(); err != nil {
		t.Fatalf("not a valid CloudEvent: %v", err)
	}
	req, err := cehttp.NewHTTPRequestFromEvent(context.Background(), "http://example.invalid/", e)
	if err != nil {
		t.Fatal(err)
	}
	// Binary content mode: attributes travel as ce- headers, the body is the data alone.
	for h, want := range map[string]string{"Ce-Type": TypeTelemetryReceived, "Ce-Source": SourceIngest,
		"Ce-Subject": "d1", "Ce-Tenantid": "t1", "Ce-Partitionkey": "d1", "Content-Type": "application/json"} {
		if got := req.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	got, err := cehttp.NewEventFromHTTPRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode[TelemetryReceived](*got, TypeTelemetryReceived)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(data, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if _, err := Decode[TelemetryReceived](*got, TypeStateUpdated); err == nil {
		t.Error("Decode accepted the wrong event type")
	}
}

func TestTelemetryEventIDIsDeterministic(t *testing.T) {
	ts := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	a := TelemetryEventID("d1", []Report{{TS: ts}, {TS: ts.Add(time.Second)}})
	// The same timestamps in another zone are the same instants: same id.
	b := TelemetryEventID("d1", []Report{{TS: ts.In(time.FixedZone("x", 3600))}, {TS: ts.Add(time.Second)}})
	if a != b {
		t.Errorf("retry of the same reports got a new id: %s vs %s", a, b)
	}
	if c := TelemetryEventID("d2", []Report{{TS: ts}, {TS: ts.Add(time.Second)}}); c == a {
		t.Error("another drone's reports share the id")
	}
	if c := TelemetryEventID("d1", []Report{{TS: ts}}); c == a {
		t.Error("a different batch shares the id")
	}
}

// TestTelemetryEventIDIsStable pins the id's derivation: events already in
// a broker or a store must keep matching the ids of their retries, so the
// hash input may not change when its computation is optimised. The reference
// is the derivation written out plainly.
func TestTelemetryEventIDIsStable(t *testing.T) {
	reference := func(droneID string, reports []Report) string {
		h := sha256.New()
		h.Write([]byte(droneID))
		for _, r := range reports {
			h.Write([]byte{0})
			h.Write([]byte(r.TS.UTC().Format(time.RFC3339Nano)))
		}
		return hex.EncodeToString(h.Sum(nil)[:16])
	}
	ts := time.Date(2026, 11, 29, 10, 0, 0, 123456789, time.FixedZone("x", -7200))
	many := make([]Report, 500) // streamed through a digest, several buffers
	for i := range many {
		many[i].TS = ts.Add(time.Duration(i) * time.Millisecond)
	}
	for _, tc := range []struct {
		drone   string
		reports []Report
	}{
		{"d1", []Report{{TS: ts}}},
		{"drone-1", []Report{{TS: ts.Truncate(time.Second)}, {TS: ts.Add(time.Second)}}},
		{"", nil},
		{strings.Repeat("long-drone-id-", 30), []Report{{TS: ts}}},
		{"d1", many},
		{"d1", many[:16]}, // about one buffer
		{"d1", many[:17]},
		{strings.Repeat("x", 600), many[:3]}, // the id alone fills the buffer
	} {
		if got, want := TelemetryEventID(tc.drone, tc.reports), reference(tc.drone, tc.reports); got != want {
			t.Errorf("TelemetryEventID(%q, %d reports) = %s, want %s", tc.drone, len(tc.reports), got, want)
		}
	}
	// The id of one report, as the derivation gave it before this test.
	if got, want := TelemetryEventID("d1", []Report{{TS: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)}}),
		"0db4fd982aa78992d74ff3d5491f2372"; got != want {
		t.Errorf("TelemetryEventID = %s, want %s", got, want)
	}
}

func TestStateAndAlertEvents(t *testing.T) {
	ts := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	e, err := NewStateUpdated(StateUpdated{TenantID: "t", DroneID: "d", State: DroneState{TS: ts, UpdatedAt: ts}})
	if err != nil {
		t.Fatal(err)
	}
	if e.Type() != TypeStateUpdated || e.ID() != "d@2026-11-29T10:00:00Z" || e.Validate() != nil {
		t.Errorf("state event: type %s id %s err %v", e.Type(), e.ID(), e.Validate())
	}
	raised, _ := NewAlert(TypeAlertRaised, Alert{ID: "a1", TenantID: "t", DroneID: "d", Kind: "battery.low", OpenedAt: ts})
	resolved, _ := NewAlert(TypeAlertResolved, Alert{ID: "a1", TenantID: "t", DroneID: "d", Kind: "battery.low",
		OpenedAt: ts, ResolvedAt: new(ts.Add(time.Minute))})
	if raised.ID() == resolved.ID() {
		t.Error("raised and resolved events of one alert share an id; the broker would drop one as a duplicate")
	}
}

// Extension reads what Extensions reads, on a v1 context (the map itself)
// and on any other (through the copy).
func TestExtensionReadsWithoutCopy(t *testing.T) {
	e := cloudevents.New()
	e.SetExtension(ExtTenantID, "t1")
	if got := Extension(e, ExtTenantID); got != "t1" || Extension(e, "absent") != nil {
		t.Errorf("v1: %v, absent %v", got, Extension(e, "absent"))
	}
	v03 := cloudevents.New(cloudevents.CloudEventsVersionV03)
	v03.SetExtension(ExtTenantID, "t2")
	if got := Extension(v03, ExtTenantID); got != "t2" {
		t.Errorf("v0.3: %v, want t2", got)
	}
}
