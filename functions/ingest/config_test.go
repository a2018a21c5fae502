package function

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/config"
	"github.com/dronetrack/dronetrack/core/ratelimit"
)

func TestConfigParsesSettings(t *testing.T) {
	base := map[string]string{EnvStoreURL: "bolt:///x", EnvSink: "http://127.0.0.1:1", EnvPepper: "p"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	var c Config
	if err := config.Parse(context.Background(), with(EnvKeyTTL, "30", EnvStoreTimeout, "2s", EnvRateLimitKey, "off",
		EnvRateLimitIP, "10/s:20", EnvRateLimitIPHops, "2"), &c); err != nil {
		t.Fatal(err)
	}
	rl := c.rateLimits()
	if time.Duration(c.KeyCacheTTL) != 30*time.Second || time.Duration(c.StoreTimeout) != 2*time.Second ||
		rl.Key.Rate != -1 || rl.IP != (ratelimit.Limit{Rate: 10, Burst: 20}) || rl.IPHops != 2 {
		t.Errorf("parsed %+v, limits %+v", c, rl)
	}
	// Unset settings take the tags' defaults, the ones NewHandler applies
	// to zero Deps (DefaultConfig).
	c = Config{}
	if err := config.Parse(context.Background(), base, &c); err != nil {
		t.Fatal(err)
	}
	wantLimits := RateLimits{Key: ratelimit.Limit{Rate: 50, Burst: 100}, IP: ratelimit.Limit{Rate: 5000, Burst: 10000}}
	if c.rateLimits() != wantLimits || time.Duration(c.KeyCacheTTL) != 30*time.Second || time.Duration(c.StoreTimeout) != 5*time.Second {
		t.Errorf("unset: %+v, limits %+v", c, c.rateLimits())
	}
	d := DefaultConfig()
	if d.rateLimits() != c.rateLimits() || d.KeyCacheTTL != c.KeyCacheTTL || d.StoreTimeout != c.StoreTimeout {
		t.Errorf("DefaultConfig() = %+v, Parse of nothing = %+v", d, c)
	}
	for _, kv := range [][2]string{{EnvRateLimitKey, "fast"}, {EnvRateLimitIP, "many"}, {EnvRateLimitIPHops, "-1"},
		{EnvRateLimitIPHops, "two"}, {EnvStoreTimeout, "soon"}} {
		err := config.Parse(context.Background(), with(kv[0], kv[1]), &Config{})
		if err == nil || !strings.Contains(err.Error(), kv[0]) {
			t.Errorf("%s=%s: error %v, want one naming it", kv[0], kv[1], err)
		}
	}
}
