package function

import (
	"fmt"

	"github.com/dronetrack/dronetrack/core/config"
	"github.com/dronetrack/dronetrack/core/ratelimit"
)

// Config is ingest's settings, parsed by core/config from the map func-go
// hands to Start (the Env* constants are its env names). Its tags are the
// one home of the defaults: NewHandler takes them for zero Deps through
// DefaultConfig.
type Config struct {
	StoreURL     string           `env:"STORE_URL,required" doc:"store holding drones and their key hashes (bolt:///path or firestore://PROJECT)"`
	Sink         string           `env:"K_SINK,required" doc:"broker ingress ingest publishes to (the SinkBinding injects it on the cluster)"`
	Pepper       string           `env:"DRONE_KEY_PEPPER,required" doc:"secret under which drone key hashes are made (a Secret, never a ConfigMap)"`
	LogLevel     string           `env:"LOG_LEVEL" doc:"debug, info, warn or error (default info)"`
	KeyCacheTTL  config.Duration  `env:"KEY_CACHE_TTL,default=30s" doc:"delay before a revoked key stops working; Go duration or seconds"`
	KeyCacheSize int              `env:"KEY_CACHE_SIZE,default=100000" doc:"drone keys remembered (one per drone reporting within KEY_CACHE_TTL); a fleet larger than this looks a key up in the store per request"`
	StoreTimeout config.Duration  `env:"STORE_TIMEOUT,default=5s" doc:"bound of a drone key lookup; past it the drone gets 503 with Retry-After; Go duration or seconds"`
	KeyLimit     config.RateLimit `env:"RATE_LIMIT_KEY,default=50/s:100" doc:"per-drone rate, RATE/s:BURST or off"`
	IPLimit      config.RateLimit `env:"RATE_LIMIT_IP,default=5000/s:10000" doc:"per-client-address rate, RATE/s:BURST or off"`
	IPHops       int              `env:"RATE_LIMIT_IP_HOPS" doc:"trusted proxies appending to X-Forwarded-For in front of ingest (default 0: the peer is the client)"`
}

// DefaultConfig is Config with only its tags' defaults set: what NewHandler
// applies to zero Deps durations and RateLimits.
func DefaultConfig() Config { return config.Defaults[Config]() }

// Validate checks the proxy count.
func (c *Config) Validate() error {
	if c.IPHops < 0 {
		return fmt.Errorf("%s=%d: want a count of proxies, 0 or more", EnvRateLimitIPHops, c.IPHops)
	}
	return nil
}

func (c *Config) rateLimits() RateLimits {
	return RateLimits{Key: limit(c.KeyLimit), IP: limit(c.IPLimit), IPHops: c.IPHops}
}

// limit is a RATE_LIMIT_* value: "off" becomes Rate -1 (RateLimits' zero
// Limit means the default).
func limit(l config.RateLimit) ratelimit.Limit {
	v := l.Limit()
	if l != "" && v.Off() {
		v.Rate = -1
	}
	return v
}
