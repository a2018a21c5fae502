package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/loadgen"
	"github.com/dronetrack/dronetrack/infra/local"
)

// TestRemoteTarget: `load --url` reads the demo drones, the demo owner's
// login and up's process id from the data dir, and refuses a dir with too
// few demo drones.
func TestRemoteTarget(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(local.DemoKeysFile, `[{"tenantId":"demo","droneId":"d1","name":"demo-001","key":"k1"},{"tenantId":"demo","droneId":"d2","name":"demo-002","key":"k2"}]`)
	write(local.DemoLoginFile, `{"email":"demo@dronetrack.localhost","password":"pw"}`)
	write(local.AdminFile, `{"url":"http://127.0.0.1:1","token":"t","pid":4242}`)

	got, err := remoteTarget("http://127.0.0.1:8080/", dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := loadgen.Target{
		URL:    "http://127.0.0.1:8080",
		Drones: []loadgen.Drone{{TenantID: "demo", DroneID: "d1", Key: "k1"}},
		Login:  loadgen.Login{Email: "demo@dronetrack.localhost", Password: "pw"},
		PID:    4242,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("target (-want +got):\n%s", diff)
	}
	if _, err := remoteTarget("http://127.0.0.1:8080", dir, 3); err == nil || !strings.Contains(err.Error(), "--demo-drones 3") {
		t.Errorf("3 drones from a dir with 2: err %v; want one naming --demo-drones 3", err)
	}
}
