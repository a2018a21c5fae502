package function

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// memStore is the in-test store until the embedded store lands; it counts
// fleet reads so the stampede test can see them.
type memStore struct {
	mu          sync.Mutex
	tenants     map[string]store.Tenant
	drones      map[string]store.Drone // by id
	track       []store.TrackPoint
	dronesReads atomic.Int64
}

var _ store.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{tenants: map[string]store.Tenant{}, drones: map[string]store.Drone{}}
}

func (m *memStore) CreateTenant(_ context.Context, t store.Tenant) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.tenants[t.ID]; ok {
		return store.ErrAlreadyExists
	}
	m.tenants[t.ID] = t
	return nil
}

func (m *memStore) Tenant(_ context.Context, id string) (store.Tenant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tenants[id]
	if !ok {
		return t, store.ErrNotFound
	}
	return t, nil
}

func (m *memStore) CreateDrone(_ context.Context, d store.Drone) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.drones[d.ID]; ok {
		return store.ErrAlreadyExists
	}
	m.drones[d.ID] = d
	return nil
}

func (m *memStore) Drone(_ context.Context, tenantID, id string) (store.Drone, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.drones[id]
	if !ok || d.TenantID != tenantID {
		return store.Drone{}, fmt.Errorf("drone %s: %w", id, store.ErrNotFound)
	}
	return d, nil
}

func (m *memStore) DroneByKeyHash(_ context.Context, h string) (store.Drone, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range m.drones {
		if d.KeyHash == h {
			return d, nil
		}
	}
	return store.Drone{}, store.ErrNotFound
}

func (m *memStore) Drones(_ context.Context, tenantID string) ([]store.Drone, error) {
	m.dronesReads.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Drone
	for _, d := range m.drones {
		if d.TenantID == tenantID {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (m *memStore) LatestState(_ context.Context, tenantID, id string) (events.DroneState, error) {
	d, err := m.Drone(context.Background(), tenantID, id)
	if err != nil || d.State == nil {
		return events.DroneState{}, store.ErrNotFound
	}
	return *d.State, nil
}

func (m *memStore) UpdateState(_ context.Context, tenantID, id string,
	next func(prev *events.DroneState) (events.DroneState, bool)) (events.DroneState, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.drones[id]
	if !ok || d.TenantID != tenantID {
		return events.DroneState{}, false, store.ErrNotFound
	}
	st, write := next(d.State)
	if !write {
		return *d.State, false, nil
	}
	d.State = &st
	m.drones[id] = d
	return st, true, nil
}

func (m *memStore) AppendTrack(_ context.Context, pts []store.TrackPoint) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.track = append(m.track, pts...)
	return nil
}

func (m *memStore) Track(_ context.Context, q store.TrackQuery) ([]store.TrackPoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.TrackPoint
	for _, p := range m.track {
		ts := p.Report.TS
		if p.TenantID == q.TenantID && p.DroneID == q.DroneID && !ts.Before(q.From) && ts.Before(q.To) && ts.After(q.After) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Report.TS.Before(out[j].Report.TS) })
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

func (m *memStore) Close() error { return nil }
