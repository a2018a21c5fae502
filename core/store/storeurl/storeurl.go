// Package storeurl opens a store.Store from a URL, so a function's
// configuration (STORE_URL) picks the backend and code never changes:
//
//	bolt:///var/lib/dronetrack/store.db      embedded bbolt file (one machine)
//	firestore://PROJECT?database=NAME        Cloud Firestore (cluster; the emulator when FIRESTORE_EMULATOR_HOST is set)
package storeurl

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/bolt"
	"github.com/dronetrack/dronetrack/core/store/firestore"
)

// Open opens the store named by rawURL. Close the returned store when done.
func Open(ctx context.Context, rawURL string) (store.Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("store url %q: %w", rawURL, err)
	}
	switch u.Scheme {
	case "bolt":
		path := u.Path
		if u.Opaque != "" {
			path = u.Opaque
		}
		if u.Host != "" || path == "" {
			return nil, fmt.Errorf("store url %q: want bolt:///absolute/path.db", rawURL)
		}
		return openShared(path)
	case "firestore":
		if u.Host == "" {
			return nil, fmt.Errorf("store url %q: want firestore://PROJECT[?database=NAME]", rawURL)
		}
		st, err := firestore.Open(ctx, u.Host, u.Query().Get("database"))
		if err != nil {
			return nil, err
		}
		return st, nil
	default:
		return nil, fmt.Errorf("store url %q: unknown scheme %q (want bolt or firestore)", rawURL, u.Scheme)
	}
}

// One-machine mode runs every function in one process and bbolt takes an
// exclusive lock per file, so opens of the same path share one handle,
// counted, and the file closes with the last Close.
var (
	mu     sync.Mutex
	shared = map[string]*sharedBolt{}
)

type sharedBolt struct {
	*bolt.Store
	path string
	refs int
}

type handle struct {
	*sharedBolt
	once sync.Once
}

func openShared(path string) (store.Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store path %s: %w", path, err)
	}
	mu.Lock()
	defer mu.Unlock()
	sb, ok := shared[abs]
	if !ok {
		st, err := bolt.Open(abs)
		if err != nil {
			return nil, err
		}
		sb = &sharedBolt{Store: st, path: abs}
		shared[abs] = sb
	}
	sb.refs++
	return &handle{sharedBolt: sb}, nil
}

// Close releases this handle; the file closes when the last handle does.
// Closing a handle twice is a no-op.
func (h *handle) Close() error {
	var err error
	h.once.Do(func() {
		mu.Lock()
		defer mu.Unlock()
		h.refs--
		if h.refs == 0 {
			delete(shared, h.path)
			err = h.Store.Close()
		}
	})
	return err
}
