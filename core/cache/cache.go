package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	rcache "github.com/go-redis/cache/v9"

	"github.com/dronetrack/dronetrack/core/cache/driver"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// ErrUnavailable means the cache backend could not be reached. Readers fall
// back to the store; cache-refresh answers 503 so the broker redelivers.
var ErrUnavailable = errors.New("cache unavailable")

// ErrInvalid marks a state the cache refuses (missing ids, zero or far
// timestamp, position out of range): retrying cannot help.
var ErrInvalid = errors.New("invalid drone state")

// Loader is the part of the store the cache reads on a miss.
type Loader interface {
	Drones(ctx context.Context, tenantID string) ([]store.Drone, error)
	Drone(ctx context.Context, tenantID, droneID string) (store.Drone, error)
}

var _ Loader = store.Store(nil)

// Options configures Open. Loader may be nil for writers (cache-refresh);
// read methods then fail on a miss instead of reading the store.
type Options struct {
	Loader Loader
	Logger *slog.Logger
	// RetryAfter is how long the cache stays marked down after a backend
	// error before the next call tries again (default 1 s). It keeps a dead
	// Redis from adding a dial timeout to every request.
	RetryAfter time.Duration
	// ListMaxAge lets Fleet answer with a rendered list up to this old
	// while newer changes exist, so a fleet under constant updates is not
	// re-rendered on every read (live changes reach clients through
	// notices). Zero means every read reflects the latest version.
	ListMaxAge time.Duration
}

// Notice tells subscribers that a drone of the tenant changed. Version is the
// tenant's change counter after the change: the same on every replica, so it
// serves as the SSE event id.
type Notice = driver.Notice

// Subscription delivers a tenant's notices until Close. A slow reader loses
// notices rather than blocking the writer; it notices by a gap in Version.
type Subscription struct {
	C     <-chan Notice
	close func()
	once  sync.Once
}

// Close stops delivery and releases the backend subscription.
func (s *Subscription) Close() { s.once.Do(s.close) }

// Cache is the fleet cache shared by cache-refresh (writer) and serve-map
// (reader). It is safe for concurrent use.
type Cache struct {
	b      driver.Backend
	loader Loader
	log    *slog.Logger
	// lists holds rendered fleet lists keyed by tenant and version, local to
	// the process; it also provides Once for the store loads.
	lists    *rcache.Cache
	listsLFU *rcache.TinyLFU

	retryAfter time.Duration
	downUntil  atomic.Int64 // unix nanos; 0 = healthy

	listMaxAge time.Duration
	latest     sync.Map // tenant -> *Fleet, the newest rendered list
}

// New returns a Cache in front of b; Open and URLMux.OpenCache call it with
// the backend a URL names.
func New(b driver.Backend, opt Options) *Cache {
	c := &Cache{
		b:          b,
		loader:     opt.Loader,
		log:        opt.Logger,
		retryAfter: opt.RetryAfter,
		listMaxAge: opt.ListMaxAge,
		listsLFU:   rcache.NewTinyLFU(64, time.Minute),
	}
	c.lists = rcache.New(&rcache.Options{LocalCache: c.listsLFU})
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.retryAfter <= 0 {
		c.retryAfter = time.Second
	}
	return c
}

// Close releases the backend (a local cache lives while any Cache of the same
// name is open).
func (c *Cache) Close() error { return c.b.Close() }

// Ping checks the backend now, ignoring the retry window (readiness probes).
func (c *Cache) Ping(ctx context.Context) error {
	if err := c.b.Ping(ctx); err != nil {
		return c.fail(ctx, err)
	}
	c.downUntil.Store(0)
	return nil
}

// call runs a backend operation unless the backend failed within the retry
// window, and opens the window when it fails.
func (c *Cache) call(ctx context.Context, op func() error) error {
	if until := c.downUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return fmt.Errorf("%w: backend failed recently", ErrUnavailable)
	}
	if err := op(); err != nil {
		return c.fail(ctx, err)
	}
	if c.downUntil.Load() != 0 {
		c.downUntil.Store(0)
		c.log.InfoContext(ctx, "cache backend reachable again")
	}
	return nil
}

