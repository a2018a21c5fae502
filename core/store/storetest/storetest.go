// Package storetest is the contract every store.Store adapter must pass:
// one suite, run by each adapter's tests against the real backend (bbolt on
// a temp file, Firestore on the emulator), so the adapters cannot drift.
//
// Contract details the interface comments leave open, fixed here:
//   - Timestamps are kept to the microsecond (Firestore's precision); the
//     suite uses microsecond times and compares instants, not locations.
//   - Another tenant's drone is indistinguishable from a missing one: Drone,
//     LatestState, UpdateState and Track answer ErrNotFound.
//   - Track on an existing drone without points returns no points and no
//     error; a zero To means no upper bound; After is exclusive; points are
//     ordered by ts, oldest first; a zero ExpireAt never expires.
//   - Rewriting a track point (same drone and ts) keeps the last write.
//   - Errors carry context and wrap the sentinels (errors.Is works).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Run runs the contract suite. open returns a fresh, empty store for one
// subtest; the suite closes it. Subtests run in parallel.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Tenants", testTenants},
		{"Drones", testDrones},
		{"DroneDuplicates", testDroneDuplicates},
		{"TenantIsolation", testTenantIsolation},
		{"UpdateState", testUpdateState},
		{"UpdateStateConcurrent", testUpdateStateConcurrent},
		{"AppendTrackIdempotent", testAppendTrackIdempotent},
		{"AppendTrackLargeBatch", testAppendTrackLargeBatch},
		{"TrackRangeAndPages", testTrackRangeAndPages},
		{"TrackExpiry", testTrackExpiry},
		{"TrackExpiryRewrite", testTrackExpiryRewrite},
		{"TrackIsolation", testTrackIsolation},
	}
	tests = append(tests, accountTests...)
	tests = append(tests, alertTests...)
	tests = append(tests, linkTests...)
	tests = append(tests, channelTests...)
	tests = append(tests, remoteIDTests...)
	tests = append(tests, flightTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// base is a microsecond-precision instant, so every adapter can keep it.
var base = time.Date(2026, 11, 29, 4, 0, 0, 123456000, time.UTC)

// at returns base plus i seconds and i microseconds.
func at(i int) time.Time {
	return base.Add(time.Duration(i)*time.Second + time.Duration(i)*time.Microsecond)
}

// opts compares times as instants (adapters may return another location).
var opts = cmp.Options{
	cmpopts.EquateApproxTime(0),
	cmpopts.EquateEmpty(),
}

// wantErr fails unless err wraps target and carries context beyond it.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error = %v; want one wrapping %q", what, err, target)
	}
	if err.Error() == target.Error() {
		t.Errorf("%s: error %q carries no context; wrap it with what failed", what, err)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func mkTenant(t *testing.T, s store.Store, id string) store.Tenant {
	t.Helper()
	tn := store.Tenant{ID: id, Name: "Tenant " + id, CreatedAt: base}
	must(t, "CreateTenant "+id, s.CreateTenant(context.Background(), tn))
	return tn
}

func mkDrone(t *testing.T, s store.Store, tenantID, id string) store.Drone {
	t.Helper()
	d := store.Drone{ID: id, TenantID: tenantID, Name: "Drone " + id, KeyHash: "hash-" + id, CreatedAt: at(1)}
	must(t, "CreateDrone "+id, s.CreateDrone(context.Background(), d))
	return d
}

func state(i int) events.DroneState {
	return events.DroneState{
		TS: at(i), Lat: 52.5 + float64(i)/1000, Lon: 13.4, Alt: new(100.5), Speed: new(12.25),
		Heading: new(270.0), Battery: new(88.0), Seq: new(uint64(i)),
		GroundSpeed: new(11.0), Course: new(269.5), DistanceM: float64(i) * 10,
		BatteryDrain: new(0.01), TimeToEmptySecs: new(8800.0), UpdatedAt: at(i + 1),
		Armed: new(i%2 == 0), Mode: new("AUTO.MISSION"), Fix: new(events.FixRTKFix), Satellites: new(17 + i),
		HAE: new(147.25), Height: new(-3.5), VSpeed: new(-0.25), HAcc: new(0.02), VAcc: new(0.05), Link: new(87.0),
		Home: &events.Position{Lat: 52.5, Lon: 13.4, Alt: new(34.0)},
	}
}

func point(tenantID, droneID string, i int, expireAt time.Time) store.TrackPoint {
	p := store.TrackPoint{
		TenantID: tenantID, DroneID: droneID, ExpireAt: expireAt,
		Report: events.Report{TS: at(i), Lat: 52.5, Lon: 13.4 + float64(i)/1000, Alt: new(50.0),
			Speed: new(3.5), Heading: new(90.0), Battery: new(77.5), Seq: new(uint64(i))},
	}
	if i%2 == 0 {
		// Every other point carries the drone telemetry fields, so both
		// their round trip and their absence are checked.
		r := &p.Report
		r.Armed, r.Mode, r.Fix, r.Satellites = new(i%4 == 0), new("RTL"), new(events.Fix3D), new(i)
		r.HAE, r.Height, r.VSpeed, r.HAcc, r.VAcc, r.Link = new(97.5), new(float64(i)), new(1.5), new(2.5), new(3.5), new(0.0)
		r.Home = &events.Position{Lat: -33.9, Lon: 151.2}
	}
	return p
}

func testTenants(t *testing.T, s store.Store) {
	ctx := context.Background()
	want := mkTenant(t, s, "acme")
	got, err := s.Tenant(ctx, "acme")
	must(t, "Tenant", err)
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("Tenant mismatch (-want +got):\n%s", diff)
	}

	err = s.CreateTenant(ctx, store.Tenant{ID: "acme", Name: "Impostor", CreatedAt: at(5)})
	wantErr(t, "CreateTenant duplicate", err, store.ErrAlreadyExists)
	got, err = s.Tenant(ctx, "acme")
	must(t, "Tenant after duplicate", err)
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("duplicate CreateTenant changed the tenant (-want +got):\n%s", diff)
	}

	_, err = s.Tenant(ctx, "nobody")
	wantErr(t, "Tenant missing", err, store.ErrNotFound)
}

