package cache

import "strconv"

// ListCached reports whether the LFU holds the tenant's rendered full list
// at version ver.
func ListCached(c *Cache, tenantID string, ver uint64) bool {
	_, ok := c.listsLFU.Get(tenantID + "\x00fleet\x00" + strconv.FormatUint(ver, 10))
	return ok
}
