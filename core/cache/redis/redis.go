// Package redis is the Redis backend of core/cache: importing it registers
// the redis://, rediss:// and unix:// schemes, so cache.Open("redis://host:port/db")
// works (go-redis URL options such as dial_timeout are honoured). The key
// layout and the put script are described in the core/cache package
// documentation.
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	rcache "github.com/go-redis/cache/v9"
	"github.com/redis/go-redis/v9"

	"github.com/dronetrack/dronetrack/core/cache"
	"github.com/dronetrack/dronetrack/core/cache/driver"
)

func init() {
	o := cache.OpenerFunc(openURL)
	for _, scheme := range []string{"redis", "rediss", "unix"} {
		cache.Register(scheme, o)
	}
}

// openURL opens the backend a redis://, rediss:// or unix:// URL names and
// routes go-redis's logging to log.
func openURL(ctx context.Context, u *url.URL, log *slog.Logger) (driver.Backend, error) {
	setLogger(log)
	return open(ctx, u.String())
}

// putScript is the stale guard plus every write that goes with it; see the
// package documentation for why it is a script.
//
// KEYS: 1 ts hash, 2 names hash, 3 states hash, 4 geo, 5 version, 6 drone
// entry, 7 docs hash (the fleet view: id -> rendered entry), 8 changes (a
// sorted set: drone id scored by the version of its last change, so a reader
// holding the fleet at version V fetches only what changed after V)
// ARGV: 1 id, 2 id as JSON, 3 name JSON ("" keeps the cached one),
// 4 sortable ts ("" = no state), 5 state JSON, 6 lon, 7 lat (clamped for the
// geo index), 8 notice channel ("" = do not publish)
var putScript = redis.NewScript(`
local id = ARGV[1]
local cur = redis.call('HGET', KEYS[1], id)
local newer = ARGV[4] ~= '' and ((not cur) or cur < ARGV[4])
local name = redis.call('HGET', KEYS[2], id)
local renamed = ARGV[3] ~= '' and name ~= ARGV[3]
if (not newer) and (not renamed) and cur then
  return {0, redis.call('GET', KEYS[6]) or '', tonumber(redis.call('GET', KEYS[5]) or '0')}
end
local state
if newer then
  redis.call('GEOADD', KEYS[4], ARGV[6], ARGV[7], id)
  redis.call('HSET', KEYS[1], id, ARGV[4])
  redis.call('HSET', KEYS[3], id, ARGV[5])
  state = ARGV[5]
else
  if not cur then redis.call('HSET', KEYS[1], id, '') end
  state = redis.call('HGET', KEYS[3], id)
end
if renamed then
  redis.call('HSET', KEYS[2], id, ARGV[3])
  name = ARGV[3]
elseif not name then
  name = '""'
  redis.call('HSET', KEYS[2], id, name)
end
local doc = '{"id":' .. ARGV[2] .. ',"name":' .. name
if state then doc = doc .. ',"state":' .. state end
doc = doc .. '}'
redis.call('SET', KEYS[6], doc)
redis.call('HSET', KEYS[7], id, doc)
local ver = redis.call('INCR', KEYS[5])
redis.call('ZADD', KEYS[8], ver, id)
if ARGV[8] ~= '' then
  redis.call('PUBLISH', ARGV[8], '{"version":' .. ver .. ',"droneId":' .. ARGV[2] .. ',"drone":' .. doc .. '}')
end
local r = 2
if newer then r = 1 end
return {r, doc, ver}
`)

type backend struct {
	rdb *redis.Client
	it  *rcache.Cache

	mu    sync.Mutex
	snaps map[string]*fleetSnap
}

// fleetSnap is this process's copy of a tenant's fleet view at a version,
// patched with what changed since instead of re-reading megabytes from
// Redis for every new version.
type fleetSnap struct {
	mu    sync.Mutex
	token string   // the fill it belongs to
	ver   uint64   // every change up to ver is applied
	ids   []string // sorted
	docs  []string // docs[i] is the driver.Entry of ids[i]
}

var _ driver.Backend = (*backend)(nil)

func open(ctx context.Context, rawURL string) (*backend, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("cache url: %w", err)
	}
	// Short timeouts: when Redis is gone, readers should fall back to the
	// store quickly rather than wait out go-redis's 5 s dial default.
	if opt.DialTimeout == 0 {
		opt.DialTimeout = 300 * time.Millisecond
	}
	if opt.ReadTimeout == 0 {
		opt.ReadTimeout = 2 * time.Second
	}
	if opt.WriteTimeout == 0 {
		opt.WriteTimeout = 2 * time.Second
	}
	if opt.PoolTimeout == 0 {
		opt.PoolTimeout = 2 * time.Second
	}
	if opt.MaxRetries == 0 {
		opt.MaxRetries = 1
	}
	rdb := redis.NewClient(opt)
	return &backend{rdb: rdb, it: rcache.New(&rcache.Options{Redis: rdb}), snaps: map[string]*fleetSnap{}}, nil
}

