package cache

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	rcache "github.com/go-redis/cache/v9"
)

// localRegistry shares local backends by name inside the process, so that in
// one-machine mode cache-refresh's writes are what serve-map reads.
var localRegistry = struct {
	sync.Mutex
	m map[string]*localBackend
}{m: map[string]*localBackend{}}

// localBackend is the in-process twin of the Redis layout: the authoritative
// per-tenant maps (timestamps, names, states, positions) under one mutex, and
// rendered drone entries in go-redis/cache's TinyLFU.
type localBackend struct {
	name string
	refs int // guarded by localRegistry

	it *rcache.Cache

	mu      sync.Mutex
	tenants map[string]*localTenant
}

type localTenant struct {
	ver    uint64
	loaded bool
	ts     map[string]string
	names  map[string]string
	states map[string]string
	pos    map[string][2]float64 // lon, lat
	docs   map[string]string
	order  []string // ids, sorted: the list order
	subs   map[chan Notice]struct{}
}

func openLocal(name string) (*localBackend, error) {
	if name == "" {
		return nil, fmt.Errorf("cache url: local:// needs a name (local://NAME)")
	}
	localRegistry.Lock()
	defer localRegistry.Unlock()
	b := localRegistry.m[name]
	if b == nil {
		b = &localBackend{
			name:    name,
			it:      rcache.New(&rcache.Options{LocalCache: rcache.NewTinyLFU(100_000, time.Hour)}),
			tenants: map[string]*localTenant{},
		}
		localRegistry.m[name] = b
	}
	b.refs++
	return b, nil
}

func (l *localBackend) close() error {
	localRegistry.Lock()
	defer localRegistry.Unlock()
	l.refs--
	if l.refs == 0 {
		delete(localRegistry.m, l.name)
	}
	return nil
}

func (l *localBackend) items() *rcache.Cache { return l.it }

func (l *localBackend) tenant(t string) *localTenant {
	lt := l.tenants[t]
	if lt == nil {
		lt = &localTenant{
			ts: map[string]string{}, names: map[string]string{}, states: map[string]string{},
			pos: map[string][2]float64{}, docs: map[string]string{}, subs: map[chan Notice]struct{}{},
		}
		l.tenants[t] = lt
	}
	return lt
}

// putLocked mirrors putScript line by line.
func (l *localBackend) putLocked(tenant string, e entry, notify bool) putResult {
	lt := l.tenant(tenant)
	cur, known := lt.ts[e.id]
	newer := e.ts != "" && (!known || cur < e.ts)
	name, named := lt.names[e.id]
	renamed := e.name != "" && (!named || name != e.name)
	if !newer && !renamed && known {
		return putResult{applied: 0, doc: lt.docs[e.id], ver: lt.ver}
	}
	if newer {
		lt.pos[e.id] = [2]float64{e.lon, math.Max(-maxGeoLat, math.Min(maxGeoLat, e.lat))}
		lt.ts[e.id] = e.ts
		lt.states[e.id] = e.state
	} else if !known {
		lt.ts[e.id] = ""
	}
	if !known {
		i, _ := slices.BinarySearch(lt.order, e.id)
		lt.order = slices.Insert(lt.order, i, e.id)
	}
	if renamed {
		lt.names[e.id] = e.name
	} else if !named {
		lt.names[e.id] = `""`
	}
	doc := renderDoc(e.idJSON, lt.names[e.id], lt.states[e.id])
	lt.docs[e.id] = doc
	l.it.DeleteFromLocalCache(droneKey(tenant, e.id)) // never serve the old entry
	_ = l.it.Set(&rcache.Item{Key: droneKey(tenant, e.id), Value: []byte(doc)})
	lt.ver++
	if notify {
		n := Notice{TenantID: tenant, Version: lt.ver, DroneID: e.id, Drone: []byte(doc)}
		for ch := range lt.subs {
			select {
			case ch <- n:
			default: // slow reader: it sees a version gap
			}
		}
	}
	r := putResult{applied: 2, doc: doc, ver: lt.ver}
	if newer {
		r.applied = 1
	}
	return r
}

func (l *localBackend) put(_ context.Context, tenant string, e entry, notify bool) (putResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.putLocked(tenant, e, notify), nil
}

func (l *localBackend) putMany(_ context.Context, tenant string, es []entry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range es {
		l.putLocked(tenant, e, false)
	}
	return nil
}

func (l *localBackend) markLoaded(_ context.Context, tenant string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	lt := l.tenant(tenant)
	lt.loaded = true
	lt.ver++
	return nil
}

func (l *localBackend) status(_ context.Context, tenant string) (uint64, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lt := l.tenants[tenant]
	if lt == nil {
		return 0, false, nil
	}
	return lt.ver, lt.loaded, nil
}

func (l *localBackend) fleetDocs(_ context.Context, tenant string) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lt := l.tenant(tenant)
	docs := make([]string, len(lt.order))
	for i, id := range lt.order {
		docs[i] = lt.docs[id]
	}
	return docs, nil
}

func (l *localBackend) doc(_ context.Context, tenant, id string) (string, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d, ok := l.tenant(tenant).docs[id]
	return d, ok, nil
}

func (l *localBackend) inBox(_ context.Context, tenant string, b BBox) ([]string, error) {
	clamped := b
	clamped.MinLat = math.Max(b.MinLat, -maxGeoLat)
	clamped.MaxLat = math.Min(b.MaxLat, maxGeoLat)
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

func (l *localBackend) subscribe(_ context.Context, tenant string) (*Subscription, error) {
	ch := make(chan Notice, 256)
	l.mu.Lock()
	l.tenant(tenant).subs[ch] = struct{}{}
	l.mu.Unlock()
	return &Subscription{C: ch, close: func() {
		l.mu.Lock()
		delete(l.tenant(tenant).subs, ch)
		l.mu.Unlock()
		close(ch)
	}}, nil
}

func (l *localBackend) invalidate(_ context.Context, tenant string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	lt := l.tenant(tenant)
	for id := range lt.docs {
		l.it.DeleteFromLocalCache(droneKey(tenant, id))
	}
	fresh := &localTenant{
		ver: lt.ver + 1, ts: map[string]string{}, names: map[string]string{}, states: map[string]string{},
		pos: map[string][2]float64{}, docs: map[string]string{}, subs: lt.subs,
	}
	l.tenants[tenant] = fresh
	return nil
}

func (l *localBackend) ping(context.Context) error { return nil }
