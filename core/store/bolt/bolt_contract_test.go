package bolt_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/bolt"
	"github.com/dronetrack/dronetrack/core/store/storetest"
)

// TestContract runs the store contract suite on a fresh bbolt file per subtest.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := bolt.Open(filepath.Join(t.TempDir(), "store.db"))
		if err != nil {
			t.Fatalf("bolt.Open: %v", err)
		}
		return s
	})
}

// TestContractDroneWriter runs the store.DroneWriter contract on bbolt.
func TestContractDroneWriter(t *testing.T) {
	storetest.RunDroneWriter(t, func(t *testing.T) store.Store {
		s, err := bolt.Open(filepath.Join(t.TempDir(), "store.db"), bolt.WithPruneEvery(0))
		if err != nil {
			t.Fatalf("bolt.Open: %v", err)
		}
		return s
	})
}

// TestContractWithPruning runs the suite again with a sweep before every
// history read, so what the sweeper deletes is checked against what reads
// must return: it may only remove points reads would hide.
func TestContractWithPruning(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := bolt.Open(filepath.Join(t.TempDir(), "store.db"), bolt.WithPruneEvery(0))
		if err != nil {
			t.Fatalf("bolt.Open: %v", err)
		}
		return pruneBeforeRead{s}
	})
}

type pruneBeforeRead struct{ *bolt.Store }

func (s pruneBeforeRead) Track(ctx context.Context, q store.TrackQuery) ([]store.TrackPoint, error) {
	if _, err := s.Prune(ctx); err != nil {
		return nil, fmt.Errorf("prune before read: %w", err)
	}
	return s.Store.Track(ctx, q)
}
