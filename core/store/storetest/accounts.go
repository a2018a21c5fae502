package storetest

import (
	"context"
	"testing"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/google/go-cmp/cmp"
)

// accountTests pin down store.Accounts:
//   - email is unique across tenants; id is unique;
//   - ConsumeInvite works once, and not after expiry;
//   - SetDroneKey moves the key index atomically (old hash gone, new found);
//     RetireDrone removes the drone and its key; another tenant's drone is
//     ErrNotFound for every fleet operation and is left unchanged.
var accountTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"Users", testUsers},
	{"Sessions", testSessions},
	{"Invites", testInvites},
	{"DroneManagement", testDroneManagement},
}

func mkUser(t *testing.T, s store.Store, tenantID, id string) store.User {
	t.Helper()
	u := store.User{ID: id, TenantID: tenantID, Email: id + "@example.test", Role: store.RoleOwner,
		PasswordHash: "$argon2id$hash-" + id, CreatedAt: base}
	must(t, "CreateUser "+id, s.CreateUser(context.Background(), u))
	return u
}

func testUsers(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := mkUser(t, s, "ta", "ua")
	b := mkUser(t, s, "tb", "ub")
	a2 := mkUser(t, s, "ta", "ua2")
	got, err := s.User(ctx, "ua")
	must(t, "User", err)
	if diff := cmp.Diff(a, got, opts); diff != "" {
		t.Errorf("User (-want +got):\n%s", diff)
	}
	got, err = s.UserByEmail(ctx, b.Email)
	must(t, "UserByEmail", err)
	if diff := cmp.Diff(b, got, opts); diff != "" {
		t.Errorf("UserByEmail (-want +got):\n%s", diff)
	}
	dup := b
	dup.ID, dup.TenantID = "other", "ta"
	wantErr(t, "CreateUser with a taken email (another tenant)", s.CreateUser(ctx, dup), store.ErrAlreadyExists)
	dup = b
	dup.Email = "fresh@example.test"
	wantErr(t, "CreateUser with a taken id", s.CreateUser(ctx, dup), store.ErrAlreadyExists)
	if _, err := s.UserByEmail(ctx, "fresh@example.test"); err == nil {
		t.Errorf("a failed CreateUser left its email claimed")
	}
	_, err = s.UserByEmail(ctx, "nobody@example.test")
	wantErr(t, "UserByEmail unknown", err, store.ErrNotFound)
	_, err = s.User(ctx, "nobody")
	wantErr(t, "User unknown", err, store.ErrNotFound)

	list, err := s.Users(ctx, "ta")
	must(t, "Users", err)
	if diff := cmp.Diff([]store.User{a, a2}, list, opts); diff != "" {
		t.Errorf("Users(ta) (-want +got):\n%s", diff)
	}
	must(t, "SetPasswordHash", s.SetPasswordHash(ctx, "ua", "new-hash"))
	got, err = s.User(ctx, "ua")
	must(t, "User after SetPasswordHash", err)
	if got.PasswordHash != "new-hash" {
		t.Errorf("PasswordHash = %q; want new-hash", got.PasswordHash)
	}
	wantErr(t, "SetPasswordHash unknown", s.SetPasswordHash(ctx, "nobody", "x"), store.ErrNotFound)
}

func testSessions(t *testing.T, s store.Store) {
	ctx := context.Background()
	mk := func(id, user string) store.Session {
		se := store.Session{ID: id, UserID: user, TenantID: "ta", CSRFHash: "csrf-" + id,
			CreatedAt: base, ExpiresAt: at(100)}
		must(t, "CreateSession "+id, s.CreateSession(ctx, se))
		return se
	}
	s1 := mk("s1", "u1")
	mk("s2", "u1")
	s3 := mk("s3", "u2")
	wantErr(t, "CreateSession duplicate", s.CreateSession(ctx, s1), store.ErrAlreadyExists)
	got, err := s.Session(ctx, "s1")
	must(t, "Session", err)
	if diff := cmp.Diff(s1, got, opts); diff != "" {
		t.Errorf("Session (-want +got):\n%s", diff)
	}
	must(t, "ExtendSession", s.ExtendSession(ctx, "s1", at(200)))
	got, err = s.Session(ctx, "s1")
	must(t, "Session after extend", err)
	if !got.ExpiresAt.Equal(at(200)) {
		t.Errorf("ExpiresAt = %v; want %v", got.ExpiresAt, at(200))
	}
	wantErr(t, "ExtendSession unknown", s.ExtendSession(ctx, "nope", at(1)), store.ErrNotFound)
	must(t, "DeleteUserSessions", s.DeleteUserSessions(ctx, "u1"))
	for _, id := range []string{"s1", "s2"} {
		_, err := s.Session(ctx, id)
		wantErr(t, "Session after DeleteUserSessions", err, store.ErrNotFound)
	}
	got, err = s.Session(ctx, "s3")
	must(t, "another user's session survives", err)
	if diff := cmp.Diff(s3, got, opts); diff != "" {
		t.Errorf("Session s3 (-want +got):\n%s", diff)
	}
	must(t, "DeleteSession", s.DeleteSession(ctx, "s3"))
	must(t, "DeleteSession again", s.DeleteSession(ctx, "s3"))
	_, err = s.Session(ctx, "s3")
	wantErr(t, "Session deleted", err, store.ErrNotFound)
}

