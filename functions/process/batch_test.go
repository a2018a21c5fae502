package function

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// TestGroupCommitIsolatesABadRequest: a backend refusing one request's
// points (say an id it can't store) fails that request only; the others
// that shared its batch are written. An outage fails everyone at once.
func TestGroupCommitIsolatesABadRequest(t *testing.T) {
	var mu sync.Mutex
	written := map[string]bool{}
	outage := false
	batches := 0
	write := func(_ context.Context, pts []store.TrackPoint) error {
		mu.Lock()
		defer mu.Unlock()
		if outage {
			return fmt.Errorf("append: %w", store.ErrUnavailable)
		}
		for _, p := range pts {
			if p.DroneID == "bad/id" {
				return errors.New("invalid drone id")
			}
		}
		if len(pts) > 1 {
			batches++
		}
		for _, p := range pts {
			written[p.DroneID] = true
		}
		return nil
	}
	drones := []string{"a", "b", "bad/id", "c", "d", "e", "f", "g"}
	// A batch closes at len(drones) points; the long linger makes sure all
	// eight requests share the first batch.
	g := newGroupCommit(write, len(drones), time.Hour, 30*time.Second)
	defer g.Close()
	errs := make([]error, len(drones))
	var wg sync.WaitGroup
	for i, d := range drones {
		wg.Go(func() {
			errs[i] = g.Append(context.Background(), []store.TrackPoint{{DroneID: d, Report: events.Report{TS: base}}})
		})
	}
	wg.Wait()
	for i, d := range drones {
		if wantErr := d == "bad/id"; (errs[i] != nil) != wantErr || written[d] == wantErr {
			t.Errorf("drone %s: err %v written %v, want only bad/id failing", d, errs[i], written[d])
		}
	}

	if batches != 0 {
		t.Errorf("%d multi-request writes succeeded, want 0 (the shared batch held bad/id)", batches)
	}

	mu.Lock()
	outage = true
	mu.Unlock()
	g2 := newGroupCommit(write, 500, 0, 30*time.Second)
	defer g2.Close()
	if err := g2.Append(context.Background(), []store.TrackPoint{{DroneID: "h"}}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("during an outage: %v, want ErrUnavailable", err)
	}
}
