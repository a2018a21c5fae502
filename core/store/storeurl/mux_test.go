package storeurl_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/storeurl"
)

// TestMuxOpensByScheme: a mux hands a URL to the opener registered for its
// scheme, refuses a scheme nobody registered with an error naming the ones
// that are, and panics when a scheme is registered twice.
func TestMuxOpensByScheme(t *testing.T) {
	var m storeurl.URLMux
	var got *url.URL
	m.RegisterStore("mem", storeurl.OpenerFunc(func(_ context.Context, u *url.URL) (store.Store, error) {
		got = u
		return nil, nil
	}))
	if _, err := m.OpenStore(context.Background(), "mem://x?y=1"); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Host != "x" || got.Query().Get("y") != "1" {
		t.Errorf("opener got %v, want mem://x?y=1 parsed", got)
	}
	_, err := m.OpenStore(context.Background(), "bolt:///tmp/s.db")
	if err == nil || !strings.Contains(err.Error(), `"bolt"`) || !strings.Contains(err.Error(), "registered: mem") {
		t.Errorf("unregistered scheme: err = %v, want one naming bolt and the registered mem", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("second registration of mem did not panic")
			}
		}()
		m.RegisterStore("mem", storeurl.OpenerFunc(nil))
	}()
}

// TestBackendsRegisterOnImport: importing core/store/bolt and
// core/store/firestore (as this test does) registers their schemes with the
// default mux.
func TestBackendsRegisterOnImport(t *testing.T) {
	if got := storeurl.DefaultURLMux().Schemes(); !slices.Equal(got, []string{"bolt", "firestore"}) {
		t.Errorf("default mux schemes = %v, want [bolt firestore]", got)
	}
}
