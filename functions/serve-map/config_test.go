package function

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/config"
	"github.com/dronetrack/dronetrack/core/secheaders"
	"github.com/dronetrack/dronetrack/core/tracklink"
)

// The struct tags' defaults equal the constants the rest of the code uses.
func TestConfigDefaults(t *testing.T) {
	var c Config
	if err := config.Parse(context.Background(), map[string]string{}, &c); err != nil {
		t.Fatal(err)
	}
	if c.TilesURL != secheaders.DefaultTilesURL || c.LinkFlightIdle != tracklink.DefaultIdle ||
		c.SessionTTL != 12*time.Hour || c.SSERing != 1024 || c.CacheURL != "local://dronetrack" {
		t.Errorf("defaults: %+v", c)
	}
	// DefaultConfig, what code without Start applies to zero values, is
	// what Parse gives when nothing is set.
	if d := DefaultConfig(); d != c {
		t.Errorf("DefaultConfig() = %+v, Parse of nothing = %+v", d, c)
	}
	// TILES_URL="" means no tiles, not the default.
	c = Config{}
	if err := config.Parse(context.Background(), map[string]string{"TILES_URL": ""}, &c); err != nil || c.TilesURL != "" {
		t.Errorf("TILES_URL empty: %q, %v", c.TilesURL, err)
	}
}

func TestConfigErrorsNameVariable(t *testing.T) {
	for k, v := range map[string]string{
		"SESSION_TTL": "0s", "SESSION_RECHECK": "soon", "SSE_RING": "0", "SSE_HEARTBEAT": "-1s",
		"COOKIE_SECURE": "sometimes", "RATE_LIMIT_IP_HOPS": "-1", "ARGON2_MEMORY_KIB": "4",
		"LINK_RECHECK": "0s", "LINK_RATE_IP": "fast", "RID_INJECTION": "maybe", "RID_REFRESH": "x",
	} {
		err := config.Parse(context.Background(), map[string]string{k: v}, &Config{})
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: error %v, want one naming it", k, v, err)
		}
	}
}