func (r *backend) Items() *rcache.Cache { return r.it }

func tenantKeys(tenant, id string) []string {
	p := driver.KeyPrefix(tenant)
	return []string{p + "ts", p + "names", p + "states", p + "geo", p + "ver", p + "d:" + id, p + "docs", p + "changes"}
}

func geoArgs(e driver.Entry) (string, string) {
	lat := math.Max(-driver.MaxGeoLat, math.Min(driver.MaxGeoLat, e.Lat))
	return strconv.FormatFloat(e.Lon, 'f', -1, 64), strconv.FormatFloat(lat, 'f', -1, 64)
}

func (r *backend) putArgs(tenant string, e driver.Entry, notify bool) ([]string, []any) {
	lon, lat := geoArgs(e)
	ch := ""
	if notify {
		ch = driver.KeyPrefix(tenant) + "notice"
	}
	return tenantKeys(tenant, e.ID), []any{e.ID, e.IDJSON, e.Name, e.TS, e.State, lon, lat, ch}
}

func (r *backend) Put(ctx context.Context, tenant string, e driver.Entry, notify bool) (driver.PutResult, error) {
	keys, args := r.putArgs(tenant, e, notify)
	v, err := putScript.Run(ctx, r.rdb, keys, args...).Slice()
	if err != nil {
		return driver.PutResult{}, fmt.Errorf("redis put: %w", err)
	}
	return parsePut(v)
}

func parsePut(v []any) (driver.PutResult, error) {
	if len(v) != 3 {
		return driver.PutResult{}, fmt.Errorf("redis put: unexpected reply %v", v)
	}
	applied, _ := v[0].(int64)
	doc, _ := v[1].(string)
	ver, _ := v[2].(int64)
	return driver.PutResult{Applied: driver.Applied(applied), Doc: doc, Ver: uint64(ver)}, nil
}

func (r *backend) PutMany(ctx context.Context, tenant string, es []driver.Entry) error {
	if len(es) == 0 {
		return nil
	}
	// Make sure the script is cached so EvalSha in the pipeline cannot fail
	// with NOSCRIPT.
	if err := putScript.Load(ctx, r.rdb).Err(); err != nil {
		return fmt.Errorf("redis load script: %w", err)
	}
	const batch = 1000
	for start := 0; start < len(es); start += batch {
		end := min(start+batch, len(es))
		_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, e := range es[start:end] {
				keys, args := r.putArgs(tenant, e, false)
				putScript.EvalSha(ctx, p, keys, args...)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("redis fill: %w", err)
		}
	}
	return nil
}

func (r *backend) MarkLoaded(ctx context.Context, tenant string) error {
	p := driver.KeyPrefix(tenant)
	_, err := r.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		// A fresh token per fill: a reader's fleet snapshot built under
		// another token (before a flush, restart or Invalidate) is void.
		tx.Set(ctx, p+"loaded", strconv.FormatInt(time.Now().UnixNano(), 36)+"-"+strconv.FormatUint(rand.Uint64(), 36), 0)
		tx.Incr(ctx, p+"ver")
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis mark loaded: %w", err)
	}
	return nil
}

func (r *backend) Status(ctx context.Context, tenant string) (uint64, bool, error) {
	p := driver.KeyPrefix(tenant)
	var ver *redis.StringCmd
	var loaded *redis.IntCmd
	_, err := r.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		ver = pl.Get(ctx, p+"ver")
		loaded = pl.Exists(ctx, p+"loaded")
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, false, fmt.Errorf("redis status: %w", err)
	}
	v, err := ver.Uint64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, false, fmt.Errorf("redis version: %w", err)
	}
	return v, loaded.Val() == 1, nil
}

// changesScript returns the fill token and the entries changed after a
// version, atomically (KEYS: loaded, changes, docs; ARGV: version, limit).
var changesScript = redis.NewScript(`
local tok = redis.call('GET', KEYS[1]) or ''
local ch = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, ARGV[2])
local ids = {}
for i = 1, #ch, 2 do ids[#ids + 1] = ch[i] end
local docs = {}
if #ids > 0 then docs = redis.call('HMGET', KEYS[3], unpack(ids)) end
return {tok, ch, docs}
`)

func (r *backend) snap(tenant string) *fleetSnap {
	r.mu.Lock()
	defer r.mu.Unlock()
	sn := r.snaps[tenant]
	if sn == nil {
		sn = &fleetSnap{}
		r.snaps[tenant] = sn
	}
	return sn
}

