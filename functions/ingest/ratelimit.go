package function

import (
	"net/http"
	"time"

	"github.com/dronetrack/dronetrack/core/ratelimit"
)

// Rate limit settings (environment). Each limit is "RATE/s:BURST" or "off".
const (
	// EnvRateLimitKey limits each drone (by its key), across every ingest
	// path. A drone reporting at 10 Hz uses a fifth of the default.
	EnvRateLimitKey = "RATE_LIMIT_KEY"
	// EnvRateLimitIP limits each client address, before the key is checked,
	// so a flood of bad keys costs no store lookups. It is high because many
	// drones share a carrier NAT.
	EnvRateLimitIP = "RATE_LIMIT_IP"
	// EnvRateLimitIPHops is how many trusted proxies append to
	// X-Forwarded-For in front of ingest (0: the peer address is the client).
	EnvRateLimitIPHops = "RATE_LIMIT_IP_HOPS"
)

// RateLimits configure the handler's per-drone and per-IP token buckets. A
// zero Limit means the default (Config's RATE_LIMIT_KEY and RATE_LIMIT_IP:
// generous enough for the simulator's fleets and the load tests, tight
// enough that one runaway client cannot starve the rest);
// ratelimit.Limit{Rate: -1} turns it off.
type RateLimits struct {
	Key, IP ratelimit.Limit
	IPHops  int
}

// limiters builds the buckets, taking def's limits for zero ones.
func (rl RateLimits) limiters(def RateLimits) (key, ip *ratelimit.Limiter) {
	if rl.Key == (ratelimit.Limit{}) {
		rl.Key = def.Key
	}
	if rl.IP == (ratelimit.Limit{}) {
		rl.IP = def.IP
	}
	return ratelimit.New(rl.Key), ratelimit.New(rl.IP)
}

// tooMany answers 429 with Retry-After.
func tooMany(w http.ResponseWriter, wait time.Duration, detail string) int {
	w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
	return fail(w, http.StatusTooManyRequests, "", detail)
}

// limitIP applies the per-address limit; 0 means go on.
func (h *Handler) limitIP(w http.ResponseWriter, r *http.Request) int {
	if h.ipLimit == nil {
		return 0
	}
	if ok, wait := h.ipLimit.Allow(ratelimit.ClientIP(r, h.ipHops), h.now()); !ok {
		return tooMany(w, wait, "too many requests from this address; slow down")
	}
	return 0
}

// limitDrone applies the per-drone limit after authentication; 0 means go on.
func (h *Handler) limitDrone(w http.ResponseWriter, id identity) int {
	if h.keyLimit == nil {
		return 0
	}
	if ok, wait := h.keyLimit.Allow(id.limitKey, h.now()); !ok {
		return tooMany(w, wait, "too many requests for this drone; batch reports or slow down")
	}
	return 0
}