func testDrones(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "acme")
	// Created out of order: Drones must sort by id.
	c := mkDrone(t, s, "acme", "d-c")
	a := mkDrone(t, s, "acme", "d-a")
	b := mkDrone(t, s, "acme", "d-b")

	got, err := s.Drone(ctx, "acme", "d-a")
	must(t, "Drone", err)
	if diff := cmp.Diff(a, got, opts); diff != "" {
		t.Errorf("Drone mismatch (-want +got):\n%s", diff)
	}
	if got.State != nil {
		t.Errorf("new drone has state %+v; want none", got.State)
	}

	got, err = s.DroneByKeyHash(ctx, "hash-d-b")
	must(t, "DroneByKeyHash", err)
	if diff := cmp.Diff(b, got, opts); diff != "" {
		t.Errorf("DroneByKeyHash mismatch (-want +got):\n%s", diff)
	}
	_, err = s.DroneByKeyHash(ctx, "hash-unknown")
	wantErr(t, "DroneByKeyHash unknown", err, store.ErrNotFound)

	list, err := s.Drones(ctx, "acme")
	must(t, "Drones", err)
	if diff := cmp.Diff([]store.Drone{a, b, c}, list, opts); diff != "" {
		t.Errorf("Drones mismatch (-want +got):\n%s", diff)
	}

	_, err = s.Drone(ctx, "acme", "d-missing")
	wantErr(t, "Drone missing", err, store.ErrNotFound)
	_, err = s.LatestState(ctx, "acme", "d-a")
	wantErr(t, "LatestState before any report", err, store.ErrNotFound)
	_, err = s.LatestState(ctx, "acme", "d-missing")
	wantErr(t, "LatestState of a missing drone", err, store.ErrNotFound)

	list, err = s.Drones(ctx, "empty-tenant")
	must(t, "Drones of a tenant without drones", err)
	if len(list) != 0 {
		t.Errorf("Drones(empty-tenant) = %+v; want none", list)
	}

	// The drone read back carries its latest state once it has one.
	st := state(3)
	_, _, err = s.UpdateState(ctx, "acme", "d-a", func(*events.DroneState) (events.DroneState, bool) { return st, true })
	must(t, "UpdateState", err)
	got, err = s.Drone(ctx, "acme", "d-a")
	must(t, "Drone after UpdateState", err)
	a.State = &st
	if diff := cmp.Diff(a, got, opts); diff != "" {
		t.Errorf("Drone after UpdateState mismatch (-want +got):\n%s", diff)
	}
	got, err = s.DroneByKeyHash(ctx, "hash-d-a")
	must(t, "DroneByKeyHash after UpdateState", err)
	if diff := cmp.Diff(a, got, opts); diff != "" {
		t.Errorf("DroneByKeyHash after UpdateState mismatch (-want +got):\n%s", diff)
	}
}

