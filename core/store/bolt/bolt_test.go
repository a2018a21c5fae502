package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

func TestMediumFailuresAreUnavailable(t *testing.T) {
	for _, err := range []error{
		&os.PathError{Op: "write", Path: "s.db", Err: syscall.ENOSPC},
		// bbolt's DB.grow formats these with %s, losing the errno.
		fmt.Errorf("file resize error: %s", syscall.ENOSPC),
		fmt.Errorf("file sync error: %s", syscall.EIO),
	} {
		if got := mapErr(err); !errors.Is(got, store.ErrUnavailable) {
			t.Errorf("mapErr(%v) = %v, want ErrUnavailable", err, got)
		}
	}
	if got := mapErr(store.ErrNotFound); errors.Is(got, store.ErrUnavailable) {
		t.Errorf("mapErr(ErrNotFound) = %v, want it passed through", got)
	}
}
