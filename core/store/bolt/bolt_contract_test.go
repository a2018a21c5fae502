package bolt_test

import (
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