func (r *backend) FleetDocs(ctx context.Context, tenant string) ([]string, error) {
	sn := r.snap(tenant)
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.token != "" {
		ok, err := r.patch(ctx, tenant, sn)
		if err != nil {
			return nil, err
		}
		if ok {
			return slices.Clone(sn.docs), nil
		}
	}
	if err := r.rebuild(ctx, tenant, sn); err != nil {
		return nil, err
	}
	return slices.Clone(sn.docs), nil
}

// patch applies the changes after sn.ver; false means rebuild instead (new
// fill, or so many changes that a full read is cheaper).
func (r *backend) patch(ctx context.Context, tenant string, sn *fleetSnap) (bool, error) {
	p := driver.KeyPrefix(tenant)
	v, err := changesScript.Run(ctx, r.rdb, []string{p + "loaded", p + "changes", p + "docs"},
		sn.ver, patchLimit(sn)).Slice()
	if err != nil {
		return false, fmt.Errorf("redis fleet changes: %w", err)
	}
	return applyChanges(sn, v)
}

// patchLimit is how many changes a patch takes before a full read is cheaper.
func patchLimit(sn *fleetSnap) int { return len(sn.ids)/4 + 16 }

// applyChanges patches sn with a changesScript reply; false means the reply
// cannot be applied (another fill, too many changes) and sn must be rebuilt.
func applyChanges(sn *fleetSnap, v []any) (bool, error) {
	limit := patchLimit(sn)
	if len(v) != 3 {
		return false, fmt.Errorf("redis fleet changes: unexpected reply %v", v)
	}
	tok, _ := v[0].(string)
	ch, _ := v[1].([]any)
	docs, _ := v[2].([]any)
	if tok != sn.token || len(ch)/2 >= limit || len(docs) != len(ch)/2 {
		return false, nil
	}
	var added []int
	for i := range docs {
		id, _ := ch[2*i].(string)
		doc, ok := docs[i].(string)
		score, err := strconv.ParseUint(fmt.Sprint(ch[2*i+1]), 10, 64)
		if !ok || err != nil {
			return false, nil
		}
		sn.ver = max(sn.ver, score)
		if j, found := slices.BinarySearch(sn.ids, id); found {
			sn.docs[j] = doc
		} else {
			added = append(added, i)
		}
	}
	for _, i := range added {
		id, doc := ch[2*i].(string), docs[i].(string)
		j, _ := slices.BinarySearch(sn.ids, id)
		sn.ids = slices.Insert(sn.ids, j, id)
		sn.docs = slices.Insert(sn.docs, j, doc)
	}
	return true, nil
}

func (r *backend) rebuild(ctx context.Context, tenant string, sn *fleetSnap) error {
	p := driver.KeyPrefix(tenant)
	var tok, ver *redis.StringCmd
	var all *redis.MapStringStringCmd
	_, err := r.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		tok = tx.Get(ctx, p+"loaded")
		ver = tx.Get(ctx, p+"ver")
		all = tx.HGetAll(ctx, p+"docs")
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redis fleet: %w", err)
	}
	m := all.Val()
	sn.ids = sn.ids[:0]
	for id := range m {
		sn.ids = append(sn.ids, id)
	}
	slices.Sort(sn.ids)
	sn.docs = make([]string, len(sn.ids))
	for i, id := range sn.ids {
		sn.docs[i] = m[id]
	}
	sn.token = tok.Val()
	sn.ver, _ = ver.Uint64()
	return nil
}

func (r *backend) Doc(ctx context.Context, tenant, id string) (string, bool, error) {
	s, err := r.rdb.Get(ctx, driver.DroneKey(tenant, id)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("redis drone: %w", err)
	}
	return s, true, nil
}

