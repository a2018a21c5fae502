package firestore

import (
	"context"
	"math"
	"testing"
	"time"

	fs "cloud.google.com/go/firestore"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// The stored shape of a drone's state and of a track point, field by field,
// as documents already in production hold them. Changing a name here breaks
// every stored document: TestStoredShapeIsStable pins the store to it in
// both directions (what it writes, and what it reads back from a document
// written by an earlier version).
var (
	shapeTS      = time.Date(2026, 11, 29, 10, 0, 0, 123456000, time.UTC)
	shapeUpdated = shapeTS.Add(time.Second)
	shapeExpire  = shapeTS.AddDate(10, 0, 0) // unexpired: readers skip expired points
	// seq above int64: stored as the int64 with the same bits.
	shapeSeq uint64 = 1<<63 + 5
)

func fullReport() events.Report {
	return events.Report{TS: shapeTS, Lat: 47.5, Lon: 8.25, Alt: new(420.5), Speed: new(12.5), Heading: new(271.25),
		Battery: new(87.5), Seq: new(shapeSeq), Armed: new(true), Mode: new("AUTO.MISSION"), Fix: new(events.FixRTKFix),
		Satellites: new(17), HAE: new(468.25), Height: new(80.5), VSpeed: new(-1.5), HAcc: new(0.02), VAcc: new(0.03),
		Link: new(93.5), Home: &events.Position{Lat: 47.25, Lon: 8.125, Alt: new(400.5)}}
}

// fullReportDoc is fullReport as stored (without the track point's own
// fields).
func fullReportDoc() map[string]any {
	return map[string]any{"ts": shapeTS, "lat": 47.5, "lon": 8.25, "alt": 420.5, "speed": 12.5, "heading": 271.25,
		"battery": 87.5, "seq": int64(math.MinInt64 + 5), "armed": true, "mode": "AUTO.MISSION", "fix": int64(6),
		"satellites": int64(17), "hae": 468.25, "height": 80.5, "vspeed": -1.5, "hAcc": 0.02, "vAcc": 0.03, "link": 93.5,
		"home": map[string]any{"lat": 47.25, "lon": 8.125, "alt": 400.5}}
}

func TestStoredShapeIsStable(t *testing.T) {
	s := open(t)
	defer s.Close()
	ctx := context.Background()
	if err := s.CreateTenant(ctx, store.Tenant{ID: "t", Name: "T", CreatedAt: shapeTS}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateDrone(ctx, store.Drone{ID: "d", TenantID: "t", Name: "D", CreatedAt: shapeTS}); err != nil {
		t.Fatal(err)
	}

	r := fullReport()
	full := events.DroneState{TS: r.TS, Lat: r.Lat, Lon: r.Lon, Alt: r.Alt, Speed: r.Speed, Heading: r.Heading,
		Battery: r.Battery, Seq: r.Seq, Armed: r.Armed, Mode: r.Mode, Fix: r.Fix, Satellites: r.Satellites, HAE: r.HAE,
		Height: r.Height, VSpeed: r.VSpeed, HAcc: r.HAcc, VAcc: r.VAcc, Link: r.Link, Home: r.Home,
		GroundSpeed: new(11.5), Course: new(90.5), DistanceM: 1234.5, BatteryDrain: new(0.0625), TimeToEmptySecs: new(1400.0),
		UpdatedAt: shapeUpdated}
	fullDoc := fullReportDoc()
	for k, v := range map[string]any{"groundSpeed": 11.5, "course": 90.5, "distanceM": 1234.5, "batteryDrain": 0.0625,
		"timeToEmptySecs": 1400.0, "updatedAt": shapeUpdated} {
		fullDoc[k] = v
	}
	minimal := events.DroneState{TS: shapeTS, Lat: -1.5, Lon: 2.5, UpdatedAt: shapeUpdated}
	minimalDoc := map[string]any{"ts": shapeTS, "lat": -1.5, "lon": 2.5, "distanceM": 0.0, "updatedAt": shapeUpdated}

	for name, tc := range map[string]struct {
		state events.DroneState
		doc   map[string]any
	}{"every field": {full, fullDoc}, "required fields only": {minimal, minimalDoc}} {
		t.Run("state/"+name, func(t *testing.T) {
			// Written by the store: exactly the stored names and types.
			if _, _, err := s.UpdateState(ctx, "t", "d", func(*events.DroneState) (events.DroneState, bool) {
				return tc.state, true
			}); err != nil {
				t.Fatal(err)
			}
			snap, err := s.drones().Doc("d").Get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.doc, snap.Data()["state"], cmpopts.EquateApproxTime(0)); diff != "" {
				t.Errorf("stored state (-want +got):\n%s", diff)
			}
			// Written by an earlier version: read back whole.
			if _, err := s.drones().Doc("d").Update(ctx, []fs.Update{{Path: "state", Value: tc.doc}}); err != nil {
				t.Fatal(err)
			}
			got, err := s.LatestState(ctx, "t", "d")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.state, got, cmpopts.EquateApproxTime(0)); diff != "" {
				t.Errorf("state read from a stored document (-want +got):\n%s", diff)
			}
		})
	}

	for name, tc := range map[string]struct {
		point store.TrackPoint
		doc   map[string]any
	}{
		"every field": {store.TrackPoint{TenantID: "t", DroneID: "d", Report: r, ExpireAt: shapeExpire},
			func() map[string]any {
				m := fullReportDoc()
				m["tenantId"], m["droneId"], m["expireAt"] = "t", "d", shapeExpire
				return m
			}()},
		"required fields only": {store.TrackPoint{TenantID: "t", DroneID: "d", Report: events.Report{TS: shapeTS.Add(time.Second), Lat: 1, Lon: 2}},
			map[string]any{"tenantId": "t", "droneId": "d", "ts": shapeTS.Add(time.Second), "lat": 1.0, "lon": 2.0}},
	} {
		t.Run("track/"+name, func(t *testing.T) {
			ref := s.track("d").Doc(trackID(tc.point.Report.TS))
			if err := s.AppendTrack(ctx, []store.TrackPoint{tc.point}); err != nil {
				t.Fatal(err)
			}
			snap, err := ref.Get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.doc, snap.Data(), cmpopts.EquateApproxTime(0)); diff != "" {
				t.Errorf("stored track point (-want +got):\n%s", diff)
			}
			if _, err := ref.Set(ctx, tc.doc); err != nil {
				t.Fatal(err)
			}
			pts, err := s.Track(ctx, store.TrackQuery{TenantID: "t", DroneID: "d", From: tc.point.Report.TS, To: tc.point.Report.TS.Add(time.Microsecond)})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]store.TrackPoint{tc.point}, pts, cmpopts.EquateApproxTime(0)); diff != "" {
				t.Errorf("track point read from a stored document (-want +got):\n%s", diff)
			}
		})
	}
}