func testDroneDuplicates(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "acme")
	orig := mkDrone(t, s, "acme", "d-1")

	// Same id, new key: refused, and the new key must not be registered.
	err := s.CreateDrone(ctx, store.Drone{ID: "d-1", TenantID: "acme", Name: "dup", KeyHash: "hash-new", CreatedAt: at(2)})
	wantErr(t, "CreateDrone duplicate id", err, store.ErrAlreadyExists)
	_, err = s.DroneByKeyHash(ctx, "hash-new")
	wantErr(t, "key of a refused drone", err, store.ErrNotFound)

	// New id, same key: refused, and the new drone must not exist.
	err = s.CreateDrone(ctx, store.Drone{ID: "d-2", TenantID: "acme", Name: "dup", KeyHash: orig.KeyHash, CreatedAt: at(2)})
	wantErr(t, "CreateDrone duplicate key hash", err, store.ErrAlreadyExists)
	_, err = s.Drone(ctx, "acme", "d-2")
	wantErr(t, "drone refused for its key", err, store.ErrNotFound)

	// The original is untouched and still owns its key.
	got, err := s.DroneByKeyHash(ctx, orig.KeyHash)
	must(t, "DroneByKeyHash original", err)
	if diff := cmp.Diff(orig, got, opts); diff != "" {
		t.Errorf("original drone changed (-want +got):\n%s", diff)
	}
	list, err := s.Drones(ctx, "acme")
	must(t, "Drones", err)
	if diff := cmp.Diff([]store.Drone{orig}, list, opts); diff != "" {
		t.Errorf("Drones after refused duplicates (-want +got):\n%s", diff)
	}
}

func testTenantIsolation(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "a")
	mkTenant(t, s, "b")
	da := mkDrone(t, s, "a", "drone-a")
	db := mkDrone(t, s, "b", "drone-b")
	st := state(1)
	_, _, err := s.UpdateState(ctx, "a", "drone-a", func(*events.DroneState) (events.DroneState, bool) { return st, true })
	must(t, "UpdateState own drone", err)

	_, err = s.Drone(ctx, "b", "drone-a")
	wantErr(t, "Drone of another tenant", err, store.ErrNotFound)
	_, err = s.LatestState(ctx, "b", "drone-a")
	wantErr(t, "LatestState of another tenant's drone", err, store.ErrNotFound)

	called := false
	_, wrote, err := s.UpdateState(ctx, "b", "drone-a", func(*events.DroneState) (events.DroneState, bool) {
		called = true
		return state(9), true
	})
	wantErr(t, "UpdateState of another tenant's drone", err, store.ErrNotFound)
	if wrote {
		t.Errorf("UpdateState of another tenant's drone reported a write")
	}
	if called {
		t.Errorf("UpdateState called next for another tenant's drone (it must not see its state)")
	}
	got, err := s.LatestState(ctx, "a", "drone-a")
	must(t, "LatestState own drone", err)
	if diff := cmp.Diff(st, got, opts); diff != "" {
		t.Errorf("another tenant changed the state (-want +got):\n%s", diff)
	}

	for tenant, want := range map[string]store.Drone{"a": da, "b": db} {
		list, err := s.Drones(ctx, tenant)
		must(t, "Drones "+tenant, err)
		if tenant == "a" {
			want.State = &st
		}
		if diff := cmp.Diff([]store.Drone{want}, list, opts); diff != "" {
			t.Errorf("Drones(%s) mismatch (-want +got):\n%s", tenant, diff)
		}
	}
}

// newer accepts a state only when it is newer than the stored one.
func newer(st events.DroneState) func(*events.DroneState) (events.DroneState, bool) {
	return func(prev *events.DroneState) (events.DroneState, bool) {
		if prev != nil && !st.TS.After(prev.TS) {
			return events.DroneState{}, false
		}
		return st, true
	}
}

