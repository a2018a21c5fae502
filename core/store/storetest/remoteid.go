package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/remoteid"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// remoteIDTests pin down store.RemoteID.
var remoteIDTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"TenantRemoteID", testTenantRemoteID},
	{"DroneIdentity", testDroneIdentity},
	{"RIDTests", testRIDTests},
}

func testTenantRemoteID(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "rid-a")
	mkTenant(t, s, "rid-b")
	mkTenant(t, s, "rid-c")
	if got, err := s.RemoteIDTenants(ctx); err != nil || len(got) != 0 {
		t.Fatalf("RemoteIDTenants before any is on = %+v, %v; want none (off by default)", got, err)
	}
	must(t, "on a", s.SetTenantRemoteID(ctx, "rid-a", true))
	must(t, "on c", s.SetTenantRemoteID(ctx, "rid-c", true))
	must(t, "off c", s.SetTenantRemoteID(ctx, "rid-c", false))
	must(t, "on b", s.SetTenantRemoteID(ctx, "rid-b", true))
	got, err := s.RemoteIDTenants(ctx)
	must(t, "RemoteIDTenants", err)
	var ids []string
	for _, tn := range got {
		ids = append(ids, tn.ID)
		if !tn.RemoteID || tn.Name != "Tenant "+tn.ID {
			t.Errorf("listed tenant %+v", tn)
		}
	}
	if diff := cmp.Diff([]string{"rid-a", "rid-b"}, ids); diff != "" {
		t.Errorf("RemoteIDTenants (-want +got):\n%s", diff)
	}
	if tn, err := s.Tenant(ctx, "rid-a"); err != nil || !tn.RemoteID {
		t.Errorf("Tenant after on = %+v, %v", tn, err)
	}
	wantErr(t, "SetTenantRemoteID of a missing tenant", s.SetTenantRemoteID(ctx, "rid-missing", true), store.ErrNotFound)
}

func testDroneIdentity(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "idt-a")
	mkTenant(t, s, "idt-b")
	mkDrone(t, s, "idt-a", "idt-d1")
	mkDrone(t, s, "idt-b", "idt-d2")
	id := &remoteid.Identity{SerialNumber: "MFR1C123456789ABC", RegistrationID: "CHE.123", UAType: "Helicopter",
		OperatorID: "CHEabc123", EUCategory: "Open", EUClass: "Class1", OperatorLocation: remoteid.OperatorExact}
	must(t, "SetDroneIdentity", s.SetDroneIdentity(ctx, "idt-a", "idt-d1", id))
	d, err := s.Drone(ctx, "idt-a", "idt-d1")
	must(t, "Drone", err)
	if diff := cmp.Diff(id, d.RemoteID); diff != "" {
		t.Errorf("identity (-want +got):\n%s", diff)
	}
	tn, err := s.Tenant(ctx, "idt-a")
	must(t, "Tenant", err)
	if tn.RemoteIDVersion != 1 {
		t.Errorf("RemoteIDVersion = %d after one change, want 1", tn.RemoteIDVersion)
	}
	// State updates and renames keep the identity.
	_, _, err = s.UpdateState(ctx, "idt-a", "idt-d1", func(*events.DroneState) (events.DroneState, bool) { return state(2), true })
	must(t, "UpdateState", err)
	must(t, "RenameDrone", s.RenameDrone(ctx, "idt-a", "idt-d1", "renamed"))
	ds, err := s.Drones(ctx, "idt-a")
	must(t, "Drones", err)
	if len(ds) != 1 || ds[0].State == nil || ds[0].Name != "renamed" {
		t.Fatalf("Drones = %+v", ds)
	}
	if diff := cmp.Diff(id, ds[0].RemoteID); diff != "" {
		t.Errorf("identity after state update and rename (-want +got):\n%s", diff)
	}
	// Another tenant's drone: not found, unchanged, its tenant's version too.
	wantErr(t, "SetDroneIdentity of another tenant's drone",
		s.SetDroneIdentity(ctx, "idt-a", "idt-d2", id), store.ErrNotFound)
	if d2, err := s.Drone(ctx, "idt-b", "idt-d2"); err != nil || d2.RemoteID != nil {
		t.Errorf("B's drone after A's attempt: %+v, %v", d2, err)
	}
	if tb, err := s.Tenant(ctx, "idt-b"); err != nil || tb.RemoteIDVersion != 0 {
		t.Errorf("B's tenant after A's attempt: %+v, %v", tb, err)
	}
	// nil clears.
	must(t, "clear identity", s.SetDroneIdentity(ctx, "idt-a", "idt-d1", nil))
	if d, err := s.Drone(ctx, "idt-a", "idt-d1"); err != nil || d.RemoteID != nil {
		t.Errorf("after clearing: %+v, %v", d.RemoteID, err)
	}
	if tn, err := s.Tenant(ctx, "idt-a"); err != nil || tn.RemoteIDVersion != 2 {
		t.Errorf("RemoteIDVersion = %d after two changes, want 2 (%v)", tn.RemoteIDVersion, err)
	}
}

func testRIDTests(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := base
	live := store.RIDTest{ID: "test-live", Version: "v1", Flights: []byte{0x1f, 0x8b, 0, 1, 2, 255},
		CreatedAt: at(0), ExpireAt: now.Add(time.Hour)}
	old := store.RIDTest{ID: "test-old", Version: "v1", Flights: []byte("x"), CreatedAt: at(0), ExpireAt: now.Add(-time.Second)}
	must(t, "CreateRIDTest live", s.CreateRIDTest(ctx, live))
	must(t, "CreateRIDTest old", s.CreateRIDTest(ctx, old))
	wantErr(t, "CreateRIDTest again", s.CreateRIDTest(ctx, live), store.ErrAlreadyExists)
	got, err := s.RIDTests(ctx, now)
	must(t, "RIDTests", err)
	if diff := cmp.Diff([]store.RIDTest{live}, got, opts); diff != "" {
		t.Errorf("RIDTests skips expired ones (-want +got):\n%s", diff)
	}
	_, err = s.DeleteRIDTest(ctx, "test-live", "v2")
	wantErr(t, "DeleteRIDTest at another version", err, store.ErrNotFound)
	_, err = s.DeleteRIDTest(ctx, "test-missing", "v1")
	wantErr(t, "DeleteRIDTest of a missing test", err, store.ErrNotFound)
	del, err := s.DeleteRIDTest(ctx, "test-live", "v1")
	must(t, "DeleteRIDTest", err)
	if diff := cmp.Diff(live, del, opts); diff != "" {
		t.Errorf("deleted test (-want +got):\n%s", diff)
	}
	if got, err := s.RIDTests(ctx, now); err != nil || len(got) != 0 {
		t.Errorf("RIDTests after delete = %+v, %v", got, err)
	}
	must(t, "CreateRIDTest after delete", s.CreateRIDTest(ctx, live))
}
