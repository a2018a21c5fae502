// Package driver is what a cache backend implements for core/cache, in the
// style of gocloud.dev's driver packages: core/cache is the portable API
// (stale guard semantics, cache-aside fills, rendered lists, retry window),
// a backend package (core/cache/redis, core/cache/local) keeps the data and
// registers its URL scheme with core/cache in init(). The Redis key layout
// and the stale guard every backend must follow are described in the
// core/cache package documentation.
package driver

import (
	"context"
	"fmt"
	"strings"

	rcache "github.com/go-redis/cache/v9"
)

// Backend keeps the fleet data of every tenant. Methods are safe for
// concurrent use. Errors are backend failures (the portable layer turns them
// into cache.ErrUnavailable); a missing entry is not an error.
type Backend interface {
	// Items is the go-redis/cache holding each drone's rendered entry under
	// DroneKey; the portable layer reads it through Once so concurrent misses
	// make one store read.
	Items() *rcache.Cache
	// Put applies e unless the cached state is at least as new (the stale
	// guard), updating the rendered entry, fleet view, geo index and version
	// together, and publishes a Notice when notify is set and it wrote.
	Put(ctx context.Context, tenant string, e Entry, notify bool) (PutResult, error)
	// PutMany puts each entry without notices (a fill from the store).
	PutMany(ctx context.Context, tenant string, es []Entry) error
	// MarkLoaded records that the tenant's fleet was filled from the store
	// and bumps its version; a fleet copy built before is void.
	MarkLoaded(ctx context.Context, tenant string) error
	// Status is the tenant's version and whether its fleet was filled.
	Status(ctx context.Context, tenant string) (ver uint64, loaded bool, err error)
	// FleetDocs returns every rendered drone of the tenant, sorted by id.
	FleetDocs(ctx context.Context, tenant string) ([]string, error)
	// Doc returns one rendered drone; ok is false when it is not cached.
	Doc(ctx context.Context, tenant, id string) (doc string, ok bool, err error)
	// InBox returns the rendered drones whose last position lies in b
	// (latitudes clamped to MaxGeoLat), sorted by id.
	InBox(ctx context.Context, tenant string, b BBox) ([]string, error)
	// Subscribe delivers the tenant's notices on a buffered channel until
	// stop is called; a slow reader loses notices rather than blocking.
	Subscribe(ctx context.Context, tenant string) (c <-chan Notice, stop func(), err error)
	// Invalidate forgets the tenant's fleet and bumps its version, so the
	// next read fills it from the store and old ETags never match.
	Invalidate(ctx context.Context, tenant string) error
	// Ping checks the backend is reachable.
	Ping(ctx context.Context) error
	// Close releases the backend.
	Close() error
}

// Entry is one drone as Put receives it: pre-encoded JSON fragments, so
// rendering is concatenation, not encoding.
type Entry struct {
	ID     string
	IDJSON string // ID as a JSON string literal
	Name   string // JSON string literal, "" to keep the cached name
	TS     string // sortable timestamp (string order is time order), "" when there is no state
	State  string // JSON object, "" when there is no state
	// Lon and Lat are the state's position (unclamped).
	Lon, Lat float64
}

// Applied says what a Put wrote.
type Applied int

const (
	// Stale: nothing written, the cached state is at least as new.
	Stale Applied = iota
	// StateWritten: the new state was written.
	StateWritten
	// NameWritten: only the name or the membership was written.
	NameWritten
)

// PutResult is what Put did, the drone's rendered entry after it and the
// tenant's version.
type PutResult struct {
	Applied Applied
	Doc     string
	Ver     uint64
}

// Notice tells subscribers that a drone of the tenant changed. Version is the
// tenant's change counter after the change: the same on every replica, so it
// serves as the SSE event id.
type Notice struct {
	TenantID string `json:"-"`
	Version  uint64 `json:"version"`
	DroneID  string `json:"droneId"`
	// Drone is the rendered DroneView.
	Drone []byte `json:"-"`
	// Lost says notices for this subscriber were dropped before this one
	// (its reader fell behind the backend's buffer): what the reader knows
	// of the tenant's drones may be stale, so it must refetch rather than
	// go on from this notice. Versions alone cannot tell, as they also
	// skip without a notice (a cache fill on a read miss).
	Lost bool `json:"-"`
}

// SubBuffer is how many notices a subscriber may fall behind before they
// are dropped (and its next notice marked Lost). One cache-refresh batch
// writes a notice per drone of the batch at once, so the buffer holds a few
// such batches; a subscriber is one per tenant per process (serve-map's
// stream hub), not one per browser.
const SubBuffer = 4096

// Outbox is a subscriber's buffered channel as a backend feeds it: Offer
// never blocks the writer, and the first notice after any it dropped is
// marked Lost. One goroutine (or lock holder) offers at a time.
type Outbox struct {
	C    chan Notice
	lost bool
}

// NewOutbox returns an outbox of SubBuffer notices.
func NewOutbox() *Outbox { return &Outbox{C: make(chan Notice, SubBuffer)} }

// Offer sends n, or drops it if the subscriber is SubBuffer behind.
func (o *Outbox) Offer(n Notice) {
	n.Lost = o.lost
	select {
	case o.C <- n:
		o.lost = false
	default: // slow reader: its next notice says so
		o.lost = true
	}
}

// BBox is a viewport: west, south, east, north edges in degrees. Boxes that
// cross the antimeridian are not supported (MinLon must not exceed MaxLon).
type BBox struct {
	MinLon, MinLat, MaxLon, MaxLat float64
}

// Validate reports an out-of-range or inverted box.
func (b BBox) Validate() error {
	switch {
	case b.MinLon < -180 || b.MaxLon > 180:
		return fmt.Errorf("longitudes must be within [-180, 180]")
	case b.MinLat < -90 || b.MaxLat > 90:
		return fmt.Errorf("latitudes must be within [-90, 90]")
	case b.MinLon > b.MaxLon:
		return fmt.Errorf("minLon exceeds maxLon (boxes across the antimeridian are not supported)")
	case b.MinLat > b.MaxLat:
		return fmt.Errorf("minLat exceeds maxLat")
	}
	return nil
}

// Contains reports whether the point lies in the box, edges included.
func (b BBox) Contains(lon, lat float64) bool {
	return lon >= b.MinLon && lon <= b.MaxLon && lat >= b.MinLat && lat <= b.MaxLat
}

// MaxGeoLat is the latitude limit of Redis's geo index: polar drones are
// indexed at the limit, and every backend clamps alike so both answer a
// viewport query the same way.
const MaxGeoLat = 85.05112878

// KeyPrefix starts every key of the tenant; the hash tag {tenant} keeps them
// in one Redis cluster slot so one script may touch them all.
func KeyPrefix(tenantID string) string { return "dt1:{" + tenantID + "}:" }

// DroneKey is the key of a drone's rendered entry in Items.
func DroneKey(tenantID, droneID string) string { return KeyPrefix(tenantID) + "d:" + droneID }

// RenderDoc renders one DroneView from its JSON fragments; it must produce
// byte for byte what the Redis put script produces.
func RenderDoc(idJSON, name, state string) string {
	if name == "" {
		name = `""`
	}
	var sb strings.Builder
	sb.Grow(len(idJSON) + len(name) + len(state) + 32)
	sb.WriteString(`{"id":`)
	sb.WriteString(idJSON)
	sb.WriteString(`,"name":`)
	sb.WriteString(name)
	if state != "" {
		sb.WriteString(`,"state":`)
		sb.WriteString(state)
	}
	sb.WriteString(`}`)
	return sb.String()
}
