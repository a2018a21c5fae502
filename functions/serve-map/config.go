package function

import (
	"fmt"
	"time"

	"github.com/dronetrack/dronetrack/core/config"
)

// Config is serve-map's settings, parsed by core/config from the map
// func-go hands to Start. config_test.go checks the defaults against the
// constants the code uses elsewhere (accounts, tracklink, secheaders).
type Config struct {
	StoreURL string `env:"STORE_URL" doc:"required: store of tenants, drones, history, accounts (bolt:///path or firestore://PROJECT)"`
	CacheURL string `env:"CACHE_URL,default=local://dronetrack" doc:"cache of the fleet's latest state (redis://host:port/db or local://NAME)"`
	LogLevel string `env:"LOG_LEVEL" doc:"debug, info, warn or error (default info)"`
	Pepper   string `env:"DRONE_KEY_PEPPER" doc:"secret under which new and rotated drone keys are hashed (the one ingest checks with)"`
	// TilesURL "" means no map tiles, so "" is a value here, not unset.
	TilesURL         string           `env:"TILES_URL,default=https://tile.openstreetmap.org/{z}/{x}/{y}.png" config:"empty" doc:"map tile URL template; empty: no tiles (also the CSP's img-src)"`
	SSEHeartbeat     time.Duration    `env:"SSE_HEARTBEAT,default=15s" doc:"comment line sent on idle event streams"`
	SSERing          int              `env:"SSE_RING,default=1024" doc:"updates kept per tenant: for a reconnecting stream's Last-Event-ID, and how far a live stream may fall behind before it is told to resync"`
	CacheRetryAfter  time.Duration    `env:"CACHE_RETRY_AFTER,default=1s" doc:"how long after a cache failure serve-map reads the store instead"`
	FleetListMaxAge  time.Duration    `env:"FLEET_LIST_MAX_AGE,default=1s" doc:"how stale the cached fleet list may be"`
	SessionTTL       time.Duration    `env:"SESSION_TTL,default=12h" doc:"a login session lives this long since last use"`
	SessionRecheck   time.Duration    `env:"SESSION_RECHECK,default=30s" doc:"how often an open stream re-checks its session"`
	CookieSecure     string           `env:"COOKIE_SECURE,default=auto" doc:"auto (Secure on HTTPS requests) or always (__Host- cookies)"`
	RateLimitIPHops  int              `env:"RATE_LIMIT_IP_HOPS" doc:"trusted proxies appending to X-Forwarded-For (default 0: the peer is the client)"`
	Argon2MemoryKiB  int              `env:"ARGON2_MEMORY_KIB" doc:"password hash memory in KiB, at least 8 (tests lower the cost; default accounts.DefaultParams)"`
	LinkRecheck      time.Duration    `env:"LINK_RECHECK,default=2s" doc:"how often an open tracking-link stream re-reads its link"`
	LinkFlightIdle   time.Duration    `env:"LINK_FLIGHT_IDLE,default=5m" doc:"a flight link ends after this long without reports"`
	LinkRateIP       config.RateLimit `env:"LINK_RATE_IP,default=1/s:20" doc:"public link requests per client address"`
	LinkRateLink     config.RateLimit `env:"LINK_RATE_LINK,default=10/s:60" doc:"public link requests per link, from everywhere"`
	LinkMaxStreams   int              `env:"LINK_MAX_STREAMS,default=20" doc:"open streams of one tracking link on one replica; more get 429"`
	RIDRefresh       time.Duration    `env:"RID_REFRESH,default=1s" doc:"how often the Remote ID snapshot is rebuilt"`
	RIDInjection     string           `env:"RID_INJECTION,default=false" doc:"true or on enables the Remote ID test-data injection API"`
	RIDSecret        string           `env:"RID_SECRET" doc:"key of operator-location obfuscation (default derived from DRONE_KEY_PEPPER)"`
	RIDAudience      string           `env:"RID_AUDIENCE" doc:"comma-separated audiences of Remote ID access tokens; unset: Remote ID off"`
	RIDJWKSURL       string           `env:"RID_JWKS_URL" doc:"JWKS of the Remote ID token issuer (or RID_PUBLIC_KEY_FILE)"`
	RIDPublicKeyFile string           `env:"RID_PUBLIC_KEY_FILE" doc:"PEM public key of the Remote ID token issuer (or RID_JWKS_URL)"`
}

// DefaultConfig is Config with only its tags' defaults set: the one home of
// the defaults the server applies to zero values.
func DefaultConfig() Config { return config.Defaults[Config]() }

// Validate checks ranges and enumerations.
func (c *Config) Validate() error {
	for _, d := range []struct {
		key     string
		v       time.Duration
		zeroOK  bool
		example string
	}{
		{"SSE_HEARTBEAT", c.SSEHeartbeat, true, "15s"}, {"CACHE_RETRY_AFTER", c.CacheRetryAfter, true, "1s"},
		{"FLEET_LIST_MAX_AGE", c.FleetListMaxAge, true, "1s"}, {"RID_REFRESH", c.RIDRefresh, true, "1s"},
		{"SESSION_TTL", c.SessionTTL, false, "12h"}, {"SESSION_RECHECK", c.SessionRecheck, false, "30s"},
		{"LINK_RECHECK", c.LinkRecheck, false, "2s"}, {"LINK_FLIGHT_IDLE", c.LinkFlightIdle, false, "5m"},
	} {
		if d.v < 0 || (d.v == 0 && !d.zeroOK) {
			return fmt.Errorf("%s=%v: want a positive duration such as %s", d.key, d.v, d.example)
		}
	}
	if c.SSERing < 1 {
		return fmt.Errorf("SSE_RING=%d: want a positive integer", c.SSERing)
	}
	switch c.CookieSecure {
	case "auto", "always":
	default:
		return fmt.Errorf("COOKIE_SECURE=%q: want auto or always", c.CookieSecure)
	}
	if c.LinkMaxStreams < 1 {
		return fmt.Errorf("LINK_MAX_STREAMS=%d: want a positive integer", c.LinkMaxStreams)
	}
	if c.RateLimitIPHops < 0 {
		return fmt.Errorf("RATE_LIMIT_IP_HOPS=%d: want a non-negative integer", c.RateLimitIPHops)
	}
	if c.Argon2MemoryKiB != 0 && c.Argon2MemoryKiB < 8 {
		return fmt.Errorf("ARGON2_MEMORY_KIB=%d: want an integer >= 8", c.Argon2MemoryKiB)
	}
	switch c.RIDInjection {
	case "false", "off", "true", "on":
	default:
		return fmt.Errorf("RID_INJECTION=%q: want true or false", c.RIDInjection)
	}
	return nil
}
