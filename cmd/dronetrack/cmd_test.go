package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/keys"
	"github.com/dronetrack/dronetrack/core/problem"
)

func TestPepperIsMadeOnceAndPrivate(t *testing.T) {
	dir := t.TempDir()
	p1, err := loadPepper(dir)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := loadPepper(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p1 != p2 || len(p1) != 64 {
		t.Errorf("pepper changed or is short: %q then %q", p1, p2)
	}
	fi, err := os.Stat(filepath.Join(dir, pepperFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("pepper file mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestDemoKeysRoundTripPrivately(t *testing.T) {
	path := filepath.Join(t.TempDir(), demoKeysFile)
	want := []demoKey{{TenantID: "demo", DroneID: "d1", Name: "demo-001", Key: "dtk_x"}}
	if err := writeDemoKeys(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := readDemoKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("demo keys (-want +got):\n%s", diff)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("demo keys mode %v, want 0600", fi.Mode().Perm())
	}
}

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
	if err := realMain(context.Background(), []string{"fly"}, &out, &errOut); err == nil {
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
		if err := realMain(ctx, append(args, "--data", dir), &out, &errOut); err != nil {
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
	st, err := openStore(ctx, storeURL(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pepper, err := loadPepper(dir)
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
	if err := realMain(ctx, []string{"tenant", "create", "--data", dir, "--name", "Acme Drones"}, io.Discard, &errOut); err == nil {
		t.Error("duplicate tenant accepted")
	}
	// Dead letters live in the running up's broker.
	if err := realMain(ctx, []string{"dlq", "list", "--data", dir}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "running `dronetrack up") {
		t.Errorf("dlq list without up: %v", err)
	}
}

// The admin endpoint answers a missing token and a bad body with RFC 9457
// problem JSON from core/problem, as the functions do.
func TestAdminHandlerProblems(t *testing.T) {
	h := adminHandler(nil, "tok") // neither request reaches the admin
	for _, tc := range []struct {
		name, auth, body string
		want             int
	}{
		{"no token", "", `{}`, http.StatusUnauthorized},
		{"bad JSON", "Bearer tok", `{"id":`, http.StatusBadRequest},
	} {
		req := httptest.NewRequest(http.MethodPost, "/admin/v1/tenants", strings.NewReader(tc.body))
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var p problem.Details
		err := json.Unmarshal(rec.Body.Bytes(), &p)
		if rec.Code != tc.want || rec.Header().Get("Content-Type") != problem.ContentType || err != nil || p.Status != tc.want || p.Detail == "" {
			t.Errorf("%s: %d %q %s (decode err %v); want %d problem JSON with a detail", tc.name, rec.Code, rec.Header().Get("Content-Type"), rec.Body, err, tc.want)
		}
	}
}
