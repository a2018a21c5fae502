package bolt

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dronetrack/dronetrack/core/store"
)

func TestSecondOpenFailsClearly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// bbolt's lock is per open file description, so a second Open in the
	// same process behaves like another process would.
	_, err = Open(path)
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("second open: got %v, want a clear lock error", err)
	}
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = s.Tenant(context.Background(), "x")
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("read after close: %v, want ErrUnavailable", err)
	}
}
