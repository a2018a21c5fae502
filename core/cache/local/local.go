// Package local is the in-process backend of core/cache for one-machine
// mode: importing it registers the local:// scheme. Every cache opened with
// the same local://NAME in the process shares one backend, so what
// cache-refresh writes is what serve-map reads. It is the twin of the Redis
// layout in maps, with the stale guard under a mutex.
package local

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"slices"
	"sync"
	"time"

	rcache "github.com/go-redis/cache/v9"

	"github.com/dronetrack/dronetrack/core/cache"
	"github.com/dronetrack/dronetrack/core/cache/driver"
)

func init() { cache.Register("local", cache.OpenerFunc(openURL)) }

// openURL opens the backend named by local://NAME.
func openURL(_ context.Context, u *url.URL, _ *slog.Logger) (driver.Backend, error) {
	name := u.Host + u.Path
	if name == "" {
		name = u.Opaque
	}
	return open(name)
}

// registry shares local backends by name inside the process, so that in
// one-machine mode cache-refresh's writes are what serve-map reads.
var registry = struct {
	sync.Mutex
	m map[string]*backend
}{m: map[string]*backend{}}

// backend is the in-process twin of the Redis layout: the authoritative
// per-tenant maps (timestamps, names, states, positions, rendered documents)
// under one mutex. Items, the go-redis/cache the portable layer reads a
// drone through, holds nothing: its reads fall through to Doc, which is as
// cheap as the LFU and never stale.
type backend struct {
	name string
	refs int // guarded by registry

	it *rcache.Cache

	mu      sync.Mutex
	tenants map[string]*tenantData
}

type tenantData struct {
	ver    uint64
	loaded bool
	ts     map[string]string
	names  map[string]string
	states map[string]string
	pos    map[string][2]float64 // lon, lat
	docs   map[string]string
	order  []string // ids, sorted: the list order
	subs   map[*driver.Outbox]struct{}
}

var _ driver.Backend = (*backend)(nil)

func open(name string) (*backend, error) {
	if name == "" {
		return nil, fmt.Errorf("cache url: local:// needs a name (local://NAME)")
	}
	registry.Lock()
	defer registry.Unlock()
	b := registry.m[name]
	if b == nil {
		b = &backend{
			name:    name,
			it:      rcache.New(&rcache.Options{LocalCache: rcache.NewTinyLFU(16, time.Hour)}),
			tenants: map[string]*tenantData{},
		}
		registry.m[name] = b
	}
	b.refs++
	return b, nil
}

func (l *backend) Close() error {
	registry.Lock()
	defer registry.Unlock()
	l.refs--
	if l.refs == 0 {
		delete(registry.m, l.name)
	}
	return nil
}

func (l *backend) Items() *rcache.Cache { return l.it }

func (l *backend) tenant(t string) *tenantData {
	lt := l.tenants[t]
	if lt == nil {
		lt = &tenantData{
			ts: map[string]string{}, names: map[string]string{}, states: map[string]string{},
			pos: map[string][2]float64{}, docs: map[string]string{}, subs: map[*driver.Outbox]struct{}{},
		}
		l.tenants[t] = lt
	}
	return lt
}

// putLocked mirrors putScript line by line.
func (l *backend) putLocked(tenant string, e driver.Entry, notify bool) driver.PutResult {
	lt := l.tenant(tenant)
	cur, known := lt.ts[e.ID]
	newer := e.TS != "" && (!known || cur < e.TS)
	name, named := lt.names[e.ID]
	renamed := e.Name != "" && (!named || name != e.Name)
	if !newer && !renamed && known {
		return driver.PutResult{Applied: driver.Stale, Doc: lt.docs[e.ID], Ver: lt.ver}
	}
	if newer {
		lt.pos[e.ID] = [2]float64{e.Lon, math.Max(-driver.MaxGeoLat, math.Min(driver.MaxGeoLat, e.Lat))}
		lt.ts[e.ID] = e.TS
		lt.states[e.ID] = e.State
	} else if !known {
		lt.ts[e.ID] = ""
	}
	if !known {
		i, _ := slices.BinarySearch(lt.order, e.ID)
		lt.order = slices.Insert(lt.order, i, e.ID)
	}
	if renamed {
		lt.names[e.ID] = e.Name
	} else if !named {
		lt.names[e.ID] = `""`
	}
	doc := driver.RenderDoc(e.IDJSON, lt.names[e.ID], lt.states[e.ID])
	lt.docs[e.ID] = doc
	// Not copied into Items: Cache.Drone's read through it misses and
	// reads lt.docs (Doc), the one copy, so a put costs no LFU update and
	// no stale entry can be served.
	lt.ver++
	if notify {
		n := driver.Notice{TenantID: tenant, Version: lt.ver, DroneID: e.ID, Drone: []byte(doc)}
		for o := range lt.subs {
			o.Offer(n)
		}
	}
	r := driver.PutResult{Applied: driver.NameWritten, Doc: doc, Ver: lt.ver}
	if newer {
		r.Applied = driver.StateWritten
	}
	return r
}

func (l *backend) Put(_ context.Context, tenant string, e driver.Entry, notify bool) (driver.PutResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.putLocked(tenant, e, notify), nil
}

func (l *backend) PutMany(_ context.Context, tenant string, es []driver.Entry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range es {
		l.putLocked(tenant, e, false)
	}
	return nil
}

func (l *backend) MarkLoaded(_ context.Context, tenant string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	lt := l.tenant(tenant)
	lt.loaded = true
	lt.ver++
	return nil
}

func (l *backend) Status(_ context.Context, tenant string) (uint64, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lt := l.tenants[tenant]
	if lt == nil {
		return 0, false, nil
	}
	return lt.ver, lt.loaded, nil
}

func (l *backend) FleetDocs(_ context.Context, tenant string) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lt := l.tenant(tenant)
	docs := make([]string, len(lt.order))
	for i, id := range lt.order {
		docs[i] = lt.docs[id]
	}
	return docs, nil
}

func (l *backend) Doc(_ context.Context, tenant, id string) (string, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d, ok := l.tenant(tenant).docs[id]
	return d, ok, nil
}

func (l *backend) InBox(_ context.Context, tenant string, b driver.BBox) ([]string, error) {
	clamped := b
	clamped.MinLat = math.Max(b.MinLat, -driver.MaxGeoLat)
	clamped.MaxLat = math.Min(b.MaxLat, driver.MaxGeoLat)
	l.mu.Lock()
	defer l.mu.Unlock()
	lt := l.tenant(tenant)
	var ids []string
	for id, p := range lt.pos {
		if clamped.Contains(p[0], p[1]) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	docs := make([]string, len(ids))
	for i, id := range ids {
		docs[i] = lt.docs[id]
	}
	return docs, nil
}

func (l *backend) Subscribe(_ context.Context, tenant string) (<-chan driver.Notice, func(), error) {
	o := driver.NewOutbox()
	l.mu.Lock()
	l.tenant(tenant).subs[o] = struct{}{}
	l.mu.Unlock()
	return o.C, func() {
		l.mu.Lock()
		delete(l.tenant(tenant).subs, o)
		l.mu.Unlock()
		close(o.C)
	}, nil
}

func (l *backend) Invalidate(_ context.Context, tenant string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	lt := l.tenant(tenant)
	fresh := &tenantData{
		ver: lt.ver + 1, ts: map[string]string{}, names: map[string]string{}, states: map[string]string{},
		pos: map[string][2]float64{}, docs: map[string]string{}, subs: lt.subs,
	}
	l.tenants[tenant] = fresh
	return nil
}

func (l *backend) Ping(context.Context) error { return nil }
