package function

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/storeurl"
)

// countingStore is the real embedded store with its fleet reads counted, so
// the stampede test sees how many reach it.
type countingStore struct {
	store.Store
	dronesReads atomic.Int64
}

func (c *countingStore) Drones(ctx context.Context, tenantID string) ([]store.Drone, error) {
	c.dronesReads.Add(1)
	return c.Store.Drones(ctx, tenantID)
}

// newTestStore opens a fresh bbolt file through the same opener Start uses.
func newTestStore(t testing.TB) *countingStore {
	t.Helper()
	st, err := storeurl.Open(context.Background(), "bolt://"+filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &countingStore{Store: st}
}
