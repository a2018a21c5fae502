package bolt

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/storeurl"
)

// Scheme is the store URL scheme this package registers with storeurl:
// bolt:///absolute/path.db[?prune=DURATION].
const Scheme = "bolt"

func init() { storeurl.Register(Scheme, storeurl.OpenerFunc(openURL)) }

// openURL opens bolt:///path.db. prune sets how often expired history is
// swept (default DefaultPruneEvery, 0 for never).
func openURL(_ context.Context, u *url.URL) (store.Store, error) {
	path := u.Path
	if u.Opaque != "" {
		path = u.Opaque
	}
	if u.Host != "" || path == "" {
		return nil, fmt.Errorf("store url %q: want bolt:///absolute/path.db", u.Redacted())
	}
	prune, err := urlPrune(u.Query())
	if err != nil {
		return nil, fmt.Errorf("store url %q: %w", u.Redacted(), err)
	}
	return openShared(path, prune)
}

// urlPrune reads the bolt options of a URL query: prune, how often expired
// history is deleted (a Go duration, 0 for never). Unknown options are
// errors, so a typo does not silently leave the default.
func urlPrune(q url.Values) (time.Duration, error) {
	prune := DefaultPruneEvery
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
// exclusive lock per file, so URL opens of the same path share one handle,
// counted, and the file closes with the last Close.
var (
	sharedMu sync.Mutex
	shared   = map[string]*sharedBolt{}
)

type sharedBolt struct {
	*Store
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
	sharedMu.Lock()
	defer sharedMu.Unlock()
	sb, ok := shared[abs]
	if !ok {
		st, err := Open(abs, WithPruneEvery(prune))
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
		sharedMu.Lock()
		defer sharedMu.Unlock()
		h.refs--
		if h.refs == 0 {
			delete(shared, h.path)
			err = h.Store.Close()
		}
	})
	return err
}
