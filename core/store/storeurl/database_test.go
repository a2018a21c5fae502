package storeurl_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/store"
	_ "github.com/dronetrack/dronetrack/core/store/bolt"
	_ "github.com/dronetrack/dronetrack/core/store/firestore"
	"github.com/dronetrack/dronetrack/core/store/storeurl"
	"github.com/dronetrack/dronetrack/core/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestFirestoreURL opens firestore://PROJECT on the emulator, with and
// without ?database=, and checks the two handles on the same database see
// the same data and a handle on another database does not.
func TestFirestoreURLDatabase(t *testing.T) {
	testenv.Firestore(t)
	ctx := context.Background()
	project := testenv.NewProjectID(t)
	open := func(u string) store.Store {
		t.Helper()
		st, err := storeurl.Open(ctx, u)
		if err != nil {
			t.Fatalf("storeurl.Open(%q): %v", u, err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	a := open("firestore://" + project)
	b := open("firestore://" + project + "?database=(default)")
	other := open("firestore://" + project + "?database=other")
	if err := a.CreateTenant(ctx, store.Tenant{ID: "t1", Name: "T", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Tenant(ctx, "t1"); err != nil {
		t.Fatalf("tenant written via firestore://%s, read via ?database=(default): %v", project, err)
	}
	if _, err := other.Tenant(ctx, "t1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("tenant of the default database read from database \"other\": err = %v; want ErrNotFound", err)
	}
}