// inBox asks the geo index which drones lie in the box and takes their
// entries from this process's fleet copy, patched in the same round trip,
// so only ids and coordinates cross the network, not the entries.
func (r *backend) InBox(ctx context.Context, tenant string, b driver.BBox) ([]string, error) {
	p := driver.KeyPrefix(tenant)
	q := geoQuery(b)
	sn := r.snap(tenant)
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.token == "" {
		if err := r.rebuild(ctx, tenant, sn); err != nil {
			return nil, err
		}
	}
	if err := changesScript.Load(ctx, r.rdb).Err(); err != nil { // EvalSha in a transaction cannot fall back
		return nil, fmt.Errorf("redis load script: %w", err)
	}
	var changes *redis.Cmd
	var locs *redis.GeoSearchLocationCmd
	_, err := r.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		changes = changesScript.EvalSha(ctx, tx, []string{p + "loaded", p + "changes", p + "docs"}, sn.ver, patchLimit(sn))
		locs = tx.GeoSearchLocation(ctx, p+"geo", &redis.GeoSearchLocationQuery{
			GeoSearchQuery: redis.GeoSearchQuery{
				Longitude: q.lon, Latitude: q.lat,
				BoxWidth: q.width, BoxHeight: q.height, BoxUnit: "m",
			},
			WithCoord: true,
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redis bbox: %w", err)
	}
	v, err := changes.Slice()
	if err != nil {
		return nil, fmt.Errorf("redis fleet changes: %w", err)
	}
	if ok, err := applyChanges(sn, v); err != nil {
		return nil, err
	} else if !ok {
		if err := r.rebuild(ctx, tenant, sn); err != nil {
			return nil, err
		}
	}
	clamped := b
	clamped.MinLat = math.Max(b.MinLat, -driver.MaxGeoLat)
	clamped.MaxLat = math.Min(b.MaxLat, driver.MaxGeoLat)
	ids := make([]string, 0, len(locs.Val()))
	for _, l := range locs.Val() {
		if clamped.Contains(l.Longitude, l.Latitude) {
			ids = append(ids, l.Name)
		}
	}
	// Sorted by id like the full list, so clients can diff the two.
	slices.Sort(ids)
	docs := make([]string, 0, len(ids))
	for _, id := range ids {
		if j, ok := slices.BinarySearch(sn.ids, id); ok {
			docs = append(docs, sn.docs[j])
		}
	}
	return docs, nil
}

// geoBox is a GEOSEARCH BYBOX query covering a lon/lat box: Redis boxes are
// metres around a centre, so the width is taken at the box's widest latitude
// and the result is filtered exactly afterwards.
type geoBox struct{ lon, lat, width, height float64 }

// earthRadius is the radius Redis uses for geo distances.
const earthRadius = 6372797.560856

func geoQuery(b driver.BBox) geoBox {
	rad := math.Pi / 180
	minLat := math.Max(b.MinLat, -driver.MaxGeoLat)
	maxLat := math.Min(b.MaxLat, driver.MaxGeoLat)
	widest := 0.0 // the latitude in the box closest to the equator
	if minLat > 0 {
		widest = minLat
	} else if maxLat < 0 {
		widest = maxLat
	}
	height := earthRadius * (maxLat - minLat) * rad
	width := earthRadius * math.Cos(widest*rad) * (b.MaxLon - b.MinLon) * rad
	return geoBox{
		lon:    (b.MinLon + b.MaxLon) / 2,
		lat:    (minLat + maxLat) / 2,
		width:  width*1.01 + 2,
		height: height*1.01 + 2,
	}
}

func (r *backend) Subscribe(ctx context.Context, tenant string) (<-chan driver.Notice, func(), error) {
	ps := r.rdb.Subscribe(ctx, driver.KeyPrefix(tenant)+"notice")
	out := driver.NewOutbox()
	done := make(chan struct{})
	go func() {
		defer close(out.C)
		// go-redis's own channel gets the same size; notices it drops (full
		// for longer than its send timeout) are not seen here.
		in := ps.Channel(redis.WithChannelSize(driver.SubBuffer))
		for {
			select {
			case <-done:
				return
			case m, ok := <-in:
				if !ok {
					return
				}
				n, err := decodeNotice(tenant, m.Payload)
				if err != nil {
					continue
				}
				out.Offer(n)
			}
		}
	}()
	return out.C, func() { close(done); _ = ps.Close() }, nil
}

func decodeNotice(tenant, payload string) (driver.Notice, error) {
	var n struct {
		Version uint64          `json:"version"`
		DroneID string          `json:"droneId"`
		Drone   json.RawMessage `json:"drone"`
	}
	if err := json.Unmarshal([]byte(payload), &n); err != nil {
		return driver.Notice{}, fmt.Errorf("decode notice: %w", err)
	}
	return driver.Notice{TenantID: tenant, Version: n.Version, DroneID: n.DroneID, Drone: n.Drone}, nil
}

func (r *backend) Invalidate(ctx context.Context, tenant string) error {
	p := driver.KeyPrefix(tenant)
	ids, err := r.rdb.HKeys(ctx, p+"ts").Result()
	if err != nil {
		return fmt.Errorf("redis invalidate: %w", err)
	}
	keys := []string{p + "loaded", p + "ts", p + "names", p + "states", p + "geo", p + "docs", p + "changes"}
	for _, id := range ids {
		keys = append(keys, p+"d:"+id)
	}
	_, err = r.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		for start := 0; start < len(keys); start += 1000 {
			tx.Del(ctx, keys[start:min(start+1000, len(keys))]...)
		}
		tx.Incr(ctx, p+"ver") // keep versions monotonic so old ETags never match
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis invalidate: %w", err)
	}
	return nil
}

func (r *backend) Ping(ctx context.Context) error { return r.rdb.Ping(ctx).Err() }
func (r *backend) Close() error                   { return r.rdb.Close() }
