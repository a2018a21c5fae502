package system

import (
	"strings"
	"testing"

	"github.com/dronetrack/dronetrack/infra/local"
)

// --set reaches the function's Start through up, and a setting that does
// not validate stops up with an error naming it.
func TestUpSetReachesFunction(t *testing.T) {
	var sets local.SetFlags
	if err := sets.Set("process.STATE_INTERVAL=10s"); err != nil {
		t.Fatal(err)
	}
	sys, err := local.Start(t.Context(), local.Options{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Set: sets})
	if err == nil {
		_ = sys.Shutdown()
		t.Fatal("up started with process STATE_INTERVAL=10s over STORE_TIMEOUT=5s")
	}
	if !strings.Contains(err.Error(), "start process") || !strings.Contains(err.Error(), "STATE_INTERVAL") {
		t.Errorf("error %v, want process's start naming STATE_INTERVAL", err)
	}
}
