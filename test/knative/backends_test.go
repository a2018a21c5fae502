package knative

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestDeployableMainsLinkOnlyFirestore: each function's deployable main
// links the cluster's store backend and not bbolt. Backends register with
// core/store/storeurl when imported; a function package that imported
// core/store/bolt (or a storeurl that imported every backend again) would
// put bbolt back into every cluster binary.
func TestDeployableMainsLinkOnlyFirestore(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	const (
		bolt      = "github.com/dronetrack/dronetrack/core/store/bolt"
		bbolt     = "go.etcd.io/bbolt"
		firestore = "github.com/dronetrack/dronetrack/core/store/firestore"
	)
	for _, name := range Functions {
		cmd := exec.Command("go", "list", "-deps", "./cmd/"+name)
		cmd.Dir = filepath.Join(root, "functions", name)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: go list -deps: %v\n%s", name, err, out)
		}
		deps := strings.Fields(string(out))
		for _, p := range []string{bolt, bbolt} {
			if slices.Contains(deps, p) {
				t.Errorf("%s: cmd/%s links %s", name, name, p)
			}
		}
		// cache-refresh keeps no store; every other function opens
		// STORE_URL and must be able to open firestore://.
		if want := name != "cache-refresh"; slices.Contains(deps, firestore) != want {
			t.Errorf("%s: cmd/%s links %s: %v, want %v", name, name, firestore, !want, want)
		}
	}
}
