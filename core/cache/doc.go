// Package cache keeps each tenant's live fleet close to the readers: the
// latest rendered state of every drone, a per-tenant fleet view, a geo index
// for viewport queries and a per-tenant notice channel that tells every
// serve-map replica about a change.
//
// Two backends sit behind one Cache, chosen by URL. Each is a package of its
// own implementing core/cache/driver and registering its scheme with the URL
// mux (URLMux) when imported, so a program links only the backends it
// imports: the deployable functions import core/cache/redis, `dronetrack up`
// imports both.
//
//   - redis://host:port/db (core/cache/redis) — Redis through github.com/go-redis/cache/v9 and
//     github.com/redis/go-redis/v9. Per tenant T (all keys carry the hash tag
//     {T} so they share a cluster slot and one Lua script may touch them):
//     dt1:{T}:d:<id> (the drone's rendered JSON, a go-redis/cache item),
//     dt1:{T}:ts / names / states (hashes keyed by drone id), dt1:{T}:geo
//     (GEOADD/GEOSEARCH BYBOX), dt1:{T}:docs (the fleet view: id -> rendered
//     entry), dt1:{T}:changes (sorted set: id scored by the version of its last
//     change), dt1:{T}:ver (a counter bumped by every change; it is the list's
//     ETag and the SSE event id), dt1:{T}:loaded (a token set when the fleet
//     was filled from the store) and the pub/sub channel dt1:{T}:notice.
//   - local://NAME (core/cache/local) — one-machine mode: the same Cache code over
//     in-process maps (no Redis; a drone's read falls through go-redis/cache to the
//     rendered document in the map), with an index and notifier shared by every
//     Cache opened with the same NAME in the process.
//
// Stale guard. A state older than (or as old as) the cached one never
// replaces it. In Redis the compare-and-set is one Lua script per drone: it
// compares the cached timestamp (a fixed-width decimal string, so string
// order is time order), writes state, names, geo index and rendered entry,
// bumps the version and publishes the notice, all atomically and in one round
// trip. WATCH/MULTI would need two or more round trips per event and a retry
// loop under contention, and the geo index, fleet view and notice could not
// be part of the same check without widening the watched set; the script has
// no retries and no window in which a reader sees the state without its geo
// entry. In local mode the same rule runs under a mutex.
//
// Reads are cache-aside: a tenant whose fleet was never loaded (or was
// flushed) is read once from the store behind go-redis/cache's Once, so a
// stampede of concurrent misses makes one store read per process. Rendered
// fleet lists are kept per version in a process-local TinyLFU: a version is
// immutable, so no replica can serve a stale list under a current ETag. A
// full list leaves it when a newer version replaces it as the newest.
// To build a new version a reader does not re-read the whole fleet (megabytes
// at 10,000 drones; figures in docs/performance.md): it keeps its last copy and fetches only the
// entries changed since (ZRANGEBYSCORE on the changes set plus HMGET, one
// script, atomic with the fill token check), falling back to a full read
// after a refill or when a quarter of the fleet changed. A viewport query
// runs GEOSEARCH BYBOX (a covering box in metres, filtered exactly by
// lon/lat) in the same transaction as that patch and takes the entries from
// the copy, so only ids and coordinates cross the network.
//
// Redis is not used with TTLs for fleet data: memory is bounded by the number
// of registered drones (~1 KiB each) and an expiring key would leave a
// partial fleet view. Configure Redis with maxmemory-policy noeviction (or
// volatile-*), and call Invalidate when drones are renamed or retired.
package cache
