package function

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dronetrack/dronetrack/core/config"
	"github.com/dronetrack/dronetrack/core/store/bolt"
)

// The struct's defaults are the ones NewHandler applies to zero Options, so
// a function started without the settings behaves as the handler in tests.
func TestConfigDefaultsMatchHandler(t *testing.T) {
	var c Config
	if err := config.Parse(context.Background(), map[string]string{EnvStoreURL: "bolt:///x"}, &c); err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := NewHandler(st, Options{})
	defer h.Close()
	if c.HistoryTTL != h.opts.HistoryTTL || c.StateInterval != h.opts.StateInterval || c.StoreTimeout != h.opts.StoreTimeout ||
		c.ReplayConcurrency != h.opts.ReplayConcurrency || c.ReplaySweep != h.opts.ReplaySweep {
		t.Errorf("config defaults %+v, handler defaults %+v", c, h.opts)
	}
}

func TestConfigErrorNamesVariable(t *testing.T) {
	for env, want := range map[string]string{
		EnvStateInterval: "soon",
		EnvStoreTimeout:  "-1s",
		EnvReplaySweep:   "0s",
	} {
		var c Config
		err := config.Parse(context.Background(), map[string]string{EnvStoreURL: "bolt:///x", env: want}, &c)
		if err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%s=%s: error %v, want one naming %s", env, want, err, env)
		}
	}
	var c Config
	if err := config.Parse(context.Background(), map[string]string{}, &c); err == nil || !strings.Contains(err.Error(), EnvStoreURL) {
		t.Errorf("no STORE_URL: error %v, want one naming it", err)
	}
}