func testInvites(t *testing.T, s store.Store) {
	ctx := context.Background()
	inv := store.Invite{ID: "i1", TenantID: "ta", Role: store.RoleViewer, CreatedBy: "ua", CreatedAt: base, ExpiresAt: at(10)}
	must(t, "CreateInvite", s.CreateInvite(ctx, inv))
	wantErr(t, "CreateInvite duplicate", s.CreateInvite(ctx, inv), store.ErrAlreadyExists)
	old := store.Invite{ID: "i2", TenantID: "ta", Role: store.RoleAdmin, CreatedAt: base, ExpiresAt: at(10)}
	must(t, "CreateInvite i2", s.CreateInvite(ctx, old))

	_, err := s.ConsumeInvite(ctx, "i2", at(10))
	wantErr(t, "ConsumeInvite at expiry", err, store.ErrNotFound)
	got, err := s.ConsumeInvite(ctx, "i1", at(9))
	must(t, "ConsumeInvite", err)
	if diff := cmp.Diff(inv, got, opts); diff != "" {
		t.Errorf("ConsumeInvite (-want +got):\n%s", diff)
	}
	_, err = s.ConsumeInvite(ctx, "i1", at(9))
	wantErr(t, "ConsumeInvite twice", err, store.ErrNotFound)
	_, err = s.ConsumeInvite(ctx, "none", at(0))
	wantErr(t, "ConsumeInvite unknown", err, store.ErrNotFound)
}

func testDroneManagement(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "ta")
	mkTenant(t, s, "tb")
	a := mkDrone(t, s, "ta", "da")
	mkDrone(t, s, "ta", "da2")
	b := mkDrone(t, s, "tb", "db")

	// Another tenant cannot touch a drone, and it stays as it was.
	wantErr(t, "RenameDrone of another tenant", s.RenameDrone(ctx, "tb", "da", "x"), store.ErrNotFound)
	wantErr(t, "SetDroneKey of another tenant", s.SetDroneKey(ctx, "tb", "da", "h-x"), store.ErrNotFound)
	wantErr(t, "RetireDrone of another tenant", s.RetireDrone(ctx, "tb", "da"), store.ErrNotFound)
	wantErr(t, "RenameDrone unknown", s.RenameDrone(ctx, "ta", "nope", "x"), store.ErrNotFound)
	got, err := s.Drone(ctx, "ta", "da")
	must(t, "Drone", err)
	if diff := cmp.Diff(a, got, opts); diff != "" {
		t.Errorf("drone after foreign attempts (-want +got):\n%s", diff)
	}

	must(t, "RenameDrone", s.RenameDrone(ctx, "ta", "da", "Renamed"))
	got, err = s.Drone(ctx, "ta", "da")
	must(t, "Drone after rename", err)
	if got.Name != "Renamed" || got.KeyHash != a.KeyHash {
		t.Errorf("after rename: name %q key %q; want Renamed, %q", got.Name, got.KeyHash, a.KeyHash)
	}

	// Rotate: the old hash stops resolving, the new one resolves.
	wantErr(t, "SetDroneKey to another drone's hash", s.SetDroneKey(ctx, "ta", "da", b.KeyHash), store.ErrAlreadyExists)
	must(t, "SetDroneKey rotate", s.SetDroneKey(ctx, "ta", "da", "hash-new"))
	_, err = s.DroneByKeyHash(ctx, a.KeyHash)
	wantErr(t, "DroneByKeyHash old key", err, store.ErrNotFound)
	got, err = s.DroneByKeyHash(ctx, "hash-new")
	must(t, "DroneByKeyHash new key", err)
	if got.ID != "da" || got.TenantID != "ta" || got.KeyHash != "hash-new" {
		t.Errorf("DroneByKeyHash new key = %+v", got)
	}
	// The freed hash may be taken again.
	must(t, "SetDroneKey to a freed hash", s.SetDroneKey(ctx, "ta", "da2", a.KeyHash))

	// Revoke.
	must(t, "SetDroneKey revoke", s.SetDroneKey(ctx, "ta", "da", ""))
	_, err = s.DroneByKeyHash(ctx, "hash-new")
	wantErr(t, "DroneByKeyHash revoked", err, store.ErrNotFound)
	got, err = s.Drone(ctx, "ta", "da")
	must(t, "Drone after revoke", err)
	if got.KeyHash != "" {
		t.Errorf("KeyHash after revoke = %q; want empty", got.KeyHash)
	}

	// Retire.
	must(t, "RetireDrone", s.RetireDrone(ctx, "ta", "da2"))
	_, err = s.Drone(ctx, "ta", "da2")
	wantErr(t, "Drone retired", err, store.ErrNotFound)
	_, err = s.DroneByKeyHash(ctx, a.KeyHash)
	wantErr(t, "DroneByKeyHash of a retired drone", err, store.ErrNotFound)
	list, err := s.Drones(ctx, "ta")
	must(t, "Drones", err)
	if len(list) != 1 || list[0].ID != "da" {
		t.Errorf("Drones after retire = %+v; want only da", list)
	}
	wantErr(t, "RetireDrone twice", s.RetireDrone(ctx, "ta", "da2"), store.ErrNotFound)
}
