package storeurl

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/testenv"
)

func TestBoltHandlesAreSharedInProcess(t *testing.T) {
	ctx := context.Background()
	u := "bolt://" + filepath.Join(t.TempDir(), "s.db")
	a, err := Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	// A second open of the same file would block on bbolt's lock if it were
	// not shared; the functions of `dronetrack up` do exactly this.
	b, err := Open(ctx, u)
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
	c, err := Open(ctx, u) // reopens the file after the last close
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Tenant(ctx, "t1"); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
}

func TestBadURLs(t *testing.T) {
	for _, u := range []string{"mem://x", "bolt://host/path", "bolt://", "firestore://", "::"} {
		if st, err := Open(context.Background(), u); err == nil {
			st.Close()
			t.Errorf("Open(%q) succeeded", u)
		}
	}
	_, err := Open(context.Background(), "nope://x")
	if err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown scheme: %v", err)
	}
}

func TestFirestoreURLReachesTheEmulator(t *testing.T) {
	testenv.Firestore(t)
	ctx := context.Background()
	st, err := Open(ctx, "firestore://"+testenv.NewProjectID(t))
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