func (c *Cache) fail(ctx context.Context, err error) error {
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, errLoad) || errors.Is(err, ErrUnavailable) {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if c.downUntil.Swap(time.Now().Add(c.retryAfter).UnixNano()) == 0 {
		c.log.WarnContext(ctx, "cache backend failed; readers use the store", "err", err)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// errLoad marks a store failure during a cache fill, which must not open the
// cache's retry window.
var errLoad = errors.New("cache fill from store")

// Put records a drone's new state unless the cached one is at least as new.
// It publishes a notice when it wrote. applied is false for a stale state.
func (c *Cache) Put(ctx context.Context, tenantID, droneID string, st events.DroneState) (applied bool, err error) {
	if tenantID == "" || droneID == "" {
		return false, fmt.Errorf("cache put: %w: tenant and drone ids are required", ErrInvalid)
	}
	e, err := newEntry(droneID, nil, &st)
	if err != nil {
		return false, fmt.Errorf("cache put: %w: %w", ErrInvalid, err)
	}
	var r driver.PutResult
	err = c.call(ctx, func() error {
		r, err = c.b.Put(ctx, tenantID, e, true)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("cache put tenant %s drone %s: %w", tenantID, droneID, err)
	}
	return r.Applied == driver.StateWritten, nil
}

// Register adds or renames a drone (its state, if any, goes through the same
// stale guard). Accounts call it when drones are created or renamed.
func (c *Cache) Register(ctx context.Context, d store.Drone) error {
	e, err := entryFromDrone(d)
	if err != nil {
		return fmt.Errorf("cache register: %w", err)
	}
	return c.call(ctx, func() error {
		_, err := c.b.Put(ctx, d.TenantID, e, true)
		return err
	})
}

// Invalidate forgets a tenant's fleet (retired drones, bulk changes); the
// next read loads it from the store.
func (c *Cache) Invalidate(ctx context.Context, tenantID string) error {
	return c.call(ctx, func() error { return c.b.Invalidate(ctx, tenantID) })
}

// Version is the tenant's change counter (0 before anything was cached).
func (c *Cache) Version(ctx context.Context, tenantID string) (uint64, error) {
	var v uint64
	err := c.call(ctx, func() (err error) {
		v, _, err = c.b.Status(ctx, tenantID)
		return err
	})
	return v, err
}

// ensureLoaded fills the tenant's fleet from the store once. Concurrent
// callers in this process share one store read (go-redis/cache Once).
func (c *Cache) ensureLoaded(ctx context.Context, tenantID string) (uint64, error) {
	ver, loaded, err := c.b.Status(ctx, tenantID)
	if err != nil || loaded {
		return ver, err
	}
	if c.loader == nil {
		return 0, fmt.Errorf("%w: tenant %s not cached and no store configured", errLoad, tenantID)
	}
	err = c.lists.Once(&rcache.Item{
		Ctx:            ctx,
		Key:            "load\x00" + tenantID,
		SkipLocalCache: true, // pure single-flight: never remember "loaded" locally
		Do: func(*rcache.Item) (any, error) {
			// The shared fill must not die with the first caller's request.
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if _, loaded, err := c.b.Status(lctx, tenantID); err != nil || loaded {
				return []byte{1}, err
			}
			ds, err := c.loader.Drones(lctx, tenantID)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", errLoad, err)
			}
			es := make([]driver.Entry, 0, len(ds))
			for _, d := range ds {
				e, err := entryFromDrone(d)
				if err != nil {
					c.log.WarnContext(lctx, "cache fill: skipping drone", "tenant", tenantID, "drone", d.ID, "err", err)
					continue
				}
				es = append(es, e)
			}
			if err := c.b.PutMany(lctx, tenantID, es); err != nil {
				return nil, err
			}
			if err := c.b.MarkLoaded(lctx, tenantID); err != nil {
				return nil, err
			}
			c.log.InfoContext(lctx, "cache filled from store", "tenant", tenantID, "drones", len(es))
			return []byte{1}, nil
		},
	})
	if err != nil {
		return 0, err
	}
	ver, _, err = c.b.Status(ctx, tenantID)
	return ver, err
}

// Fleet returns the tenant's drones as a rendered JSON array, loading them
// from the store on a miss.
func (c *Cache) Fleet(ctx context.Context, tenantID string) (Fleet, error) {
	f, err := c.rendered(ctx, tenantID, "fleet", func() ([]byte, error) {
		docs, err := c.b.FleetDocs(ctx, tenantID)
		if err != nil {
			return nil, err
		}
		return renderDocs(docs), nil
	})
	if err != nil {
		return Fleet{}, fmt.Errorf("cache fleet tenant %s: %w", tenantID, err)
	}
	return f, nil
}

// FleetInBox returns the tenant's drones whose last position lies in b.
// Results are kept per version and box like the full list, so identical
// viewports (many users of one tenant, a page reload) cost one query.
func (c *Cache) FleetInBox(ctx context.Context, tenantID string, b BBox) (Fleet, error) {
	if err := b.Validate(); err != nil {
		return Fleet{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	kind := "bbox\x00" + strconv.FormatFloat(b.MinLon, 'g', -1, 64) + "," + strconv.FormatFloat(b.MinLat, 'g', -1, 64) +
		"," + strconv.FormatFloat(b.MaxLon, 'g', -1, 64) + "," + strconv.FormatFloat(b.MaxLat, 'g', -1, 64)
	f, err := c.rendered(ctx, tenantID, kind, func() ([]byte, error) {
		docs, err := c.b.InBox(ctx, tenantID, b)
		if err != nil {
			return nil, err
		}
		return renderDocs(docs), nil
	})
	if err != nil {
		return Fleet{}, fmt.Errorf("cache bbox tenant %s: %w", tenantID, err)
	}
	return f, nil
}

// rendered returns a rendered list of the tenant for the current version:
// the newest one if it is current (or younger than ListMaxAge), else the
// per-version entry in the process-local LFU, else build's result, built
// once per process however many callers miss together.
func (c *Cache) rendered(ctx context.Context, tenantID, kind string, build func() ([]byte, error)) (Fleet, error) {
	var f Fleet
	err := c.call(ctx, func() error {
		ver, err := c.ensureLoaded(ctx, tenantID)
		if err != nil {
			return err
		}
		latestKey := tenantID + "\x00" + kind
		if v, ok := c.latest.Load(latestKey); ok {
			r := v.(*Fleet)
			if r.Version == ver || (c.listMaxAge > 0 && r.Version < ver && time.Since(r.at) < c.listMaxAge) {
				f = *r
				return nil
			}
		}
		key := latestKey + "\x00" + strconv.FormatUint(ver, 10)
		// Read the LFU directly to skip go-redis/cache's defensive copy of a
		// multi-MB list: versioned entries are never modified, only replaced.
		if b, ok := c.listsLFU.Get(key); ok {
			f = Fleet{Version: ver, JSON: b}
			return nil
		}
		var body []byte
		err = c.lists.Once(&rcache.Item{
			Ctx: ctx,
			Key: key,
			Do: func(*rcache.Item) (any, error) {
				b, err := build()
				body = b
				return b, err
			},
		})
		if err != nil {
			return err
		}
		if body == nil { // a waiter of another caller's build: read its result
			var ok bool
			if body, ok = c.listsLFU.Get(key); !ok {
				// A newer full list may have replaced it in the LFU
				// (below); that one is as good an answer.
				if v, ok := c.latest.Load(latestKey); ok && v.(*Fleet).Version >= ver {
					f = *v.(*Fleet)
					return nil
				}
				if err := c.lists.Get(ctx, key, &body); err != nil {
					return fmt.Errorf("rendered list vanished: %w", err)
				}
			}
		}
		f = Fleet{Version: ver, JSON: body, at: time.Now()}
		// Only full lists are remembered beyond the LFU: one per tenant,
		// whereas viewports are unbounded.
		if kind == "fleet" {
			c.setLatest(latestKey, &f)
		}
		return nil
	})
	return f, err
}

// setLatest makes f the tenant's newest full list unless a newer one is
// already there, and drops the list it replaces from the LFU: the versions
// of a fleet under updates move on with every report, so superseded lists
// (megabytes each with thousands of drones) are never read again but would
// stay live for the LFU's TTL, up to its 64 entries, and keep the GC busy.
// Readers of the newest version take it from latest, not the LFU.
func (c *Cache) setLatest(latestKey string, f *Fleet) {
	for {
		v, ok := c.latest.Load(latestKey)
		if !ok {
			if _, loaded := c.latest.LoadOrStore(latestKey, f); !loaded {
				return
			}
			continue
		}
		old := v.(*Fleet)
		if old.Version >= f.Version {
			return
		}
		if c.latest.CompareAndSwap(latestKey, v, f) {
			c.listsLFU.Del(latestKey + "\x00" + strconv.FormatUint(old.Version, 10))
			return
		}
	}
}

// Drone returns one rendered DroneView of the tenant, reading the store on a
// miss; another tenant's drone is store.ErrNotFound.
func (c *Cache) Drone(ctx context.Context, tenantID, droneID string) ([]byte, error) {
	var body []byte
	err := c.call(ctx, func() error {
		return c.b.Items().Once(&rcache.Item{
			Ctx:   ctx,
			Key:   driver.DroneKey(tenantID, droneID),
			Value: &body,
			// The entry is written only by the stale-guarded put; Once must
			// not write what Do returns, or a slow miss could overwrite a
			// newer state.
			TTL:            -1,
			SkipLocalCache: true,
			Do: func(*rcache.Item) (any, error) {
				if d, ok, err := c.b.Doc(ctx, tenantID, droneID); err != nil || ok {
					return []byte(d), err
				}
				if c.loader == nil {
					return nil, fmt.Errorf("%w: drone not cached and no store configured", errLoad)
				}
				d, err := c.loader.Drone(ctx, tenantID, droneID)
				if err != nil {
					if errors.Is(err, store.ErrNotFound) {
						return nil, err
					}
					return nil, fmt.Errorf("%w: %w", errLoad, err)
				}
				e, err := entryFromDrone(d)
				if err != nil {
					return nil, err
				}
				r, err := c.b.Put(ctx, tenantID, e, false)
				if err != nil {
					return nil, err
				}
				return []byte(r.Doc), nil
			},
		})
	})
	if err != nil {
		return nil, fmt.Errorf("cache drone %s tenant %s: %w", droneID, tenantID, err)
	}
	return body, nil
}

// Subscribe delivers the tenant's notices. With Redis the subscription
// reconnects by itself after an outage (notices published meanwhile are
// lost; subscribers see a Version gap).
func (c *Cache) Subscribe(ctx context.Context, tenantID string) (*Subscription, error) {
	ch, stop, err := c.b.Subscribe(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("cache subscribe tenant %s: %w", tenantID, err)
	}
	return &Subscription{C: ch, close: stop}, nil
}
