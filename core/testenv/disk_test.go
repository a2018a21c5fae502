package testenv

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestSmallDiskFillAndFree(t *testing.T) {
	dir := SmallDisk(t, 1<<20)
	free, err := FillDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "more"), make([]byte, 8<<10), 0o600); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write on the full disk: %v, want ENOSPC", err)
	}
	if err := free(); err != nil {
		t.Fatal(err)
	}
	if err := free(); err != nil {
		t.Fatalf("second free: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "more"), make([]byte, 8<<10), 0o600); err != nil {
		t.Fatalf("write after freeing: %v", err)
	}
}
