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

// TestSnapshotIsPointInTime: a snapshot copies the store as it was when it
// began, while writes go on, into a file Open takes.
func TestSnapshotIsPointInTime(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateTenant(ctx, store.Tenant{ID: "before", Name: "Before"}); err != nil {
		t.Fatal(err)
	}
	sn, err := s.BeginSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	// A write may wait for the snapshot's end when it must grow bbolt's
	// memory map, so it runs beside the copy, as in a backup of `up`.
	wrote := make(chan error, 1)
	go func() { wrote <- s.CreateTenant(ctx, store.Tenant{ID: "after", Name: "After"}) }()
	f, err := os.Create(filepath.Join(dir, "copy.db"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := sn.WriteTo(f)
	if err != nil || n != sn.Size() {
		t.Fatalf("WriteTo: %d of %d bytes, %v", n, sn.Size(), err)
	}
	if err := errors.Join(f.Close(), sn.Close()); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("write during a snapshot: %v", err)
	}
	c, err := Open(filepath.Join(dir, "copy.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Tenant(ctx, "before"); err != nil {
		t.Errorf("copy lacks the tenant written before the snapshot: %v", err)
	}
	if _, err := c.Tenant(ctx, "after"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("copy has the tenant written after the snapshot began: %v", err)
	}
	if _, err := s.Tenant(ctx, "after"); err != nil {
		t.Errorf("the live store lost a write made during the snapshot: %v", err)
	}
}