func testUpdateState(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "acme")
	mkDrone(t, s, "acme", "d")

	_, _, err := s.UpdateState(ctx, "acme", "missing", newer(state(1)))
	wantErr(t, "UpdateState missing drone", err, store.ErrNotFound)

	// First report: next sees nil.
	var seen []*events.DroneState
	first := state(5)
	got, wrote, err := s.UpdateState(ctx, "acme", "d", func(prev *events.DroneState) (events.DroneState, bool) {
		seen = append(seen, prev)
		return first, true
	})
	must(t, "UpdateState first", err)
	if !wrote {
		t.Fatalf("first UpdateState did not write")
	}
	if diff := cmp.Diff(first, got, opts); diff != "" {
		t.Errorf("first UpdateState returned (-want +got):\n%s", diff)
	}
	for _, p := range seen {
		if p != nil {
			t.Errorf("first UpdateState: next saw prev %+v; want nil", p)
		}
	}

	// Newer report: next sees the previous state, and it is stored.
	second := state(7)
	var prevSeen events.DroneState
	got, wrote, err = s.UpdateState(ctx, "acme", "d", func(prev *events.DroneState) (events.DroneState, bool) {
		if prev == nil {
			t.Errorf("second UpdateState: next saw nil prev")
			return second, true
		}
		prevSeen = *prev
		return second, true
	})
	must(t, "UpdateState second", err)
	if !wrote {
		t.Errorf("second UpdateState did not write")
	}
	if diff := cmp.Diff(first, prevSeen, opts); diff != "" {
		t.Errorf("next's prev mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(second, got, opts); diff != "" {
		t.Errorf("second UpdateState returned (-want +got):\n%s", diff)
	}

	// Older (late, replayed) report: next says no; nothing written, the
	// stored state is returned.
	got, wrote, err = s.UpdateState(ctx, "acme", "d", newer(state(6)))
	must(t, "UpdateState older", err)
	if wrote {
		t.Errorf("UpdateState with next=false reported a write")
	}
	if diff := cmp.Diff(second, got, opts); diff != "" {
		t.Errorf("UpdateState with next=false returned (-want +got):\n%s", diff)
	}
	latest, err := s.LatestState(ctx, "acme", "d")
	must(t, "LatestState", err)
	if diff := cmp.Diff(second, latest, opts); diff != "" {
		t.Errorf("LatestState after refused update (-want +got):\n%s", diff)
	}

	// next refusing the very first state: nothing stored.
	mkDrone(t, s, "acme", "quiet")
	got, wrote, err = s.UpdateState(ctx, "acme", "quiet", func(*events.DroneState) (events.DroneState, bool) {
		return state(1), false
	})
	must(t, "UpdateState refused first", err)
	if wrote {
		t.Errorf("refused first UpdateState reported a write")
	}
	if diff := cmp.Diff(events.DroneState{}, got, opts); diff != "" {
		t.Errorf("refused first UpdateState returned (-want +got):\n%s", diff)
	}
	_, err = s.LatestState(ctx, "acme", "quiet")
	wantErr(t, "LatestState after a refused first update", err, store.ErrNotFound)
}

func testUpdateStateConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "acme")
	mkDrone(t, s, "acme", "d")
	const n = 20
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		writes int
	)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		// Spread the timestamps so arrival order differs from ts order.
		i := (i * 7) % n
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Newer-wins, and each accepted state counts the writes before
			// it (DistanceM carries the count): an update that read a stale
			// prev and still landed leaves the count short of the writes
			// UpdateState reported.
			_, wrote, err := s.UpdateState(ctx, "acme", "d", func(prev *events.DroneState) (events.DroneState, bool) {
				st := state(i)
				st.DistanceM = 1
				if prev != nil {
					if !st.TS.After(prev.TS) {
						return events.DroneState{}, false
					}
					st.DistanceM = prev.DistanceM + 1
				}
				return st, true
			})
			if err != nil {
				errs <- fmt.Errorf("UpdateState ts #%d: %w", i, err)
				return
			}
			if wrote {
				mu.Lock()
				writes++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := s.LatestState(ctx, "acme", "d")
	must(t, "LatestState", err)
	want := state(n - 1)
	want.DistanceM = float64(writes)
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("lost update: final state is not the newest, or its write count differs from the %d writes reported (-want +got):\n%s", writes, diff)
	}
	if writes < 1 || writes > n {
		t.Errorf("UpdateState reported %d writes; want 1..%d", writes, n)
	}
}

func track(t *testing.T, s store.Store, q store.TrackQuery) []store.TrackPoint {
	t.Helper()
	got, err := s.Track(context.Background(), q)
	if err != nil {
		t.Fatalf("Track(%+v): %v", q, err)
	}
	return got
}

