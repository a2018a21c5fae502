package bolt_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/bolt"
	"github.com/dronetrack/dronetrack/events"
)

// BenchmarkOpenLargeStore measures Open on a store of
// DRONETRACK_BOLT_OPEN_POINTS history points (default 100,000; 100 drones,
// a fifth of the points expired and pruned so the file has free pages),
// with the freelist rebuilt by walking the file (Open's setting) and read
// from its page (bbolt's default, WithFreelistSync):
//
//	DRONETRACK_BOLT_OPEN_POINTS=1000000 go test ./core/store/bolt -run '^$' -bench OpenLargeStore
func BenchmarkOpenLargeStore(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("DRONETRACK_BOLT_OPEN_POINTS")); err == nil && v > 0 {
		n = v
	}
	path := largeStore(b, n)
	for _, c := range []struct {
		name string
		opts []bolt.Option
	}{
		{"freelist=rebuilt", nil},
		{"freelist=synced", []bolt.Option{bolt.WithFreelistSync()}},
	} {
		b.Run(c.name, func(b *testing.B) {
			// The first open in a mode writes (or drops) the freelist page.
			s, err := bolt.Open(path, append(c.opts, bolt.WithPruneEvery(0))...)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				s, err := bolt.Open(path, append(c.opts, bolt.WithPruneEvery(0))...)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// largeStore writes a store of n history points over 100 drones, a fifth
// of them pruned, and returns its path.
func largeStore(b *testing.B, n int) string {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "store.db")
	s, err := bolt.Open(path, bolt.WithPruneEvery(0))
	if err != nil {
		b.Fatal(err)
	}
	if err := s.CreateTenant(ctx, store.Tenant{ID: "t"}); err != nil {
		b.Fatal(err)
	}
	const drones = 100
	for d := range drones {
		id := fmt.Sprint("d", d)
		if err := s.CreateDrone(ctx, store.Drone{ID: id, TenantID: "t", Name: id, KeyHash: "h" + id}); err != nil {
			b.Fatal(err)
		}
	}
	t0 := time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Second)
	batt, h, v := 80.0, 40.0, 8.0
	const batch = 5000
	for i := 0; i < n; i += batch {
		pts := make([]store.TrackPoint, 0, batch)
		for j := i; j < min(i+batch, n); j++ {
			ts := t0.Add(time.Duration(j/drones) * time.Second)
			exp := ts.Add(30 * 24 * time.Hour)
			if j < n/5 {
				exp = time.Now().Add(-time.Hour) // pruned below
			}
			pts = append(pts, store.TrackPoint{TenantID: "t", DroneID: fmt.Sprint("d", j%drones), ExpireAt: exp,
				Report: events.Report{TS: ts, Lat: 47 + float64(j)*1e-7, Lon: 8, Battery: &batt, Height: &h, Speed: &v}})
		}
		if err := s.AppendTrack(ctx, pts); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := s.Prune(ctx); err != nil {
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// Open does not write bbolt's freelist with each commit; it rebuilds it
// from the file on open. A reopened store reuses the pages pruning freed
// (the file does not grow to hold as much again), and a file goes back and
// forth with a build that does write the freelist (bbolt's default).
func TestFreelistRebuiltOnOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	write := func(s *bolt.Store, from, n int, expired bool) {
		t.Helper()
		for i := from; i < from+n; i += 1000 {
			pts := make([]store.TrackPoint, 1000)
			for j := range pts {
				ts := t0.Add(time.Duration(i+j) * time.Millisecond)
				exp := ts.Add(24 * time.Hour)
				if expired {
					exp = ts
				}
				pts[j] = store.TrackPoint{TenantID: "t", DroneID: "d", ExpireAt: exp, Report: events.Report{TS: ts, Lat: 1, Lon: 2}}
			}
			if err := s.AppendTrack(ctx, pts); err != nil {
				t.Fatal(err)
			}
		}
	}
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	s, err := bolt.Open(path, bolt.WithPruneEvery(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTenant(ctx, store.Tenant{ID: "t"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateDrone(ctx, store.Drone{ID: "d", TenantID: "t", KeyHash: "h"}); err != nil {
		t.Fatal(err)
	}
	write(s, 0, 20_000, true)
	if ps, err := s.Prune(ctx); err != nil || ps.Deleted != 20_000 {
		t.Fatalf("prune: %+v %v", ps, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	full := size()
	for i, opts := range [][]bolt.Option{nil, {bolt.WithFreelistSync()}, nil} {
		s, err := bolt.Open(path, append(opts, bolt.WithPruneEvery(0))...)
		if err != nil {
			t.Fatal(err)
		}
		write(s, 20_000+i*5_000, 5_000, false)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := size(); got > full {
		t.Errorf("file grew from %d to %d bytes: the freed pages were not reused", full, got)
	}
	s, err = bolt.Open(path, bolt.WithPruneEvery(0))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pts, err := s.Track(ctx, store.TrackQuery{TenantID: "t", DroneID: "d", From: t0})
	if err != nil || len(pts) != 15_000 {
		t.Fatalf("history after reopens: %d points, %v; want 15000", len(pts), err)
	}
}
