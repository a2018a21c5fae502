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
// bolt:///absolute/path.db[?prune=DURATION][&faultaround=on].
const Scheme = "bolt"

func init() { storeurl.Register(Scheme, storeurl.OpenerFunc(openURL)) }

// openURL opens bolt:///path.db. prune sets how often expired history is
// swept (default DefaultPruneEvery, 0 for never); faultaround=on leaves the
// kernel's fault-around on for the file's mapping (the store turns it off
// where the kernel lets it: faultaround_linux.go), a way back should a
// kernel treat the registration that turns it off differently.
func openURL(_ context.Context, u *url.URL) (store.Store, error) {
	path := u.Path
	if u.Opaque != "" {
		path = u.Opaque
	}
	if u.Host != "" || path == "" {
		return nil, fmt.Errorf("store url %q: want bolt:///absolute/path.db", u.Redacted())
	}
	o, err := urlOptions(u.Query())
	if err != nil {
		return nil, fmt.Errorf("store url %q: %w", u.Redacted(), err)
	}
	return openShared(path, o)
}

// urlOpts are the bolt options a store URL's query may set.
type urlOpts struct {
	prune       time.Duration // how often expired history is deleted; 0: never
	faultAround bool          // leave the kernel's fault-around on
}

// urlOptions reads the bolt options of a URL query: prune (a Go duration,
// 0 for never) and faultaround (on or off). Unknown options are errors, so
// a typo does not silently leave the default.
func urlOptions(q url.Values) (urlOpts, error) {
	o := urlOpts{prune: DefaultPruneEvery}
	for k, vs := range q {
		v := vs[len(vs)-1]
		switch k {
		case "prune":
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return o, fmt.Errorf("prune=%q: want a Go duration such as 10m, or 0 to turn pruning off", v)
			}
			o.prune = d
		case "faultaround":
			switch v {
			case "on":
				o.faultAround = true
			case "off":
				o.faultAround = false
			default:
				return o, fmt.Errorf("faultaround=%q: want on or off", v)
			}
		default:
			return o, fmt.Errorf("unknown bolt option %q (want prune or faultaround)", k)
		}
	}
	return o, nil
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
	path string
	opts urlOpts
	refs int
}

type handle struct {
	*sharedBolt
	once sync.Once
}

// openShared opens path or shares its open handle; a handle already open
// with other options is an error rather than a silent choice.
func openShared(path string, o urlOpts) (store.Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store path %s: %w", path, err)
	}
	sharedMu.Lock()
	defer sharedMu.Unlock()
	sb, ok := shared[abs]
	if !ok {
		opts := []Option{WithPruneEvery(o.prune)}
		if o.faultAround {
			opts = append(opts, WithFaultAround())
		}
		st, err := Open(abs, opts...)
		if err != nil {
			return nil, err
		}
		sb = &sharedBolt{Store: st, path: abs, opts: o}
		shared[abs] = sb
	} else if sb.opts != o {
		return nil, fmt.Errorf("store %s: already open in this process with prune=%s faultaround=%s, not prune=%s faultaround=%s",
			abs, sb.opts.prune, onOff(sb.opts.faultAround), o.prune, onOff(o.faultAround))
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

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
