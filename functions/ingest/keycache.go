package function

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// identity is what a drone key proves: which drone of which tenant sends.
type identity struct {
	DroneID  string
	TenantID string
	// limitKey is the drone's per-drone rate limit key ("tenant/drone"),
	// built once when the key is looked up rather than per request.
	limitKey string
}

func newIdentity(tenantID, droneID string) identity {
	return identity{DroneID: droneID, TenantID: tenantID, limitKey: tenantID + "/" + droneID}
}

// cacheKey is the SHA-256 of a drone key. The cache never holds keys
// themselves, so a heap dump does not leak live credentials; a plain hash is
// enough because keys are 256-bit random and cannot be brute-forced.
type cacheKey [sha256.Size]byte

// keyOf hashes a key through a stack buffer: converting a key longer than
// 32 bytes to []byte would allocate on every request.
func keyOf(key string) cacheKey {
	var buf [128]byte
	return sha256.Sum256(append(buf[:0], key...))
}

// lru is a small size-bounded cache whose entries also expire after a fixed
// TTL. It is what makes ingest fast (one store lookup per key per TTL, not
// per request), and the TTL is the price: a revoked key keeps working for up
// to that long in every ingest replica.
type lru struct {
	mu    sync.Mutex
	ttl   time.Duration
	max   int
	order *list.List // front = most recently used
	items map[cacheKey]*list.Element
}

type lruEntry struct {
	key     cacheKey
	id      identity
	expires time.Time
}

func newLRU(max int, ttl time.Duration) *lru {
	return &lru{ttl: ttl, max: max, order: list.New(), items: make(map[cacheKey]*list.Element, min(max, 1024))}
}

func (c *lru) get(k cacheKey, now time.Time) (identity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return identity{}, false
	}
	e := el.Value.(*lruEntry)
	if !now.Before(e.expires) {
		c.order.Remove(el)
		delete(c.items, k)
		return identity{}, false
	}
	c.order.MoveToFront(el)
	return e.id, true
}

func (c *lru) put(k cacheKey, id identity, now time.Time) {
	if c.max <= 0 || c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		e := el.Value.(*lruEntry)
		e.id, e.expires = id, now.Add(c.ttl)
		c.order.MoveToFront(el)
		return
	}
	for c.order.Len() >= c.max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.items, old.Value.(*lruEntry).key)
	}
	c.items[k] = c.order.PushFront(&lruEntry{key: k, id: id, expires: now.Add(c.ttl)})
}

func (c *lru) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
