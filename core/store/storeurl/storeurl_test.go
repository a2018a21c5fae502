package storeurl_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/store"
	_ "github.com/dronetrack/dronetrack/core/store/bolt"
	_ "github.com/dronetrack/dronetrack/core/store/firestore"
	"github.com/dronetrack/dronetrack/core/store/storeurl"
	"github.com/dronetrack/dronetrack/core/testenv"
)

func TestBoltHandlesAreSharedInProcess(t *testing.T) {
	ctx := context.Background()
	u := "bolt://" + filepath.Join(t.TempDir(), "s.db")
	a, err := storeurl.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	// A second open of the same file would block on bbolt's lock if it were
	// not shared; the functions of `dronetrack up` do exactly this.
	b, err := storeurl.Open(ctx, u)
	if err != nil {
		t.Fatalf("second open of the same path: %v", err)
	}
	if err := a.CreateTenant(ctx, store.Tenant{ID: "t1", Name: "T", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("double close: %v", err)
	}
	if _, err := b.Tenant(ctx, "t1"); err != nil {
		t.Fatalf("data written through one handle, read through the other after the first closed: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := storeurl.Open(ctx, u) // reopens the file after the last close
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Tenant(ctx, "t1"); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
}

func TestBadURLs(t *testing.T) {
	dir := t.TempDir()
	for _, u := range []string{"mem://x", "bolt://host/path", "bolt://", "firestore://", "::",
		"bolt://" + dir + "/a.db?prune=soon", "bolt://" + dir + "/a.db?prune=-1m", "bolt://" + dir + "/a.db?prunne=1m"} {
		if st, err := storeurl.Open(context.Background(), u); err == nil {
			st.Close()
			t.Errorf("storeurl.Open(%q) succeeded", u)
		}
	}
	_, err := storeurl.Open(context.Background(), "nope://x")
	if err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown scheme: %v", err)
	}
}

func TestBoltPruneOption(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	a, err := storeurl.Open(ctx, "bolt://"+path+"?prune=0")
	if err != nil {
		t.Fatalf("prune=0 (sweeper off): %v", err)
	}
	defer a.Close()
	if _, err := storeurl.Open(ctx, "bolt://"+path+"?prune=1m"); err == nil || !strings.Contains(err.Error(), "prune=0s") {
		t.Errorf("second open of a shared file with another prune period: %v, want an error naming the first", err)
	}
	b, err := storeurl.Open(ctx, "bolt://"+path+"?prune=0s") // the same period, spelled differently
	if err != nil {
		t.Fatalf("second open with the same period: %v", err)
	}
	b.Close()
	c, err := storeurl.Open(ctx, "bolt://"+filepath.Join(t.TempDir(), "s.db")+"?prune=30s")
	if err != nil {
		t.Fatalf("prune=30s: %v", err)
	}
	c.Close()
}

func TestFirestoreURLReachesTheEmulator(t *testing.T) {
	testenv.Firestore(t)
	ctx := context.Background()
	st, err := storeurl.Open(ctx, "firestore://"+testenv.NewProjectID(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateTenant(ctx, store.Tenant{ID: "t1", Name: "T"}); err != nil {
		t.Fatalf("write through firestore:// URL: %v", err)
	}
	if _, err := st.Tenant(ctx, "t1"); err != nil {
		t.Fatalf("read back: %v", err)
	}
}