func testAppendTrackIdempotent(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "acme")
	mkDrone(t, s, "acme", "d")
	p := point("acme", "d", 1, time.Time{})
	must(t, "AppendTrack", s.AppendTrack(ctx, []store.TrackPoint{p}))
	must(t, "AppendTrack same point again", s.AppendTrack(ctx, []store.TrackPoint{p}))
	// The same point twice within one call, too.
	q := point("acme", "d", 2, time.Time{})
	must(t, "AppendTrack duplicate in one call", s.AppendTrack(ctx, []store.TrackPoint{q, q}))
	must(t, "AppendTrack empty", s.AppendTrack(ctx, nil))

	got := track(t, s, store.TrackQuery{TenantID: "acme", DroneID: "d", From: at(0), To: at(10)})
	if diff := cmp.Diff([]store.TrackPoint{p, q}, got, opts); diff != "" {
		t.Errorf("Track after duplicate appends (-want +got):\n%s", diff)
	}

	// A rewrite of the same (drone, ts) keeps the last write.
	p2 := p
	p2.Report.Lat = 1.5
	must(t, "AppendTrack rewrite", s.AppendTrack(ctx, []store.TrackPoint{p2}))
	got = track(t, s, store.TrackQuery{TenantID: "acme", DroneID: "d", From: at(0), To: at(10)})
	if diff := cmp.Diff([]store.TrackPoint{p2, q}, got, opts); diff != "" {
		t.Errorf("Track after rewrite (-want +got):\n%s", diff)
	}
}

func testAppendTrackLargeBatch(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "acme")
	mkDrone(t, s, "acme", "d")
	mkDrone(t, s, "acme", "e")
	// More than Firestore's 500 writes per commit, across two drones.
	const n = 600
	var pts []store.TrackPoint
	for i := 0; i < n; i++ {
		drone := "d"
		if i%5 == 0 {
			drone = "e"
		}
		pts = append(pts, point("acme", drone, i, time.Time{}))
	}
	must(t, "AppendTrack 600", s.AppendTrack(ctx, pts))
	for _, drone := range []string{"d", "e"} {
		var want []store.TrackPoint
		for _, p := range pts {
			if p.DroneID == drone {
				want = append(want, p)
			}
		}
		got := track(t, s, store.TrackQuery{TenantID: "acme", DroneID: drone})
		if diff := cmp.Diff(want, got, opts); diff != "" {
			t.Errorf("Track(%s) after a 600-point batch (-want +got):\n%s", drone, diff)
		}
	}
}

func testTrackRangeAndPages(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "acme")
	mkDrone(t, s, "acme", "d")
	var pts []store.TrackPoint
	for i := 9; i >= 0; i-- { // appended newest first: reads must sort
		pts = append(pts, point("acme", "d", i, time.Time{}))
	}
	must(t, "AppendTrack", s.AppendTrack(ctx, pts))
	all := func(from, to int) []store.TrackPoint {
		var out []store.TrackPoint
		for i := from; i < to; i++ {
			out = append(out, point("acme", "d", i, time.Time{}))
		}
		return out
	}
	q := store.TrackQuery{TenantID: "acme", DroneID: "d"}

	for _, tc := range []struct {
		name string
		q    func(store.TrackQuery) store.TrackQuery
		want []store.TrackPoint
	}{
		{"everything", func(q store.TrackQuery) store.TrackQuery { return q }, all(0, 10)},
		{"[From,To) excludes To", func(q store.TrackQuery) store.TrackQuery { q.From, q.To = at(2), at(7); return q }, all(2, 7)},
		{"From between points", func(q store.TrackQuery) store.TrackQuery { q.From = at(2).Add(time.Microsecond); return q }, all(3, 10)},
		{"To just after a point", func(q store.TrackQuery) store.TrackQuery { q.To = at(4).Add(time.Microsecond); return q }, all(0, 5)},
		{"empty range", func(q store.TrackQuery) store.TrackQuery { q.From, q.To = at(20), at(30); return q }, nil},
		{"Limit", func(q store.TrackQuery) store.TrackQuery { q.From, q.Limit = at(2), 3; return q }, all(2, 5)},
		{"After is exclusive", func(q store.TrackQuery) store.TrackQuery { q.After, q.Limit = at(4), 2; return q }, all(5, 7)},
		{"After before From", func(q store.TrackQuery) store.TrackQuery { q.From, q.After = at(3), at(1); return q }, all(3, 10)},
		{"After the last", func(q store.TrackQuery) store.TrackQuery { q.After = at(9); return q }, nil},
	} {
		got := track(t, s, tc.q(q))
		if diff := cmp.Diff(tc.want, got, opts); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}

	// Paging through [1, 9) three at a time yields every point once.
	var paged []store.TrackPoint
	pq := store.TrackQuery{TenantID: "acme", DroneID: "d", From: at(1), To: at(9), Limit: 3}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatalf("paging did not end")
		}
		page := track(t, s, pq)
		paged = append(paged, page...)
		if len(page) < pq.Limit {
			break
		}
		pq.After = page[len(page)-1].Report.TS
	}
	if diff := cmp.Diff(all(1, 9), paged, opts); diff != "" {
		t.Errorf("paged Track (-want +got):\n%s", diff)
	}
}

