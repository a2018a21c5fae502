package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// SmallDisk mounts a tmpfs of size bytes on a fresh temp dir and unmounts
// it (lazily, so open files do not block it) when the test ends. It is how
// disk-full tests get a disk they can fill without filling the machine's.
// Mounting needs root (CAP_SYS_ADMIN), as in CI and the dev container;
// without it the test fails, never skips, so the disk-full paths cannot go
// untested unnoticed.
func SmallDisk(t testing.TB, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Fatalf("%s needs a %d-byte tmpfs to fill, and mounting one on %s failed (run as root or with CAP_SYS_ADMIN): %v",
			t.Name(), size, dir, err)
	}
	// Registered after TempDir's own cleanup, so it runs first.
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// FillDisk writes a file in dir until the file system refuses with ENOSPC,
// and returns the function that removes it (safe to call more than once).
// It takes no testing.TB, so a fault injected from a goroutine can use it.
func FillDisk(dir string) (free func() error, err error) {
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("fill the disk: %w", err)
	}
	chunk := make([]byte, 64<<10)
	for err == nil {
		_, err = f.Write(chunk) // a short write is retried, so the disk ends full
	}
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		os.Remove(path)
		return nil, fmt.Errorf("fill the disk: %w, want ENOSPC", err)
	}
	var once sync.Once
	var rmErr error
	return func() error {
		once.Do(func() { rmErr = os.Remove(path) })
		return rmErr
	}, nil
}
