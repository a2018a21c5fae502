package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/keys"

	"github.com/dronetrack/dronetrack/infra/local"
)

func TestReadKeyFileFormats(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"demo.json":    `[{"tenantId":"demo","droneId":"d1","name":"a","key":"k1"},{"key":"k2"}]`,
		"strings.json": `["k1", "k2"]`,
		"keys.txt":     "# drone keys\nk1\n\n  k2  \n",
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := readKeyFile(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff([]string{"k1", "k2"}, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{"Acme Drones GmbH": "acme-drones-gmbh", "  x--y ": "x-y", "Ünï 42!": "n-42"} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnknownCommandFails(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := Run(context.Background(), []string{"fly"}, &out, &errOut); err == nil {
		t.Error("unknown command accepted")
	}
	if !strings.Contains(errOut.String(), "usage: dronetrack") {
		t.Errorf("no usage printed: %q", errOut.String())
	}
}

// Without a running up, the admin commands open the data dir's store
// themselves; a drone's key is printed once and only its hash is stored.
func TestAdminCommandsOpenTheStoreWhenNoUpRuns(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := Run(ctx, append(args, "--data", dir), &out, &errOut); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, errOut.String())
		}
		return out.String()
	}
	if got := run("tenant", "create", "--name", "Acme Drones"); !strings.Contains(got, "tenant acme-drones (Acme Drones) created") {
		t.Errorf("tenant create printed %q", got)
	}
	out := run("drone", "add", "--tenant", "acme-drones", "--name", "falcon")
	_, key, ok := strings.Cut(out, "key (shown once, store it now): ")
	key = strings.TrimSpace(key)
	if !ok || !strings.HasPrefix(key, "dtk_") {
		t.Fatalf("drone add printed no key: %q", out)
	}
	st, err := local.OpenStore(ctx, local.StoreURL(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pepper, err := local.LoadPepper(dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := st.DroneByKeyHash(ctx, keys.Hash([]byte(pepper), key))
	if err != nil {
		t.Fatalf("the printed key does not authenticate: %v", err)
	}
	if d.TenantID != "acme-drones" || d.Name != "falcon" || strings.Contains(d.KeyHash, key) {
		t.Errorf("stored drone %+v", d)
	}
	// A second tenant with the same id is refused.
	var errOut bytes.Buffer
	if err := Run(ctx, []string{"tenant", "create", "--data", dir, "--name", "Acme Drones"}, io.Discard, &errOut); err == nil {
		t.Error("duplicate tenant accepted")
	}
	// Dead letters live in the running up's broker.
	if err := Run(ctx, []string{"dlq", "list", "--data", dir}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "running `dronetrack up") {
		t.Errorf("dlq list without up: %v", err)
	}
}
