package storetest

import (
	"context"
	"sync"
	"testing"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/google/go-cmp/cmp"
)

// linkTests pin down store.Links:
//   - a link is found by its token hash with every field intact;
//   - ids and token hashes are unique (a failed create claims nothing);
//   - Links lists one drone's links of one tenant, newest first;
//   - RevokeLink and EndLink set their time once (the first wins, also
//     under concurrent calls) and keep the rest of the link;
//   - another tenant's link is ErrNotFound for listing, revoking and
//     ending, and stays unchanged.
var linkTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"Links", testLinks},
	{"LinkTimesOnce", testLinkTimesOnce},
}

func mkLink(t *testing.T, s store.Store, tenantID, droneID, id string, created int) store.TrackLink {
	t.Helper()
	l := store.TrackLink{ID: id, TokenHash: "tok-" + id, TenantID: tenantID, DroneID: droneID, Mode: "duration",
		CreatedBy: "u-" + tenantID, CreatedAt: at(created), ExpiresAt: at(created + 3600)}
	must(t, "CreateLink "+id, s.CreateLink(context.Background(), l))
	return l
}

func testLinks(t *testing.T, s store.Store) {
	ctx := context.Background()
	full := store.TrackLink{ID: "l1", TokenHash: "tok-l1", TenantID: "ta", DroneID: "da", Mode: "flight",
		CreatedBy: "ua", CreatedAt: at(1), ExpiresAt: at(86401),
		Destination: &store.LinkDestination{Lat: 47.5, Lon: -8.25, Label: "Gate 3, 12 Main St"}}
	must(t, "CreateLink", s.CreateLink(ctx, full))
	got, err := s.LinkByTokenHash(ctx, "tok-l1")
	must(t, "LinkByTokenHash", err)
	if diff := cmp.Diff(full, got, opts); diff != "" {
		t.Errorf("LinkByTokenHash (-want +got):\n%s", diff)
	}
	_, err = s.LinkByTokenHash(ctx, "tok-none")
	wantErr(t, "LinkByTokenHash unknown", err, store.ErrNotFound)

	dup := full
	dup.TokenHash = "tok-fresh"
	wantErr(t, "CreateLink with a taken id", s.CreateLink(ctx, dup), store.ErrAlreadyExists)
	if _, err := s.LinkByTokenHash(ctx, "tok-fresh"); err == nil {
		t.Errorf("a failed CreateLink left its token hash claimed")
	}
	dup = full
	dup.ID = "l-other"
	wantErr(t, "CreateLink with a taken token hash", s.CreateLink(ctx, dup), store.ErrAlreadyExists)

	l3 := mkLink(t, s, "ta", "da", "l3", 30)
	l2 := mkLink(t, s, "ta", "da", "l2", 20)
	mkLink(t, s, "ta", "da2", "l4", 40) // another drone
	bl := mkLink(t, s, "tb", "da", "l5", 50)
	list, err := s.Links(ctx, "ta", "da")
	must(t, "Links", err)
	if diff := cmp.Diff([]store.TrackLink{l3, l2, full}, list, opts); diff != "" {
		t.Errorf("Links(ta, da), newest first (-want +got):\n%s", diff)
	}
	list, err = s.Links(ctx, "tc", "da")
	must(t, "Links of a tenant without links", err)
	if len(list) != 0 {
		t.Errorf("Links(tc, da) = %+v; want none", list)
	}

	// Another tenant can neither revoke nor end, and the link is unchanged.
	_, err = s.RevokeLink(ctx, "tb", "l1", at(5))
	wantErr(t, "RevokeLink of another tenant", err, store.ErrNotFound)
	_, err = s.EndLink(ctx, "tb", "l1", at(5))
	wantErr(t, "EndLink of another tenant", err, store.ErrNotFound)
	_, err = s.RevokeLink(ctx, "ta", "none", at(5))
	wantErr(t, "RevokeLink unknown", err, store.ErrNotFound)
	got, err = s.LinkByTokenHash(ctx, "tok-l1")
	must(t, "LinkByTokenHash after foreign attempts", err)
	if diff := cmp.Diff(full, got, opts); diff != "" {
		t.Errorf("link after foreign attempts (-want +got):\n%s", diff)
	}

	rev, err := s.RevokeLink(ctx, "ta", "l1", at(6))
	must(t, "RevokeLink", err)
	want := full
	want.RevokedAt = new(at(6))
	if diff := cmp.Diff(want, rev, opts); diff != "" {
		t.Errorf("RevokeLink (-want +got):\n%s", diff)
	}
	got, err = s.LinkByTokenHash(ctx, "tok-l1")
	must(t, "LinkByTokenHash after revoke", err)
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("stored after revoke (-want +got):\n%s", diff)
	}
	rev, err = s.RevokeLink(ctx, "ta", "l1", at(9))
	must(t, "RevokeLink again", err)
	if !rev.RevokedAt.Equal(at(6)) {
		t.Errorf("second RevokeLink moved RevokedAt to %v; want the first, %v", rev.RevokedAt, at(6))
	}
	ended, err := s.EndLink(ctx, "ta", "l2", at(7))
	must(t, "EndLink", err)
	if ended.EndedAt == nil || !ended.EndedAt.Equal(at(7)) || ended.RevokedAt != nil || ended.TokenHash != l2.TokenHash {
		t.Errorf("EndLink = %+v; want EndedAt %v and the rest kept", ended, at(7))
	}
	got, err = s.LinkByTokenHash(ctx, "tok-l5")
	must(t, "the other tenant's link", err)
	if diff := cmp.Diff(bl, got, opts); diff != "" {
		t.Errorf("tb's link changed (-want +got):\n%s", diff)
	}
}

// testLinkTimesOnce: concurrent revocations all see one RevokedAt, the one
// stored.
func testLinkTimesOnce(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkLink(t, s, "ta", "da", "l1", 1)
	const n = 8
	got := make([]store.TrackLink, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = s.RevokeLink(ctx, "ta", "l1", at(100+i))
		}()
	}
	wg.Wait()
	stored, err := s.LinkByTokenHash(ctx, "tok-l1")
	must(t, "LinkByTokenHash", err)
	if stored.RevokedAt == nil {
		t.Fatal("no RevokedAt stored")
	}
	for i := range n {
		must(t, "RevokeLink", errs[i])
		if got[i].RevokedAt == nil || !got[i].RevokedAt.Equal(*stored.RevokedAt) {
			t.Errorf("call %d saw RevokedAt %v; stored %v", i, got[i].RevokedAt, stored.RevokedAt)
		}
	}
}