func testTrackExpiry(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "acme")
	mkDrone(t, s, "acme", "d")
	past := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	future := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Microsecond)
	pts := []store.TrackPoint{
		point("acme", "d", 0, past),
		point("acme", "d", 1, future),
		point("acme", "d", 2, time.Time{}), // never expires
		point("acme", "d", 3, past),
		point("acme", "d", 4, past),
		point("acme", "d", 5, future),
	}
	must(t, "AppendTrack", s.AppendTrack(ctx, pts))
	got := track(t, s, store.TrackQuery{TenantID: "acme", DroneID: "d"})
	if diff := cmp.Diff([]store.TrackPoint{pts[1], pts[2], pts[5]}, got, opts); diff != "" {
		t.Errorf("Track with expired points (-want +got):\n%s", diff)
	}
	// Expired points do not eat into Limit: the page still fills.
	got = track(t, s, store.TrackQuery{TenantID: "acme", DroneID: "d", After: at(2), Limit: 1})
	if diff := cmp.Diff([]store.TrackPoint{pts[5]}, got, opts); diff != "" {
		t.Errorf("Track page over expired points (-want +got):\n%s", diff)
	}
}

// testTrackExpiryRewrite pins down that expiry follows the last write of a
// point, never an earlier one: an adapter that deletes expired points
// (Firestore's TTL policy, bolt's sweeper) must not delete a point whose
// rewrite moved its expiry later, and must hide one rewritten to expire.
func testTrackExpiryRewrite(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "acme")
	mkDrone(t, s, "acme", "d")
	past := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	future := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Microsecond)
	must(t, "AppendTrack", s.AppendTrack(ctx, []store.TrackPoint{
		point("acme", "d", 0, past),
		point("acme", "d", 1, future),
		point("acme", "d", 2, past),
		point("acme", "d", 3, future),
	}))
	revived, expired, forever := point("acme", "d", 0, future), point("acme", "d", 1, past), point("acme", "d", 2, time.Time{})
	must(t, "AppendTrack rewrites", s.AppendTrack(ctx, []store.TrackPoint{revived, expired, forever}))
	want := []store.TrackPoint{revived, forever, point("acme", "d", 3, future)}
	got := track(t, s, store.TrackQuery{TenantID: "acme", DroneID: "d"})
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("Track after rewriting expiries (-want +got):\n%s", diff)
	}
}

func testTrackIsolation(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "a")
	mkTenant(t, s, "b")
	mkDrone(t, s, "a", "d1")
	mkDrone(t, s, "a", "d2")
	mkDrone(t, s, "b", "d3")
	mine := []store.TrackPoint{point("a", "d1", 1, time.Time{}), point("a", "d1", 2, time.Time{})}
	must(t, "AppendTrack d1", s.AppendTrack(ctx, mine))
	// Same timestamps on other drones, one of another tenant.
	must(t, "AppendTrack others", s.AppendTrack(ctx, []store.TrackPoint{
		point("a", "d2", 1, time.Time{}), point("a", "d2", 3, time.Time{}),
		point("b", "d3", 1, time.Time{}), point("b", "d3", 2, time.Time{}),
	}))
	got := track(t, s, store.TrackQuery{TenantID: "a", DroneID: "d1"})
	if diff := cmp.Diff(mine, got, opts); diff != "" {
		t.Errorf("Track(d1) (-want +got):\n%s", diff)
	}
	_, err := s.Track(ctx, store.TrackQuery{TenantID: "b", DroneID: "d1"})
	wantErr(t, "Track of another tenant's drone", err, store.ErrNotFound)
	_, err = s.Track(ctx, store.TrackQuery{TenantID: "a", DroneID: "missing"})
	wantErr(t, "Track of a missing drone", err, store.ErrNotFound)
	mkDrone(t, s, "a", "silent")
	got = track(t, s, store.TrackQuery{TenantID: "a", DroneID: "silent"})
	if len(got) != 0 {
		t.Errorf("Track of a drone without history = %+v; want none", got)
	}
}
