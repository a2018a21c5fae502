// Package storeurl opens a store.Store from a URL, so a function's
// configuration (STORE_URL) picks the backend and code never changes. It is a
// URL mux in the style of gocloud.dev: each backend package registers its
// scheme in init(), and a program links exactly the backends it imports:
//
//	import _ "github.com/dronetrack/dronetrack/core/store/bolt"      // bolt://
//	import _ "github.com/dronetrack/dronetrack/core/store/firestore" // firestore://
//
// The schemes of the backends in this repository:
//
//	bolt:///var/lib/dronetrack/store.db      embedded bbolt file (one machine)
//	bolt:///path/store.db?prune=10m          ...sweeping expired history every 10m (the default; 0 turns the sweeper off)
//	bolt:///path/store.db?faultaround=on     ...leaving the kernel's fault-around on for the file's mapping (off by default where the kernel allows)
//	firestore://PROJECT?database=NAME        Cloud Firestore (cluster; the emulator when FIRESTORE_EMULATOR_HOST is set)
package storeurl

import (
	"context"
	"net/url"

	"github.com/dronetrack/dronetrack/core/internal/urlmux"
	"github.com/dronetrack/dronetrack/core/store"
)

// URLOpener opens the store a URL of its scheme names. A backend package
// implements it and registers it under its scheme.
type URLOpener interface {
	OpenStoreURL(ctx context.Context, u *url.URL) (store.Store, error)
}

// OpenerFunc adapts a function to URLOpener.
type OpenerFunc func(ctx context.Context, u *url.URL) (store.Store, error)

// OpenStoreURL calls f.
func (f OpenerFunc) OpenStoreURL(ctx context.Context, u *url.URL) (store.Store, error) {
	return f(ctx, u)
}

// URLMux maps URL schemes to the openers registered for them. The zero value
// is an empty mux; DefaultURLMux is the one backends register with.
type URLMux struct {
	schemes urlmux.SchemeMap[URLOpener]
}

// RegisterStore makes o open URLs of scheme. Registering a scheme twice
// panics: two backends claiming one scheme is a wiring bug, not a choice.
func (m *URLMux) RegisterStore(scheme string, o URLOpener) { m.schemes.Register("storeurl", scheme, o) }

// Schemes lists the registered schemes, sorted.
func (m *URLMux) Schemes() []string { return m.schemes.Schemes() }

// OpenStore opens the store named by rawURL with the opener of its scheme.
// An unregistered scheme is an error naming the registered ones, since it
// usually means the program did not import the backend's package.
func (m *URLMux) OpenStore(ctx context.Context, rawURL string) (store.Store, error) {
	u, o, err := m.schemes.Lookup("store", "core/store/bolt", rawURL)
	if err != nil {
		return nil, err
	}
	return o.OpenStoreURL(ctx, u)
}

var defaultMux = new(URLMux)

// DefaultURLMux is the mux backends register with in init() and Open uses.
func DefaultURLMux() *URLMux { return defaultMux }

// Register registers o for scheme on DefaultURLMux; backend packages call it
// from init().
func Register(scheme string, o URLOpener) { defaultMux.RegisterStore(scheme, o) }

// Open opens the store named by rawURL through DefaultURLMux. Close the
// returned store when done.
func Open(ctx context.Context, rawURL string) (store.Store, error) {
	return defaultMux.OpenStore(ctx, rawURL)
}
