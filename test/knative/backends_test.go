package knative

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestDeployableMainsLinkOnlyClusterBackends: each function's deployable
// main links the cluster's backends (Firestore, Redis) and not the
// one-machine ones (bbolt, the in-process cache). Backends register with
// core/store/storeurl and core/cache when imported; a function package that
// imported core/store/bolt or core/cache/local (or a storeurl or cache that
// imported every backend again) would put them back into every cluster
// binary.
func TestDeployableMainsLinkOnlyClusterBackends(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	const (
		bolt      = "github.com/dronetrack/dronetrack/core/store/bolt"
		bbolt     = "go.etcd.io/bbolt"
		firestore = "github.com/dronetrack/dronetrack/core/store/firestore"
		local     = "github.com/dronetrack/dronetrack/core/cache/local"
		redis     = "github.com/dronetrack/dronetrack/core/cache/redis"
	)
	// The functions that keep the fleet cache: the writer and the reader.
	cacheUsers := []string{"cache-refresh", "serve-map"}
	for _, name := range Functions {
		cmd := exec.Command("go", "list", "-deps", "./cmd/"+name)
		cmd.Dir = filepath.Join(root, "functions", name)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: go list -deps: %v\n%s", name, err, out)
		}
		deps := strings.Fields(string(out))
		for _, p := range []string{bolt, bbolt, local} {
			if slices.Contains(deps, p) {
				t.Errorf("%s: cmd/%s links %s", name, name, p)
			}
		}
		// cache-refresh keeps no store; every other function opens
		// STORE_URL and must be able to open firestore://.
		if want := name != "cache-refresh"; slices.Contains(deps, firestore) != want {
			t.Errorf("%s: cmd/%s links %s: %v, want %v", name, name, firestore, !want, want)
		}
		// The cache users must be able to open redis://; the others have
		// no business with a cache.
		if want := slices.Contains(cacheUsers, name); slices.Contains(deps, redis) != want {
			t.Errorf("%s: cmd/%s links %s: %v, want %v", name, name, redis, !want, want)
		}
	}
}
