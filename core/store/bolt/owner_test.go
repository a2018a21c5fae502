package bolt

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/remoteid"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// ownedBy, read from the bytes, agrees with decoding the drone, and says
// so (known) only for the form json.Marshal writes with plain ids.
func TestOwnedByAgreesWithDecoding(t *testing.T) {
	for _, d := range []store.Drone{
		{ID: "d1", TenantID: "acme"},
		{ID: "d1", TenantID: "acm"},
		{ID: "d<1>", TenantID: "acme"},
		{ID: "d1", TenantID: `a"c\me`},
		{ID: "d1", TenantID: "ünï"},
		{ID: "d1", TenantID: ""},
	} {
		raw, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, tenant := range []string{"acme", d.TenantID, "acm", ""} {
			ok, known := ownedBy(raw, d.ID, tenant)
			owner, err := topLevelString(raw, "tenantId")
			if err != nil {
				t.Fatal(err)
			}
			if known && ok != (owner == tenant) {
				t.Errorf("drone %+v, tenant %q: ownedBy %v, decoding says %v", d, tenant, ok, owner == tenant)
			}
			if !known && d.ID == "d1" && d.TenantID == "acme" {
				t.Errorf("drone %+v: plain form not recognised", d)
			}
		}
	}
	if _, known := ownedBy([]byte(`{"tenantId":"acme","id":"d1"}`), "d1", "acme"); known {
		t.Error("answered for another member order")
	}
}

// appendDrone writes json.Marshal's bytes, or declines.
func TestAppendDroneMatchesJSON(t *testing.T) {
	ts := time.Date(2026, 12, 3, 10, 0, 0, 123456789, time.UTC)
	st := &events.DroneState{TS: ts, Lat: 47.1, Lon: 8.2, Battery: new(80.0), Mode: new("RTL<1>"), UpdatedAt: ts}
	written := 0
	for _, d := range []store.Drone{
		{ID: "d1", TenantID: "acme", Name: "Drone 1", KeyHash: "h", CreatedAt: ts},
		{ID: "d1", TenantID: "acme", Name: "Drone 1", KeyHash: "h", CreatedAt: ts.In(time.FixedZone("", 3600)), State: st},
		{ID: "d1", TenantID: "acme", State: st},
		{ID: "d1", TenantID: "acme", Name: "Dröne <1>", State: st},
		{ID: "d1", TenantID: "acme", CreatedAt: time.Date(10001, 1, 1, 0, 0, 0, 0, time.UTC)},
		{ID: "d1", TenantID: "acme", RemoteID: &remoteid.Identity{}},
	} {
		want, wantErr := json.Marshal(d)
		got, ok := appendDrone(nil, d)
		if !ok {
			continue // putDrone hands it to json.Marshal
		}
		written++
		if wantErr != nil || string(got) != string(want) {
			t.Errorf("appendDrone:\n%s\njson.Marshal:\n%s (%v)", got, want, wantErr)
		}
	}
	if written != 3 {
		t.Errorf("appendDrone wrote %d of the drones, want the 3 in its form", written)
	}
	if _, ok := appendDrone(nil, store.Drone{ID: "d1", Name: "a\"b"}); ok {
		t.Error("appendDrone took a name that needs escaping")
	}
}

// BenchmarkDroneDocument is the state write's decoding and encoding of
// the drone document: readDrone and appendDrone against encoding/json.
func BenchmarkDroneDocument(b *testing.B) {
	ts := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	d := store.Drone{ID: "d0123456789abcdef", TenantID: "demo", Name: "Drone 17", KeyHash: "0123456789abcdef0123456789abcdef",
		CreatedAt: ts, State: &events.DroneState{TS: ts, Lat: 47.1, Lon: 8.2, Alt: new(120.0), Speed: new(12.5),
			Heading: new(90.0), Battery: new(80.0), GroundSpeed: new(12.4), Course: new(89.0), DistanceM: 1234.5, UpdatedAt: ts}}
	b.Run("appendDrone", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			buf, _ = appendDrone(buf[:0], d)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(d); err != nil {
				b.Fatal(err)
			}
		}
	})
	raw, _ := json.Marshal(d)
	b.Run("readDrone", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var x store.Drone
			if !readDrone(raw, &x) {
				b.Fatal("not read")
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var x store.Drone
			if err := json.Unmarshal(raw, &x); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// readDrone reads what encoding/json reads, or declines.
func TestReadDroneMatchesJSON(t *testing.T) {
	ts := time.Date(2026, 12, 3, 10, 0, 0, 123456789, time.UTC)
	st := &events.DroneState{TS: ts, Lat: 47.1, Lon: 8.2, Battery: new(80.0), Mode: new("RTL<1>"), UpdatedAt: ts}
	var docs [][]byte
	for _, d := range []store.Drone{
		{ID: "d1", TenantID: "acme", Name: "Drone 1", KeyHash: "h", CreatedAt: ts},
		{ID: "d1", TenantID: "acme", Name: "Drone 1", KeyHash: "h", CreatedAt: ts.In(time.FixedZone("", 3600)), State: st},
		{ID: "d1", TenantID: "acme", State: st},
		{ID: "d1", TenantID: "acme", Name: "Dröne \"1\"", State: st},
		{ID: "d1", TenantID: "acme", RemoteID: &remoteid.Identity{}, State: st},
	} {
		raw, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, raw)
	}
	docs = append(docs,
		[]byte(`{"id":"d1","tenantId":"acme","name":"","keyHash":"","createdAt":"2026-12-03T10:00:00Z","state":{"ts":"2026-12-03T10:00:00Z","lat":1,"lon":2,"distanceM":0,"updatedAt":"0001-01-01T00:00:00Z"},"remoteId":{}}`),
		[]byte(`{"id":"d1","tenantId":"acme","name":"","keyHash":"","createdAt":"2026-12-03T10:00:00Z","state":null}`),
		[]byte(`{"id":"d1","tenantId":"acme","name":"","keyHash":"","createdAt":"x"}`),
		[]byte(`{"id":"d1","tenantId":"acme","name":"","keyHash":"","createdAt":"2026-12-03T10:00:00Z"`),
		[]byte(`{"tenantId":"acme","id":"d1"}`),
	)
	read := 0
	for _, raw := range docs {
		var got, want store.Drone
		if !readDrone(raw, &got) {
			continue
		}
		read++
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Errorf("readDrone took %s, which encoding/json refuses: %v", raw, err)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("readDrone %s (-encoding/json +readDrone):\n%s", raw, diff)
		}
	}
	if read != 3 {
		t.Errorf("readDrone read %d documents, want the 3 in appendDrone's form", read)
	}
}
