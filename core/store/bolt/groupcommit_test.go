package bolt

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// The gap after a commit: none after a lone call, the least gap after a
// small group, growing with the group to the most; fixed when both are set
// the same.
func TestGapAfter(t *testing.T) {
	g := &groupCommit{gap: 2 * time.Millisecond, maxGap: 10 * time.Millisecond}
	for _, c := range []struct {
		n    int
		want time.Duration
	}{
		{0, 0}, {1, 0}, {2, 2 * time.Millisecond}, {6, 2 * time.Millisecond},
		{16, 5 * time.Millisecond}, {gapFullGroup, 10 * time.Millisecond}, {maxGroup, 10 * time.Millisecond},
	} {
		if got := g.gapAfter(c.n); got != c.want {
			t.Errorf("adaptive: gap after a group of %d = %v, want %v", c.n, got, c.want)
		}
	}
	fixed := &groupCommit{gap: 2 * time.Millisecond, maxGap: 2 * time.Millisecond}
	for _, n := range []int{0, 1, 2, maxGroup} {
		if got := fixed.gapAfter(n); got != 2*time.Millisecond {
			t.Errorf("fixed: gap after a group of %d = %v, want 2ms", n, got)
		}
	}
	if got := (&groupCommit{}).gapAfter(100); got != 0 {
		t.Errorf("no gap: gap after a group of 100 = %v, want 0", got)
	}
}

// The gap is skipped when the writer is behind: a full group pending, or
// (adaptive) as many calls pending as the last commit carried, and at
// least gapFullGroup.
func TestBehindAt(t *testing.T) {
	g := &groupCommit{gap: 2 * time.Millisecond, maxGap: 10 * time.Millisecond}
	for _, c := range []struct{ lastN, want int }{
		{0, gapFullGroup}, {1, gapFullGroup}, {gapFullGroup + 1, gapFullGroup + 1}, {500, 500}, {maxGroup, maxGroup},
	} {
		g.lastN = c.lastN
		if got := g.behindAt(); got != c.want {
			t.Errorf("adaptive, last commit of %d calls: behind at %d pending, want %d", c.lastN, got, c.want)
		}
	}
	fixed := &groupCommit{gap: 2 * time.Millisecond, maxGap: 2 * time.Millisecond, lastN: 500}
	if got := fixed.behindAt(); got != maxGroup {
		t.Errorf("fixed gap: behind at %d pending, want %d", got, maxGroup)
	}
}

// waitDone fails the test if done is not closed within limit: a liveness
// check whose limit is far beyond what the work takes, not a measurement.
func waitDone(t *testing.T, done <-chan struct{}, limit time.Duration, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("%s: still waiting after %v", what, limit)
	}
}

// A caller writing one transaction after another on a quiet store (alerts'
// link check) is not held back by the gap, however long the gap after
// groups: each of its commits carries its call alone.
func TestLoneWriterDoesNotWaitForTheGap(t *testing.T) {
	ctx := context.Background()
	s := openWithGap(t, time.Hour, 2*time.Hour)
	if err := s.CreateDrone(ctx, store.Drone{ID: "d", TenantID: "t"}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			_, _, err := s.UpdateState(ctx, "t", "d", func(*events.DroneState) (events.DroneState, bool) {
				return events.DroneState{TS: time.Unix(int64(i), 0), Lat: float64(i)}, true
			})
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	waitDone(t, done, time.Minute, "20 sequential writes with a gap of an hour after groups")
	st, err := s.LatestState(ctx, "t", "d")
	if err != nil || st.Lat != 19 {
		t.Fatalf("state after the writes: %+v, %v; want the last one's (lat 19)", st, err)
	}
}

// A full group does not wait out the gap: when maxGroup calls are pending
// the next commit starts, so a backlog is written as fast as the writer
// can, whatever the gap.
func TestFullGroupEndsTheGap(t *testing.T) {
	ctx := context.Background()
	s := openWithGap(t, time.Hour, time.Hour)
	// The first write commits at once (nothing before it); every commit
	// after it is followed by an hour's gap unless a group fills.
	if err := s.CreateDrone(ctx, store.Drone{ID: "d", TenantID: "t"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendTrack(ctx, []store.TrackPoint{{TenantID: "t", DroneID: "d", Report: events.Report{TS: time.Unix(1, 0)}}}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for i := range 2 * maxGroup {
			wg.Go(func() {
				p := store.TrackPoint{TenantID: "t", DroneID: "d", Report: events.Report{TS: time.Unix(int64(2+i), 0)}}
				if err := s.AppendTrack(ctx, []store.TrackPoint{p}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}()
	waitDone(t, done, time.Minute, fmt.Sprintf("%d concurrent writes behind an hour's gap", 2*maxGroup))
	pts, err := s.Track(ctx, store.TrackQuery{TenantID: "t", DroneID: "d"})
	if err != nil || len(pts) != 2*maxGroup+1 {
		t.Fatalf("track: %d points, %v; want %d", len(pts), err, 2*maxGroup+1)
	}
}

// openWithGap opens a store in a test's temp dir whose group commit waits
// gap to maxGap after a group (closed when the test ends), with tenant t.
func openWithGap(t *testing.T, gap, maxGap time.Duration) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "s.db"), WithPruneEvery(0),
		func(c *config) { c.commitGap, c.maxCommitGap = gap, maxGap })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.CreateTenant(context.Background(), store.Tenant{ID: "t"}); err != nil {
		t.Fatal(err)
	}
	return s
}
