// Package storeurl opens a store.Store from a URL, so a function's
// configuration (STORE_URL) picks the backend and code never changes:
//
//	bolt:///var/lib/dronetrack/store.db      embedded bbolt file (one machine)
//	bolt:///path/store.db?prune=10m          ...sweeping expired history every 10m (the default; 0 turns the sweeper off)
//	firestore://PROJECT?database=NAME        Cloud Firestore (cluster; the emulator when FIRESTORE_EMULATOR_HOST is set)
package storeurl

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"time"

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
		prune, err := boltPrune(u.Query())
		if err != nil {
			return nil, fmt.Errorf("store url %q: %w", rawURL, err)
		}
		return openShared(path, prune)
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

// boltPrune reads the bolt options of a URL query: prune, how often expired
// history is deleted (a Go duration, 0 for never). Unknown options are
// errors, so a typo does not silently leave the default.
func boltPrune(q url.Values) (time.Duration, error) {
	prune := bolt.DefaultPruneEvery
	for k, v := range q {
		if k != "prune" {
			return 0, fmt.Errorf("unknown bolt option %q (want prune)", k)
		}
		d, err := time.ParseDuration(v[len(v)-1])
		if err != nil || d < 0 {
			return 0, fmt.Errorf("prune=%q: want a Go duration such as 10m, or 0 to turn pruning off", v[len(v)-1])
		}
		prune = d
	}
	return prune, nil
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
	path  string
	prune time.Duration
	refs  int
}

type handle struct {
	*sharedBolt
	once sync.Once
}

// openShared opens path or shares its open handle; a handle already open
// with another prune period is an error rather than a silent choice.
func openShared(path string, prune time.Duration) (store.Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store path %s: %w", path, err)
	}
	mu.Lock()
	defer mu.Unlock()
	sb, ok := shared[abs]
	if !ok {
		st, err := bolt.Open(abs, bolt.WithPruneEvery(prune))
		if err != nil {
			return nil, err
		}
		sb = &sharedBolt{Store: st, path: abs, prune: prune}
		shared[abs] = sb
	} else if sb.prune != prune {
		return nil, fmt.Errorf("store %s: already open in this process with prune=%s, not %s", abs, sb.prune, prune)
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
